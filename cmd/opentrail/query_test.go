package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
)

func TestExpandEDS(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SELECT * FROM eds", "SELECT * FROM ID"},
		{"select * from  EDS e join eds x on true", "select * from  ID e join ID x on true"},
		{"SELECT * FROM $EDS WHERE x = 'eds'", "SELECT * FROM ID WHERE x = 'eds'"},
		{"SELECT * FROM edsx", "SELECT * FROM edsx"},
	} {
		if got := expandEDS(tc.in, "ID"); got != tc.want {
			t.Errorf("expandEDS(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestQueryCommand runs "opentrail query" against a server process: progress
// on stderr, then the rows as a table, JSON lines and CSV.
func TestQueryCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	bin, srv, id := startWithEDS(t, "cli")
	if err := srv.client().post(context.Background(), "/v1/records", []byte(`{"Records":[
		{"eventTime":"2024-02-03T04:05:06Z","eventName":"RotateKey","eventSource":"vault.example.com"},
		{"eventTime":"2024-02-03T04:05:07Z","eventName":"RotateKey","eventSource":"vault.example.com"},
		{"eventTime":"2024-02-03T04:05:08Z","eventName":"Login","eventSource":"sso.example.com"}]}`), nil); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, string, error) {
		return runCLI(bin, srv, append([]string{"query"}, args...)...)
	}
	sql := "SELECT eventName, count(*) AS n FROM eds WHERE eventSource LIKE '%.example.com' GROUP BY eventName ORDER BY eventName"
	var out, stderr string
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, stderr, err = run("--eds", id, sql)
		if err == nil && strings.Contains(out, "RotateKey") || time.Now().After(deadline) {
			break
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || len(lines) != 3 || !strings.HasPrefix(lines[0], "eventName") || !strings.HasPrefix(lines[1], "Login ") ||
		!strings.HasSuffix(lines[2], " 2") || !strings.Contains(stderr, "2 rows") {
		t.Fatalf("table: %v\n%s\n%s", err, out, stderr)
	}
	out, _, err = run("--eds", id, "--output", "json", sql)
	var row map[string]string
	if err != nil || json.Unmarshal([]byte(strings.Split(out, "\n")[1]), &row) != nil || row["eventName"] != "RotateKey" || row["n"] != "2" {
		t.Fatalf("json: %v\n%s", err, out)
	}
	out, _, err = run("--eds", id, "--output", "csv", "--quiet", sql)
	if err != nil || out != "eventName,n\nLogin,1\nRotateKey,2\n" {
		t.Fatalf("csv: %v\n%q", err, out)
	}
	if _, stderr, err := run("--eds", id, "SELECT nope FROM eds"); err == nil || !strings.Contains(stderr, "nope") {
		t.Fatalf("bad SQL: %v %s", err, stderr)
	}
}

// startWithEDS starts a server process with an event data store; it
// returns the binary, the server and the store's ID.
func startWithEDS(t *testing.T, name string) (string, *benchServer, string) {
	t.Helper()
	bin := buildBinary(t)
	srv := startServerBinary(t, bin, t.TempDir())
	st, err := srv.client().cloudTrail().CreateEventDataStore(context.Background(),
		&cloudtrail.CreateEventDataStoreInput{Name: aws.String(name), RetentionPeriod: aws.Int32(3653)})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(st.EventDataStoreArn)
	return bin, srv, arn[strings.LastIndex(arn, "/")+1:]
}

// runCLI runs the binary with args as the root key against srv and returns
// its stdout and stderr.
func runCLI(bin string, srv *benchServer, args ...string) (string, string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "OPENTRAIL_ENDPOINT="+srv.endpoint,
		"OPENTRAIL_ROOT_ACCESS_KEY_ID="+srv.keyID, "OPENTRAIL_ROOT_SECRET_ACCESS_KEY="+srv.secret)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	return string(out), stderr.String(), err
}
