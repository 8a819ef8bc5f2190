package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/app"
	"github.com/opentrail/opentrail/internal/fixture"
	"github.com/opentrail/opentrail/internal/logs/dest"
	"github.com/opentrail/opentrail/internal/sigma/sigmatest"
)

// BenchmarkIngestDetections: POST /v1/records throughput of 500-record
// requests of real records (TrailDiscover and the seed), with no rules and
// with 100 rules evaluated on every record. It also reports how long the
// detections took to catch up after the last acknowledgement.
func BenchmarkIngestDetections(b *testing.B) {
	for _, rules := range []int{0, 100} {
		b.Run(fmt.Sprintf("rules=%d", rules), func(b *testing.B) {
			e := startWith(b, func(c *app.Config) {
				c.CacheMiB = 256
				if rules > 0 {
					c.RulePaths = []string{sigmatest.HundredRules(b)}
				}
			})
			if rules > 0 && e.a.Detect.RuleErrors() != 0 {
				b.Fatalf("rule errors: %+v", e.a.Detect.Rules(rootAcct))
			}
			recs := fixture.Records(b)
			const perRequest = 500
			bodies := make([][]byte, b.N)
			size := 0
			for i := range bodies {
				var sb strings.Builder
				sb.WriteString(`{"Records":[`)
				for j := range perRequest {
					if j > 0 {
						sb.WriteByte(',')
					}
					r := string(recs[(i*perRequest+j)%len(recs)])
					r = strings.Replace(r, `"eventID":"`, fmt.Sprintf(`"eventID":"b%d-%d-`, i, j), 1)
					size += len(r)
					sb.WriteString(r)
				}
				sb.WriteString(`]}`)
				bodies[i] = []byte(sb.String())
			}
			b.SetBytes(int64(size / len(bodies)))
			var n atomic.Int64
			b.ResetTimer()
			cpu0 := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if status, out := e.post(root, "us-east-1", "/v1/records", bodies[n.Add(1)-1]); status != 200 {
						b.Fatalf("%d %s", status, out)
					}
				}
			})
			acked := time.Now()
			b.ReportMetric(float64(b.N*perRequest)/b.Elapsed().Seconds(), "records/s")
			if rules > 0 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				if err := e.a.Detect.WaitApplied(ctx, e.a.Journal.Last()); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(time.Since(acked).Seconds(), "catch-up-s")
			}
			// The process's CPU per record, detections caught up: client and
			// server, so the difference the rules make is a floor of theirs.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N*perRequest), "cpu-µs/record")
		})
	}
}

// BenchmarkFindingLatency: acknowledged ingest → finding received by a
// webhook, with 100 rules loaded, at 10,000 events/s (FINDING_RATE sets
// another rate; "findings" then shows what the machine kept up with) of which
// one in 100 matches a rule (StopLogging, critical).
func BenchmarkFindingLatency(b *testing.B) {
	var mu sync.Mutex
	received := map[string]time.Time{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		now := time.Now()
		var in struct{ Finding struct{ EventIds []string } }
		json.Unmarshal(body, &in)
		mu.Lock()
		for _, id := range in.Finding.EventIds {
			received[id] = now
		}
		mu.Unlock()
	}))
	defer hook.Close()
	rules := sigmatest.HundredRules(b)
	stop, err := os.ReadFile("../detect/testdata/rules/stop_logging.yml")
	if err != nil {
		b.Fatal(err)
	}
	os.WriteFile(filepath.Join(rules, "r000.yml"), stop, 0o644) // 100 rules, one of them StopLogging
	e := startWith(b, func(c *app.Config) {
		c.CacheMiB = 256
		c.RulePaths = []string{rules}
		c.Destinations.Findings = []dest.FindingRoute{{Destination: hook.URL + "/findings", MinLevel: "critical"}}
	})
	k, _, _ := e.a.Keys.Lookup(rootID)
	const batch, producers = 100, 4
	rate := 10000
	if r, err := strconv.Atoi(os.Getenv("FINDING_RATE")); err == nil {
		rate = r
	}
	interval := time.Duration(batch*producers) * time.Second / time.Duration(rate)
	b.ResetTimer()
	var lat []time.Duration
	for n := range b.N {
		var amu sync.Mutex
		acked := map[string]time.Time{}
		start := time.Now()
		var wg sync.WaitGroup
		for p := range producers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for round := 0; time.Since(start) < 5*time.Second; round++ {
					if wait := time.Until(start.Add(time.Duration(round)*interval + time.Duration(p)*interval/producers)); wait > 0 {
						time.Sleep(wait)
					}
					raws := make([][]byte, batch)
					for j := range raws {
						raws[j] = userRecord(fmt.Sprintf("l%d-%d-%d-%d", n, p, round, j), "alice", "GetObject", "203.0.113.9")
					}
					matchID := fmt.Sprintf("stop%d-%d-%d", n, p, round)
					raws[batch/2] = stopLogging(matchID, time.Now())
					if _, err := e.a.Handler.IngestRecords(context.Background(), k, "us-east-1", raws); err != nil {
						b.Error(err)
						return
					}
					now := time.Now()
					amu.Lock()
					acked[matchID] = now
					amu.Unlock()
				}
			}()
		}
		wg.Wait()
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			missing := 0
			for id := range acked {
				if _, ok := received[id]; !ok {
					missing++
				}
			}
			mu.Unlock()
			if missing == 0 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d findings never reached the webhook", missing)
			}
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		for id, at := range acked {
			lat = append(lat, received[id].Sub(at))
		}
		mu.Unlock()
	}
	b.StopTimer()
	reportLatencies(b, lat, "findings")
}

// cpuTime is the CPU time this process has used (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
