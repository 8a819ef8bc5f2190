package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRulesCheck: every error is printed as file:line:col, the good rules are
// counted, and the command fails when there is an error.
func TestRulesCheck(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"good.yml": "title: Good\nid: 11111111-1111-4111-8111-111111111111\nlogsource:\n    product: aws\n    service: cloudtrail\n" +
			"detection:\n    selection:\n        eventName: StopLogging\n    condition: selection\nlevel: high\n",
		"sub/bad.yaml": "title: Bad\nid: 22222222-2222-4222-8222-222222222222\nlogsource:\n    product: aws\n    service: cloudtrail\n" +
			"detection:\n    selection:\n        eventName|nosuchmodifier: X\n    condition: selection\n",
		"windows.yml": "title: Not CloudTrail\nid: 33333333-3333-4333-8333-333333333333\nlogsource:\n    product: windows\n" +
			"detection:\n    selection:\n        EventID: 4625\n    condition: selection\n",
		"notes.txt": "not a rule",
	} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	err := rulesCheck([]string{dir}, &out)
	if err == nil {
		t.Fatalf("no error for a broken rule:\n%s", out.String())
	}
	bad := regexp.QuoteMeta(filepath.Join(dir, "sub", "bad.yaml"))
	if !regexp.MustCompile(`(?m)^` + bad + `:8:\d+: .*nosuchmodifier`).MatchString(out.String()) {
		t.Errorf("no file:line:col for the broken rule:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "1 rules ok, 1 not applicable, 1 errors") {
		t.Errorf("summary:\n%s", out.String())
	}
	out.Reset()
	if err := rulesCheck([]string{filepath.Join(dir, "good.yml")}, &out); err != nil {
		t.Errorf("good rule: %v\n%s", err, out.String())
	}
}

// TestRulesTestEDS runs "opentrail rules test --eds" against a server
// process: the store's records are read by Lake queries of 100 records each,
// in event time order across pages that end among records of the same
// second, each record once, and the matches are printed per rule;
// --start-time leaves out the older records.
func TestRulesTestEDS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	bin, srv, id := startWithEDS(t, "backtest")
	c := srv.client()

	t0 := time.Date(2024, 3, 4, 5, 0, 0, 0, time.UTC)
	rec := func(id string, at time.Time, source, name, user, extra string) string {
		return fmt.Sprintf(`{"eventVersion":"1.08","eventID":%q,"eventTime":%q,"eventSource":%q,"eventName":%q,"awsRegion":"us-east-1",`+
			`"userIdentity":{"type":"IAMUser","userName":%q}%s}`, id, at.Format(time.RFC3339), source, name, user, extra)
	}
	failed := `,"responseElements":{"ConsoleLogin":"Failure"},"errorMessage":"Failed authentication"`
	recs := []string{
		rec("old-stop", t0.Add(-48*time.Hour), "cloudtrail.amazonaws.com", "StopLogging", "mallory", ""), // before --start-time
		rec("stop-1", t0.Add(time.Minute), "cloudtrail.amazonaws.com", "StopLogging", "mallory", ""),
		rec("stop-2", t0.Add(2*time.Minute), "cloudtrail.amazonaws.com", "DeleteTrail", "mallory", ""),
		rec("who-1", t0.Add(3*time.Minute), "sts.amazonaws.com", "GetCallerIdentity", "bob", ""),
		// Three failed logins by alice within 5 minutes (a brute force), two by bob.
		rec("a1", t0.Add(10*time.Minute), "signin.amazonaws.com", "ConsoleLogin", "alice", failed),
		rec("a2", t0.Add(11*time.Minute), "signin.amazonaws.com", "ConsoleLogin", "alice", failed),
		rec("a3", t0.Add(12*time.Minute), "signin.amazonaws.com", "ConsoleLogin", "alice", failed),
		rec("b1", t0.Add(10*time.Minute), "signin.amazonaws.com", "ConsoleLogin", "bob", failed),
		rec("b2", t0.Add(20*time.Minute), "signin.amazonaws.com", "ConsoleLogin", "bob", failed),
	}
	// Enough others, many at the same second, for several pages of results.
	for i := range 1500 {
		recs = append(recs, rec(fmt.Sprintf("o%04d", i), t0.Add(time.Duration(i/7)*time.Second), "s3.amazonaws.com", "ListBuckets", "carol", ""))
	}
	for i := 0; i < len(recs); i += 500 {
		body := `{"Records":[` + strings.Join(recs[i:min(i+500, len(recs))], ",") + `]}`
		if err := c.post(context.Background(), "/v1/records", []byte(body), nil); err != nil {
			t.Fatal(err)
		}
	}

	// The detect package's test rules, and one that counts carol's calls: every
	// record read once, over several pages.
	rules := t.TempDir()
	src := filepath.Join("..", "..", "internal", "detect", "testdata", "rules")
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(rules, e.Name()), b, 0o644)
	}
	os.WriteFile(filepath.Join(rules, "carol.yml"), []byte("title: Carol lists buckets\nid: carol-lists\nlevel: low\n"+
		"logsource: {product: aws, service: cloudtrail}\ndetection:\n    sel:\n        userIdentity.userName: carol\n"+
		"        eventName: ListBuckets\n    condition: sel\n"), 0o644)
	// Logging stopped, then a caller checked who it is: true only in event time order, across pages.
	os.WriteFile(filepath.Join(rules, "ordered.yml"), []byte("title: Stopped then looked\nid: stop-then-whoami\nlevel: high\n"+
		"correlation:\n    type: temporal_ordered\n    rules: [0d7f1c33-6a6b-4bb4-9a1e-1f5cc0a8f003, 0d7f1c33-6a6b-4bb4-9a1e-1f5cc0a8f004]\n"+
		"    timespan: 5m\n    generate: true\n"), 0o644)
	// The Lake loads the journal in the background: run until the store has
	// carol's every record (the server's own audit records come and go).
	var out, stderr string
	carol := regexp.MustCompile(`(?m)^1500 +low +carol-lists `)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, stderr, err = runCLI(bin, srv, "rules", "test", "--eds", id, "--start-time", t0.Format(time.RFC3339), "--page-rows", "100", rules)
		if err == nil && carol.MatchString(out) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || !carol.MatchString(out) {
		t.Fatalf("rules test --eds: %v\n%s\n%s", err, out, stderr)
	}
	matches := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(line)
		matches[f[2]] = f[0]
	}
	for rule, n := range map[string]string{
		"0d7f1c33-6a6b-4bb4-9a1e-1f5cc0a8f003": "2", // StopLogging and DeleteTrail, not the older StopLogging
		"0d7f1c33-6a6b-4bb4-9a1e-1f5cc0a8f004": "1", // GetCallerIdentity
		"0d7f1c33-6a6b-4bb4-9a1e-1f5cc0a8f002": "1", // alice's brute force
		"0d7f1c33-6a6b-4bb4-9a1e-1f5cc0a8f001": "0", // feeds the correlation only (generate: false)
		"stop-then-whoami":                     "1", // stop-1 in the 5th query, who-1 in the 13th
	} {
		if matches[rule] != n {
			t.Errorf("rule %s: %s matches, want %s\n%s", rule, matches[rule], n, out)
		}
	}
}
