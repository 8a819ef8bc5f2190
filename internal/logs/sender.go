package logs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/logs/dest"
)

// Per-delivery bounds: small batches keep latency low; CloudWatch Logs caps a
// subscription payload near 1 MB.
const (
	sendMaxEvents = 500
	sendMaxBytes  = 512 << 10
)

func wake(subs []*subscription) {
	for _, sub := range subs {
		select {
		case sub.wake <- struct{}{}:
		default:
		}
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
		s.send(ctx, sub)
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

// pendingEvent is one outbox entry.
type pendingEvent struct {
	seq    uint64
	stream string
	ev     dest.LogEvent
}

// send drains sub's outbox in order until ctx ends.
func (s *Service) send(ctx context.Context, sub *subscription) {
	s.countPending(sub)
	attempts := 0
	backoff := s.o.Backoff
	for ctx.Err() == nil {
		batch, err := s.readOutbox(sub)
		if err != nil {
			s.log.Error("read subscription outbox", "filter", sub.def.FilterName, "group", sub.group, "err", err)
			sleep(ctx, time.Second)
			continue
		}
		if len(batch) == 0 {
			sub.oldest.Store(0)
			select {
			case <-sub.wake:
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		err = s.deliver(ctx, sub, batch)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			attempts, backoff = 0, s.o.Backoff
			if err := s.drop(sub, batch, false); err != nil {
				s.log.Error("remove delivered events from the outbox", "filter", sub.def.FilterName, "err", err)
			}
			sub.delivered.Add(int64(len(batch)))
			sub.pending.Add(-int64(len(batch)))
			continue
		}
		sub.failures.Add(1)
		attempts++
		s.log.Warn("subscription delivery failed", "filter", sub.def.FilterName, "group", sub.group,
			"destination", sub.def.DestinationArn, "attempt", attempts, "err", err)
		if attempts >= s.o.MaxAttempts || errors.Is(err, dest.ErrRejected) {
			if err := s.drop(sub, batch, true); err != nil {
				s.log.Error("dead-letter a batch", "filter", sub.def.FilterName, "err", err)
			} else {
				sub.deadCount.Add(int64(len(batch)))
				sub.pending.Add(-int64(len(batch)))
			}
			attempts, backoff = 0, s.o.Backoff
			continue
		}
		sleep(ctx, backoff)
		backoff = min(2*backoff, s.o.MaxBackoff)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// countPending sets the pending gauge from the outbox after a (re)start.
func (s *Service) countPending(sub *subscription) {
	n, err := countPrefix(s.db, sub.outbox)
	if err == nil {
		sub.pending.Store(n)
	}
	if d, err := countPrefix(s.db, sub.dead); err == nil {
		sub.deadCount.Store(d)
	}
}

func countPrefix(db *pebble.DB, p []byte) (int64, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: kv.PrefixUpper(p)})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	var n int64
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n, it.Error()
}

// readOutbox returns the next batch: consecutive entries of one log stream.
func (s *Service) readOutbox(sub *subscription) ([]pendingEvent, error) {
	// Reading from the first undelivered seq skips the tombstones of what was delivered.
	sub.readFrom = sub.from.Load()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: kv.SubscriptionKey(sub.outbox, sub.readFrom), UpperBound: kv.PrefixUpper(sub.outbox)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []pendingEvent
	size := 0
	for ok := it.First(); ok && len(out) < sendMaxEvents && size < sendMaxBytes; ok = it.Next() {
		k := it.Key()
		if len(k) != len(sub.outbox)+8 {
			continue
		}
		seq := binary.BigEndian.Uint64(k[len(k)-8:])
		stream, ts, msg, ok := decodePending(it.Value())
		if !ok {
			s.log.Error("skip undecodable outbox entry", "filter", sub.def.FilterName, "seq", seq)
			continue
		}
		if len(out) > 0 && stream != out[0].stream {
			break
		}
		out = append(out, pendingEvent{seq: seq, stream: stream, ev: dest.LogEvent{ID: eventID(ts, seq), Timestamp: ts, Message: string(msg)}})
		size += len(msg)
	}
	if len(out) > 0 && sub.oldest.Load() == 0 {
		sub.oldest.Store(millis(s.o.Now()))
	}
	return out, it.Error()
}

func (s *Service) deliver(ctx context.Context, sub *subscription, batch []pendingEvent) error {
	if sub.dest == nil {
		if sub.destErr != nil {
			return sub.destErr
		}
		return errors.New("no destination")
	}
	b := &dest.Batch{Owner: sub.group.Account, Region: sub.group.Region, LogGroup: sub.group.Name,
		LogStream: batch[0].stream, SubscriptionFilters: []string{sub.def.FilterName}}
	for _, p := range batch {
		b.Events = append(b.Events, p.ev)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return sub.dest.Send(ctx, b)
}

// drop removes a batch from the outbox, into the dead letters when dead is set.
// No sync: if the removal is lost in a crash, the batch is delivered again (at-least-once).
func (s *Service) drop(sub *subscription, batch []pendingEvent, dead bool) error {
	b := s.db.NewBatch()
	defer b.Close()
	if dead {
		for _, p := range batch {
			if err := b.Set(kv.SubscriptionKey(sub.dead, p.seq), encodePending(p.stream, p.ev.Timestamp, []byte(p.ev.Message)), nil); err != nil {
				return err
			}
		}
	}
	// One range tombstone: the batch is every outbox entry from its first seq to its last.
	last := batch[len(batch)-1].seq
	if err := b.DeleteRange(kv.SubscriptionKey(sub.outbox, batch[0].seq), kv.SubscriptionKey(sub.outbox, last+1), nil); err != nil {
		return err
	}
	sub.oldest.Store(0)
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	// Unless a replay moved the start back meanwhile, the next read begins after this batch.
	sub.from.CompareAndSwap(sub.readFrom, last+1)
	return nil
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
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: sub.dead, UpperBound: kv.PrefixUpper(sub.dead)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	out := []DeadLetter{}
	for ok := it.First(); ok && (limit <= 0 || len(out) < limit); ok = it.Next() {
		k := it.Key()
		stream, ts, msg, good := decodePending(it.Value())
		if !good || len(k) < 8 {
			continue
		}
		out = append(out, DeadLetter{LogStreamName: stream, Timestamp: ts, EventID: eventID(ts, binary.BigEndian.Uint64(k[len(k)-8:])), Message: string(msg)})
	}
	return out, it.Error()
}

// Replay moves every dead letter of a subscription filter back into its
// outbox, where it takes its original place in order, and wakes the sender.
func (s *Service) Replay(c auth.Caller, groupName, filter string) (int, error) {
	sub, err := s.findSub(c, groupName, filter)
	if err != nil {
		return 0, err
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: sub.dead, UpperBound: kv.PrefixUpper(sub.dead)})
	if err != nil {
		return 0, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != len(sub.dead)+8 {
			continue
		}
		seq := binary.BigEndian.Uint64(k[len(k)-8:])
		if err := b.Set(kv.SubscriptionKey(sub.outbox, seq), it.Value(), nil); err != nil {
			it.Close()
			return 0, err
		}
		if err := b.Delete(k, nil); err != nil {
			it.Close()
			return 0, err
		}
		n++
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return 0, err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, fmt.Errorf("logs: replay dead letters: %w", err)
	}
	sub.deadCount.Add(-int64(n))
	sub.pending.Add(int64(n))
	sub.from.Store(0) // the replayed entries are older than what the sender has delivered
	wake([]*subscription{sub})
	return n, nil
}

// SubscriptionStat is one subscription filter's delivery state, for metrics.
type SubscriptionStat struct {
	Account, Region, LogGroup, Filter, Destination string
	Pending, Delivered, Failures, DeadLetters      int64
	OldestPendingAge                               time.Duration
}

// SubscriptionStats reports every subscription filter's delivery state.
func (s *Service) SubscriptionStats() []SubscriptionStat {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := millis(s.o.Now())
	var out []SubscriptionStat
	for _, g := range s.groups {
		for _, sub := range g.subs {
			st := SubscriptionStat{Account: g.id.Account, Region: g.id.Region, LogGroup: g.id.Name, Filter: sub.def.FilterName,
				Destination: sub.def.DestinationArn, Pending: max(sub.pending.Load(), 0), Delivered: sub.delivered.Load(),
				Failures: sub.failures.Load(), DeadLetters: sub.deadCount.Load()}
			if o := sub.oldest.Load(); o > 0 {
				st.OldestPendingAge = time.Duration(now-o) * time.Millisecond
			}
			out = append(out, st)
		}
	}
	return out
}
