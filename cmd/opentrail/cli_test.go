package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestClientCommands runs "opentrail keys create", "opentrail lookup" and
// "opentrail version" as a user would, against a real server process.
func TestClientCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	bin := buildBinary(t)
	srv := startServerBinary(t, bin, t.TempDir())
	run := func(extraEnv []string, args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "OPENTRAIL_ENDPOINT="+srv.endpoint)
		cmd.Env = append(cmd.Env, extraEnv...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	rootEnv := []string{"OPENTRAIL_ROOT_ACCESS_KEY_ID=" + srv.keyID, "OPENTRAIL_ROOT_SECRET_ACCESS_KEY=" + srv.secret}

	out, err := run(rootEnv, "keys", "create", "--account", "444455556666", "--user", "ops", "--role", "writer")
	if err != nil {
		t.Fatalf("keys create: %v %s", err, out)
	}
	var k struct{ AccessKeyId, SecretAccessKey, Account, User string }
	if err := json.Unmarshal([]byte(out), &k); err != nil || k.Account != "444455556666" || k.User != "ops" || !strings.HasPrefix(k.AccessKeyId, "AKIA") || len(k.SecretAccessKey) != 40 {
		t.Fatalf("keys create printed %q (%v)", out, err)
	}
	if out, err := run(nil, "keys", "create", "--user", "x"); err == nil || !strings.Contains(out, "OPENTRAIL_ROOT_ACCESS_KEY_ID") {
		t.Fatalf("keys create without root credentials: %v %s", err, out)
	}

	// The new writer key ingests; a reader key created for the same account looks the records up.
	writer := &client{endpoint: srv.endpoint, region: "eu-west-1", http: srv.client().http}
	writer.creds.AccessKeyID, writer.creds.SecretAccessKey = k.AccessKeyId, k.SecretAccessKey
	if err := writer.post(t.Context(), "/v1/records", []byte(`{"Records":[{"eventTime":"2024-02-03T04:05:06Z","eventName":"RotateKey","eventSource":"vault.example.com","userIdentity":{"type":"IAMUser","userName":"ops"}}]}`), nil); err != nil {
		t.Fatal(err)
	}
	out, err = run(rootEnv, "keys", "create", "--account", "444455556666", "--user", "auditor", "--role", "reader")
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal([]byte(out), &k)
	readerEnv := []string{"OPENTRAIL_ACCESS_KEY_ID=" + k.AccessKeyId, "OPENTRAIL_SECRET_ACCESS_KEY=" + k.SecretAccessKey}
	out, err = run(readerEnv, "lookup", "--region", "eu-west-1", "--attribute", "Username=ops")
	if err != nil || !strings.Contains(out, "RotateKey") || !strings.Contains(out, "2024-02-03T04:05:06Z") || !strings.Contains(out, "EVENT NAME") {
		t.Fatalf("lookup table: %v\n%s", err, out)
	}
	out, err = run(readerEnv, "lookup", "--region", "eu-west-1", "--attribute", "EventName=RotateKey", "--output", "json")
	var rec map[string]any
	if err != nil || json.Unmarshal([]byte(out), &rec) != nil || rec["eventSource"] != "vault.example.com" || rec["recipientAccountId"] != "444455556666" {
		t.Fatalf("lookup json: %v\n%s", err, out)
	}
	if out, err := run(readerEnv, "lookup", "--attribute", "NoEquals"); err == nil || !strings.Contains(out, "Key=Value") {
		t.Fatalf("bad --attribute: %v %s", err, out)
	}
	if out, err := run(nil, "version"); err != nil || !strings.HasPrefix(out, "opentrail ") {
		t.Fatalf("version: %v %s", err, out)
	}
}
