package proxy_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// openTrailSink is an OpenTrail node in the process, as serve --proxy runs
// it: records go straight into its journal (fsync, group commit), and every
// projection of the node (event history, lake, logs) follows the journal.
func openTrailSink(b *testing.B) proxy.Sink {
	a, err := app.Open(context.Background(), app.Config{DataDir: b.TempDir(), RootKeyID: rootID, RootKey: rootSecret, CacheMiB: 16},
		slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	key, _, err := a.Keys.Create(account, "proxy", auth.RoleWriter)
	if err != nil {
		b.Fatal(err)
	}
	return proxy.NewLocalSink(func(ctx context.Context, raws [][]byte) error {
		_, err := a.Handler.IngestRecords(ctx, key, region, raws)
		return err
	})
}

// fsyncSink appends every batch to a file and fsyncs it: a sink as fast as
// the disk allows, to tell the proxy's cost from OpenTrail's.
type fsyncSink struct {
	mu sync.Mutex
	f  *os.File
}

func newFsyncSink(b *testing.B) *fsyncSink {
	f, err := os.Create(filepath.Join(b.TempDir(), "records"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return &fsyncSink{f: f}
}

func (s *fsyncSink) Write(_ context.Context, raws [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range raws {
		if _, err := s.f.Write(append(r, '\n')); err != nil {
			return err
		}
	}
	return s.f.Sync()
}

// countingSink counts the sink writes, to report how many records one
// write (one group commit) carries.
type countingSink struct {
	proxy.Sink
	writes, records atomic.Int64
}

func (s *countingSink) Write(ctx context.Context, raws [][]byte) error {
	s.writes.Add(1)
	s.records.Add(int64(len(raws)))
	return s.Sink.Write(ctx, raws)
}

var lastSink *countingSink

// nullSink takes records without keeping them: the proxy's own cost.
type nullSink struct{}

func (nullSink) Write(context.Context, [][]byte) error { return nil }

// serveProxy runs a proxy in front of upstream, writing into sink.
func serveProxy(b *testing.B, upstream string, sink proxy.Sink) string {
	cs := &countingSink{Sink: sink}
	lastSink = cs
	p, err := proxy.New(proxy.Options{
		Upstream: upstream, SpoolDir: b.TempDir(), ListenAddr: "bench", Account: account, Region: region, Sink: cs,
	})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(p)
	b.Cleanup(func() { ts.Close(); p.Close() })
	return ts.URL
}

// inProcessProxy is the proxy as serve --proxy runs it.
func inProcessProxy(b *testing.B, upstream string) string {
	return serveProxy(b, upstream, openTrailSink(b))
}

// benchClient keeps a connection per concurrent caller: with the default
// MaxIdleConnsPerHost (2), most calls would open a new TCP connection.
var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}}

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

// throughput runs b.N calls from 64×GOMAXPROCS concurrent clients and
// reports calls/s and the p50 and p99 of a call's latency under that load.
func throughput(b *testing.B, url string) {
	for range 50 {
		getItem(b, url)
	}
	const par = 64
	var w0, r0 int64
	if lastSink != nil {
		w0, r0 = lastSink.writes.Load(), lastSink.records.Load()
	}
	var mu sync.Mutex
	var all []time.Duration
	b.SetParallelism(par)
	cpu0 := cpuTime()
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var d []time.Duration
		for pb.Next() {
			t := time.Now()
			getItem(b, url)
			d = append(d, time.Since(t))
		}
		mu.Lock()
		all = append(all, d...)
		mu.Unlock()
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/call")
	if lastSink != nil {
		if w := lastSink.writes.Load() - w0; w > 0 {
			b.ReportMetric(float64(lastSink.records.Load()-r0)/float64(w), "recs/write")
		}
		lastSink = nil
	}
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	}
}

// cpuTime is the CPU time (user and system) the process has used: a cost per
// call that, unlike calls/s, does not depend on what else the machine runs.
// dynalite runs in its own process and is not counted.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkThroughput: concurrent clients through one proxy. direct is the
// client and upstream alone; fsync writes records to a file (the proxy's own
// cost plus one fsync per batch); opentrail is the proxy as serve --proxy
// runs it, with an OpenTrail node in the process as the sink.
func BenchmarkThroughput(b *testing.B) {
	b.Run("trivial/direct", func(b *testing.B) { throughput(b, trivialUpstream(b)) })
	b.Run("trivial/null", func(b *testing.B) { throughput(b, serveProxy(b, trivialUpstream(b), nullSink{})) })
	b.Run("trivial/fsync", func(b *testing.B) { throughput(b, serveProxy(b, trivialUpstream(b), newFsyncSink(b))) })
	b.Run("trivial/opentrail", func(b *testing.B) { throughput(b, inProcessProxy(b, trivialUpstream(b))) })
	b.Run("dynalite/direct", func(b *testing.B) { throughput(b, dynalitetest.Start(b)) })
	b.Run("dynalite/opentrail", func(b *testing.B) { throughput(b, inProcessProxy(b, dynalitetest.Start(b))) })
}

// roundTripFunc is an upstream in memory.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// BenchmarkServeHTTP is one call through the proxy without sockets: the
// proxy's own work per call (classify, parameters, record, group commit to a
// sink that keeps nothing), steadier than the loopback benchmarks on a
// shared machine.
func BenchmarkServeHTTP(b *testing.B) {
	const answer = `{"Item":{"Artist":{"S":"Acme Band"},"Lyrics":{"S":"la la"}}}`
	up := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		io.Copy(io.Discard, r.Body)
		h := http.Header{}
		h.Set("Content-Type", "application/x-amz-json-1.0")
		h.Set("X-Amzn-Requestid", "REQ0123456789")
		return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader(answer)),
			ContentLength: int64(len(answer)), Request: r}, nil
	})
	p, err := proxy.New(proxy.Options{
		Upstream: "http://upstream.invalid", Transport: up, SpoolDir: b.TempDir(), ListenAddr: "bench",
		Account: account, Region: region, Sink: nullSink{},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest("POST", "http://127.0.0.1:8000/", strings.NewReader(benchBody))
			r.Header.Set("X-Amz-Target", "DynamoDB_20120810.GetItem")
			r.Header.Set("Content-Type", "application/x-amz-json-1.0")
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIABENCH0000000001/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")
			r.Header.Set("X-Amz-Date", "20240101T000000Z")
			w := httptest.NewRecorder()
			p.ServeHTTP(w, r)
			if w.Code != 200 {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}
