// Package outbox is OpenTrail's one durable notification pipeline: a named
// stream of payloads to one destination, delivered in order, at least once.
//
// A producer puts payloads into a Stream inside its own Pebble batch, so that a
// payload exists exactly when the change that caused it commits (a log event
// matched by a subscription filter, a trail's delivered log file, a finding).
// Run, the stream's one sender, reads the oldest payloads, hands them to
// Deliver as one batch and removes them once Deliver succeeded. A failed batch
// is retried with capped exponential backoff; after MaxAttempts, or at once when
// Permanent says retrying cannot help, it becomes a dead letter, kept under its
// own prefix until Replay puts it back in its place. A failing destination
// delays only its own stream.
//
// Use:
//
//	s := outbox.New(db, outbox.Options{
//		Name:    "alerts:security",                        // logs and metrics; never a secret
//		Pending: kv.OutboxPrefix(false, "alerts", "security"),
//		Dead:    kv.OutboxPrefix(true, "alerts", "security"),
//		Deliver: func(ctx context.Context, batch []outbox.Entry) error { ... },
//	})
//	go s.Run(ctx)                 // the caller owns the goroutine and waits for it
//	b := db.NewBatch()
//	s.Append(b, payload)          // with the caller's other writes
//	b.Commit(pebble.Sync)
//	s.Wake()                      // after the commit
//
// Entries are keyed prefix | seq (8 bytes, big endian): Put takes the caller's
// increasing sequence number (subscriptions use the log sequence number),
// Append numbers them itself. Stats reports the stream's state for metrics;
// DeadLetters and Replay are what an operator command lists and replays
// (POST /v1/deadletters).
//
// A new kind of stream declares its kind in kv (next to kv.OutboxTrailNotify)
// and names each stream after its destination. To alert through the
// destinations operators configure (SNS HTTP, Slack, email, Lambda), resolve
// an SNS topic once with dest.Config.ResolveTopic and, in Deliver, publish a
// dest.Message built from the payload; set Permanent to
// errors.Is(err, dest.ErrRejected). internal/delivery/notify.go does exactly
// this for trail file notifications.
package outbox

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/kv"
)

// Entry is one queued payload.
type Entry struct {
	Seq   uint64
	Value []byte
}

// Partial is what Deliver returns when it delivered the first N entries of
// its batch one by one and entry N failed with Err; the entries after it were
// not tried. The first N are removed as delivered, and entry N alone is
// retried or dead-lettered as a failed batch is. A destination that takes
// one entry per request (a finding per webhook call) can so be handed many
// entries at a time without ever repeating one it accepted.
type Partial struct {
	N   int
	Err error
}

func (p *Partial) Error() string { return p.Err.Error() }
func (p *Partial) Unwrap() error { return p.Err }

// Options configure a Stream. Pending, Dead and Deliver are required.
type Options struct {
	// Name identifies the stream in logs; it must not hold a secret.
	Name string
	// Pending and Dead are the key prefixes of queued payloads and dead letters.
	Pending, Dead []byte
	// Deliver sends one batch; nil means the destination accepted all of it.
	Deliver func(ctx context.Context, batch []Entry) error
	// Permanent reports an error that retrying cannot fix: the batch becomes a
	// dead letter at once. Nil: every error is retried up to MaxAttempts.
	Permanent func(error) bool
	// Valid, if set, reports whether a payload can be delivered at all; others
	// are skipped (and logged), never handed to Deliver.
	Valid func(value []byte) bool
	// SameBatch, if set, reports whether e may join a batch that starts with first.
	SameBatch func(first, e Entry) bool
	// MaxEntries and MaxBytes bound one batch; defaults 500 and 512 KiB.
	MaxEntries, MaxBytes int
	// MaxAttempts is how often a batch is tried before it is dead-lettered; default 10.
	MaxAttempts int
	// Backoff is the first retry delay, doubled per failure up to MaxBackoff; defaults 200 ms and 1 min.
	Backoff, MaxBackoff time.Duration
	// Timeout bounds one Deliver call; default 30 s.
	Timeout time.Duration
	// Idle is how long Run waits for a Wake before it looks again; default 1 s.
	Idle time.Duration
	Now  func() time.Time
	Log  *slog.Logger
}

// Stream is one ordered, durable queue of payloads to one destination.
type Stream struct {
	db *pebble.DB
	o  Options

	pending   atomic.Int64 // payloads queued (approximate after a restart until Run counts them)
	delivered atomic.Int64
	failures  atomic.Int64
	deadCount atomic.Int64
	oldest    atomic.Int64  // when Run first saw the batch it is trying (ms), 0 = none
	from      atomic.Uint64 // every entry below this seq is delivered or dead-lettered
	readFrom  uint64        // from, as Run last read it (Run only)
	wake      chan struct{}

	mu        sync.Mutex
	next      uint64 // Append's next seq; 0 = not read from disk yet
	lastErr   string
	lastErrAt time.Time
	lastOKAt  time.Time
}

