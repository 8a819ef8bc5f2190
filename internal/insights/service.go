package insights

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/ingest"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/kv"
)

const (
	cursorName   = "insights"
	batchEntries = 4096
)

// Options configure the projection.
type Options struct {
	Rule Rule
	Now  func() time.Time
	// Enabled says whether an account has Insights of a type on management
	// (data false) or data events in a Region; nil means always. Detection
	// runs either way, so that baselines exist the moment Insights is enabled.
	Enabled func(account, region, insightType string, data bool) bool
	// Tick is how often minutes are closed by the wall clock when no event comes; default 1s.
	Tick time.Duration
}

// Service is the Insights projection.
type Service struct {
	db  *pebble.DB
	j   *journal.Journal
	w   *ingest.Writer
	log *slog.Logger
	o   Options

	mu  sync.Mutex // guards det
	det *Detector

	progress journal.Progress
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// New returns the projection over db and j; Start runs it.
func New(db *pebble.DB, j *journal.Journal, log *slog.Logger, o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	s := &Service{db: db, j: j, w: ingest.NewWriter(j, o.Now), log: log.With("component", "insights"), o: o}
	s.det = NewDetector(o.Rule, s.stored)
	s.det.HourAttrs = s.storedHour
	return s
}

// storedHour reads one stored baseline hour, for the attributions of an insight's baseline.
func (s *Service) storedHour(k SeriesKey, hour int64) (Counts, error) {
	v, closer, err := s.db.Get(kv.InsightHourKey(seriesBytes(k), hour))
	if errors.Is(err, pebble.ErrNotFound) {
		return Counts{}, nil
	}
	if err != nil {
		return Counts{}, err
	}
	defer closer.Close()
	var a hourAgg
	if err := json.Unmarshal(v, &a); err != nil {
		return Counts{}, fmt.Errorf("%w: hour: %v", ErrCorrupt, err)
	}
	return a.Counts, nil
}

// Rule is the rule in force, with its defaults.
func (s *Service) Rule() Rule { return s.det.Rule() }

// stored reads one stored minute, for events that arrive after it was evaluated.
func (s *Service) stored(k SeriesKey, minute int64) (Counts, error) {
	v, closer, err := s.db.Get(kv.InsightMinuteKey(kv.InsightMinutePrefix(seriesBytes(k)), minute))
	if errors.Is(err, pebble.ErrNotFound) {
		return Counts{}, nil
	}
	if err != nil {
		return Counts{}, err
	}
	defer closer.Close()
	return DecodeCounts(v, true)
}

// Start loads the detector's state and runs the projection until Close.
func (s *Service) Start(ctx context.Context) error {
	cur, err := s.j.Cursor(cursorName)
	if err != nil {
		return err
	}
	if err := s.load(); err != nil {
		return err
	}
	s.progress.Set(cur - 1)
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(1)
	go s.follow(ctx, cur)
	return nil
}

// Close stops the projection and waits for it.
func (s *Service) Close() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

// Applied is the last journal seq the detector has counted.
func (s *Service) Applied() uint64 { return s.progress.Applied() }

// WaitApplied blocks until the detector has counted seq or ctx ends.
func (s *Service) WaitApplied(ctx context.Context, seq uint64) error {
	return s.progress.Wait(ctx, seq)
}

// load rebuilds the detector from the database: every series, its minutes not
// yet evaluated, and every clock.
func (s *Service) load() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.det.Discard()
	scan := func(prefix []byte, fn func(k, v []byte) error) error {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: kv.PrefixUpper(prefix)})
		if err != nil {
			return err
		}
		defer it.Close()
		for ok := it.First(); ok; ok = it.Next() {
			if err := fn(it.Key(), it.Value()); err != nil {
				return err
			}
		}
		return it.Error()
	}
	if err := scan(kv.InsightScopes(), func(_, v []byte) error { return s.det.LoadScope(v) }); err != nil {
		return fmt.Errorf("insights: load: %w", err)
	}
	type open struct {
		key  SeriesKey
		next int64
	}
	var series []open
	err := scan(kv.InsightSeriesStates(), func(_, v []byte) error {
		k, next, err := s.det.LoadSeries(v)
		series = append(series, open{k, next})
		return err
	})
	if err != nil {
		return fmt.Errorf("insights: load: %w", err)
	}
	for _, o := range series {
		hp := kv.InsightHourPrefix(seriesBytes(o.key))
		err := scan(hp, func(k, v []byte) error { return s.det.LoadHour(o.key, kv.InsightMinute(k), v) })
		if err != nil {
			return fmt.Errorf("insights: load: %w", err)
		}
		s.det.LoadedSeries(o.key)
		p := kv.InsightMinutePrefix(seriesBytes(o.key))
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: kv.InsightMinuteKey(p, o.next), UpperBound: kv.PrefixUpper(p)})
		if err != nil {
			return err
		}
		for ok := it.First(); ok; ok = it.Next() {
			c, err := DecodeCounts(it.Value(), true)
			if err != nil {
				it.Close()
				return fmt.Errorf("insights: load minute: %w", err)
			}
			s.det.LoadPending(o.key, kv.InsightMinute(it.Key()), c)
		}
		if err := it.Close(); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) follow(ctx context.Context, next uint64) {
	defer s.wg.Done()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		n, err := s.step(ctx, next)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Error("detect insights", "from", next, "err", err)
			if lerr := s.load(); lerr != nil {
				s.log.Error("reload insights state", "err", lerr)
			}
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			backoff = min(2*backoff, 10*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if n == next {
			// Nothing new: wait for an entry, or for the clock to close a minute.
			wctx, cancel := context.WithTimeout(ctx, s.o.Tick)
			s.j.Wait(wctx, next-1)
			cancel()
		}
		next = n
	}
}

