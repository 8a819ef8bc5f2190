package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/app"
	"github.com/opentrail/opentrail/internal/logs/dest"
	"github.com/opentrail/opentrail/internal/server"
)

const (
	ruleBruteForce  = "0d7f1c33-6a6b-4bb4-9a1e-1f5cc0a8f002" // ../detect/testdata/rules/console_login_bruteforce.yml
	ruleStopLogging = "0d7f1c33-6a6b-4bb4-9a1e-1f5cc0a8f003"
)

func consoleFailure(id, user string, at time.Time) []byte {
	return fmt.Appendf(nil, `{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","userName":%q},"eventTime":%q,"eventSource":"signin.amazonaws.com",
		"eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.9","responseElements":{"ConsoleLogin":"Failure"},
		"errorMessage":"Failed authentication","eventID":%q,"eventType":"AwsConsoleSignIn","managementEvent":true,"eventCategory":"Management"}`,
		user, at.UTC().Format(time.RFC3339), id)
}

func stopLogging(id string, at time.Time) []byte {
	return fmt.Appendf(nil, `{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","userName":"mallory"},"eventTime":%q,"eventSource":"cloudtrail.amazonaws.com",
		"eventName":"StopLogging","awsRegion":"eu-west-1","requestParameters":{"name":"main"},"eventID":%q,"eventType":"AwsApiCall","managementEvent":true,"eventCategory":"Management"}`,
		at.UTC().Format(time.RFC3339), id)
}

// waitDetections waits until the detections reflect everything acknowledged.
func (e *env) waitDetections() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.a.Detect.WaitApplied(ctx, e.a.Journal.Last()); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) findings(k key, req server.FindingsRequest) (int, server.FindingsResponse, string) {
	e.t.Helper()
	body, _ := json.Marshal(req)
	status, b := e.post(k, "us-east-1", "/v1/findings", body)
	var out server.FindingsResponse
	if status == 200 {
		if err := json.Unmarshal(b, &out); err != nil {
			e.t.Fatal(err)
		}
	}
	return status, out, string(b)
}