// New returns a stream over db; it reads nothing until used.
func New(db *pebble.DB, o Options) *Stream {
	if o.MaxEntries <= 0 {
		o.MaxEntries = 500
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 512 << 10
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	if o.Backoff <= 0 {
		o.Backoff = 200 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Idle <= 0 {
		o.Idle = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Stream{db: db, o: o, wake: make(chan struct{}, 1)}
}

// Name is Options.Name.
func (s *Stream) Name() string { return s.o.Name }

// Prefixes are the stream's key prefixes (pending, dead), for deleting it.
func (s *Stream) Prefixes() [][]byte { return [][]byte{s.o.Pending, s.o.Dead} }

// Put queues value under the caller's sequence number seq in b. Sequence
// numbers must increase in commit order. Call Wake once b is committed.
func (s *Stream) Put(b *pebble.Batch, seq uint64, value []byte) error {
	if err := b.Set(kv.OutboxKey(s.o.Pending, seq), value, nil); err != nil {
		return err
	}
	s.pending.Add(1)
	return nil
}

// Append queues value in b under the stream's next sequence number and returns it.
func (s *Stream) Append(b *pebble.Batch, value []byte) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next == 0 {
		last, err := s.lastSeq()
		if err != nil {
			return 0, fmt.Errorf("outbox %s: %w", s.o.Name, err)
		}
		s.next = last + 1
	}
	seq := s.next
	if err := s.Put(b, seq, value); err != nil {
		return 0, err
	}
	s.next++
	return seq, nil
}

// lastSeq is the highest sequence number queued or dead-lettered, 0 if none.
func (s *Stream) lastSeq() (uint64, error) {
	var last uint64
	for _, p := range s.Prefixes() {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: kv.PrefixUpper(p)})
		if err != nil {
			return 0, err
		}
		if it.Last() && len(it.Key()) == len(p)+8 {
			last = max(last, binary.BigEndian.Uint64(it.Key()[len(p):]))
		}
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return 0, err
		}
	}
	return last, nil
}

// Wake tells Run that new payloads are committed.
func (s *Stream) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Adopt takes over prev's pending count: s replaces prev over the same prefixes.
func (s *Stream) Adopt(prev *Stream) { s.pending.Store(prev.pending.Load()) }

// Run delivers the stream's payloads in order until ctx ends.
func (s *Stream) Run(ctx context.Context) {
	s.countPending()
	attempts := 0
	backoff := s.o.Backoff
	for ctx.Err() == nil {
		batch, err := s.read()
		if err != nil {
			s.o.Log.Error("read outbox", "stream", s.o.Name, "err", err)
			sleep(ctx, time.Second)
			continue
		}
		if len(batch) == 0 {
			s.oldest.Store(0)
			select {
			case <-s.wake:
			case <-ctx.Done():
			case <-time.After(s.o.Idle):
			}
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
		err = s.o.Deliver(dctx, batch)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			attempts, backoff = 0, s.o.Backoff
			s.done(batch)
			continue
		}
		if part, ok := err.(*Partial); ok && part.N >= 0 && part.N < len(batch) {
			if part.N > 0 {
				attempts, backoff = 0, s.o.Backoff
				s.done(batch[:part.N])
			}
			batch, err = batch[part.N:part.N+1], part.Err
		}
		s.failures.Add(1)
		s.mu.Lock()
		s.lastErr, s.lastErrAt = err.Error(), s.o.Now()
		s.mu.Unlock()
		attempts++
		s.o.Log.Warn("delivery failed", "stream", s.o.Name, "attempt", attempts, "err", err)
		if attempts >= s.o.MaxAttempts || (s.o.Permanent != nil && s.o.Permanent(err)) {
			if err := s.drop(batch, true); err != nil {
				s.o.Log.Error("dead-letter a batch", "stream", s.o.Name, "err", err)
			} else {
				s.deadCount.Add(int64(len(batch)))
				s.pending.Add(-int64(len(batch)))
			}
			attempts, backoff = 0, s.o.Backoff
			continue
		}
		sleep(ctx, backoff)
		backoff = min(2*backoff, s.o.MaxBackoff)
	}
}

