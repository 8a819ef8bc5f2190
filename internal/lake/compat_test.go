package lake

import (
	"strings"
	"testing"
	"time"
)

// compatRecord has the shapes the compat functions read: a JSON array of
// objects and a nested object in requestParameters.
func compatRecord() []byte {
	return []byte(`{"eventVersion":"1.09","eventTime":"2024-02-10T08:00:00Z","eventSource":"config.amazonaws.com",` +
		`"eventName":"PutEvaluations","awsRegion":"eu-west-1","sourceIPAddress":"config.amazonaws.com","userAgent":"config.amazonaws.com",` +
		`"userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:rule","accountId":"123456789012"},` +
		`"requestParameters":{"evaluations":[{"kind":"first","score":7},{"kind":"second","score":9}],` +
		`"limits":{"cpu":{"state":"ok","id":"c1"},"disk":{"state":"full","id":"d1"}}},` +
		`"eventID":"c0ffee00-0000-4000-8000-000000000001","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,` +
		`"recipientAccountId":"123456789012","eventCategory":"Management"}`)
}

// TestCompat covers the Trino functions and casts AWS's published Lake sample
// queries use that the base rewrite missed (compat.go).
func TestCompat(t *testing.T) {
	v := newEnv(t, allEvents(acct, edsID))
	v.ingest(acct, compatRecord(), lambdaInvoke("fn", "", "55555555-0000-0000-0000-000000000009", time.Date(2024, 2, 10, 9, 0, 0, 0, time.UTC)))
	for _, c := range []struct{ name, sql, want string }{
		// resourceCompliance.sql: json_array_get did not exist.
		{"json_array_get on a map value",
			`SELECT json_extract_scalar(json_array_get(element_at(requestParameters, 'evaluations'), 1), '$.kind') FROM $EDS WHERE eventName = 'PutEvaluations'`,
			"_col0\nsecond"},
		{"json_array_get counts back from the end and is NULL out of range or on a non-array",
			`SELECT json_array_get('["p", {"q": 1}]', -1), json_array_get('[4, 5]', 2), json_array_get('{"a": [1]}', 0), json_array_get(NULL, 0)`,
			"_col0 | _col1 | _col2 | _col3\n{\"q\":1} | NULL | NULL | NULL"},
		// The Config sample queries: replace with two arguments removes the text.
		{"replace with two arguments",
			`SELECT replace(eventSource, '.amazonaws.com'), replace(eventName, 'Put', 'Get') FROM $EDS WHERE eventName = 'PutEvaluations'`,
			"_col0 | _col1\nconfig | GetEvaluations"},
		// The Config sample queries: CAST(json AS MAP(varchar, json)) parses the JSON.
		{"cast JSON to a map, then filter its values",
			`SELECT transform(filter(map_values(CAST(json_extract(requestParameters, '$.limits') AS map(varchar, json))), l -> CAST(json_extract(l, '$.state') AS varchar) = 'full'), l -> json_extract_scalar(l, '$.id')) FROM $EDS WHERE eventName = 'PutEvaluations'`,
			"_col0\n[d1]"},
		{"cast JSON to an array",
			`SELECT cardinality(CAST(json_parse('[3, 1, 2]') AS ARRAY(bigint))), TRY_CAST(json_parse('["u", "v"]') AS array(varchar))[2]`,
			"_col0 | _col1\n3 | v"},
		// CAST(json AS VARCHAR) gives a JSON string's value, not its quoted text.
		{"cast of a JSON string to varchar drops the quotes",
			`SELECT CAST(json_extract(requestParameters, '$.limits.cpu.state') AS VARCHAR), CAST(json_parse('12') AS varchar), CAST(json_parse('null') AS varchar) FROM $EDS WHERE eventName = 'PutEvaluations'`,
			"_col0 | _col1 | _col2\nok | 12 | NULL"},
		{"a cast to varchar of anything else is unchanged",
			`SELECT CAST(requestParameters AS varchar) LIKE '{"evaluations":%' FROM $EDS WHERE eventName = 'PutEvaluations'`,
			"_col0\ntrue"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := table(v.query(acct, strings.ReplaceAll(c.sql, "$EDS", edsID)))
			if got != c.want {
				t.Errorf("%s\n got: %s\nwant: %s", c.sql, got, c.want)
			}
		})
	}
}

// TestCompatSandbox: the compat rewrites keep the sandbox's rules.
func TestCompatSandbox(t *testing.T) {
	v := newEnv(t, allEvents(acct, edsID))
	for _, sql := range []string{
		`SELECT CAST((SELECT current_setting('threads')) AS MAP(varchar, varchar))`,
		`SELECT json_array_get((SELECT CAST(count(*) AS VARCHAR) FROM duckdb_settings()), 0)`,
		`SELECT replace(getenv('HOME'), '/')`,
		`SELECT CAST(json_extract((SELECT * FROM read_text('/etc/passwd')), '$') AS varchar)`,
	} {
		if _, err := v.e.Query(t.Context(), acct, sql); err == nil {
			t.Errorf("%s: ran, want it refused", sql)
		}
	}
}
