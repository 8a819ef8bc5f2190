package logs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/cloudtrail"
	"github.com/opentrail/opentrail/internal/history"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/logs/dest"
)

var caller = auth.Caller{Account: "123456789012", Region: "us-east-1"}

// recorder is a destination that records batches, or fails while down is set.
type recorder struct {
	n       atomic.Int64 // events received
	mu      sync.Mutex
	down    bool
	batches []*dest.Batch
}

func (r *recorder) Send(ctx context.Context, b *dest.Batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		return fmt.Errorf("down")
	}
	r.batches = append(r.batches, b)
	r.n.Add(int64(len(b.Events)))
	return nil
}

func (r *recorder) String() string { return "recorder" }

func (r *recorder) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, b := range r.batches {
		for _, e := range b.Events {
			out = append(out, e.Message)
		}
	}
	return out
}

type node struct {
	db  *pebble.DB
	j   *journal.Journal
	svc *Service
}

func open(t *testing.T, dir string, now func() time.Time, rec *recorder) *node {
	t.Helper()
	db, err := kv.Open(filepath.Join(dir, "db"), kv.Options{CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	j, err := journal.Open(db, log)
	if err != nil {
		t.Fatal(err)
	}
	st := history.New(db, j, log, history.Options{})
	ct := cloudtrail.New(db, st, history.NewTokens([]byte("k")), log, cloudtrail.Options{})
	svc := New(db, j, ct, log, Options{Now: now, MaxAttempts: 1000, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		Resolve: func(arn string) (dest.Destination, error) { return rec, nil }})
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &node{db, j, svc}
}

func (n *node) close() {
	n.svc.Close()
	n.j.Close()
	n.db.Close()
}

func (n *node) call(t *testing.T, op string, in any) map[string]any {
	t.Helper()
	body, _ := json.Marshal(in)
	out, err := n.svc.Handle(context.Background(), caller, op, body)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	raw, _ := json.Marshal(out)
	var m map[string]any
	json.Unmarshal(raw, &m)
	return m
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
	}
}

// TestRestartKeepsEverything: a subscription's undelivered events, metric
// values and stream metadata survive a restart, and delivery resumes in order.
func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{down: true}
	now := func() time.Time { return time.UnixMilli(1_800_000_000_000) }
	n := open(t, dir, now, rec)
	n.call(t, "CreateLogGroup", map[string]any{"logGroupName": "g"})
	n.call(t, "CreateLogStream", map[string]any{"logGroupName": "g", "logStreamName": "s"})
	n.call(t, "PutSubscriptionFilter", map[string]any{"logGroupName": "g", "filterName": "f", "filterPattern": `{ $.level = "error" }`, "destinationArn": "x"})
	n.call(t, "PutMetricFilter", map[string]any{"logGroupName": "g", "filterName": "m", "filterPattern": `{ $.level = "error" }`,
		"metricTransformations": []any{map[string]any{"metricName": "Errors", "metricNamespace": "App", "metricValue": "$.n", "defaultValue": 0}}})
	var evs []map[string]any
	for i := range 10 {
		level := "info"
		if i%2 == 1 {
			level = "error"
		}
		evs = append(evs, map[string]any{"timestamp": 1_800_000_000_000 - 1000 + i, "message": fmt.Sprintf(`{"level":"%s","n":%d}`, level, i)})
	}
	n.call(t, "PutLogEvents", map[string]any{"logGroupName": "g", "logStreamName": "s", "logEvents": evs})
	samples := n.svc.MetricSamples()
	if len(samples) != 1 || samples[0].Sum != 1+3+5+7+9 || samples[0].Count != 5 {
		t.Fatalf("metric before restart: %+v", samples)
	}
	n.close()

	rec.mu.Lock()
	rec.down = false
	rec.mu.Unlock()
	n = open(t, dir, now, rec)
	defer n.close()
	waitFor(t, "delivery after restart", func() bool { return len(rec.messages()) == 5 })
	want := []string{`{"level":"error","n":1}`, `{"level":"error","n":3}`, `{"level":"error","n":5}`, `{"level":"error","n":7}`, `{"level":"error","n":9}`}
	if fmt.Sprint(rec.messages()) != fmt.Sprint(want) {
		t.Fatalf("delivered %v", rec.messages())
	}
	if s := n.svc.MetricSamples(); len(s) != 1 || s[0].Sum != 25 {
		t.Fatalf("metric after restart: %+v", s)
	}
	streams := n.call(t, "DescribeLogStreams", map[string]any{"logGroupName": "g"})["logStreams"].([]any)
	if st := streams[0].(map[string]any); st["firstEventTimestamp"].(float64) != 1_800_000_000_000-1000 || st["storedBytes"].(float64) == 0 {
		t.Fatalf("stream after restart: %v", st)
	}
	// The outbox is empty once delivered; the stats say so.
	waitFor(t, "outbox drained", func() bool { return n.svc.SubscriptionStats()[0].Pending == 0 })
	if d := n.svc.SubscriptionStats()[0].Delivered; d != 5 {
		t.Fatalf("delivered counter %d", d)
	}
}

