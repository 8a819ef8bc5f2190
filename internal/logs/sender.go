package logs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/logs/dest"
	"github.com/opentrail/opentrail/internal/outbox"
)

// Per-delivery bounds: small batches keep latency low; CloudWatch Logs caps a
// subscription payload near 1 MB.
const (
	sendMaxEvents = 500
	sendMaxBytes  = 512 << 10
)

func wake(subs []*subscription) {
	for _, sub := range subs {
		sub.out.Wake()
	}
}

// startSender starts sub's sender. The caller holds s.mu (or is Start).
func (s *Service) startSender(sub *subscription) {
	ctx, cancel := context.WithCancel(s.ctx)
	sub.stop = cancel
	sub.done = make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(sub.done)
		sub.out.Run(ctx)
	}()
}

// stopSenderLocked stops sub's sender and waits for it. A sender never takes
// s.mu, so waiting while holding it cannot deadlock.
func (s *Service) stopSenderLocked(sub *subscription) {
	if sub.stop == nil {
		return
	}
	sub.stop()
	<-sub.done
	sub.stop = nil
}

// newOutbox is sub's outbox stream: entries keyed by log sequence number
// (encodePending), batches of one log stream.
func (s *Service) newOutbox(sub *subscription) *outbox.Stream {
	return outbox.New(s.db, outbox.Options{
		Name:      "subscription " + sub.group.Account + "/" + sub.group.Region + "/" + sub.group.Name + "/" + sub.def.FilterName,
		Pending:   kv.SubscriptionPrefix(false, sub.group.Account, sub.group.Region, sub.group.Name, sub.def.FilterName),
		Dead:      kv.SubscriptionPrefix(true, sub.group.Account, sub.group.Region, sub.group.Name, sub.def.FilterName),
		Deliver:   func(ctx context.Context, batch []outbox.Entry) error { return s.deliver(ctx, sub, batch) },
		Permanent: func(err error) bool { return errors.Is(err, dest.ErrRejected) },
		Valid: func(v []byte) bool {
			_, _, _, ok := decodePending(v)
			return ok
		},
		SameBatch: func(first, e outbox.Entry) bool {
			a, _, _, _ := decodePending(first.Value)
			b, _, _, _ := decodePending(e.Value)
			return a == b
		},
		MaxEntries: sendMaxEvents, MaxBytes: sendMaxBytes,
		MaxAttempts: s.o.MaxAttempts, Backoff: s.o.Backoff, MaxBackoff: s.o.MaxBackoff,
		Now: s.o.Now, Log: s.log.With("filter", sub.def.FilterName, "group", sub.group.Name, "destination", dest.Redact(sub.def.DestinationArn)),
	})
}

func (s *Service) deliver(ctx context.Context, sub *subscription, batch []outbox.Entry) error {
	if sub.dest == nil {
		if sub.destErr != nil {
			return sub.destErr
		}
		return errors.New("no destination")
	}
	b := &dest.Batch{Owner: sub.group.Account, Region: sub.group.Region, LogGroup: sub.group.Name,
		SubscriptionFilters: []string{sub.def.FilterName}}
	for _, e := range batch {
		stream, ts, msg, _ := decodePending(e.Value)
		b.LogStream = stream
		b.Events = append(b.Events, dest.LogEvent{ID: eventID(ts, e.Seq), Timestamp: ts, Message: string(msg)})
	}
	return sub.dest.Send(ctx, b)
}

// DeadLetter is one event a subscription gave up on.
type DeadLetter struct {
	LogStreamName string `json:"logStreamName"`
	Timestamp     int64  `json:"timestamp"`
	EventID       string `json:"eventId"`
	Message       string `json:"message"`
}

// findSub returns the caller's subscription filter.
func (s *Service) findSub(c auth.Caller, groupName, filter string) (*subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGroupLocked(c, groupName, "")
	if err != nil {
		return nil, err
	}
	for _, sub := range g.subs {
		if sub.def.FilterName == filter {
			return sub, nil
		}
	}
	return nil, apiErr("ResourceNotFoundException", "The specified subscription filter does not exist.")
}

// DeadLetters lists up to limit dead-lettered events of a subscription filter, oldest first.
func (s *Service) DeadLetters(c auth.Caller, groupName, filter string, limit int) ([]DeadLetter, error) {
	sub, err := s.findSub(c, groupName, filter)
	if err != nil {
		return nil, err
	}
	entries, err := sub.out.DeadLetters(0)
	if err != nil {
		return nil, err
	}
	out := []DeadLetter{}
	for _, e := range entries {
		if limit > 0 && len(out) >= limit {
			break
		}
		stream, ts, msg, good := decodePending(e.Value)
		if !good {
			continue
		}
		out = append(out, DeadLetter{LogStreamName: stream, Timestamp: ts, EventID: eventID(ts, e.Seq), Message: string(msg)})
	}
	return out, nil
}

// Replay moves every dead letter of a subscription filter back into its
// outbox, where it takes its original place in order, and wakes the sender.
func (s *Service) Replay(ctx context.Context, c auth.Caller, groupName, filter string) (int, error) {
	sub, err := s.findSub(c, groupName, filter)
	if err != nil {
		return 0, err
	}
	n, err := sub.out.Replay(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("logs: %w", err)
	}
	return n, nil
}

// SubscriptionStat is one subscription filter's delivery state, for metrics.
type SubscriptionStat struct {
	Account, Region, LogGroup, Filter, Destination string
	Pending, Delivered, Failures, DeadLetters      int64
	OldestPendingAge                               time.Duration
	LastError                                      string // of the last failed attempt since the start; never holds credentials
}

// SubscriptionStats reports every subscription filter's delivery state.
func (s *Service) SubscriptionStats() []SubscriptionStat {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SubscriptionStat
	for _, g := range s.groups {
		for _, sub := range g.subs {
			o := sub.out.Stats()
			out = append(out, SubscriptionStat{Account: g.id.Account, Region: g.id.Region, LogGroup: g.id.Name, Filter: sub.def.FilterName,
				Destination: sub.def.DestinationArn, Pending: o.Pending, Delivered: o.Delivered, Failures: o.Failures,
				DeadLetters: o.DeadLetters, OldestPendingAge: o.OldestPendingAge, LastError: o.LastError})
		}
	}
	return out
}
