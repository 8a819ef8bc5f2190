// Package journal is OpenTrail's durable, ordered log of records: the single
// source of truth that every projection (the event-history index, the Lake,
// trail delivery, CloudWatch Logs) consumes through a persisted cursor, and
// that live tail reads directly.
//
// Append is acknowledged only after the records are synced to disk. Appends
// from concurrent producers are grouped into one Pebble batch and one fsync
// (group commit) by a single writer goroutine, which also assigns sequence
// numbers in order and makes appends idempotent by a per-entry key. Follow runs
// a projection's apply loop with backoff; Progress lets a caller wait until a
// projection has applied its own writes.
package journal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/kv"
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("journal: closed")

// Entry is one record to append.
type Entry struct {
	// ID makes the append idempotent: an entry whose ID is already in the journal
	// (or earlier in the same group) is not stored again. Nil means always append.
	ID    []byte
	Value []byte
}

// Result tells where an entry landed.
type Result struct {
	Seq       uint64
	Duplicate bool // the ID was already present; Seq is the existing entry's
}

// Journal is the durable log. Its zero value is not usable; use Open.
type Journal struct {
	db   *pebble.DB
	log  *slog.Logger
	reqs chan *request

	last    atomic.Uint64 // highest durable seq
	mu      sync.Mutex
	waiters chan struct{} // closed and replaced on every commit

	observe atomic.Pointer[func(CommitStats)] // SetObserver

	closeMu sync.RWMutex // held for reading while queueing, for writing while closing
	closed  bool
	done    chan struct{}
	wg      sync.WaitGroup
}

type request struct {
	entries []Entry
	with    *pebble.Batch // other writes that commit with the entries (AppendWith)
	results []Result
	err     error
	done    chan struct{}
}

// maxGroupBytes bounds one group commit.
const maxGroupBytes = 16 << 20

// Open starts a journal on db, resuming after its last entry.
func Open(db *pebble.DB, log *slog.Logger) (*Journal, error) {
	j := &Journal{
		db:      db,
		log:     log.With("component", "journal"),
		reqs:    make(chan *request, 1024),
		waiters: make(chan struct{}),
		done:    make(chan struct{}),
	}
	lo, hi := kv.JournalBounds()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, fmt.Errorf("journal: open: %w", err)
	}
	if it.Last() {
		seq, ok := kv.JournalSeq(it.Key())
		if !ok {
			it.Close()
			return nil, fmt.Errorf("journal: open: bad key %x", it.Key())
		}
		j.last.Store(seq)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("journal: open: %w", err)
	}
	j.wg.Add(1)
	go j.writer()
	return j, nil
}

// Append durably appends entries, in order, and returns where each landed.
// It returns only after the entries are synced to disk.
func (j *Journal) Append(ctx context.Context, entries []Entry) ([]Result, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	return j.AppendWith(ctx, entries, nil)
}

// AppendWith appends entries as Append does, and commits the writes of with
// (a batch the caller filled, e.g. an API call's control-plane changes) in the
// same atomic, synced batch: both are durable, or neither is. with is only
// read; it stays the caller's to close.
func (j *Journal) AppendWith(ctx context.Context, entries []Entry, with *pebble.Batch) ([]Result, error) {
	r := &request{entries: entries, with: with, done: make(chan struct{})}
	j.closeMu.RLock()
	if j.closed {
		j.closeMu.RUnlock()
		return nil, ErrClosed
	}
	select {
	case j.reqs <- r:
	case <-ctx.Done():
		j.closeMu.RUnlock()
		return nil, ctx.Err()
	}
	j.closeMu.RUnlock()
	// Once queued, the request is committed or failed by the writer; waiting
	// for it even if ctx ends keeps "answered" equal to "known outcome".
	<-r.done
	return r.results, r.err
}

// writer is the single goroutine that assigns sequence numbers and commits.
func (j *Journal) writer() {
	defer j.wg.Done()
	for {
		var group []*request
		select {
		case r := <-j.reqs:
			group = append(group, r)
		case <-j.done:
			j.drain()
			return
		}
		size := groupSize(group[0])
	fill:
		for size < maxGroupBytes {
			select {
			case r := <-j.reqs:
				group = append(group, r)
				size += groupSize(r)
			default:
				break fill
			}
		}
		j.commit(group)
	}
}

// drain fails requests still queued at Close.
func (j *Journal) drain() {
	for {
		select {
		case r := <-j.reqs:
			r.err = ErrClosed
			close(r.done)
		default:
			return
		}
	}
}

func groupSize(r *request) int {
	n := 0
	for _, e := range r.entries {
		n += len(e.Value) + len(e.ID)
	}
	if r.with != nil {
		n += len(r.with.Repr())
	}
	return n
}

