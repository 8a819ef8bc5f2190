package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/opentrail/opentrail/internal/app"
	"github.com/opentrail/opentrail/internal/logs/dest"
)

// metricsURL serves the app's metrics (as serve --metrics-listen does) and
// returns the URL of GET /metrics.
func (e *env) metricsURL(token string) string {
	ts := httptest.NewServer(e.a.MetricsHandler(token))
	e.t.Cleanup(ts.Close)
	return ts.URL + "/metrics"
}

func scrape(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestMetricsLeakNothing reproduces issue 11 §2: unauthenticated GET /metrics
// on the API listener showed a subscription destination's credentials as a
// label (and the server log printed them). Now the API listener serves no
// metrics, the metrics listener can require a bearer token, and neither the
// labels nor the log show user info, path or query of a destination URL.
func TestMetricsLeakNothing(t *testing.T) {
	var logs lockedBuffer
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	secretURL := strings.Replace(down.URL, "http://", "http://opentrail:hunter2@", 1) + "/T0/B0/webhooksecret?token=querysecret"
	// The same URL is a findings destination too (its labels and log lines are checked below).
	cfg := app.Config{DataDir: t.TempDir(), RootKeyID: rootID, RootKey: rootSecret, CacheMiB: 16,
		RulePaths: []string{"../detect/testdata/rules/stop_logging.yml"}}
	cfg.Destinations.Findings = []dest.FindingRoute{{Destination: secretURL}}
	a, err := app.Open(context.Background(), cfg,
		slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(a.Handler)
	t.Cleanup(func() { ts.Close(); a.Close() })
	e := &env{t: t, a: a, url: ts.URL}
	k, _, _ := a.Keys.Lookup(rootID)
	if _, err := a.Handler.IngestRecords(context.Background(), k, "us-east-1", [][]byte{stopLogging("metrics-stop", time.Now())}); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	cw := e.logs(root, "us-east-1")
	if _, err := cw.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("g")}); err != nil {
		t.Fatal(err)
	}
	if _, err := cw.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("s")}); err != nil {
		t.Fatal(err)
	}
	if _, err := cw.PutSubscriptionFilter(ctx, &cloudwatchlogs.PutSubscriptionFilterInput{LogGroupName: aws.String("g"),
		FilterName: aws.String("f"), FilterPattern: aws.String(""), DestinationArn: aws.String(secretURL)}); err != nil {
		t.Fatal(err)
	}
	if _, err := cw.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("s"),
		LogEvents: []types.InputLogEvent{{Timestamp: aws.Int64(time.Now().UnixMilli()), Message: aws.String(`{"a":1}`)}}}); err != nil {
		t.Fatal(err)
	}

	// The API listener has no /metrics.
	if code, body := scrape(t, e.url+"/metrics", ""); code == http.StatusOK || strings.Contains(body, "opentrail_") {
		t.Fatalf("the API listener serves metrics: %d %.200s", code, body)
	}
	// With a token, nothing without it.
	url := e.metricsURL("s3cret-token")
	if code, body := scrape(t, url, ""); code != http.StatusUnauthorized || strings.Contains(body, "opentrail_") {
		t.Fatalf("no token: %d %.200s", code, body)
	}
	if code, _ := scrape(t, url, "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	var body string
	deadline := time.Now().Add(10 * time.Second)
	for {
		var code int
		code, body = scrape(t, url, "s3cret-token")
		if code != http.StatusOK {
			t.Fatalf("token: %d", code)
		}
		if strings.Contains(body, `opentrail_subscription_failures_total{`) && !strings.Contains(body, `opentrail_subscription_failures_total{account="123456789012",destination="`+down.URL+` #`) {
			t.Fatalf("destination label is not scheme://host and a hash:\n%s", grep(body, "opentrail_subscription"))
		}
		if strings.Contains(body, `opentrail_detection_pending_findings{destination="`) &&
			!strings.Contains(body, `opentrail_detection_pending_findings{destination="`+down.URL+` #`) {
			t.Fatalf("findings destination label is not scheme://host and a hash:\n%s", grep(body, "opentrail_detection"))
		}
		if strings.Contains(body, `opentrail_subscription_failures_total{`) && strings.Count(logs.String(), "delivery failed") >= 2 &&
			strings.Contains(logs.String(), "findings "+down.URL) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed delivery within 10 s:\n%s", grep(body, "opentrail_subscription"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, secret := range []string{"hunter2", "webhooksecret", "querysecret", "/T0/B0"} {
		if strings.Contains(body, secret) {
			t.Errorf("/metrics shows %q:\n%s", secret, grep(body, secret))
		}
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log shows %q:\n%s", secret, grep(logs.String(), secret))
		}
	}
	// Issue 12's server-side collectors are there.
	for _, want := range []string{"opentrail_ingest_records_total ", "opentrail_ingest_bytes_total ", "opentrail_journal_commit_seconds_bucket",
		"opentrail_journal_sync_seconds_count", "opentrail_journal_fsync_seconds_count", `opentrail_projection_lag_entries{projection="lake"}`,
		`opentrail_projection_lag_entries{projection="trail_delivery"}`, "go_goroutines ", "process_resident_memory_bytes "} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
