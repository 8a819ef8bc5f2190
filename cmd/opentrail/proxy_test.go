package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProxyFlagErrors(t *testing.T) {
	t.Setenv("OPENTRAIL_ACCESS_KEY_ID", "AKIATESTWRITER000001")
	t.Setenv("OPENTRAIL_SECRET_ACCESS_KEY", "test-writer-secret-0123456789abcdefgh")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"Statement":[{"Effect":"Allow","Action":"dynamodb:*","Conditon":{}}]}`), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "--upstream is required"},
		{[]string{"--upstream", "ftp://x"}, `upstream "ftp://x" is not an http or https URL`},
		{[]string{"--upstream", "http://x", "--redact", "rot13"}, `--redact "rot13": want mask or hmac`},
		{[]string{"--upstream", "http://x", "--redact", "hmac"}, "--redact hmac needs --hmac-key-file"},
		{[]string{"--upstream", "http://x", "--tls-cert", "c.pem"}, "give both --tls-cert and --tls-key"},
		{[]string{"--upstream", "http://x", "--spool-max-bytes", "10"}, "--spool-max-bytes 10: at least 1048576"},
		{[]string{"--upstream", "http://x", "--policy", bad}, "Statement[0].Conditon: unknown member"},
		{[]string{"--upstream", "http://x", "--account", "12"}, `account "12" is not a 12-digit account ID`},
		{[]string{"--upstream", "http://x", "--spool-dir", filepath.Join(dir, "s"), "--listen", "256.0.0.1:1"}, "256.0.0.1"},
	} {
		err := runProxy(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("runProxy(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
	t.Setenv("OPENTRAIL_ACCESS_KEY_ID", "")
	if err := runProxy([]string{"--upstream", "http://x"}); err == nil || !strings.Contains(err.Error(), "OPENTRAIL_ACCESS_KEY_ID") {
		t.Errorf("without credentials: %v", err)
	}
}
