package lake

import (
	"testing"
	"time"
)

// TestJSONExtractPrefilter: json_extract and json_extract_scalar skip parsing
// rows whose text lacks the path's first key, and nothing else changes: keys
// that only share a prefix, nested paths, paths that start with an index and absent keys all
// answer as before.
func TestJSONExtractPrefilter(t *testing.T) {
	v := newEnv(t, allEvents(acct, edsID))
	v.ingest(acct, lambdaInvoke("fn", "eni-0123456789abcdef0", "66666666-0000-0000-0000-000000000001", time.Date(2024, 2, 10, 9, 0, 0, 0, time.UTC)))
	for _, c := range []struct{ sql, want string }{
		{`SELECT json_extract('{"customer-id": "x", "a": {"b": [1, 2]}}', '$.customer-id') IS NULL, json_extract_scalar('{"customer-id": "x"}', '$.customer-id')`,
			"_col0 | _col1\nfalse | x"},
		{`SELECT json_extract('{"customerX": 1}', '$.customer'), json_extract_scalar('{"ab": 1}', '$.a'), json_extract('{"a": {"b": [1, 2]}}', '$.a.b[1]')`,
			"_col0 | _col1 | _col2\nNULL | NULL | 2"},
		{`SELECT json_extract_scalar('{"n": null}', '$.n'), json_extract(NULL, '$.a'), json_extract('[{"a": 1}]', '$[0].a')`,
			"_col0 | _col1 | _col2\nNULL | NULL | 1"},
		{`SELECT json_extract(additionaleventdata, '$.customerEniId'), json_extract_scalar(requestParameters, '$.functionName') FROM ` + edsID +
			` WHERE json_extract(additionaleventdata, '$.customerEniId') IS NOT NULL`,
			"_col0 | _col1\n\"eni-0123456789abcdef0\" | arn:aws:lambda:ap-northeast-1:123456789012:function:fn"},
	} {
		if got := table(v.query(acct, c.sql)); got != c.want {
			t.Errorf("%s\n got: %s\nwant: %s", c.sql, got, c.want)
		}
	}
}
