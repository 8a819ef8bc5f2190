package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
)

// deadEndpoint is a loopback URL nothing listens on.
func deadEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// TestAWSConfigChain: client commands take credentials, region and endpoint from the AWS
// SDK's chain (a profile in the shared files, AWS_REGION, AWS_ENDPOINT_URL,
// AWS_ENDPOINT_URL_CLOUDTRAIL), and OPENTRAIL_ variables and flags override it (issue 12).
func TestAWSConfigChain(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	bin := buildBinary(t)
	srv := startServerBinary(t, bin, t.TempDir())
	dead := deadEndpoint(t)
	root := []string{"OPENTRAIL_ROOT_ACCESS_KEY_ID=" + srv.keyID, "OPENTRAIL_ROOT_SECRET_ACCESS_KEY=" + srv.secret, "OPENTRAIL_ENDPOINT=" + srv.endpoint}
	r := runBin(t, bin, cleanEnv(t, root...), "keys", "create", "--user", "auditor", "--role", "reader")
	var k struct{ AccessKeyId, SecretAccessKey string }
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &k) != nil {
		t.Fatalf("keys create: %+v", r)
	}
	// One record in eu-west-1: a lookup finds it only when it looks in that region.
	c := srv.client()
	c.region = "eu-west-1"
	if err := c.post(t.Context(), "/v1/records", []byte(`{"Records":[{"eventTime":"2024-02-03T04:05:06Z","eventName":"ProfileProbe","eventSource":"ci.example.com"}]}`), nil); err != nil {
		t.Fatal(err)
	}

	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".aws"), 0o700)
	os.WriteFile(filepath.Join(home, ".aws", "config"), []byte(fmt.Sprintf("[profile ot]\nregion = eu-west-1\nendpoint_url = %s\n", srv.endpoint)), 0o600)
	os.WriteFile(filepath.Join(home, ".aws", "credentials"), []byte(fmt.Sprintf("[ot]\naws_access_key_id = %s\naws_secret_access_key = %s\n", k.AccessKeyId, k.SecretAccessKey)), 0o600)
	profile := func(extra ...string) []string {
		return append(cleanEnv(t, "HOME="+home, "AWS_PROFILE=ot"), extra...)
	}
	keyEnv := func(extra ...string) []string {
		return cleanEnv(t, append([]string{"AWS_ACCESS_KEY_ID=" + k.AccessKeyId, "AWS_SECRET_ACCESS_KEY=" + k.SecretAccessKey}, extra...)...)
	}
	found := func(r result) bool { return r.code == 0 && strings.Contains(r.stdout, "ProfileProbe") }
	for _, tc := range []struct {
		name  string
		env   []string
		args  []string
		found bool   // the record is printed
		fails string // else: exit 1 with this on stderr ("" = exit 0, record not printed)
	}{
		{name: "profile: credentials, region and endpoint_url", env: profile(), found: true},
		{name: "AWS_REGION beats the profile's region", env: profile("AWS_REGION=us-east-1")},
		{name: "OPENTRAIL_REGION beats AWS_REGION", env: profile("AWS_REGION=us-east-1", "OPENTRAIL_REGION=eu-west-1"), found: true},
		{name: "--region beats OPENTRAIL_REGION", env: profile("OPENTRAIL_REGION=us-east-1"), args: []string{"--region", "eu-west-1"}, found: true},
		{name: "AWS_ENDPOINT_URL and AWS_DEFAULT_REGION", env: keyEnv("AWS_ENDPOINT_URL="+srv.endpoint, "AWS_DEFAULT_REGION=eu-west-1"), found: true},
		{name: "AWS_ENDPOINT_URL_CLOUDTRAIL beats AWS_ENDPOINT_URL", env: keyEnv("AWS_ENDPOINT_URL="+dead, "AWS_ENDPOINT_URL_CLOUDTRAIL="+srv.endpoint, "AWS_REGION=eu-west-1"), found: true},
		{name: "OPENTRAIL_ENDPOINT beats the profile", env: profile("OPENTRAIL_ENDPOINT=" + dead),
			fails: "no OpenTrail server is running at " + dead},
		{name: "--endpoint beats OPENTRAIL_ENDPOINT", env: profile("OPENTRAIL_ENDPOINT=" + dead), args: []string{"--endpoint", srv.endpoint}, found: true},
		{name: "OPENTRAIL_ACCESS_KEY_ID beats the profile's key", env: profile("OPENTRAIL_ACCESS_KEY_ID=AKIAUNKNOWNUNKNOWN00", "OPENTRAIL_SECRET_ACCESS_KEY=unknown-unknown-unknown"),
			fails: "UnrecognizedClientException"},
	} {
		r := runBin(t, bin, tc.env, append([]string{"lookup"}, tc.args...)...)
		switch {
		case tc.fails != "":
			if r.code != 1 || !strings.Contains(r.stderr, tc.fails) {
				t.Errorf("%s: exit %d, want 1 with %q\n%s", tc.name, r.code, tc.fails, r.stderr)
			}
		case found(r) != tc.found || r.code != 0:
			t.Errorf("%s: exit %d, found %v, want %v\n%s%s", tc.name, r.code, found(r), tc.found, r.stdout, r.stderr)
		}
	}
	// The profile serves the other client commands too.
	if r := runBin(t, bin, profile(), "tail", "--since", "87600h"); r.code != 0 || !strings.Contains(r.stdout, "ProfileProbe") {
		t.Errorf("tail with a profile: %+v", r)
	}
	if r := runBin(t, bin, profile(), "query", "--quiet", "SELECT 1"); r.code != 1 || !strings.Contains(r.stderr, "StatusCode: 400") {
		t.Errorf("query with a profile reaches StartQuery: %+v", r)
	}
}

