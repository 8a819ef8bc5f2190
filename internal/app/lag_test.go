package app

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/kv"
)

func TestProjectionLags(t *testing.T) {
	a, err := openApp(t, t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var entries []journal.Entry
	for i := range 3 {
		r, err := event.Normalize(fmt.Appendf(nil, `{"eventID":"e%d","eventTime":"2026-03-01T12:00:00Z","eventName":"N"}`, i),
			event.Defaults{Account: "123456789012", Region: "us-east-1", Now: t0.Add(time.Duration(i) * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, journal.Entry{ID: kv.EventIDKey(r.Meta.Account, r.Meta.EventID), Value: event.Encode(nil, &r)})
	}
	if _, err := a.Journal.Append(context.Background(), entries); err != nil {
		t.Fatal(err)
	}
	last := a.Journal.Last()
	now := t0.Add(time.Minute)
	for _, tc := range []struct {
		entries uint64
		want    time.Duration
	}{{0, 0}, {1, 58 * time.Second}, {2, 59 * time.Second}, {3, time.Minute}, {last + 1, 0}} {
		if got := oldestWaiting(a.Journal, last, tc.entries, now); got != tc.want {
			t.Errorf("%d entries waiting: oldest waited %v, want %v", tc.entries, got, tc.want)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Store.WaitApplied(ctx, last); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range a.ProjectionLags() {
		names = append(names, l.Name)
		if l.Name == "event_history" && (l.Entries != 0 || l.Behind != 0) {
			t.Errorf("event history after applying everything: %+v", l)
		}
	}
	// No rules: no detections projection.
	if fmt.Sprint(names) != "[event_history lake trail_delivery log_groups insights]" {
		t.Errorf("projections = %v", names)
	}
}
