package lake

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/journal"
)

// The store benchmarks build one event data store of LAKE_BENCH_EVENTS events
// (default 1,000,000) once per run, through the engine's own commitBatch (in
// batches of 50,000), then time the
// seed 000 GROUP BY and a one-day + eventName query over it. The mix: 30%
// Lambda Invoke data events as in seed 000 (20 functions, 8 ENIs), 70% the
// fixture's management events, all with fresh eventIDs and requestIDs and
// times spread over 30 days. Set LAKE_BENCH_DIR to keep the store between runs.

// benchGen makes the benchmarks' records.
type benchGen struct {
	mgmt  []string
	rng   *rand.Rand
	start time.Time
}

func newBenchGen(t testing.TB) *benchGen {
	g := &benchGen{rng: rand.New(rand.NewPCG(1, 2)), start: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, r := range fixtureRecords(t) {
		if !strings.Contains(string(r), "customerEniId") {
			g.mgmt = append(g.mgmt, string(r))
		}
	}
	return g
}

// next is a record and its eventTime.
func (g *benchGen) next() ([]byte, time.Time) {
	rng := g.rng
	at := g.start.Add(time.Duration(rng.Int64N(int64(30 * 24 * time.Hour))))
	id := fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint64()&0xffffffffffff)
	var raw string
	if rng.IntN(10) < 3 {
		raw = string(lambdaInvoke(fmt.Sprintf("vpc-lambda-%d", rng.IntN(20)), fmt.Sprintf("eni-%017x", rng.IntN(8)), id, at))
		raw = strings.Replace(raw, "11bdbfa8-940e-491a-ba4c-7fcd85993886", fmt.Sprintf("%08x-%04x-4a4c-8fcd-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint64()&0xffffffffffff), 1)
	} else {
		raw = g.mgmt[rng.IntN(len(g.mgmt))]
		// A fresh eventID and eventTime, same length as before where possible.
		if i := strings.Index(raw, `"eventID":"`); i >= 0 {
			j := strings.IndexByte(raw[i+11:], '"')
			raw = raw[:i+11] + id + raw[i+11+j:]
		}
		if i := strings.Index(raw, `"eventTime":"`); i >= 0 {
			j := strings.IndexByte(raw[i+13:], '"')
			raw = raw[:i+13] + at.Format(time.RFC3339) + raw[i+13+j:]
		}
	}
	return []byte(raw), at
}

// reportSize checkpoints and prints the bytes on disk per event: the DuckDB
// file and the block files, everything under the engine's folder.
func (v *env) reportSize(t testing.TB) {
	ctx := context.Background()
	if _, err := v.e.w.ExecContext(ctx, "CHECKPOINT"); err != nil {
		t.Fatal(err)
	}
	var db, blocks int64
	filepath.WalkDir(filepath.Join(v.dir, "lake"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				if strings.Contains(path, "blocks") {
					blocks += info.Size()
				} else {
					db += info.Size()
				}
			}
		}
		return nil
	})
	ev, bytes, _ := v.e.StoreStats(edsID)
	fmt.Printf("%d events; on disk %d bytes = %.1f bytes/event (DuckDB files %.1f, block files %.1f); records average %.0f bytes as JSON\n",
		ev, db+blocks, float64(db+blocks)/float64(ev), float64(db)/float64(ev), float64(blocks)/float64(ev), float64(bytes)/float64(ev))
}