// step counts one batch of the journal from seq from, closes the minutes that
// are over, appends the Insights events they yield and commits the state with
// the cursor. It returns the next seq to read.
func (s *Service) step(ctx context.Context, from uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next, err := s.j.Scan(from, batchEntries, func(seq uint64, v []byte) error {
		r, err := event.Decode(v)
		if err != nil {
			s.log.Error("skip undecodable journal entry", "seq", seq, "err", err)
			return nil
		}
		if !Counted(&r.Meta) {
			return nil
		}
		return s.det.Observe(&r.Meta, UserAgent(r.Raw))
	})
	if err != nil {
		s.det.Discard()
		return from, err
	}
	found := s.det.Advance(s.o.Now())
	if err := s.det.Err(); err != nil {
		s.det.Discard()
		return from, fmt.Errorf("insights: read state: %w", err)
	}
	var recs []event.Record
	for i := range found {
		in := &found[i]
		if s.o.Enabled != nil && !s.o.Enabled(in.Series.Account, in.Series.Region, in.Series.InsightType(), in.Series.Data()) {
			continue
		}
		rec, err := event.Normalize(in.Record(), event.Defaults{Account: in.Series.Account, Region: in.Series.Region, Now: s.o.Now()})
		if err != nil {
			s.det.Discard()
			return from, fmt.Errorf("insights: normalize insight: %w", err)
		}
		recs = append(recs, rec)
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.det.Flush(b); err != nil {
		s.det.Discard()
		return from, err
	}
	if next != from {
		if err := journal.SetCursor(b, cursorName, next); err != nil {
			s.det.Discard()
			return from, err
		}
	}
	switch {
	case len(recs) > 0:
		// The Insights events and the state that found them commit together,
		// through the one write path. A replay finds the same insights under
		// the same IDs, which the journal stores once.
		if _, err := s.w.Append(ctx, recs, b); err != nil {
			s.det.Discard()
			return from, err
		}
		for i := range recs {
			s.log.Info("insight", "event", recs[i].Meta.EventID, "account", recs[i].Meta.Account, "region", recs[i].Meta.Region,
				"source", recs[i].Meta.Source, "name", recs[i].Meta.Name)
		}
	case !b.Empty():
		// No sync: a lost tail loses its cursor with it and is counted again.
		if err := b.Commit(pebble.NoSync); err != nil {
			s.det.Discard()
			return from, fmt.Errorf("insights: commit: %w", err)
		}
	}
	if next != from {
		s.progress.Set(next - 1)
	}
	return next, nil
}

// Counted says whether an event counts in any series (cheaper than Keys).
func Counted(m *event.Meta) bool {
	switch m.Category {
	case event.CategoryManagement:
		return m.ReadOnly != 1 || m.ErrorCode != ""
	case event.CategoryData:
		return true
	}
	return false
}

var userAgentKey = []byte(`"userAgent":"`)

// UserAgent returns a record's userAgent without parsing the record.
func UserAgent(raw []byte) string {
	i := bytes.Index(raw, userAgentKey)
	if i < 0 {
		return ""
	}
	rest := raw[i+len(userAgentKey):]
	escaped := false
	for j := 0; j < len(rest); j++ {
		switch rest[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			if !escaped {
				return string(rest[:j])
			}
			if u, err := strconv.Unquote(`"` + string(rest[:j]) + `"`); err == nil {
				return u
			}
			return string(rest[:j])
		}
	}
	return ""
}

// Point is one minute of a series.
type Point struct {
	Minute int64 // unix minutes
	N      int64
}

// Minutes calls fn for every minute of series k in [from, to) (unix minutes)
// that has calls, live and backfilled ones added up, in order, until fn
// returns false.
func Minutes(db *pebble.DB, k SeriesKey, from, to int64, fn func(Point) bool) error {
	var its [2]*pebble.Iterator
	for i, backfill := range [2]bool{false, true} {
		k.Backfill = backfill
		p := kv.InsightMinutePrefix(seriesBytes(k))
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: kv.InsightMinuteKey(p, from), UpperBound: kv.InsightMinuteKey(p, to)})
		if err != nil {
			return err
		}
		defer it.Close()
		it.First()
		its[i] = it
	}
	read := func(it *pebble.Iterator) (Point, error) {
		c, err := DecodeCounts(it.Value(), false)
		if err != nil {
			return Point{}, fmt.Errorf("insights: minute: %w", err)
		}
		return Point{Minute: kv.InsightMinute(it.Key()), N: c.N}, nil
	}
	for its[0].Valid() || its[1].Valid() {
		var pt Point
		have := false
		for _, it := range its {
			if !it.Valid() {
				continue
			}
			p, err := read(it)
			if err != nil {
				return err
			}
			switch {
			case !have || p.Minute < pt.Minute:
				pt, have = p, true
			case p.Minute == pt.Minute:
				pt.N += p.N
			}
		}
		for _, it := range its {
			if it.Valid() && kv.InsightMinute(it.Key()) == pt.Minute {
				it.Next()
			}
		}
		if !fn(pt) {
			break
		}
	}
	return cmp.Or(its[0].Error(), its[1].Error())
}
