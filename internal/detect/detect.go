// Package detect is the detections projection: it follows the journal,
// evaluates the loaded Sigma rules on every record as it is acknowledged, and
// stores each match as a finding, in the same Pebble batch as its cursor, the
// accounts' correlation state and the alerts it queues for the findings
// destinations. A crash therefore never loses or repeats a finding: after a
// restart the projection resumes from the last committed batch with the state
// that batch saw, and findings and alerts have deterministic keys.
//
// Correlations are kept per account, so that events of one account never
// complete a correlation of another. Their windows advance and expire by event
// time.
package detect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/history"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/logs/dest"
	"github.com/opentrail/opentrail/internal/sigma"
)

// Names in keys, declared in kv's format block.
const (
	cursorName = kv.CursorDetect      // the projection's journal cursor
	stateKind  = kv.StateCorrelations // per account (name ""): sigma.State.MarshalBinary
)

// Options configure a Service.
type Options struct {
	// Paths are rule files and folders (read recursively for *.yml and *.yaml).
	Paths []string
	// Routes are where findings are sent; Resolve maps their destinations.
	Routes  []dest.FindingRoute
	Resolve func(destination string) (dest.Destination, error)
	// Poll is how often rule files are checked for changes; default 2 s.
	Poll time.Duration
	// MaxAttempts before an alert is dead-lettered (default 10); Backoff
	// between attempts, doubling up to MaxBackoff (defaults 500 ms and 30 s).
	MaxAttempts         int
	Backoff, MaxBackoff time.Duration
	// Tokens seal the NextTokens of Findings (use a key of their own).
	Tokens *history.Tokens
}