// TestDetections: records ingested through POST /v1/records become findings
// read through POST /v1/findings by the account's readers only, and reach a
// webhook with their records; three failed console logins of one user within
// five minutes fire the brute-force correlation once.
func TestDetections(t *testing.T) {
	h := newHook(t)
	e := startWith(t, func(c *app.Config) {
		c.RulePaths = []string{"../detect/testdata/rules"}
		c.Destinations.Findings = []dest.FindingRoute{{Destination: h.srv.URL + "/findings", MinLevel: "high"}}
	})
	const acctB = "210987654321"
	writerA, readerA := e.newKey(rootAcct, "ingest", "writer"), e.newKey(rootAcct, "soc", "reader")
	writerB, readerB := e.newKey(acctB, "ingest", "writer"), e.newKey(acctB, "soc", "reader")

	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	e.ingest(writerA, "us-east-1", consoleFailure("a1", "alice", t0), consoleFailure("a2", "alice", t0.Add(time.Minute)))
	e.ingest(writerB, "us-east-1", consoleFailure("b1", "alice", t0.Add(90*time.Second))) // another account: never counts for A
	e.ingest(writerA, "us-east-1", consoleFailure("a3", "alice", t0.Add(2*time.Minute)), consoleFailure("x1", "bob", t0.Add(2*time.Minute)),
		stopLogging("s1", t0.Add(3*time.Minute)))
	e.ingest(writerA, "us-east-1", consoleFailure("a1", "alice", t0)) // a duplicate: acknowledged, not evaluated again
	e.waitDetections()

	status, got, body := e.findings(readerA, server.FindingsRequest{})
	if status != 200 {
		t.Fatalf("findings: %d %s", status, body)
	}
	var rules []string
	for _, f := range got.Findings {
		rules = append(rules, f.RuleId)
	}
	if !slices.Equal(rules, []string{ruleStopLogging, ruleBruteForce}) {
		t.Fatalf("findings of A (newest first) = %s", body)
	}
	brute := got.Findings[1]
	if !slices.Equal(brute.EventIds, []string{"a1", "a2", "a3"}) || brute.GroupBy["userIdentity.userName"] != "alice" ||
		brute.AccountId != rootAcct || brute.Level != "high" || brute.Time != float64(t0.Add(2*time.Minute).Unix()) {
		t.Errorf("brute-force finding = %+v", brute)
	}
	if stop := got.Findings[0]; stop.Region != "eu-west-1" || stop.Level != "critical" || !slices.Equal(stop.EventIds, []string{"s1"}) {
		t.Errorf("StopLogging finding = %+v", stop)
	}

	// Account B sees only its own (nothing fired there); A's writer is denied.
	if status, got, body := e.findings(readerB, server.FindingsRequest{}); status != 200 || len(got.Findings) != 0 {
		t.Errorf("account B: %d %s", status, body)
	}
	if status, _, body := e.findings(writerA, server.FindingsRequest{}); status != 403 || !strings.Contains(body, "AccessDeniedException") {
		t.Errorf("writer: %d %s", status, body)
	}
	// Filters and validation.
	one := 1
	status, page, body := e.findings(readerA, server.FindingsRequest{MaxResults: &one})
	if status != 200 || len(page.Findings) != 1 || page.NextToken == "" {
		t.Fatalf("first page: %d %s", status, body)
	}
	if status, next, body := e.findings(readerA, server.FindingsRequest{MaxResults: &one, NextToken: page.NextToken}); status != 200 ||
		len(next.Findings) != 1 || next.Findings[0].RuleId != ruleBruteForce || next.NextToken != "" {
		t.Errorf("second page: %d %s", status, body)
	}
	if _, got, _ := e.findings(readerA, server.FindingsRequest{MinLevel: "critical"}); len(got.Findings) != 1 || got.Findings[0].RuleId != ruleStopLogging {
		t.Errorf("MinLevel critical: %+v", got.Findings)
	}
	if _, got, _ := e.findings(readerA, server.FindingsRequest{RuleId: ruleBruteForce}); len(got.Findings) != 1 {
		t.Errorf("RuleId: %+v", got.Findings)
	}
	if _, got, _ := e.findings(readerA, server.FindingsRequest{Region: "eu-west-1"}); len(got.Findings) != 1 || got.Findings[0].RuleId != ruleStopLogging {
		t.Errorf("Region eu-west-1: %+v", got.Findings)
	}
	if _, got, _ := e.findings(readerA, server.FindingsRequest{Region: "us-east-1"}); len(got.Findings) != 1 || got.Findings[0].RuleId != ruleBruteForce {
		t.Errorf("Region us-east-1: %+v", got.Findings)
	}
	late := float64(t0.Add(150 * time.Second).Unix())
	if _, got, _ := e.findings(readerA, server.FindingsRequest{StartTime: &late}); len(got.Findings) != 1 || got.Findings[0].RuleId != ruleStopLogging {
		t.Errorf("StartTime: %+v", got.Findings)
	}
	zero, early := 0, float64(t0.Unix())
	for _, c := range []struct {
		req  server.FindingsRequest
		code string
	}{
		{server.FindingsRequest{MaxResults: &zero}, "InvalidParameterException"},
		{server.FindingsRequest{MinLevel: "severe"}, "InvalidParameterException"},
		{server.FindingsRequest{Region: "Mars"}, "InvalidParameterException"},
		{server.FindingsRequest{StartTime: &late, EndTime: &early}, "InvalidParameterException"},
		{server.FindingsRequest{NextToken: "forged"}, "InvalidNextTokenException"},
		{server.FindingsRequest{NextToken: page.NextToken, RuleId: ruleStopLogging}, "InvalidNextTokenException"},
	} {
		if status, _, body := e.findings(readerA, c.req); status != 400 || !strings.Contains(body, c.code) {
			t.Errorf("%+v: %d %s, want %s", c.req, status, body, c.code)
		}
	}
	if status, b := e.post(readerA, "us-east-1", "/v1/findings", []byte(`{"Bogus":1}`)); status != 400 {
		t.Errorf("unknown member: %d %s", status, b)
	}

	// The webhook (high and above) got both findings, with their records.
	h.wait(t, 2)
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := map[string]int{}
	for _, b := range h.bodies {
		var p struct {
			Finding struct{ RuleId string }
			Records []struct{ EventID string }
		}
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("alert body %s: %v", b, err)
		}
		seen[p.Finding.RuleId] = len(p.Records)
		if p.Finding.RuleId == ruleBruteForce && (len(p.Records) != 3 || p.Records[2].EventID != "a3") {
			t.Errorf("brute-force alert = %s", b)
		}
	}
	if seen[ruleBruteForce] != 3 || seen[ruleStopLogging] != 1 || len(h.bodies) != 2 {
		t.Errorf("alerts: %v (%d bodies)", seen, len(h.bodies))
	}

	// The rules API: every rule with its status, matches counted for the caller's account.
	status, b := e.post(readerA, "us-east-1", "/v1/rules", []byte(`{}`))
	var rl server.RulesResponse
	if status != 200 || json.Unmarshal(b, &rl) != nil {
		t.Fatalf("rules: %d %s", status, b)
	}
	matches := map[string]int64{}
	for _, r := range rl.Rules {
		if r.Status != "ok" {
			t.Errorf("rule %+v", r)
		}
		matches[r.ID] = r.Matches
	}
	if matches[ruleBruteForce] != 1 || matches[ruleStopLogging] != 1 {
		t.Errorf("rule matches = %v", matches)
	}
}

