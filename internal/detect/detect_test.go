package detect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/history"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/logs/dest"
)

const (
	acctA = "111111111111"
	acctB = "222222222222"

	ruleStop  = "0d7f1c33-6a6b-4bb4-9a1e-1f5cc0a8f003"
	ruleBrute = "0d7f1c33-6a6b-4bb4-9a1e-1f5cc0a8f002"
)

var quiet = slog.New(slog.DiscardHandler)

type noLog struct{}

func (noLog) Infof(string, ...any)           {}
func (noLog) Errorf(string, ...any)          {}
func (noLog) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

// node is one database, journal and detections service.
type node struct {
	db  *pebble.DB
	j   *journal.Journal
	s   *Service
	dir string
}

func (n *node) close() {
	if n.s != nil {
		n.s.Close()
	}
	n.j.Close()
	n.db.Close()
}

// open opens (or reopens) a node in dir on fs (nil: the disk) with the rules under rules.
func open(t testing.TB, fs vfs.FS, dir string, rules []string, o Options) *node {
	t.Helper()
	po := &pebble.Options{Logger: noLog{}}
	if fs != nil {
		po.FS = fs
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(db, quiet)
	if err != nil {
		t.Fatal(err)
	}
	o.Paths = rules
	o.Tokens = history.NewTokens(make([]byte, 32))
	if o.Poll == 0 {
		o.Poll = time.Hour // tests reload explicitly
	}
	s, err := New(db, j, quiet, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &node{db: db, j: j, s: s, dir: dir}
}

// rulesDir copies testdata/rules to a temporary folder the test may change.
func rulesDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	ents, err := os.ReadDir("testdata/rules")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("testdata/rules", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func stopLogging(id string, at time.Time) string {
	return fmt.Sprintf(`{"eventVersion":"1.08","eventID":%q,"eventTime":%q,"eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging",
		"awsRegion":"us-east-1","userIdentity":{"type":"IAMUser","userName":"mallory"},"requestParameters":{"name":"main"}}`, id, at.UTC().Format(time.RFC3339))
}

func failedLogin(id, user string, at time.Time) string {
	return fmt.Sprintf(`{"eventVersion":"1.08","eventID":%q,"eventTime":%q,"eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin",
		"awsRegion":"us-east-1","userIdentity":{"type":"IAMUser","userName":%q},"responseElements":{"ConsoleLogin":"Failure"},
		"errorMessage":"Failed authentication"}`, id, at.UTC().Format(time.RFC3339), user)
}

func whoami(id string, at time.Time) string {
	return fmt.Sprintf(`{"eventVersion":"1.08","eventID":%q,"eventTime":%q,"eventSource":"sts.amazonaws.com","eventName":"GetCallerIdentity","awsRegion":"us-east-1"}`,
		id, at.UTC().Format(time.RFC3339))
}

func other(id string, at time.Time) string {
	return fmt.Sprintf(`{"eventVersion":"1.08","eventID":%q,"eventTime":%q,"eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1"}`,
		id, at.UTC().Format(time.RFC3339))
}

// ingest appends records of account to the journal and waits until the projection has evaluated them.
func (n *node) ingest(t testing.TB, account string, raws ...string) {
	t.Helper()
	var entries []journal.Entry
	for _, raw := range raws {
		r, err := event.Normalize([]byte(raw), event.Defaults{Account: account, Region: "us-east-1", Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, journal.Entry{ID: kv.EventIDKey(r.Meta.Account, r.Meta.EventID), Value: event.Encode(nil, &r)})
	}
	res, err := n.j.Append(context.Background(), entries)
	if err != nil {
		t.Fatal(err)
	}
	n.wait(t, res[len(res)-1].Seq)
}

func (n *node) wait(t testing.TB, seq uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.s.WaitApplied(ctx, seq); err != nil {
		t.Fatalf("projection did not reach %d: %v", seq, err)
	}
}

func (n *node) findings(t testing.TB, q Query) []Finding {
	t.Helper()
	if q.Max == 0 {
		q.Max = 1000
	}
	p, err := n.s.Findings(q)
	if err != nil {
		t.Fatal(err)
	}
	return p.Findings
}

func ruleIDs(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.RuleID)
	}
	return out
}

func TestFindingsWrittenWithCursor(t *testing.T) {
	n := open(t, nil, t.TempDir(), []string{rulesDir(t)}, Options{})
	defer n.close()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	n.ingest(t, acctA, other("o1", t0), stopLogging("s1", t0.Add(time.Second)), other("o2", t0.Add(2*time.Second)))

	got := n.findings(t, Query{Account: acctA})
	if len(got) != 1 {
		t.Fatalf("findings = %+v, want one", got)
	}
	f := got[0]
	if f.RuleID != ruleStop || f.RuleTitle != "CloudTrail Logging Stopped" || f.Level != "critical" || !f.Time.Equal(t0.Add(time.Second)) ||
		f.AccountID != acctA || f.Region != "us-east-1" || !slices.Equal(f.EventIDs, []string{"s1"}) || f.FindingID != FindingID(ruleStop, []string{"s1"}) {
		t.Errorf("finding = %+v", f)
	}
	cur, err := n.j.Cursor(cursorName)
	if err != nil || cur != 4 {
		t.Errorf("cursor = %d, %v; want 4", cur, err)
	}
	if other := n.findings(t, Query{Account: acctB}); len(other) != 0 {
		t.Errorf("account B sees %+v", other)
	}
	if got := n.s.Rules(acctA); !slices.ContainsFunc(got, func(r RuleStatus) bool { return r.ID == ruleStop && r.Matches == 1 && r.Status == StatusOK }) {
		t.Errorf("rules = %+v", got)
	}
}

func TestFindingsQuery(t *testing.T) {
	n := open(t, nil, t.TempDir(), []string{rulesDir(t)}, Options{})
	defer n.close()
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	var raws []string
	for i := range 25 {
		raws = append(raws, stopLogging(fmt.Sprintf("s%02d", i), t0.Add(time.Duration(i)*time.Minute)))
	}
	raws = append(raws, whoami("w1", t0)) // low: below a high MinLevel
	raws = append(raws, strings.Replace(stopLogging("west", t0.Add(30*time.Minute)), `"us-east-1"`, `"eu-west-1"`, 1))
	n.ingest(t, acctA, raws...)

	// Pages of 10, newest first, every finding once.
	var all []Finding
	q := Query{Account: acctA, Max: 10}
	for {
		p, err := n.s.Findings(q)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.Findings...)
		if p.NextToken == "" {
			break
		}
		q.NextToken = p.NextToken
	}
	if len(all) != 27 {
		t.Fatalf("%d findings over all pages, want 27", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Time.After(all[i-1].Time) {
			t.Fatalf("finding %d (%s) is newer than %d (%s)", i, all[i].Time, i-1, all[i-1].Time)
		}
	}
	if got := n.findings(t, Query{Account: acctA, MinLevel: "high"}); len(got) != 26 {
		t.Errorf("MinLevel high: %d findings, want 26", len(got))
	}
	if got := n.findings(t, Query{Account: acctA, Region: "eu-west-1"}); len(got) != 1 || got[0].EventIDs[0] != "west" {
		t.Errorf("Region eu-west-1: %+v", got)
	}
	if got := n.findings(t, Query{Account: acctA, Region: "us-east-1"}); len(got) != 26 {
		t.Errorf("Region us-east-1: %d findings, want 26", len(got))
	}
	if got := n.findings(t, Query{Account: acctA, RuleID: "0d7f1c33-6a6b-4bb4-9a1e-1f5cc0a8f004"}); len(got) != 1 {
		t.Errorf("by rule: %v", ruleIDs(got))
	}
	got := n.findings(t, Query{Account: acctA, Start: t0.Add(10 * time.Minute), End: t0.Add(12 * time.Minute)})
	if len(got) != 3 || got[0].EventIDs[0] != "s12" || got[2].EventIDs[0] != "s10" {
		t.Errorf("time range: %+v", got)
	}
	// A token is bound to its query and sealed.
	p, _ := n.s.Findings(Query{Account: acctA, Max: 5})
	if _, err := n.s.Findings(Query{Account: acctB, Max: 5, NextToken: p.NextToken}); err != ErrBadToken {
		t.Errorf("token of account A used by B: %v", err)
	}
	if _, err := n.s.Findings(Query{Account: acctA, Region: "eu-west-1", Max: 5, NextToken: p.NextToken}); err != ErrBadToken {
		t.Errorf("token of all regions used for one: %v", err)
	}
	tampered := []byte(p.NextToken)
	tampered[3] ^= 1
	if _, err := n.s.Findings(Query{Account: acctA, Max: 5, NextToken: string(tampered)}); err != ErrBadToken {
		t.Errorf("tampered token: %v", err)
	}
}

// TestReplayIsIdempotent evaluates the journal again from the start: the same
// findings and alerts, with the same keys, and no more.
func TestReplayIsIdempotent(t *testing.T) {
	dir, rules := t.TempDir(), rulesDir(t)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer hook.Close()
	cfg := &dest.Config{}
	o := Options{Routes: []dest.FindingRoute{{Destination: hook.URL + "/alerts"}}, Resolve: cfg.Resolve, Backoff: time.Hour}
	n := open(t, nil, dir, []string{rules}, o)
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	n.ingest(t, acctA, stopLogging("s1", t0), stopLogging("s2", t0.Add(time.Minute)), other("o1", t0))
	before := n.findings(t, Query{Account: acctA})
	alerts := countKeys(t, n, kv.OutboxPrefix(false, kv.OutboxFindings, hook.URL+"/alerts"))
	n.close()

	// Rewind the cursor, as a crash before the batch's commit would have.
	db, err := pebble.Open(dir, &pebble.Options{Logger: noLog{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(kv.CursorKey(cursorName), kv.EncodeSeq(1), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()
	n = open(t, nil, dir, []string{rules}, o)
	defer n.close()
	n.wait(t, 3)
	after := n.findings(t, Query{Account: acctA})
	if len(after) != 2 || len(before) != 2 || after[0].FindingID != before[0].FindingID || after[1].FindingID != before[1].FindingID {
		t.Errorf("before %v, after replay %v", before, after)
	}
	if got := countKeys(t, n, kv.OutboxPrefix(false, kv.OutboxFindings, hook.URL+"/alerts")); got != alerts || alerts != 2 {
		t.Errorf("outbox holds %d alerts after replay, %d before; want 2", got, alerts)
	}
}

func countKeys(t testing.TB, n *node, prefix []byte) int64 {
	t.Helper()
	it, err := n.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: kv.PrefixUpper(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var c int64
	for ok := it.First(); ok; ok = it.Next() {
		c++
	}
	return c
}

// TestCorrelationAcrossRestart: the brute-force correlation (3 failed logins
// of one user within 5 minutes) fires once, with two of its events seen
// before a restart; another account's failures never count.
func TestCorrelationAcrossRestart(t *testing.T) {
	dir, rules := t.TempDir(), rulesDir(t)
	n := open(t, nil, dir, []string{rules}, Options{})
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	n.ingest(t, acctA, failedLogin("a1", "alice", t0), failedLogin("a2", "alice", t0.Add(time.Minute)))
	n.ingest(t, acctB, failedLogin("b1", "alice", t0.Add(90*time.Second)))
	if got := n.findings(t, Query{Account: acctA, RuleID: ruleBrute}); len(got) != 0 {
		t.Fatalf("fired early: %+v", got)
	}
	n.close()

	n = open(t, nil, dir, []string{rules}, Options{})
	defer n.close()
	n.ingest(t, acctA, failedLogin("a3", "alice", t0.Add(2*time.Minute)), failedLogin("x1", "bob", t0.Add(2*time.Minute)))
	got := n.findings(t, Query{Account: acctA, RuleID: ruleBrute})
	if len(got) != 1 {
		t.Fatalf("brute-force findings = %+v, want one", got)
	}
	f := got[0]
	if !slices.Equal(f.EventIDs, []string{"a1", "a2", "a3"}) || f.GroupBy["userIdentity.userName"] != "alice" || f.Level != "high" {
		t.Errorf("finding = %+v", f)
	}
	if got := n.findings(t, Query{Account: acctB, RuleID: ruleBrute}); len(got) != 0 {
		t.Errorf("account B: %+v", got)
	}
	// A fourth failure 10 minutes later starts a new window: nothing fires.
	n.ingest(t, acctA, failedLogin("a4", "alice", t0.Add(12*time.Minute)))
	if got := n.findings(t, Query{Account: acctA, RuleID: ruleBrute}); len(got) != 1 {
		t.Errorf("after a late failure: %d brute-force findings, want 1", len(got))
	}
}

// TestCrashKeepsFindingsAndCursorTogether takes crash images of the file
// system while the projection runs (each keeps a random part of what was not
// synced; the projection never syncs): in each image the findings are exactly
// those of the entries before the cursor, and recovering from it ends with
// every finding of its journal exactly once.
func TestCrashKeepsFindingsAndCursorTogether(t *testing.T) {
	rules := rulesDir(t)
	fs := vfs.NewCrashableMem()
	n := open(t, fs, "db", []string{rules}, Options{})
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	var images []*vfs.MemFS
	for i := range 40 {
		// One append per pair: the projection commits many small batches.
		n.ingest(t, acctA, stopLogging(fmt.Sprintf("s%02d", i), t0.Add(time.Duration(i)*time.Second)), other(fmt.Sprintf("o%02d", i), t0))
		if i%3 == 0 {
			images = append(images, fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(uint64(i), 1))}))
		}
	}
	n.close()
	behind := 0
	for k, crashed := range images {
		db, err := pebble.Open("db", &pebble.Options{FS: crashed, Logger: noLog{}})
		if err != nil {
			t.Fatal(err)
		}
		j, err := journal.Open(db, quiet)
		if err != nil {
			t.Fatal(err)
		}
		cur, err := j.Cursor(cursorName)
		if err != nil {
			t.Fatal(err)
		}
		last := j.Last()
		if cur <= last {
			behind++
		}
		// Entry 2i+1 is s_i's: the findings are those of s_i with 2i+1 < cur.
		s, _ := New(db, j, quiet, Options{Tokens: history.NewTokens(make([]byte, 32))})
		p, err := s.Findings(Query{Account: acctA, Max: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if want := int(cur / 2); len(p.Findings) != want {
			t.Errorf("image %d: cursor %d with %d findings, want %d", k, cur, len(p.Findings), want)
		}
		j.Close()
		db.Close()

		n := open(t, crashed, "db", []string{rules}, Options{})
		n.wait(t, last)
		got := n.findings(t, Query{Account: acctA})
		n.close()
		ids := map[string]bool{}
		for _, f := range got {
			ids[f.FindingID] = true
		}
		want := int(last / 2)
		if len(got) != want || len(ids) != want {
			t.Errorf("image %d: %d findings (%d distinct) after recovery, want %d", k, len(got), len(ids), want)
		}
		for i := range want {
			if id := FindingID(ruleStop, []string{fmt.Sprintf("s%02d", i)}); !ids[id] {
				t.Errorf("image %d: finding of s%02d lost", k, i)
			}
		}
	}
	t.Logf("%d of %d images lost the projection's last batch", behind, len(images))
}

// TestReloadWithBrokenRule: a rule that does not parse is reported with its
// place and the others keep running; fixing it loads it.
func TestReloadWithBrokenRule(t *testing.T) {
	rules := rulesDir(t)
	n := open(t, nil, t.TempDir(), []string{rules}, Options{Poll: 20 * time.Millisecond})
	defer n.close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(n.s)

	broken := filepath.Join(rules, "sub", "broken.yaml")
	os.MkdirAll(filepath.Dir(broken), 0o755)
	os.WriteFile(broken, []byte("title: Broken\nid: 0d7f1c33-6a6b-4bb4-9a1e-1f5cc0a8f0ff\nlogsource:\n    product: aws\n    service: cloudtrail\ndetection:\n    selection:\n        eventName|nosuchmodifier: X\n    condition: selection\n"), 0o644)
	n.s.Reload()
	if n.s.RuleErrors() != 1 {
		t.Fatalf("rule errors = %d, statuses %+v", n.s.RuleErrors(), n.s.Rules(acctA))
	}
	var bad RuleStatus
	for _, st := range n.s.Rules(acctA) {
		if st.File == broken {
			bad = st
		}
	}
	if bad.Line == 0 || !strings.Contains(bad.Status, broken+":") || bad.Status == StatusOK {
		t.Errorf("broken rule status = %+v", bad)
	}
	if got := gauge(t, reg, "opentrail_rule_errors"); got != 1 {
		t.Errorf("opentrail_rule_errors = %v", got)
	}
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	n.ingest(t, acctA, stopLogging("s1", t0))
	if got := n.findings(t, Query{Account: acctA}); len(got) != 1 {
		t.Errorf("with a broken rule loaded: %v", ruleIDs(got))
	}

	// Fixing the file is picked up by the watcher.
	os.WriteFile(broken, []byte("title: Fixed\nid: 0d7f1c33-6a6b-4bb4-9a1e-1f5cc0a8f0ff\nlevel: medium\nlogsource:\n    product: aws\n    service: cloudtrail\ndetection:\n    selection:\n        eventName: ListBuckets\n    condition: selection\n"), 0o644)
	deadline := time.Now().Add(10 * time.Second)
	for n.s.RuleErrors() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n.s.RuleErrors() != 0 {
		t.Fatalf("still %d rule errors after the fix", n.s.RuleErrors())
	}
	n.ingest(t, acctA, other("o1", t0))
	if got := n.findings(t, Query{Account: acctA, RuleID: "0d7f1c33-6a6b-4bb4-9a1e-1f5cc0a8f0ff"}); len(got) != 1 {
		t.Errorf("fixed rule: %v", ruleIDs(got))
	}
}

// gauge reads the one series of a metric without labels from reg.
func gauge(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestAlertToWebhook: a finding reaches a webhook with its record; a
// destination that rejects it dead-letters it.
func TestAlertToWebhook(t *testing.T) {
	got := make(chan []byte, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- b
	}))
	defer hook.Close()
	reject := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) }))
	defer reject.Close()
	cfg := &dest.Config{}
	n := open(t, nil, t.TempDir(), []string{rulesDir(t)}, Options{Resolve: cfg.Resolve, Routes: []dest.FindingRoute{
		{Destination: hook.URL + "/a", MinLevel: "high"}, {Destination: reject.URL + "/r"}}})
	defer n.close()
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	n.ingest(t, acctA, whoami("w1", t0), stopLogging("s1", t0))
	var body []byte
	select {
	case body = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no alert")
	}
	var p struct {
		Finding Finding
		Records []map[string]any
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Finding.RuleID != ruleStop || len(p.Records) != 1 || p.Records[0]["eventID"] != "s1" {
		t.Errorf("alert = %s", body)
	}
	select {
	case b := <-got:
		t.Errorf("a low finding went to a high-only destination: %s", b)
	case <-time.After(200 * time.Millisecond):
	}
	deadline := time.Now().Add(10 * time.Second)
	for countKeys(t, n, kv.OutboxPrefix(true, kv.OutboxFindings, reject.URL+"/r")) != 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if d := countKeys(t, n, kv.OutboxPrefix(true, kv.OutboxFindings, reject.URL+"/r")); d != 2 {
		t.Errorf("%d dead letters for the rejecting destination, want 2", d)
	}

	// Dead letters are listed and replayed per destination and account.
	name := n.s.Destinations()[1]
	if strings.Contains(name, "/r") {
		t.Errorf("destination name %q shows the URL's path", name)
	}
	dead, err := n.s.DeadLetters(name, acctA, 0)
	if err != nil || len(dead) != 2 || dead[0].Destination != name || dead[0].AccountID != acctA {
		t.Fatalf("DeadLetters = %+v, %v", dead, err)
	}
	if other, err := n.s.DeadLetters("", acctB, 0); err != nil || len(other) != 0 {
		t.Errorf("another account's DeadLetters = %+v, %v", other, err)
	}
	if _, err := n.s.DeadLetters("https://nowhere.example", "", 0); !errors.Is(err, ErrNoDestination) {
		t.Errorf("DeadLetters of an unknown destination: %v", err)
	}
	if k, err := n.s.Replay(context.Background(), "", acctB); err != nil || k != 0 {
		t.Errorf("another account's Replay = %d, %v", k, err)
	}
	if k, err := n.s.Replay(context.Background(), name, acctA); err != nil || k != 2 {
		t.Fatalf("Replay = %d, %v", k, err)
	}
	// The destination still refuses them: tried again, they are dead letters again.
	deadline = time.Now().Add(10 * time.Second)
	for n.s.senders[1].stream.Stats().Delivered+n.s.senders[1].stream.Stats().Failures < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := n.s.senders[1].stream.Stats(); st.Failures < 4 || st.DeadLetters != 2 {
		t.Errorf("after the replay: %+v", st)
	}
}

// TestFindingsQueryScanLimit: a filter that skips more findings than one page
// may read continues through NextTokens and finds every match.
func TestFindingsQueryScanLimit(t *testing.T) {
	defer func(m int) { maxScan = m }(maxScan)
	maxScan = 4
	n := open(t, nil, t.TempDir(), []string{rulesDir(t)}, Options{})
	defer n.close()
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	var raws []string
	for i := range 20 {
		raws = append(raws, whoami(fmt.Sprintf("w%02d", i), t0.Add(time.Duration(i)*time.Second)))
	}
	raws = append(raws, stopLogging("s1", t0), stopLogging("s2", t0.Add(10*time.Second)))
	n.ingest(t, acctA, raws...)
	var got []string
	q := Query{Account: acctA, MinLevel: "critical", Max: 10}
	for pages := 0; ; pages++ {
		p, err := n.s.Findings(q)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range p.Findings {
			got = append(got, f.EventIDs[0])
		}
		if p.NextToken == "" {
			break
		}
		if pages > 10 {
			t.Fatal("no end")
		}
		q.NextToken = p.NextToken
	}
	if strings.Join(got, ",") != "s2,s1" {
		t.Errorf("got %v", got)
	}
}

// TestBatchCutAfterFinding: a batch that found something ends afterFinding
// entries later and commits, so its finding is sent without waiting for the
// rest of a long catch-up; the next batch goes on from there and nothing is
// evaluated twice or skipped.
func TestBatchCutAfterFinding(t *testing.T) {
	n := open(t, nil, t.TempDir(), []string{rulesDir(t)}, Options{})
	defer n.close()
	n.s.Close() // the batches are run by hand below
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	var entries []journal.Entry
	add := func(raw string) {
		r, err := event.Normalize([]byte(raw), event.Defaults{Account: acctA, Region: "us-east-1", Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, journal.Entry{ID: kv.EventIDKey(r.Meta.Account, r.Meta.EventID), Value: event.Encode(nil, &r)})
	}
	add(stopLogging("s0", t0))
	for i := range 200 {
		add(whoami(fmt.Sprintf("w%03d", i), t0))
	}
	add(stopLogging("s1", t0))
	res, err := n.j.Append(context.Background(), entries)
	if err != nil {
		t.Fatal(err)
	}
	from, last := res[0].Seq, res[len(res)-1].Seq
	next, err := n.s.applyFrom(from)
	if err != nil || next != from+1+afterFinding {
		t.Fatalf("first batch ended before %d (%v), want %d", next, err, from+1+afterFinding)
	}
	if got := n.findings(t, Query{Account: acctA, MinLevel: "critical"}); len(got) != 1 || got[0].EventIDs[0] != "s0" {
		t.Fatalf("after the first batch: %+v", got)
	}
	for batches := 0; next <= last; batches++ {
		if batches > 10 {
			t.Fatal("no end")
		}
		if next, err = n.s.applyFrom(next); err != nil {
			t.Fatal(err)
		}
	}
	got := n.findings(t, Query{Account: acctA, MinLevel: "critical"})
	var ids []string
	for _, f := range got {
		ids = append(ids, f.EventIDs...)
	}
	if slices.Sort(ids); strings.Join(ids, ",") != "s0,s1" {
		t.Fatalf("findings = %+v", got)
	}
	if cur, err := n.j.Cursor(cursorName); err != nil || cur != last+1 {
		t.Fatalf("cursor %d (%v), want %d", cur, err, last+1)
	}
}
