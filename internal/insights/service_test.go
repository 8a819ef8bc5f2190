package insights

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/kv"
)

// Record is one call of the test history as a CloudTrail record.
func (c call) record(t time.Time, i int) []byte {
	r := map[string]any{
		"eventVersion": "1.08", "eventTime": t.UTC().Format(time.RFC3339), "eventSource": c.source, "eventName": c.name,
		"awsRegion": region, "recipientAccountId": acct, "eventID": fmt.Sprintf("evt-%08d", i),
		"userIdentity": map[string]any{"type": "IAMUser", "arn": c.user, "accountId": acct},
		"userAgent":    c.ua, "readOnly": c.readOnly, "eventType": "AwsApiCall", "managementEvent": true, "eventCategory": "Management",
	}
	if c.errorCode != "" {
		r["errorCode"] = c.errorCode
	}
	b, _ := json.Marshal(r)
	return b
}

// TestServiceFindsBurstsAcrossRestart drives the history through the journal,
// restarting the projection half-way: the baselines survive the restart, both
// bursts yield exactly one Start and one End, and replaying the journal from
// the start appends nothing new.
func TestServiceFindsBurstsAcrossRestart(t *testing.T) {
	h := testHistory()
	db, err := kv.Open(t.TempDir(), kv.Options{CacheBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	log := slog.New(slog.DiscardHandler)
	j, err := journal.Open(db, log)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ctx := context.Background()
	wall := h.end.Add(24 * time.Hour)
	now := func() time.Time { return wall }

	var batch []journal.Entry
	i := 0
	appendBatch := func() {
		if _, err := j.Append(ctx, batch); err != nil {
			t.Fatal(err)
		}
		batch = batch[:0]
	}
	var all []call
	var times []time.Time
	h.every(5, func(ts time.Time, c call) { all, times = append(all, c), append(times, ts) })
	start := func() *Service {
		s := New(db, j, log, Options{Now: now, Tick: 10 * time.Millisecond})
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := start()
	for k, c := range all {
		i++
		rec, err := event.Normalize(c.record(times[k], i), event.Defaults{Now: wall})
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, journal.Entry{ID: kv.EventIDKey(acct, rec.Meta.EventID), Value: event.Encode(nil, &rec)})
		if len(batch) == 1000 {
			appendBatch()
		}
		if k == len(all)/2 {
			appendBatch()
			if err := s.WaitApplied(ctx, j.Last()); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s = start()
		}
	}
	appendBatch()
	last := j.Last()
	found := waitInsights(t, j, s, last, 4)
	checkBursts(t, h, found)
	s.Close()
	// The restart lost nothing: the same events through one detector in memory give the same statistics.
	d := NewDetector(Rule{}, func(SeriesKey, int64) (Counts, error) { return Counts{}, nil })
	for k, c := range all {
		if err := d.Observe(meta(times[k], c, wall), c.ua); err != nil {
			t.Fatal(err)
		}
	}
	mem := d.Advance(wall)
	for i := range found {
		if i >= len(mem) || found[i].Baseline != mem[i].Baseline || found[i].Average != mem[i].Average || found[i].State != mem[i].State ||
			!reflect.DeepEqual(found[i].Attributions, mem[i].Attributions) {
			t.Fatalf("insight %d after a restart: %+v\nwithout: %+v", i, found[i], mem[min(i, len(mem)-1)])
		}
	}

	// A replay from scratch (cursor and state gone) finds the same insights under the same IDs.
	b := db.NewBatch()
	b.DeleteRange(kv.InsightScopes(), kv.PrefixUpper(kv.InsightScopes()[:1]), nil)
	b.DeleteRange(kv.InsightMinutePrefix(nil), kv.PrefixUpper(kv.InsightMinutePrefix(nil)), nil)
	b.DeleteRange(kv.InsightSeriesStates(), kv.PrefixUpper(kv.InsightSeriesStates()), nil)
	b.Delete(kv.CursorKey(cursorName), nil)
	if err := b.Commit(nil); err != nil {
		t.Fatal(err)
	}
	s = start()
	defer s.Close()
	if err := s.WaitApplied(ctx, last); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // a few more ticks: nothing may be appended
	if got := j.Last(); got != last+4 {
		t.Fatalf("journal grew from %d to %d on replay, want %d", last+4, got, last+4)
	}
}

// waitInsights waits until the journal holds want insight events after seq after and returns them.
func waitInsights(t *testing.T, j *journal.Journal, s *Service, after uint64, want int) []Insight {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for j.Last() < after+uint64(want) {
		if err := j.Wait(ctx, j.Last()); err != nil {
			t.Fatalf("waiting for %d insights: %v (journal at %d, after %d)", want, err, j.Last(), after)
		}
	}
	var out []Insight
	_, err := j.Scan(after+1, 0, func(_ uint64, v []byte) error {
		r, err := event.Decode(v)
		if err != nil {
			return err
		}
		if r.Meta.Category != event.CategoryInsight || r.Meta.Type != "AwsCloudTrailInsight" {
			return fmt.Errorf("journal entry after the history is %s/%s", r.Meta.Category, r.Meta.Type)
		}
		in, err := ParseRecord(r.Raw)
		if err != nil {
			return err
		}
		out = append(out, in)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