// TestFindingsDeadLetters: findings a destination refused become dead
// letters that POST /v1/deadletters lists and replays per account (root: all);
// a reader lists but cannot replay; a replay whose audit record fails moves
// nothing; an unknown destination is named in the error.
func TestFindingsDeadLetters(t *testing.T) {
	var tries atomic.Int64
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		tries.Add(1)
		w.WriteHeader(http.StatusForbidden) // rejected: a dead letter at once
	}))
	defer refuse.Close()
	e := startWith(t, func(c *app.Config) {
		c.RulePaths = []string{"../detect/testdata/rules/stop_logging.yml"}
		c.Destinations.Findings = []dest.FindingRoute{{Destination: refuse.URL + "/secret-path"}}
	})
	const acctB = "210987654321"
	adminA, readerA := e.newKey(rootAcct, "ops", "admin"), e.newKey(rootAcct, "soc", "reader")
	adminB := e.newKey(acctB, "ops", "admin")
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	e.ingest(adminA, "us-east-1", stopLogging("da1", t0))
	e.ingest(adminB, "us-east-1", stopLogging("db1", t0))
	e.waitDetections()

	list := func(k key, body string) []server.DeadFinding {
		t.Helper()
		status, b := e.post(k, "us-east-1", "/v1/deadletters", []byte(body))
		if status != 200 {
			t.Fatalf("list %s: %d %s", body, status, b)
		}
		var out struct{ DeadLetters []server.DeadFinding }
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out.DeadLetters
	}
	var all []server.DeadFinding
	for deadline := time.Now().Add(10 * time.Second); len(all) < 2 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		all = list(root, `{"Action":"list","Kind":"findings"}`)
	}
	if len(all) != 2 {
		t.Fatalf("root's dead findings = %+v", all)
	}
	name := all[0].Destination
	if strings.Contains(name, "secret-path") {
		t.Errorf("the destination's name shows its path: %q", name)
	}
	if got := list(readerA, `{"Action":"list","Kind":"findings"}`); len(got) != 1 || got[0].EventIds[0] != "da1" || got[0].AccountId != rootAcct {
		t.Errorf("A's dead findings = %+v", got)
	}
	if status, b := e.post(readerA, "us-east-1", "/v1/deadletters", []byte(`{"Action":"replay","Kind":"findings"}`)); status != 403 {
		t.Errorf("a reader replayed: %d %s", status, b)
	}
	if status, b := e.post(adminA, "us-east-1", "/v1/deadletters", []byte(`{"Action":"list","Kind":"findings","Destination":"https://nowhere.example"}`)); status != 404 ||
		!strings.Contains(string(b), "ResourceNotFoundException") {
		t.Errorf("unknown destination: %d %s", status, b)
	}
	if status, b := e.post(adminA, "us-east-1", "/v1/deadletters", []byte(`{"Action":"list","Kind":"findings","LogGroupName":"g"}`)); status != 400 {
		t.Errorf("a log group with findings: %d %s", status, b)
	}

	// A replay whose record cannot be written changes nothing.
	e.a.Handler.SetAuditFault(func(op string) error { return fmt.Errorf("disk gone") })
	if status, b := e.post(adminA, "us-east-1", "/v1/deadletters", []byte(`{"Action":"replay","Kind":"findings"}`)); status != 500 {
		t.Errorf("replay without its record: %d %s", status, b)
	}
	e.a.Handler.SetAuditFault(nil)
	if got := list(root, `{"Action":"list","Kind":"findings"}`); len(got) != 2 {
		t.Fatalf("after a replay that was not recorded: %+v", got)
	}

	// A's admin replays A's dead letters only; B's stay.
	before := tries.Load()
	status, b := e.post(adminA, "us-east-1", "/v1/deadletters", []byte(`{"Action":"replay","Kind":"findings","Destination":"`+name+`"}`))
	if status != 200 || !strings.Contains(string(b), `"Replayed":1`) {
		t.Fatalf("replay: %d %s", status, b)
	}
	if got := list(adminB, `{"Action":"list","Kind":"findings"}`); len(got) != 1 || got[0].EventIds[0] != "db1" {
		t.Errorf("B's dead findings after A's replay = %+v", got)
	}
	for deadline := time.Now().Add(10 * time.Second); tries.Load() == before && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if tries.Load() == before {
		t.Error("the replayed finding was not sent again")
	}
	rec := string(e.lastRecord("ReplayDeadLetters"))
	if !strings.Contains(rec, `"eventSource":"cloudtrail.amazonaws.com"`) || !strings.Contains(rec, `"replayed":1`) {
		t.Errorf("replay record: %s", rec)
	}
}
