package delivery

import (
	"errors"
	"testing"
	"time"
)

// TestTrailStats: a trail stream's pending events, lag and last delivery
// error are reported for the metrics (issue 12), and clear once delivered.
func TestTrailStats(t *testing.T) {
	store := newMemStore("stats-bucket")
	r := newRig(t, store)
	defer r.close()
	r.call("us-east-1", "CreateTrail", `{"Name":"trail-1","S3BucketName":"stats-bucket"}`)
	r.call("us-east-1", "StartLogging", `{"Name":"trail-1"}`)
	r.advance(time.Second)
	store.setFail(errors.New("bucket unreachable"))
	r.ingest("us-east-1", 0, 5, mgmt)
	r.waitFor("5 pending events", func() bool {
		st := r.w.TrailStats()
		return len(st) == 1 && st[0].Pending == 5 && st[0].Trail == "trail-1" && st[0].Region == "us-east-1"
	})
	r.advance(2 * time.Minute)
	r.waitFor("the error and the lag", func() bool {
		st := r.w.TrailStats()
		return len(st) == 1 && st[0].LastError != "" && st[0].Lag >= 2*time.Minute
	})
	store.setFail(nil)
	r.advance(time.Hour) // past any backoff
	r.waitFor("a healthy stream", func() bool {
		st := r.w.TrailStats()
		return len(st) == 1 && st[0].Pending == 0 && st[0].LastError == "" && st[0].Lag == 0 && r.w.Lag() == 0
	})
}
