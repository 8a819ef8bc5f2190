// Package history is the event-history projection: it follows the journal and
// keeps, in Pebble, an index of management and insight events by account,
// region, lookup attribute and time, which LookupEvents reads newest first.
//
// Index entries hold no record: a lookup reads the record from the journal by
// sequence number, so the journal stays the only copy. The projection writes
// its cursor in the same batch as its index entries, so after a crash it resumes
// exactly where its last batch ended.
package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/kv"
)

// Store is the event-history projection.
type Store struct {
	db        *pebble.DB
	j         *journal.Journal
	log       *slog.Logger
	retention time.Duration
	now       func() time.Time

	progress journal.Progress // last seq indexed

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Options configure a Store.
type Options struct {
	Retention time.Duration // how long after ingest an event stays in history; default 90 days
	Now       func() time.Time
}

// New returns a store over db and j; Start runs it.
func New(db *pebble.DB, j *journal.Journal, log *slog.Logger, o Options) *Store {
	if o.Retention == 0 {
		o.Retention = 90 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Store{db: db, j: j, log: log.With("component", "store"), retention: o.Retention, now: o.Now}
	return s
}

// Start runs the projection and the retention janitor until Close.
func (s *Store) Start(ctx context.Context) error {
	cur, err := s.j.Cursor(kv.CursorHistory)
	if err != nil {
		return err
	}
	s.progress.Set(cur - 1)
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(2)
	go s.follow(ctx, cur)
	go s.janitor(ctx)
	return nil
}

// Close stops the projection and waits for it.
func (s *Store) Close() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

// Applied is the last journal seq the index reflects.
func (s *Store) Applied() uint64 { return s.progress.Applied() }

// WaitApplied blocks until the index reflects seq or ctx ends.
func (s *Store) WaitApplied(ctx context.Context, seq uint64) error { return s.progress.Wait(ctx, seq) }

const batchEntries = 4096

func (s *Store) follow(ctx context.Context, next uint64) {
	defer s.wg.Done()
	s.j.Follow(ctx, next, "index events", func(_ context.Context, from uint64) (uint64, error) { return s.applyFrom(from) })
}

// applyFrom indexes one batch of journal entries starting at from and returns the next seq.
func (s *Store) applyFrom(from uint64) (uint64, error) {
	b := s.db.NewBatch()
	defer b.Close()
	next, err := s.j.Scan(from, batchEntries, func(seq uint64, v []byte) error {
		r, err := event.Decode(v)
		if err != nil {
			// A corrupt entry cannot be indexed; skipping it keeps history for the rest.
			s.log.Error("skip undecodable journal entry", "seq", seq, "err", err)
			return nil
		}
		for _, k := range indexKeys(&r.Meta, seq) {
			if err := b.Set(k, nil, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return from, err
	}
	if next == from {
		return from, nil
	}
	if err := journal.SetCursor(b, kv.CursorHistory, next); err != nil {
		return from, err
	}
	// No sync: the index is rebuilt from the journal if the tail of it is lost,
	// because the cursor is lost with it.
	if err := b.Commit(pebble.NoSync); err != nil {
		return from, fmt.Errorf("store: commit index: %w", err)
	}
	s.progress.Set(next - 1)
	return next, nil
}

// indexKeys are the lookup index entries for one event; none for events
// event history does not show (data, network activity, channel events).
func indexKeys(m *event.Meta, seq uint64) [][]byte {
	var cat byte
	switch m.Category {
	case event.CategoryManagement:
		cat = kv.CatManagement
	case event.CategoryInsight:
		cat = kv.CatInsight
	default:
		return nil
	}
	var keys [][]byte
	add := func(attr byte, value string) {
		keys = append(keys, kv.LookupKey(kv.LookupPrefix(m.Account, m.Region, cat, attr, value), m.EventTime, seq))
	}
	add(kv.AttrAll, "")
	if m.Name != "" {
		add(kv.AttrEventName, m.Name)
	}
	if m.Source != "" {
		add(kv.AttrEventSource, m.Source)
	}
	if cat == kv.CatInsight {
		return keys
	}
	if m.ReadOnly >= 0 {
		add(kv.AttrReadOnly, readOnlyString(m.ReadOnly))
	}
	if m.Username != "" {
		add(kv.AttrUsername, m.Username)
	}
	if m.AccessKeyID != "" {
		add(kv.AttrAccessKeyID, m.AccessKeyID)
	}
	types := map[string]bool{}
	for _, r := range m.Resources {
		if r.Type != "" && !types[r.Type] {
			types[r.Type] = true
			add(kv.AttrResourceType, r.Type)
		}
		if r.ARN != "" {
			add(kv.AttrResourceName, r.ARN)
		}
	}
	return keys
}

func readOnlyString(v int8) string {
	if v > 0 {
		return "true"
	}
	return "false"
}

// janitor removes events older than the retention period (by ingest time) from
// the index and the journal, never past the slowest projection's cursor.
func (s *Store) janitor(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if err := s.Expire(); err != nil {
			s.log.Error("expire events", "err", err)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// Expire deletes what has outlived the retention period now.
func (s *Store) Expire() error {
	cutoff := s.now().Add(-s.retention).UnixNano()
	limit, err := s.minCursor()
	if err != nil {
		return err
	}
	first, err := s.j.First()
	if err != nil {
		return err
	}
	for {
		b := s.db.NewBatch()
		var done bool
		next, err := s.j.Scan(first, batchEntries, func(seq uint64, v []byte) error {
			if seq >= limit {
				done = true
				return errStop
			}
			r, err := event.Decode(v)
			if err == nil && r.Meta.IngestTime >= cutoff {
				done = true
				return errStop
			}
			if err == nil {
				for _, k := range indexKeys(&r.Meta, seq) {
					if err := b.Delete(k, nil); err != nil {
						return err
					}
				}
				if err := b.Delete(kv.EventIDKey(r.Meta.Account, r.Meta.EventID), nil); err != nil {
					return err
				}
			}
			return b.Delete(kv.JournalKey(seq), nil)
		})
		if err != nil && !errors.Is(err, errStop) {
			b.Close()
			return err
		}
		if !b.Empty() {
			if err := b.Commit(pebble.Sync); err != nil {
				b.Close()
				return fmt.Errorf("store: expire: %w", err)
			}
		}
		b.Close()
		if done || next == first {
			return nil
		}
		first = next
	}
}

var errStop = errors.New("stop")

// minCursor is the lowest cursor of all projections: nothing at or after it may be trimmed.
func (s *Store) minCursor() (uint64, error) {
	lo := kv.CursorKey("")
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: kv.PrefixUpper(lo)})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	m := s.j.Last() + 1
	for ok := it.First(); ok; ok = it.Next() {
		if c, err := kv.DecodeSeq(it.Value()); err == nil && c < m {
			m = c
		}
	}
	return m, it.Error()
}
