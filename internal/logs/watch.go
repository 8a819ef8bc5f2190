package logs

import (
	"context"
	"sync/atomic"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/filterpattern"
)

// TailEvent is one log event as `opentrail tail` shows it.
type TailEvent struct {
	LogStreamName string `json:"logStreamName"`
	Timestamp     int64  `json:"timestamp"`
	IngestionTime int64  `json:"ingestionTime"`
	EventID       string `json:"eventId"`
	Message       string `json:"message"`
	seq           uint64
}

// watcher receives a log group's new events as they are written.
type watcher struct {
	group   groupID
	ch      chan TailEvent
	dropped atomic.Int64
}

const watchBuffer = 8192

// Tail streams a log group's events matching pattern: first those with
// timestamps in [start, now], then, if follow is set, every new one as it is
// written, until ctx ends. emit is called from one goroutine; an error from it
// stops the tail. A follower too slow to keep up loses events rather than
// slowing writers; dropped reports how many.
func (s *Service) Tail(ctx context.Context, c auth.Caller, groupName, pattern string, start int64, follow bool,
	emit func([]TailEvent) error) (dropped int64, err error) {
	pat, err := compile(pattern)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	g, err := s.lookupGroupLocked(c, groupName, "")
	if err != nil {
		s.mu.Unlock()
		return 0, err
	}
	id := g.id
	var streams []string
	for n := range g.streams {
		streams = append(streams, n)
	}
	last := s.seq
	var w *watcher
	if follow {
		w = &watcher{group: id, ch: make(chan TailEvent, watchBuffer)}
		s.watchers = append(s.watchers, w)
		defer s.unwatch(w)
	}
	s.mu.Unlock()

	m, err := s.newMerge(id, streams, &start, nil, nil)
	if err != nil {
		return 0, err
	}
	var page []TailEvent
	for {
		e, ok := m.next()
		if !ok {
			break
		}
		if e.seq > last || !pat.Match(filterpattern.NewEvent(e.msg)) {
			continue // newer events come through the watcher
		}
		page = append(page, TailEvent{LogStreamName: e.stream, Timestamp: e.ts, IngestionTime: e.ingest, EventID: eventID(e.ts, e.seq), Message: string(e.msg)})
		if len(page) == 500 {
			if err := emit(page); err != nil {
				m.close()
				return 0, err
			}
			page = page[:0]
		}
	}
	m.close()
	if err := m.err(); err != nil {
		return 0, err
	}
	if err := emit(page); err != nil || !follow {
		return 0, err
	}
	for {
		select {
		case <-ctx.Done():
			return w.dropped.Load(), nil
		case e := <-w.ch:
			page = append(page[:0], e)
		drain:
			for len(page) < 500 {
				select {
				case e := <-w.ch:
					page = append(page, e)
				default:
					break drain
				}
			}
			out := page[:0]
			for _, e := range page {
				if pat.Match(filterpattern.NewEvent([]byte(e.Message))) {
					out = append(out, e)
				}
			}
			if err := emit(out); err != nil {
				return w.dropped.Load(), err
			}
		}
	}
}

func (s *Service) unwatch(w *watcher) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.watchers {
		if x == w {
			s.watchers = append(s.watchers[:i], s.watchers[i+1:]...)
			return
		}
	}
}

// notifyWatchersLocked hands one written event to the group's followers.
func (s *Service) notifyWatchersLocked(id groupID, e TailEvent) {
	for _, w := range s.watchers {
		if w.group != id {
			continue
		}
		select {
		case w.ch <- e:
		default:
			w.dropped.Add(1)
		}
	}
}
