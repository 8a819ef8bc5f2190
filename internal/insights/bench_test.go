package insights

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/event"
	eventhistory "github.com/opentrail/opentrail/internal/history"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/kv"
)

// BenchmarkStartLatency measures, on the wall clock, the time from the end of
// the first anomalous minute of a live burst to its Start event in event
// history (what LookupEvents reads), with the default rule (30 s grace). Each
// iteration waits for real minutes: run it with -benchtime=1x.
//
//	go test ./internal/insights -run '^$' -bench StartLatency -benchtime=1x
func BenchmarkStartLatency(b *testing.B) {
	db, err := kv.Open(b.TempDir(), kv.Options{CacheBytes: 16 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	log := slog.New(slog.DiscardHandler)
	j, err := journal.Open(db, log)
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	ctx := context.Background()
	st := eventhistory.New(db, j, log, eventhistory.Options{})
	if err := st.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	s := New(db, j, log, Options{})
	if err := s.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer s.Close()

	// Two days of history recorded live back then: two CreateUser calls every ten minutes.
	now := time.Now().UTC()
	var batch []journal.Entry
	appendRec := func(ts, ingest time.Time, name string, i int) {
		c := call{"iam.amazonaws.com", name, alice, uaSteady, "", false}
		rec, err := event.Normalize(c.record(ts, i), event.Defaults{Now: ingest})
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, journal.Entry{ID: kv.EventIDKey(acct, rec.Meta.EventID), Value: event.Encode(nil, &rec)})
	}
	flush := func() {
		if _, err := j.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	id := 0
	for ts := now.Add(-48 * time.Hour).Truncate(time.Minute); ts.Before(now.Add(-time.Hour)); ts = ts.Add(10 * time.Minute) {
		for n := range b.N {
			id++
			appendRec(ts, ts, fmt.Sprintf("CreateUser%d", n), id)
		}
	}
	flush()
	b.ResetTimer()
	var worst time.Duration
	for n := range b.N {
		// The burst: 40 calls in the current minute, as they happen.
		minute := time.Now().UTC().Truncate(time.Minute)
		for range 40 {
			id++
			ts := time.Now().UTC()
			appendRec(ts, ts, fmt.Sprintf("CreateUser%d", n), id)
		}
		flush()
		closed := minute.Add(time.Minute)
		for {
			page, err := st.Lookup(eventhistory.Query{Account: acct, Region: region, Insight: true, Attr: eventhistory.AttrEventName,
				Value: fmt.Sprintf("CreateUser%d", n), Start: math.MinInt64, End: math.MaxInt64, Max: 50})
			if err != nil {
				b.Fatal(err)
			}
			if len(page.Events) > 0 {
				worst = max(worst, time.Since(closed))
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	b.ReportMetric(worst.Seconds(), "s-to-Start")
}

// BenchmarkProjection is the projection's cost per journal entry: decode,
// count, close minutes and commit the state with the cursor, over live
// management and data events of 20 APIs and 50 users (the CPU Insights takes
// from ingest). Compare with what one record costs to ingest.
func BenchmarkProjection(b *testing.B) {
	db, err := kv.Open(b.TempDir(), kv.Options{CacheBytes: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	log := slog.New(slog.DiscardHandler)
	j, err := journal.Open(db, log)
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour)
	var batch []journal.Entry
	for i := range b.N {
		ts := t0.Add(time.Duration(i) * time.Millisecond)
		c := call{"lambda.amazonaws.com", fmt.Sprintf("Op%d", i%20), fmt.Sprintf("arn:aws:iam::%s:user/u%d", acct, i%50), uaSteady, "", i%3 == 0}
		if i%17 == 0 {
			c.errorCode = "AccessDenied"
		}
		rec, err := event.Normalize(c.record(ts, i), event.Defaults{Now: ts})
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, journal.Entry{Value: event.Encode(nil, &rec)})
		if len(batch) == 1000 {
			if _, err := j.Append(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if _, err := j.Append(ctx, batch); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	s := New(db, j, log, Options{Now: func() time.Time { return t0.Add(time.Duration(b.N) * time.Millisecond) }})
	if err := s.Start(ctx); err != nil {
		b.Fatal(err)
	}
	if err := s.WaitApplied(ctx, j.Last()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	s.Close()
}
