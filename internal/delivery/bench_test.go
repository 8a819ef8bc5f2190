package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/cloudtrail"
	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/fixture"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/objstore"
)

// BenchmarkDeliver measures how fast delivery turns journal entries into gzip
// log files in folder buckets: a trail taking every event, journal pre-filled
// with the seed's Lambda Invoke record (~1.5 KB) as a management event.
func BenchmarkDeliver(b *testing.B) {
	const events = 200_000
	dir := b.TempDir()
	db, err := kv.Open(filepath.Join(dir, "db"), kv.Options{})
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
	buckets := objstore.NewFS(filepath.Join(dir, "buckets"))
	ctx := context.Background()
	buckets.CreateBucket(ctx, "bench-bucket")
	ct := cloudtrail.New(db, nil, nil, log, cloudtrail.Options{})
	caller := auth.Caller{Account: "123456789012", Region: "ap-northeast-1", Root: true}
	if _, err := ct.Handle(ctx, caller, "CreateTrail", []byte(`{"Name":"bench","S3BucketName":"bench-bucket"}`)); err != nil {
		b.Fatal(err)
	}
	if _, err := ct.Handle(ctx, caller, "StartLogging", []byte(`{"Name":"bench"}`)); err != nil {
		b.Fatal(err)
	}
	lambda := string(fixture.Records(b)[563])
	var size int
	for b.Loop() {
		b.StopTimer()
		from := j.Last()
		for k := 0; k < events; k += 1000 {
			entries := make([]journal.Entry, 1000)
			for i := range entries {
				raw := []byte(lambda[:len(lambda)-1] + fmt.Sprintf(`,"x":"%d-%d"}`, from, k+i))
				rec, err := event.Normalize(raw, event.Defaults{Now: time.Now()})
				if err != nil {
					b.Fatal(err)
				}
				rec.Meta.EventID = fmt.Sprintf("bench-%d-%d", from, k+i)
				rec.Meta.Category, rec.Meta.ManagementEvent = event.CategoryManagement, true
				entries[i] = journal.Entry{Value: event.Encode(nil, &rec)}
				size += len(rec.Raw)
			}
			if _, err := j.Append(ctx, entries); err != nil {
				b.Fatal(err)
			}
		}
		w := New(db, j, ct, buckets, log, Options{Interval: time.Hour, MaxFileBytes: 8 << 20})
		w.readPos = from + 1
		if err := w.refresh(ctx); err != nil {
			b.Fatal(err)
		}
		w.readPos = from + 1
		b.StartTimer()
		if _, err := w.readAll(); err != nil {
			b.Fatal(err)
		}
		for pending := true; pending; {
			w.flushDue(ctx, true)
			pending = false
			for _, s := range w.streams {
				pending = pending || s.buf.n > 0 || s.stalledAt != 0
			}
		}
		for _, s := range w.streams {
			if s.state.Delivered != j.Last() {
				b.Fatalf("delivered up to %d of %d", s.state.Delivered, j.Last())
			}
		}
	}
	b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
	b.SetBytes(int64(size / b.N))
}