// Service is the detections projection, its rules and its alert senders.
type Service struct {
	db  *pebble.DB
	j   *journal.Journal
	log *slog.Logger
	o   Options

	rules atomic.Pointer[RuleSet]
	// reloadMu serialises reloads (SIGHUP, file changes).
	reloadMu sync.Mutex
	filesSig string // fingerprint of the rule files last loaded

	// Owned by the follower goroutine: correlation state per account as
	// committed with the cursor, plus what the running batch has changed.
	states map[string]*sigma.State
	dirty  map[string]bool

	progress journal.Progress
	stats    stats
	senders  []*sender

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Service over db and j; Start loads the rules and runs it.
func New(db *pebble.DB, j *journal.Journal, log *slog.Logger, o Options) (*Service, error) {
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	if o.Backoff <= 0 {
		o.Backoff = 500 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.Tokens == nil {
		return nil, errors.New("detect: no token key")
	}
	s := &Service{db: db, j: j, log: log.With("component", "detect"), o: o,
		states: map[string]*sigma.State{}, dirty: map[string]bool{}}
	s.stats.init()
	seen := map[string]bool{}
	for i, r := range o.Routes {
		if seen[r.Destination] {
			return nil, fmt.Errorf("detect: findings destination %d is listed twice", i)
		}
		seen[r.Destination] = true
		if dest.LevelRank(r.MinLevel) < 0 && r.MinLevel != "" {
			return nil, fmt.Errorf("detect: findings destination %d: minLevel %q is not one of %v", i, r.MinLevel, dest.Levels)
		}
		if o.Resolve == nil {
			return nil, errors.New("detect: findings destinations need a resolver")
		}
		d, err := o.Resolve(r.Destination)
		if err != nil {
			return nil, fmt.Errorf("detect: findings destination %d: %w", i, err)
		}
		s.senders = append(s.senders, newSender(s, r, d))
	}
	return s, nil
}

// Start loads the rules, then follows the journal, watches the rule files and
// runs the alert senders until Close. Rules that do not load are reported
// (Rules, the log, metrics) and do not stop the others.
func (s *Service) Start(ctx context.Context) error {
	s.Reload()
	cur, err := s.startCursor()
	if err != nil {
		return err
	}
	s.progress.Set(cur - 1)
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(2)
	go s.follow(ctx, cur)
	go s.watch(ctx)
	for _, sd := range s.senders {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			sd.stream.Run(ctx)
		}()
	}
	return nil
}

// Close stops the projection, the watcher and the senders and waits for them.
func (s *Service) Close() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

// Applied is the last journal seq the findings reflect.
func (s *Service) Applied() uint64 { return s.progress.Applied() }

// WaitApplied blocks until the findings reflect seq or ctx ends.
func (s *Service) WaitApplied(ctx context.Context, seq uint64) error {
	return s.progress.Wait(ctx, seq)
}

// Lag is how many journal entries the projection has yet to read.
func (s *Service) Lag() uint64 {
	last, applied := s.j.Last(), s.progress.Applied()
	return last - min(last, applied)
}

// A batch evaluates up to batchEntries journal entries, and ends early once
// it holds a finding and has evaluated afterFinding more: a batch commits
// before its findings are sent, so a finding does not wait for the rest of a
// long catch-up batch, while a rule that matches everything still commits in
// batches, not entry by entry.
const (
	batchEntries = 4096
	afterFinding = 64
)

// errCut ends a batch early (see afterFinding); the entry it was returned for is not evaluated.
var errCut = errors.New("detect: batch cut after a finding")

// startCursor is where the projection resumes. The first time detections run
// on a node they start after the journal's last entry: enabling rules does not
// raise alerts for old events (opentrail rules test --eds backtests those).
// That start is saved at once, so events acknowledged before the first batch
// are not skipped after a restart.
func (s *Service) startCursor() (uint64, error) {
	_, closer, err := s.db.Get(kv.CursorKey(cursorName))
	if err == nil {
		closer.Close()
		return s.j.Cursor(cursorName)
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		return 0, fmt.Errorf("detect: read cursor: %w", err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	next := s.j.Last() + 1
	if err := journal.SetCursor(b, cursorName, next); err != nil {
		return 0, err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, fmt.Errorf("detect: save cursor: %w", err)
	}
	return next, nil
}

func (s *Service) follow(ctx context.Context, next uint64) {
	defer s.wg.Done()
	s.j.Follow(ctx, next, "evaluate detection rules", func(_ context.Context, from uint64) (uint64, error) {
		n, err := s.applyFrom(from)
		if err != nil {
			// The batch was not committed: forget what it did to the correlations.
			clear(s.states)
			clear(s.dirty)
		}
		return n, err
	})
}

// state returns account's correlation state, read from the database the first time.
func (s *Service) state(account string) (*sigma.State, error) {
	if st, ok := s.states[account]; ok {
		return st, nil
	}
	st := sigma.NewState()
	v, closer, err := s.db.Get(kv.StateKey(stateKind, account, ""))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("detect: read correlation state of %s: %w", account, err)
	default:
		err := st.UnmarshalBinary(v)
		closer.Close()
		if err != nil {
			// Losing open windows is better than stopping detections for good.
			s.log.Error("discard unreadable correlation state", "account", account, "err", err)
			st = sigma.NewState()
		}
	}
	s.states[account] = st
	return st, nil
}

// applyFrom evaluates one batch of journal entries from seq from and commits
// its findings, alerts, correlation state and cursor in one batch.
func (s *Service) applyFrom(from uint64) (uint64, error) {
	rs := s.rules.Load()
	b := s.db.NewBatch()
	defer b.Close()
	var found []*Finding
	queued := make([]bool, len(s.senders))
	latest := map[string]time.Time{} // per account: the newest event time of the batch
	evaluated := 0                   // entries since the batch's first finding
	next, err := s.j.Scan(from, batchEntries, func(seq uint64, v []byte) error {
		if rs == nil || rs.set == nil {
			return nil
		}
		if len(found) > 0 {
			if evaluated >= afterFinding {
				return errCut
			}
			evaluated++
		}
		r, err := event.Decode(v)
		if err != nil {
			s.log.Error("skip undecodable journal entry", "seq", seq, "err", err)
			return nil
		}
		m := &r.Meta
		if m.Category == event.CategoryInsight {
			return nil // Insights events are OpenTrail's own findings, not CloudTrail calls
		}
		ev, err := sigma.NewEvent(r.Raw)
		if err != nil {
			s.log.Error("skip a record detections cannot read", "seq", seq, "err", err)
			return nil
		}
		st, err := s.state(m.Account)
		if err != nil {
			return err
		}
		matches := rs.set.Eval(ev, st)
		if rs.correlations {
			s.dirty[m.Account] = true
			if t := time.Unix(0, m.EventTime); t.After(latest[m.Account]) {
				latest[m.Account] = t
			}
		}
		for n, mt := range matches {
			f := newFinding(&mt, m)
			if err := s.write(b, f, seq, uint32(n), queued); err != nil {
				return err
			}
			found = append(found, f)
		}
		return nil
	})
	if errors.Is(err, errCut) {
		err = nil
	}
	if err != nil {
		return from, err
	}
	if next == from {
		return from, nil
	}
	for account := range s.dirty {
		st := s.states[account]
		if t, ok := latest[account]; ok {
			st.Expire(t) // drops what fell out of every window by this batch's newest event time
		}
		data, err := st.MarshalBinary()
		if err != nil {
			return from, fmt.Errorf("detect: save correlation state of %s: %w", account, err)
		}
		if err := b.Set(kv.StateKey(stateKind, account, ""), data, nil); err != nil {
			return from, err
		}
	}
	if err := journal.SetCursor(b, cursorName, next); err != nil {
		return from, err
	}
	// No sync: a batch lost in a crash takes its cursor with it, and is
	// evaluated again from the journal with the state it started from.
	if err := b.Commit(pebble.NoSync); err != nil {
		return from, fmt.Errorf("detect: commit findings: %w", err)
	}
	clear(s.dirty)
	for _, f := range found {
		s.stats.matched(f.AccountID, f.RuleID)
	}
	for i, sd := range s.senders {
		if queued[i] {
			sd.stream.Wake()
		}
	}
	s.progress.Set(next - 1)
	return next, nil
}

// write adds finding f of journal entry seq (its n-th) and its alerts to b.
func (s *Service) write(b *pebble.Batch, f *Finding, seq uint64, n uint32, queued []bool) error {
	data, err := f.marshal()
	if err != nil {
		return err
	}
	if err := b.Set(f.key(), data, nil); err != nil {
		return err
	}
	rank := max(dest.LevelRank(f.Level), 0) // a rule without a known level is informational
	for i, sd := range s.senders {
		if rank < sd.minRank {
			continue
		}
		if err := sd.stream.Put(b, alertSeq(seq, n), data); err != nil {
			return err
		}
		queued[i] = true
	}
	return nil
}
