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
)

// The store benchmarks build one event data store of LAKE_BENCH_EVENTS events
// (default 1,000,000) once per run, through the engine's own load path (the
// query appender and its JSON transform, in batches of 50,000), then time the
// seed 000 GROUP BY and a one-day + eventName query over it. The mix: 30%
// Lambda Invoke data events as in seed 000 (20 functions, 8 ENIs), 70% the
// fixture's management events, all with fresh eventIDs and requestIDs and
// times spread over 30 days. Set LAKE_BENCH_DIR to keep the store between runs.

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
		var mgmt []string
		for _, r := range fixtureRecords(b) {
			if !strings.Contains(string(r), "customerEniId") {
				mgmt = append(mgmt, string(r))
			}
		}
		rng := rand.New(rand.NewPCG(1, 2))
		start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		ctx := context.Background()
		t0 := time.Now()
		const batch = 50000
		for done := 0; done < n; done += batch {
			rs := make([]staged, 0, batch)
			for i := done; i < min(n, done+batch); i++ {
				at := start.Add(time.Duration(rng.Int64N(int64(30 * 24 * time.Hour))))
				id := fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint64()&0xffffffffffff)
				var raw string
				if rng.IntN(10) < 3 {
					raw = string(lambdaInvoke(fmt.Sprintf("vpc-lambda-%d", rng.IntN(20)), fmt.Sprintf("eni-%017x", rng.IntN(8)), id, at))
					raw = strings.Replace(raw, "11bdbfa8-940e-491a-ba4c-7fcd85993886", fmt.Sprintf("%08x-%04x-4a4c-8fcd-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint64()&0xffffffffffff), 1)
				} else {
					raw = mgmt[rng.IntN(len(mgmt))]
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
				rs = append(rs, staged{seq: uint64(i + 1), et: at.UnixMicro(), raw: []byte(raw)})
			}
			if benchErr = v.e.commitBatch(ctx, map[string][]staged{edsID: rs}, uint64(done+len(rs)+1)); benchErr != nil {
				return
			}
		}
		load := time.Since(t0)
		if _, benchErr = v.e.w.ExecContext(ctx, "CHECKPOINT"); benchErr != nil {
			return
		}
		st, _ := os.Stat(filepath.Join(v.dir, "lake", "store.duckdb"))
		ev, bytes, _ := v.e.StoreStats(edsID)
		var used, blockSize int64
		v.e.w.QueryRowContext(ctx, "SELECT used_blocks, block_size FROM pragma_database_size() WHERE database_name = 'store'").Scan(&used, &blockSize)
		fmt.Printf("lake bench store: %d events loaded in %s (%.0f events/s); file %d bytes (%.1f bytes/event), used blocks %d bytes (%.1f bytes/event); records average %.0f bytes as JSON\n",
			ev, load.Round(time.Millisecond), float64(n)/load.Seconds(), st.Size(), float64(st.Size())/float64(ev),
			used*blockSize, float64(used*blockSize)/float64(ev), float64(bytes)/float64(ev))
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
