package app

import (
	"time"

	"github.com/opentrail/opentrail/internal/console"
	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/journal"
)

// ProjectionLags reports how far behind the journal each running projection is: the metrics
// (opentrail_projection_lag_entries and _seconds) and the console's dashboard show it.
func (a *App) ProjectionLags() []console.ProjectionLag {
	last := a.Journal.Last()
	behind := func(applied uint64) uint64 { return last - min(last, applied) }
	var out []console.ProjectionLag
	add := func(name string, entries uint64) {
		out = append(out, console.ProjectionLag{Name: name, Entries: entries, Behind: oldestWaiting(a.Journal, last, entries, time.Now())})
	}
	if a.Store != nil {
		add("event_history", behind(a.Store.Applied()))
	}
	if a.Lake != nil {
		add("lake", behind(a.Lake.Applied()))
	}
	if a.Deliver != nil {
		add("trail_delivery", a.Deliver.Lag())
	}
	if a.Logs != nil {
		add("log_groups", a.Logs.Lag())
	}
	if a.Insights != nil {
		add("insights", behind(a.Insights.Applied()))
	}
	if a.Detect != nil {
		add("detections", a.Detect.Lag())
	}
	return out
}

// oldestWaiting is how long ago the oldest of the entries journal entries up to last (the ones
// a projection has yet to apply) was recorded; 0 when there are none.
func oldestWaiting(j *journal.Journal, last, entries uint64, now time.Time) time.Duration {
	if entries == 0 || entries > last {
		return 0
	}
	var ingested int64
	// Scan, not Get: the first waiting entry may have been trimmed, the next one then is the oldest.
	j.Scan(last-entries+1, 1, func(_ uint64, v []byte) error {
		if rec, err := event.Decode(v); err == nil {
			ingested = rec.Meta.IngestTime
		}
		return nil
	})
	if ingested == 0 {
		return 0
	}
	return max(now.Sub(time.Unix(0, ingested)), 0)
}