// BenchmarkLoad is the projection's throughput from a backlog: LAKE_LOAD_EVENTS
// (default 300,000) records are normalised and appended to the journal while
// the engine is stopped, then the engine starts and the time until Applied
// reaches the last is taken.
func BenchmarkLoad(b *testing.B) {
	n := 300_000
	if s := os.Getenv("LAKE_LOAD_EVENTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	for b.Loop() {
		b.StopTimer()
		v := newEnv(b, allEvents(acct, edsID))
		v.e.Close()
		gen := newBenchGen(b)
		var last uint64
		for done := 0; done < n; {
			var entries []journal.Entry
			for ; done < n && len(entries) < 5000; done++ {
				raw, _ := gen.next()
				rec, err := event.Normalize(raw, event.Defaults{Account: acct, Region: "us-east-1", Now: v.now})
				if err != nil {
					b.Fatal(err)
				}
				entries = append(entries, journal.Entry{Value: event.Encode(nil, &rec)})
			}
			res, err := v.j.Append(context.Background(), entries)
			if err != nil {
				b.Fatal(err)
			}
			last = res[len(res)-1].Seq
		}
		b.StartTimer()
		t0 := time.Now()
		v.open()
		if err := v.e.WaitApplied(context.Background(), last); err != nil {
			b.Fatal(err)
		}
		el := time.Since(t0)
		b.StopTimer()
		b.ReportMetric(float64(n)/el.Seconds(), "events/s")
		fmt.Printf("lake load: %d events from the journal in %s (%.0f events/s); ", n, el.Round(time.Millisecond), float64(n)/el.Seconds())
		v.reportSize(b)
		b.StartTimer()
	}
}

var (
	benchOnce sync.Once
	benchEnv  *env
	benchErr  error
)

func benchStore(b *testing.B) *env {
	benchOnce.Do(func() {
		n := 1_000_000
		if s := os.Getenv("LAKE_BENCH_EVENTS"); s != "" {
			n, _ = strconv.Atoi(s)
		}
		v := newEnvKeep(b, allEvents(acct, edsID)) // shared by the benchmarks: closed by the process's end
		if dir := os.Getenv("LAKE_BENCH_DIR"); dir != "" {
			v.e.Close()
			v.dir = dir
			v.open()
		}
		benchEnv = v
		if ev, _, _ := v.e.StoreStats(edsID); ev >= int64(n) {
			return
		}
		gen := newBenchGen(b)
		ctx := context.Background()
		t0 := time.Now()
		const batch = 50000
		for done := 0; done < n; done += batch {
			rs := make([]staged, 0, batch)
			for i := done; i < min(n, done+batch); i++ {
				raw, at := gen.next()
				rs = append(rs, staged{seq: uint64(i + 1), et: at.UnixMicro(), raw: raw})
			}
			if benchErr = v.e.commitBatch(ctx, map[string][]staged{edsID: rs}, uint64(done+len(rs)+1)); benchErr != nil {
				return
			}
		}
		load := time.Since(t0)
		if _, benchErr = v.e.w.ExecContext(ctx, "CHECKPOINT"); benchErr != nil {
			return
		}
		fmt.Printf("lake bench store: loaded in %s (%.0f events/s, commitBatch alone); ", load.Round(time.Millisecond), float64(n)/load.Seconds())
		v.reportSize(b)
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchEnv
}

func BenchmarkSeedGroupBy(b *testing.B) {
	v := benchStore(b)
	q := fmt.Sprintf(seedQuery, edsID)
	b.ResetTimer()
	for b.Loop() {
		res, err := v.e.Query(context.Background(), acct, q)
		if err != nil || len(res.Rows) == 0 {
			b.Fatal(err)
		}
	}
}

func BenchmarkOneDayEventName(b *testing.B) {
	v := benchStore(b)
	q := "SELECT eventTime, eventName, userIdentity.arn, sourceIPAddress FROM " + edsID +
		" WHERE eventTime >= '2024-01-15 00:00:00' AND eventTime < '2024-01-16 00:00:00' AND eventName = 'ConsoleLogin'"
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.e.Query(context.Background(), acct, q); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCountByEventName(b *testing.B) {
	v := benchStore(b)
	q := "SELECT eventSource, eventName, count(*) FROM " + edsID + " GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 10"
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.e.Query(context.Background(), acct, q); err != nil {
			b.Fatal(err)
		}
	}
}