// TestRetention: PutRetentionPolicy makes the janitor delete older events.
func TestRetention(t *testing.T) {
	var mu sync.Mutex
	clock := time.UnixMilli(1_800_000_000_000)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	n := open(t, t.TempDir(), now, &recorder{})
	defer n.close()
	n.call(t, "CreateLogGroup", map[string]any{"logGroupName": "g"})
	n.call(t, "CreateLogStream", map[string]any{"logGroupName": "g", "logStreamName": "s"})
	day := int64(24 * 3600 * 1000)
	base := clock.UnixMilli()
	n.call(t, "PutLogEvents", map[string]any{"logGroupName": "g", "logStreamName": "s", "logEvents": []any{map[string]any{"timestamp": base - 10*day, "message": "old"}}})
	n.call(t, "PutLogEvents", map[string]any{"logGroupName": "g", "logStreamName": "s", "logEvents": []any{map[string]any{"timestamp": base - day, "message": "recent"}}})
	n.call(t, "PutRetentionPolicy", map[string]any{"logGroupName": "g", "retentionInDays": 7})
	if err := n.svc.Expire(); err != nil {
		t.Fatal(err)
	}
	got := n.call(t, "GetLogEvents", map[string]any{"logGroupName": "g", "logStreamName": "s", "startFromHead": true})["events"].([]any)
	if len(got) != 1 || got[0].(map[string]any)["message"] != "recent" {
		t.Fatalf("after expiry: %v", got)
	}
	// Events past retention are refused at once.
	out := n.call(t, "PutLogEvents", map[string]any{"logGroupName": "g", "logStreamName": "s", "logEvents": []any{
		map[string]any{"timestamp": base - 8*day, "message": "too old"}}})
	if info := out["rejectedLogEventsInfo"].(map[string]any); info["expiredLogEventEndIndex"] != float64(0) {
		t.Fatalf("rejected: %v", out)
	}
}

// TestMetricFilterSemantics: values from fields, dimensions, and the CIS root-usage pattern.
func TestMetricFilterSemantics(t *testing.T) {
	n := open(t, t.TempDir(), time.Now, &recorder{})
	defer n.close()
	n.call(t, "CreateLogGroup", map[string]any{"logGroupName": "g"})
	n.call(t, "CreateLogStream", map[string]any{"logGroupName": "g", "logStreamName": "s"})
	n.call(t, "PutMetricFilter", map[string]any{"logGroupName": "g", "filterName": "root", "filterPattern": `{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }`,
		"metricTransformations": []any{map[string]any{"metricName": "RootAccountUsageCount", "metricNamespace": "CloudTrailMetrics", "metricValue": "1"}}})
	n.call(t, "PutMetricFilter", map[string]any{"logGroupName": "g", "filterName": "bytes", "filterPattern": `[ip, user, status, size]`,
		"metricTransformations": []any{map[string]any{"metricName": "Bytes", "metricNamespace": "Web", "metricValue": "$size", "dimensions": map[string]any{"Status": "$status"}}}})
	if s := n.svc.MetricSamples(); len(s) != 1 || s[0].Name != "RootAccountUsageCount" || s[0].Sum != 0 {
		t.Fatalf("before any event, only the dimensionless metric shows, at 0: %+v", s)
	}
	now := time.Now().UnixMilli()
	msgs := []string{
		`{"userIdentity":{"type":"Root"},"eventType":"AwsApiCall"}`,
		`{"userIdentity":{"type":"Root","invokedBy":"support.amazonaws.com"},"eventType":"AwsApiCall"}`,
		`{"userIdentity":{"type":"IAMUser"},"eventType":"AwsApiCall"}`,
		`10.0.0.1 alice 200 1000`, `10.0.0.2 bob 404 10`, `10.0.0.3 carol 200 500`, `10.0.0.4 dave 200 notanumber`,
	}
	var evs []any
	for _, m := range msgs {
		evs = append(evs, map[string]any{"timestamp": now, "message": m})
	}
	n.call(t, "PutLogEvents", map[string]any{"logGroupName": "g", "logStreamName": "s", "logEvents": evs})
	got := map[string]float64{}
	for _, s := range n.svc.MetricSamples() {
		got[s.Name+"/"+s.Dims["Status"]] = s.Sum
	}
	if got["RootAccountUsageCount/"] != 1 || got["Bytes/200"] != 1500 || got["Bytes/404"] != 10 || len(got) != 3 {
		t.Fatalf("metrics: %v", got)
	}
	for _, bad := range []map[string]any{
		{"metricName": "X", "metricNamespace": "N", "metricValue": "abc"},
		{"metricName": "X", "metricNamespace": "N", "metricValue": "1", "dimensions": map[string]any{"A": "$.a"}, "defaultValue": 0},
		{"metricName": "X", "metricNamespace": "N", "metricValue": "1", "dimensions": map[string]any{"A": "literal"}},
	} {
		body, _ := json.Marshal(map[string]any{"logGroupName": "g", "filterName": "bad", "filterPattern": `{ $.a = 1 }`, "metricTransformations": []any{bad}})
		if _, err := n.svc.Handle(context.Background(), caller, "PutMetricFilter", body); err == nil {
			t.Fatalf("accepted %v", bad)
		}
	}
}

func TestParseGroupARN(t *testing.T) {
	for in, want := range map[string]string{
		"arn:aws:logs:us-east-1:123456789012:log-group:CloudTrail/DefaultLogGroup:*": "123456789012/us-east-1/CloudTrail/DefaultLogGroup",
		"arn:aws:logs:eu-west-1:123456789012:log-group:/aws/cloudtrail/x":            "123456789012/eu-west-1//aws/cloudtrail/x",
		"arn:aws:logs:us-east-1:123456789012:log-group:":                             "",
		"arn:aws:s3:::bucket":                               "",
		"arn:aws:logs:us-east-1:123456789012:destination:d": "",
	} {
		id, ok := parseGroupARN(in)
		if got := map[bool]string{true: id.String(), false: ""}[ok]; got != want {
			t.Errorf("%s: got %q, want %q", in, got, want)
		}
	}
}