func (j *Journal) commit(group []*request) {
	start := time.Now()
	var synced time.Duration
	b := j.db.NewBatch()
	defer b.Close()
	next := j.last.Load()
	seen := make(map[string]uint64)
	var err error
	// An error anywhere fails the whole group: break out of both loops.
group:
	for _, r := range group {
		if r.with != nil && !r.with.Empty() {
			if err = b.Apply(r.with, nil); err != nil {
				break group
			}
		}
		r.results = make([]Result, len(r.entries))
		for i, e := range r.entries {
			if e.ID != nil {
				if seq, ok := seen[string(e.ID)]; ok {
					r.results[i] = Result{Seq: seq, Duplicate: true}
					continue
				}
				seq, found, gerr := j.Lookup(e.ID)
				if gerr != nil {
					err = gerr
					break group
				}
				if found {
					r.results[i] = Result{Seq: seq, Duplicate: true}
					continue
				}
			}
			next++
			if err = b.Set(kv.JournalKey(next), e.Value, nil); err != nil {
				break group
			}
			if e.ID != nil {
				seen[string(e.ID)] = next
				if err = b.Set(e.ID, kv.EncodeSeq(next), nil); err != nil {
					break group
				}
			}
			r.results[i] = Result{Seq: next}
		}
	}
	if err == nil && !b.Empty() {
		t := time.Now()
		err = b.Commit(pebble.Sync)
		synced = time.Since(t)
	}
	j.observeCommit(start, synced, next-j.last.Load(), b.Len(), err)
	if err != nil {
		err = fmt.Errorf("journal: append: %w", err)
		j.log.Error("append failed", "err", err)
	} else {
		j.last.Store(next)
		j.mu.Lock()
		close(j.waiters)
		j.waiters = make(chan struct{})
		j.mu.Unlock()
	}
	for _, r := range group {
		if err != nil {
			r.results, r.err = nil, err
		}
		close(r.done)
	}
}

// Lookup returns the seq of the entry appended with id.
func (j *Journal) Lookup(id []byte) (uint64, bool, error) {
	v, closer, err := j.db.Get(id)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer closer.Close()
	seq, err := kv.DecodeSeq(v)
	return seq, err == nil, err
}

// DB is the database the journal lives in, which the control plane and the
// projections share, so that their writes can commit with journal entries.
func (j *Journal) DB() *pebble.DB { return j.db }

// Last is the highest durable sequence number (0 when empty).
func (j *Journal) Last() uint64 { return j.last.Load() }

// Wait blocks until the journal holds an entry after seq, or ctx ends.
func (j *Journal) Wait(ctx context.Context, seq uint64) error {
	for {
		j.mu.Lock()
		ch := j.waiters
		j.mu.Unlock()
		if j.last.Load() > seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-j.done:
			return ErrClosed
		}
	}
}

// Get returns a copy of entry seq's value; found is false when it was trimmed or never written.
func (j *Journal) Get(seq uint64) (value []byte, found bool, err error) {
	v, closer, err := j.db.Get(kv.JournalKey(seq))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("journal: get %d: %w", seq, err)
	}
	defer closer.Close()
	return append([]byte(nil), v...), true, nil
}

// Scan calls fn for entries with seq in [from, Last()], in order, at most max of them
// (max <= 0: no limit). value is only valid during the call. It returns the seq
// after the last entry visited.
func (j *Journal) Scan(from uint64, max int, fn func(seq uint64, value []byte) error) (uint64, error) {
	last := j.last.Load()
	if from > last {
		return from, nil
	}
	_, hi := kv.JournalBounds()
	it, err := j.db.NewIter(&pebble.IterOptions{LowerBound: kv.JournalKey(from), UpperBound: hi})
	if err != nil {
		return from, fmt.Errorf("journal: scan: %w", err)
	}
	defer it.Close()
	next, n := from, 0
	for ok := it.First(); ok; ok = it.Next() {
		seq, good := kv.JournalSeq(it.Key())
		if !good {
			return next, fmt.Errorf("journal: scan: bad key %x", it.Key())
		}
		if seq > last || (max > 0 && n >= max) {
			break
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return next, fmt.Errorf("journal: scan %d: %w", seq, err)
		}
		if err := fn(seq, v); err != nil {
			return next, err
		}
		next, n = seq+1, n+1
	}
	return next, it.Error()
}

// First is the lowest sequence number still in the journal (Last()+1 when empty).
func (j *Journal) First() (uint64, error) {
	lo, hi := kv.JournalBounds()
	it, err := j.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if it.First() {
		seq, _ := kv.JournalSeq(it.Key())
		return seq, nil
	}
	return j.last.Load() + 1, it.Error()
}

// Cursor returns a projection's persisted position: the next seq it has to read (1 when new).
func (j *Journal) Cursor(name string) (uint64, error) {
	v, closer, err := j.db.Get(kv.CursorKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("journal: cursor %s: %w", name, err)
	}
	defer closer.Close()
	return kv.DecodeSeq(v)
}

// SetCursor records, in b, that projection name will next read seq. Committing b
// together with the projection's output makes the pair atomic.
func SetCursor(b *pebble.Batch, name string, seq uint64) error {
	return b.Set(kv.CursorKey(name), kv.EncodeSeq(seq), nil)
}

// Close stops the writer; queued appends fail with ErrClosed, committed ones stay.
func (j *Journal) Close() error {
	j.closeMu.Lock()
	if !j.closed {
		j.closed = true
		close(j.done)
	}
	j.closeMu.Unlock()
	j.wg.Wait()
	return nil
}

// CommitStats describes one group commit, for metrics.
type CommitStats struct {
	Entries  uint64        // new entries made durable (duplicates not counted); 0 when Err is set
	Bytes    int           // size of the batch written (entries, event-ID keys, framing)
	Duration time.Duration // the whole group commit, ID lookups included
	Sync     time.Duration // writing and syncing the batch (Pebble's WAL write and fsync)
	Err      error
}

// SetObserver has fn called after every group commit, on the journal's writer
// goroutine: fn must be quick. Nil removes it.
func (j *Journal) SetObserver(fn func(CommitStats)) {
	if fn == nil {
		j.observe.Store(nil)
		return
	}
	j.observe.Store(&fn)
}

func (j *Journal) observeCommit(start time.Time, synced time.Duration, entries uint64, bytes int, err error) {
	fn := j.observe.Load()
	if fn == nil {
		return
	}
	st := CommitStats{Bytes: bytes, Duration: time.Since(start), Sync: synced, Err: err}
	if err == nil {
		st.Entries = entries
	}
	(*fn)(st)
}