// done removes a delivered batch and counts it.
func (s *Stream) done(batch []Entry) {
	if err := s.drop(batch, false); err != nil {
		s.o.Log.Error("remove delivered entries from the outbox", "stream", s.o.Name, "err", err)
	}
	s.delivered.Add(int64(len(batch)))
	s.pending.Add(-int64(len(batch)))
	s.mu.Lock()
	s.lastOKAt = s.o.Now()
	s.mu.Unlock()
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// countPending sets the counts from the database after a (re)start.
func (s *Stream) countPending() {
	if n, err := countPrefix(s.db, s.o.Pending); err == nil {
		s.pending.Store(n)
	}
	if d, err := countPrefix(s.db, s.o.Dead); err == nil {
		s.deadCount.Store(d)
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

// read returns the next batch.
func (s *Stream) read() ([]Entry, error) {
	// Reading from the first undelivered seq skips the tombstones of what was delivered.
	s.readFrom = s.from.Load()
	p := s.o.Pending
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: kv.OutboxKey(p, s.readFrom), UpperBound: kv.PrefixUpper(p)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []Entry
	size := 0
	for ok := it.First(); ok && len(out) < s.o.MaxEntries && size < s.o.MaxBytes; ok = it.Next() {
		k := it.Key()
		if len(k) != len(p)+8 {
			continue
		}
		e := Entry{Seq: binary.BigEndian.Uint64(k[len(p):]), Value: it.Value()}
		if s.o.Valid != nil && !s.o.Valid(e.Value) {
			s.o.Log.Error("skip undecodable outbox entry", "stream", s.o.Name, "seq", e.Seq)
			continue
		}
		if len(out) > 0 && s.o.SameBatch != nil && !s.o.SameBatch(out[0], e) {
			break
		}
		e.Value = bytes.Clone(e.Value)
		out = append(out, e)
		size += len(e.Value)
	}
	if len(out) > 0 && s.oldest.Load() == 0 {
		s.oldest.Store(s.o.Now().UnixMilli())
	}
	return out, it.Error()
}

// drop removes a batch from the queue, into the dead letters when dead is set.
// No sync: if the removal is lost in a crash, the batch is delivered again (at-least-once).
func (s *Stream) drop(batch []Entry, dead bool) error {
	b := s.db.NewBatch()
	defer b.Close()
	if dead {
		for _, e := range batch {
			if err := b.Set(kv.OutboxKey(s.o.Dead, e.Seq), e.Value, nil); err != nil {
				return err
			}
		}
	}
	// One range tombstone: the batch is every entry from its first seq to its last.
	last := batch[len(batch)-1].Seq
	if err := b.DeleteRange(kv.OutboxKey(s.o.Pending, batch[0].Seq), kv.OutboxKey(s.o.Pending, last+1), nil); err != nil {
		return err
	}
	s.oldest.Store(0)
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	// Unless a replay moved the start back meanwhile, the next read begins after this batch.
	if s.from.CompareAndSwap(s.readFrom, last+1) {
		s.readFrom = last + 1 // a batch partly delivered drops its failed entry next
	}
	return nil
}

// DeadLetters returns up to limit dead letters (limit <= 0: all), oldest first.
func (s *Stream) DeadLetters(limit int) ([]Entry, error) {
	p := s.o.Dead
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: kv.PrefixUpper(p)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	out := []Entry{}
	for ok := it.First(); ok && (limit <= 0 || len(out) < limit); ok = it.Next() {
		k := it.Key()
		if len(k) != len(p)+8 {
			continue
		}
		out = append(out, Entry{Seq: binary.BigEndian.Uint64(k[len(p):]), Value: bytes.Clone(it.Value())})
	}
	return out, it.Error()
}

// Replay moves the dead letters keep selects (nil: all) back into the queue,
// where they take their original place in order, and returns how many moved.
// It commits through kv.Commit, synced: inside an API call's transaction
// (ctx) the move is durable together with the call's audit record, and the
// counters and Run learn of it only once it is.
func (s *Stream) Replay(ctx context.Context, keep func(Entry) bool) (int, error) {
	p := s.o.Dead
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: kv.PrefixUpper(p)})
	if err != nil {
		return 0, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != len(p)+8 {
			continue
		}
		e := Entry{Seq: binary.BigEndian.Uint64(k[len(p):]), Value: it.Value()}
		if keep != nil && !keep(e) {
			continue
		}
		if err := b.Set(kv.OutboxKey(s.o.Pending, e.Seq), e.Value, nil); err != nil {
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
	if n == 0 {
		return 0, nil
	}
	if err := kv.Commit(ctx, b, true); err != nil {
		return 0, fmt.Errorf("outbox %s: replay dead letters: %w", s.o.Name, err)
	}
	kv.AfterCommit(ctx, func() {
		s.deadCount.Add(-int64(n))
		s.pending.Add(int64(n))
		s.from.Store(0) // the replayed entries are older than what Run has delivered
		s.Wake()
	})
	return n, nil
}

// Stats is a stream's delivery state.
type Stats struct {
	Pending, Delivered, Failures, DeadLetters int64
	OldestPendingAge                          time.Duration // how long the batch being tried has waited; 0 = none
	LastError                                 string        // of the last failed attempt; "" = none yet
	LastErrorTime, LastSuccessTime            time.Time
}

// Stats reports the stream's state. Delivered and Failures count since New.
func (s *Stream) Stats() Stats {
	st := Stats{Pending: max(s.pending.Load(), 0), Delivered: s.delivered.Load(),
		Failures: s.failures.Load(), DeadLetters: s.deadCount.Load()}
	if o := s.oldest.Load(); o > 0 {
		st.OldestPendingAge = time.Duration(s.o.Now().UnixMilli()-o) * time.Millisecond
	}
	s.mu.Lock()
	st.LastError, st.LastErrorTime, st.LastSuccessTime = s.lastErr, s.lastErrAt, s.lastOKAt
	s.mu.Unlock()
	return st
}
