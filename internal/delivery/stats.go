package delivery

import (
	"sort"
	"sync"
	"time"
)

// TrailStat is one trail stream's delivery state (a trail delivers one stream
// per Region it covers, and one for Insights events), for metrics.
type TrailStat struct {
	Account, HomeRegion, Trail, Region string
	Insight                            bool
	Pending                            int           // events read and not yet in a delivered file
	Lag                                time.Duration // since the oldest pending event reached the stream; 0 = none pending
	LastError                          string        // the last delivery error; "" while healthy
}

// stats is the snapshot the worker publishes after each step.
type stats struct {
	mu      sync.Mutex
	trails  []TrailStat
	readPos uint64
}

// publishStats snapshots the streams. Worker goroutine only.
func (w *Worker) publishStats() {
	now := w.o.Now()
	out := make([]TrailStat, 0, len(w.streams))
	for _, s := range w.streams {
		st := TrailStat{Account: s.id.Account, HomeRegion: s.id.HomeRegion, Trail: s.id.Trail, Region: s.id.Region,
			Insight: s.id.Insight, Pending: s.buf.n, LastError: s.failing}
		if s.buf.n > 0 {
			st.Lag = max(now.Sub(s.buf.opened), 0)
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Account != b.Account {
			return a.Account < b.Account
		}
		if a.Trail != b.Trail {
			return a.Trail < b.Trail
		}
		if a.Region != b.Region {
			return a.Region < b.Region
		}
		return !a.Insight && b.Insight
	})
	w.stats.mu.Lock()
	w.stats.trails, w.stats.readPos = out, w.readPos
	w.stats.mu.Unlock()
}

// TrailStats reports every trail stream's delivery state as of the worker's last step.
func (w *Worker) TrailStats() []TrailStat {
	w.stats.mu.Lock()
	defer w.stats.mu.Unlock()
	return append([]TrailStat(nil), w.stats.trails...)
}

// Lag is how many journal entries the worker has yet to read.
func (w *Worker) Lag() uint64 {
	w.stats.mu.Lock()
	pos := w.stats.readPos
	w.stats.mu.Unlock()
	last := w.j.Last()
	if pos == 0 || pos > last {
		return 0
	}
	return last - pos + 1
}