// TestKeysCommands: keys list, disable, enable and delete, by the root key and by an admin
// of one account; a disabled key fails SigV4 as AWS answers an inactive key; the root key
// cannot be deleted; each call is recorded as the IAM call it stands for.
func TestKeysCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	bin := buildBinary(t)
	srv := startServerBinary(t, bin, t.TempDir())
	rootEnv := cleanEnv(t, "OPENTRAIL_ROOT_ACCESS_KEY_ID="+srv.keyID, "OPENTRAIL_ROOT_SECRET_ACCESS_KEY="+srv.secret, "AWS_ENDPOINT_URL="+srv.endpoint)
	create := func(account, user, role string) (id, secret string) {
		r := runBin(t, bin, rootEnv, "keys", "create", "--account", account, "--user", user, "--role", role)
		var k struct{ AccessKeyId, SecretAccessKey string }
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &k) != nil {
			t.Fatalf("keys create: %+v", r)
		}
		return k.AccessKeyId, k.SecretAccessKey
	}
	adminID, adminSecret := create("444455556666", "ops", "admin")
	writerID, writerSecret := create("444455556666", "ci", "writer")
	otherID, _ := create("777788889999", "them", "reader")
	adminEnv := cleanEnv(t, "AWS_ACCESS_KEY_ID="+adminID, "AWS_SECRET_ACCESS_KEY="+adminSecret, "AWS_ENDPOINT_URL="+srv.endpoint)

	r := runBin(t, bin, rootEnv, "keys", "list")
	for _, id := range []string{srv.keyID, adminID, writerID, otherID} {
		if !strings.Contains(r.stdout, id) {
			t.Errorf("root's keys list lacks %s:\n%s", id, r.stdout)
		}
	}
	r = runBin(t, bin, adminEnv, "keys", "list", "--output", "json")
	var list struct {
		AccessKeys []struct{ AccessKeyId, Account, Status string }
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &list) != nil || len(list.AccessKeys) != 2 {
		t.Fatalf("admin's keys list: %+v", r)
	}
	for _, k := range list.AccessKeys {
		if k.Account != "444455556666" || k.Status != "Active" {
			t.Errorf("admin's keys list shows %+v", k)
		}
	}
	if r := runBin(t, bin, adminEnv, "keys", "list", "--account", "777788889999"); r.code != 1 || !strings.Contains(r.stderr, "AccessDeniedException") {
		t.Errorf("admin listing another account: %+v", r)
	}

	writer := &client{endpoint: srv.endpoint, region: "us-east-1", http: srv.client().http}
	writer.creds.AccessKeyID, writer.creds.SecretAccessKey = writerID, writerSecret
	ingest := func() error {
		return writer.post(t.Context(), "/v1/records", []byte(`{"Records":[{"eventTime":"2024-02-03T04:05:06Z","eventName":"Deploy","eventSource":"ci.example.com"}]}`), nil)
	}
	if err := ingest(); err != nil {
		t.Fatal(err)
	}
	if r := runBin(t, bin, adminEnv, "keys", "disable", writerID); r.code != 0 || !strings.Contains(r.stdout, "Inactive") {
		t.Fatalf("keys disable: %+v", r)
	}
	if err := ingest(); err == nil || !strings.Contains(err.Error(), "UnrecognizedClientException") {
		t.Fatalf("a disabled key signed a request: %v", err)
	}
	// The AWS SDK sees the same error code as AWS gives for an inactive key.
	_, err := writer.cloudTrail().DescribeTrails(context.Background(), &cloudtrail.DescribeTrailsInput{})
	if err == nil || !strings.Contains(err.Error(), "UnrecognizedClientException") {
		t.Fatalf("DescribeTrails with a disabled key: %v", err)
	}
	if r := runBin(t, bin, adminEnv, "keys", "enable", writerID); r.code != 0 || !strings.Contains(r.stdout, "Active") {
		t.Fatalf("keys enable: %+v", r)
	}
	if err := ingest(); err != nil {
		t.Fatalf("an enabled key: %v", err)
	}
	// An admin cannot touch another account's key, nor learn that it exists.
	for _, id := range []string{otherID, srv.keyID, "AKIANOSUCHKEYNOSUCH0"} {
		if r := runBin(t, bin, adminEnv, "keys", "disable", id); r.code != 1 || !strings.Contains(r.stderr, "NoSuchEntity: The Access Key with id "+id+" cannot be found.") {
			t.Errorf("admin disabling %s: %+v", id, r)
		}
	}
	if r := runBin(t, bin, rootEnv, "keys", "delete", srv.keyID); r.code != 1 || !strings.Contains(r.stderr, "the root key cannot be disabled or deleted") {
		t.Errorf("deleting the root key: %+v", r)
	}
	if r := runBin(t, bin, rootEnv, "keys", "delete", writerID); r.code != 0 || !strings.Contains(r.stdout, "deleted "+writerID) {
		t.Fatalf("keys delete: %+v", r)
	}
	if r := runBin(t, bin, rootEnv, "keys", "list"); strings.Contains(r.stdout, writerID) {
		t.Errorf("a deleted key is listed:\n%s", r.stdout)
	}
	if err := ingest(); err == nil {
		t.Fatal("a deleted key signed a request")
	}
	// The admin's calls are in its account's event history.
	r = runBin(t, bin, adminEnv, "lookup", "--attribute", "EventSource=iam.amazonaws.com", "--max", "0")
	for _, want := range []string{"ListAccessKeys", "UpdateAccessKey"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the admin's history lacks %s:\n%s", want, r.stdout)
		}
	}
	r = runBin(t, bin, rootEnv, "lookup", "--attribute", "EventName=DeleteAccessKey", "--output", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"accessKeyId":"`+writerID+`"`) || strings.Count(r.stdout, "\n") != 2 {
		t.Errorf("root's DeleteAccessKey records (one refused, one done): %+v", r)
	}
}

// TestServeOperations: --log-format json, a line per delivered log file and digest, a first
// SIGTERM that drains (even with a tail following) and exits 0 without ERROR lines, and a
// new OPENTRAIL_ROOT_* key that replaces the stored one.
func TestServeOperations(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "buckets", "ops-logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(deadEndpoint(t), "http://")
	endpoint := "http://" + addr
	start := func(keyID, secret string) (*exec.Cmd, *syncBuffer) {
		cmd := exec.Command(bin, "serve", "--listen", addr, "--data-dir", dir, "--log-format", "json",
			"--delivery-interval", "200ms", "--digest-interval", "1s")
		cmd.Env = cleanEnv(t, "OPENTRAIL_ROOT_ACCESS_KEY_ID="+keyID, "OPENTRAIL_ROOT_SECRET_ACCESS_KEY="+secret)
		logs := &syncBuffer{}
		cmd.Stderr = logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		waitFor(t, logs, `"msg":"OpenTrail is listening"`)
		return cmd, logs
	}
	cmd, logs := start("AKIAOPSROOTKEY000001", "ops-root-secret-ops-root-secret")
	c := &client{endpoint: endpoint, region: "us-east-1", http: &http.Client{Timeout: time.Minute},
		creds: aws.Credentials{AccessKeyID: "AKIAOPSROOTKEY000001", SecretAccessKey: "ops-root-secret-ops-root-secret"}}
	ct := c.cloudTrail()
	ctx := t.Context()
	if _, err := ct.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("ops-trail"), S3BucketName: aws.String("ops-logs"), EnableLogFileValidation: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := ct.StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: aws.String("ops-trail")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond) // the worker reads trails every second
	if err := c.post(ctx, "/v1/records", []byte(`{"Records":[{"eventTime":"2024-02-03T04:05:06Z","eventName":"Deploy","eventSource":"ci.example.com"}]}`), nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, logs, `"msg":"delivered log file"`)
	waitFor(t, logs, `"msg":"delivered digest file"`)

	// A tail that follows never ends on its own; the shutdown must still finish.
	tail := exec.Command(bin, "tail", "--follow", "--endpoint", endpoint)
	tail.Env = cleanEnv(t, "OPENTRAIL_ACCESS_KEY_ID=AKIAOPSROOTKEY000001", "OPENTRAIL_SECRET_ACCESS_KEY=ops-root-secret-ops-root-secret")
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tail.Process.Kill(); tail.Wait() })
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v\n%s", err, logs)
		}
	case <-time.After(25 * time.Second):
		t.Fatalf("serve still running 25 s after SIGTERM\n%s", logs)
	}
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil {
			t.Errorf("not a JSON log line: %s", l)
		} else if m["level"] == "ERROR" {
			t.Errorf("ERROR at shutdown: %s", l)
		}
	}

	// Another root key replaces the stored one, and says so.
	_, logs = start("AKIAOPSROOTKEY000002", "ops-root-secret-number-two-two")
	if !strings.Contains(logs.String(), `"old_access_key_id":"AKIAOPSROOTKEY000001"`) {
		t.Errorf("no line about the replaced root key:\n%s", logs)
	}
	if _, err := ct.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{}); err == nil || !strings.Contains(err.Error(), "UnrecognizedClientException") {
		t.Errorf("the replaced root key still works: %v", err)
	}
}

// waitFor waits until the process's output contains s.
func waitFor(t *testing.T, out *syncBuffer, s string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if strings.Contains(out.String(), s) {
			return
		}
	}
	t.Fatalf("no %s in:\n%s", s, out)
}
