package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
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
	// tail: the reader's account's records since an hour ago, filtered; with a log group that does not exist, an error.
	out, err = run(readerEnv, "tail", "--region", "eu-west-1", "--since", "1h", "--filter", `{ $.userIdentity.userName = "ops" }`)
	if err != nil || !strings.Contains(out, "444455556666_CloudTrail_eu-west-1") || !strings.Contains(out, `"eventName":"RotateKey"`) || strings.Count(out, "\n") != 1 {
		t.Fatalf("tail: %v\n%s", err, out)
	}
	if out, err := run(readerEnv, "tail", "--log-group", "missing"); err == nil || !strings.Contains(out, "ResourceNotFoundException") {
		t.Fatalf("tail of a missing group: %v %s", err, out)
	}
	if out, err := run(readerEnv, "deadletters", "list", "--log-group", "missing", "--filter-name", "f"); err == nil || !strings.Contains(out, "ResourceNotFoundException") {
		t.Fatalf("deadletters of a missing group: %v %s", err, out)
	}
	if out, err := run(nil, "version"); err != nil || !strings.HasPrefix(out, "opentrail ") {
		t.Fatalf("version: %v %s", err, out)
	}
}

// TestValidateLogsCommand: "opentrail validate-logs" checks what a trail
// delivered to folder buckets, and fails once a log file is deleted.
func TestValidateLogsCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "buckets", "cli-logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	srv := startServerBinary(t, bin, dir, "--delivery-interval", "200ms", "--digest-interval", "1s")
	c := srv.client()
	ct := c.cloudTrail()
	ctx := t.Context()
	start := time.Now().UTC().Add(-time.Minute)
	tr, err := ct.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("cli-trail"), S3BucketName: aws.String("cli-logs"), EnableLogFileValidation: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	run := func() (string, error) {
		cmd := exec.Command(bin, "validate-logs", "--trail-arn", aws.ToString(tr.TrailARN), "--start-time", start.Format(time.RFC3339),
			"--data-dir", dir, "--endpoint", srv.endpoint, "--verbose")
		cmd.Env = append(os.Environ(), "OPENTRAIL_ACCESS_KEY_ID="+srv.keyID, "OPENTRAIL_SECRET_ACCESS_KEY="+srv.secret)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// Before the first digest there is nothing to check, and the command says why.
	if out, err := run(); err == nil || !strings.Contains(out, "no digest delivered yet under s3://cli-logs/AWSLogs/") {
		t.Fatalf("validate-logs before any digest: %v\n%s", err, out)
	}
	if _, err := ct.StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: tr.Name}); err != nil {
		t.Fatal(err)
	}
	var logs []string
	countLogs := func() {
		logs = nil
		filepath.WalkDir(filepath.Join(dir, "buckets", "cli-logs"), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if err == nil && !d.IsDir() && strings.Contains(p, "/CloudTrail/") {
				logs = append(logs, p)
			}
			return nil
		})
	}
	// Records until three log files are delivered (each file closes with its delivery interval;
	// on a loaded machine two records may share one), then until a digest lists the last file.
	time.Sleep(1200 * time.Millisecond)
	for deadline := time.Now().Add(30 * time.Second); ; {
		body := []byte(fmt.Sprintf(`{"Records":[{"eventTime":%q,"eventName":"Deploy","eventSource":"ci.example.com"}]}`, time.Now().UTC().Format(time.RFC3339)))
		if err := c.post(ctx, "/v1/records", body, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(600 * time.Millisecond)
		if countLogs(); len(logs) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d log files delivered in 30 s", len(logs))
		}
	}
	var out string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		out, err = run()
		// Three log files that a valid digest covers: the ones tampered with below.
		logs = nil
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Split(line, "\t"); len(f) == 3 && f[0] == "Log file" && f[2] == "valid" {
				logs = append(logs, filepath.Join(dir, "buckets", "cli-logs", filepath.FromSlash(strings.TrimPrefix(f[1], "s3://cli-logs/"))))
			}
		}
		if err == nil && strings.Contains(out, "digest files valid") && !strings.Contains(out, "INVALID") && len(logs) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("validate-logs: %v\n%s", err, out)
		}
		if countLogs(); len(logs) < 4 { // one more file, so that a digest comes to cover three
			body := []byte(fmt.Sprintf(`{"Records":[{"eventTime":%q,"eventName":"Deploy","eventSource":"ci.example.com"}]}`, time.Now().UTC().Format(time.RFC3339)))
			if err := c.post(ctx, "/v1/records", body, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	sort.Strings(logs)
	if err := os.Remove(logs[0]); err != nil {
		t.Fatal(err)
	}
	// A tampered file (issue 12: the folder store's own check stopped the run with its error)
	// is reported as the AWS CLI reports it, and the check goes on to the next files.
	if err := os.WriteFile(logs[1], gzipped(t, `{"Records":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run()
	rel := func(p string) string {
		return "s3://cli-logs/" + filepath.ToSlash(strings.TrimPrefix(p, filepath.Join(dir, "buckets", "cli-logs")+string(filepath.Separator)))
	}
	if err == nil || !strings.Contains(out, rel(logs[0])+"\tINVALID: not found") ||
		!strings.Contains(out, rel(logs[1])+"\tINVALID: hash value doesn't match") || !strings.Contains(out, rel(logs[2])+"\tvalid") {
		t.Fatalf("validate-logs after deleting one log file and changing another: %v\n%s", err, out)
	}
}

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
