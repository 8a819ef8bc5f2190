// Package archivetest writes CloudTrail log files for tests of the code that
// reads archives (archive, lake's QueryLogs, opentrail import).
package archivetest

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"
)

// WriteLogFile writes recs as a gzip CloudTrail log file, {"Records":[...]},
// at root/key (key in S3 form, with slashes).
func WriteLogFile(t testing.TB, root, key string, recs ...[]byte) {
	t.Helper()
	var body bytes.Buffer
	body.WriteString(`{"Records":[`)
	body.Write(bytes.Join(recs, []byte(",")))
	body.WriteString(`]}`)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(body.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
