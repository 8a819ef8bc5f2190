package proxy_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/app"
	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/proxy"
	"github.com/opentrail/opentrail/internal/proxy/dynalitetest"
)

const benchBody = `{"TableName":"Music","Key":{"Artist":{"S":"Acme Band"},"SongTitle":{"S":"Happy Day"}},"ProjectionExpression":"Lyrics"}`

// trivialUpstream answers every call at once, like a DynamoDB GetItem, so that
// what is measured through it is the proxy's own cost.
func trivialUpstream(b *testing.B) string {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("x-amzn-RequestId", "REQ0123456789")
		w.Write([]byte(`{"Item":{"Artist":{"S":"Acme Band"},"Lyrics":{"S":"la la"}}}`))
	}))
	b.Cleanup(ts.Close)
	return ts.URL
}

// inProcessProxy is the proxy as serve --proxy runs it: records go straight
// into an OpenTrail node's journal (fsync, group commit).
func inProcessProxy(b *testing.B, upstream string) string {
	a, err := app.Open(context.Background(), app.Config{DataDir: b.TempDir(), RootKeyID: rootID, RootKey: rootSecret, CacheMiB: 16},
		slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	key, _, err := a.Keys.Create(account, "proxy", auth.RoleWriter)
	if err != nil {
		b.Fatal(err)
	}
	p, err := proxy.New(proxy.Options{
		Upstream: upstream, SpoolDir: b.TempDir(), ListenAddr: "bench", Account: account, Region: region,
		Sink: proxy.NewLocalSink(func(ctx context.Context, raws [][]byte) error {
			_, err := a.Handler.IngestRecords(ctx, key, region, raws)
			return err
		}),
		Resolve: proxy.KeyringResolver(a.Keys.Lookup),
	})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(p)
	b.Cleanup(func() { ts.Close(); p.Close(); a.Close() })
	return ts.URL
}

var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

func getItem(b *testing.B, url string) {
	req, _ := http.NewRequest("POST", url, bytes.NewReader([]byte(benchBody)))
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.GetItem")
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIABENCH0000000001/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")
	req.Header.Set("X-Amz-Date", "20240101T000000Z")
	resp, err := benchClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 && resp.StatusCode != 400 {
		b.Fatalf("status %d", resp.StatusCode)
	}
}

// latency runs b.N sequential calls and reports their p50 and p99.
func latency(b *testing.B, url string) {
	for range 50 {
		getItem(b, url) // warm connections
	}
	d := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := range b.N {
		t := time.Now()
		getItem(b, url)
		d[i] = time.Since(t)
	}
	b.StopTimer()
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkLatency: subtract direct from proxied for the added latency.
func BenchmarkLatency(b *testing.B) {
	b.Run("trivial/direct", func(b *testing.B) { latency(b, trivialUpstream(b)) })
	b.Run("trivial/proxy", func(b *testing.B) { latency(b, inProcessProxy(b, trivialUpstream(b))) })
	b.Run("dynalite/direct", func(b *testing.B) { latency(b, dynalitetest.Start(b)) })
	b.Run("dynalite/proxy", func(b *testing.B) { latency(b, inProcessProxy(b, dynalitetest.Start(b))) })
}

// BenchmarkThroughput: concurrent clients through one proxy; calls/s.
func BenchmarkThroughput(b *testing.B) {
	url := inProcessProxy(b, trivialUpstream(b))
	for range 50 {
		getItem(b, url)
	}
	b.SetParallelism(64)
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			getItem(b, url)
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}
