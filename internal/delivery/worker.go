// Package delivery turns the journal into CloudTrail log files in buckets: the
// trail projection. It reads the journal once for all trails, gives each event
// to every logging trail whose selectors take it, batches per trail and region,
// and writes gzip files named and shaped as CloudTrail writes them, followed by
// signed digest files when log file validation is on.
//
// Exactly once: each stream (trail, region) keeps a watermark, the last journal
// seq its delivered files cover, and writes an intent before it uploads a file.
// After a crash, an intent whose object is in the bucket is completed, any
// other is dropped and its events are read again from the journal, so every
// selected event lands in exactly one file. The journal cursor of delivery is
// the oldest event some stream still needs, so nothing it needs is trimmed.
package delivery

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/klauspost/compress/gzip"

	"github.com/opentrail/opentrail/internal/digest"
	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/objstore"
	"github.com/opentrail/opentrail/internal/selector"
	"github.com/opentrail/opentrail/internal/trail"
)

// Options tune a Worker.
type Options struct {
	Interval     time.Duration // how long a file collects events; default 5m, as AWS
	MaxFileBytes int           // a file is written sooner when it reaches this; default 32 MiB uncompressed
	Now          func() time.Time
	// Digests writes digest files; nil disables log file validation.
	Digests *Digester
	// Notify sends SNS notifications of delivered files; nil sends none.
	Notify *Notifier
}

// Worker is the delivery projection.
type Worker struct {
	db      *pebble.DB
	j       *journal.Journal
	trails  trail.Registry
	buckets objstore.Store
	log     *slog.Logger
	o       Options

	readPos  uint64 // next journal seq to read
	startPos uint64 // where this run started reading
	marks    []mark // recent (seq, ingest time) pairs
	streams  map[streamID]*stream
	configs  []trail.Config

	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}
	stats  stats // for TrailStats and Lag
}

type stream struct {
	id      streamID
	trail   trail.Config
	state   streamState
	buf     buffer
	failing string    // the last delivery error, "" when healthy
	retryAt time.Time // no upload before this (capped exponential backoff)
	backoff time.Duration
	seen    uint64 // highest seq buffered or delivered
	// stalledAt is set when the buffer is full while uploads fail: events from
	// this seq on are read again from the journal once the stream recovers.
	stalledAt uint64
}

// New returns a worker; Start runs it.
func New(db *pebble.DB, j *journal.Journal, trails trail.Registry, buckets objstore.Store, log *slog.Logger, o Options) *Worker {
	if o.Interval <= 0 {
		o.Interval = 5 * time.Minute
	}
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = 32 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Worker{db: db, j: j, trails: trails, buckets: buckets, log: log.With("component", "delivery"), o: o,
		streams: map[streamID]*stream{}, kick: make(chan struct{}, 1)}
}

// Kick asks the worker to re-read the trails now (after a trail changed).
func (w *Worker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Start resumes from the persisted cursor and runs until Close.
func (w *Worker) Start(ctx context.Context) error {
	cur, err := w.j.Cursor(kv.CursorDelivery)
	if err != nil {
		return err
	}
	w.readPos, w.startPos = cur, cur
	ctx, w.cancel = context.WithCancel(ctx)
	w.wg.Add(1)
	go w.run(ctx)
	return nil
}

// Close stops the worker and waits for it. Pending events stay in the journal
// and are delivered after the next start.
func (w *Worker) Close() {
	if w.cancel != nil {
		w.cancel()
	}
	w.wg.Wait()
}

const tick = 100 * time.Millisecond

func (w *Worker) run(ctx context.Context) {
	defer w.wg.Done()
	t := time.NewTicker(tick)
	defer t.Stop()
	var lastRefresh time.Time
	for {
		now := w.o.Now()
		if now.Sub(lastRefresh) >= time.Second {
			if err := w.refresh(ctx); err != nil && ctx.Err() == nil {
				w.log.Error("read trails", "err", err)
			}
			lastRefresh = now
		}
		if err := w.step(ctx); err != nil && ctx.Err() == nil {
			w.log.Error("delivery step", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.kick:
			lastRefresh = time.Time{}
		}
	}
}

// step reads what the journal has, then writes every file that is due.
func (w *Worker) step(ctx context.Context) error {
	for ctx.Err() == nil {
		n, err := w.read(w.readPos, w.j.Last(), 4096)
		if err != nil {
			return err
		}
		w.flushDue(ctx, false)
		if n == 0 {
			break
		}
	}
	w.flushDue(ctx, false)
	if w.o.Digests != nil {
		w.o.Digests.due(ctx, w)
	}
	w.publishStats()
	return w.saveCursor()
}

// read gives journal entries [from, to] (at most max) to the streams that take them.
func (w *Worker) read(from, to uint64, max int) (int, error) {
	if from > to {
		return 0, nil
	}
	n := 0
	next, err := w.j.Scan(from, max, func(seq uint64, v []byte) error {
		r, err := event.Decode(v)
		if err != nil {
			w.log.Error("skip undecodable journal entry", "seq", seq, "err", err)
			return nil
		}
		if n == 0 {
			w.checkpoint(seq, r.Meta.IngestTime)
		}
		n++
		w.route(seq, &r)
		return nil
	})
	w.readPos = next
	return n, err
}

// route offers one record to every trail.
func (w *Worker) route(seq uint64, r *event.Record) {
	m := &r.Meta
	var sel *selector.Event
	for i := range w.configs {
		tc := &w.configs[i]
		if !tc.Takes(m) {
			continue
		}
		insight := m.Category == event.CategoryInsight
		if !insight {
			if sel == nil {
				sel = selector.EventOf(m)
			}
			if !tc.Matcher.Match(sel) {
				continue
			}
		}
		s := w.stream(tc, streamID{Account: tc.Account, HomeRegion: tc.HomeRegion, Trail: tc.Name, Region: m.Region, Insight: insight})
		if s == nil || seq <= s.seen || (s.stalledAt != 0 && seq >= s.stalledAt) {
			continue // already buffered or delivered (reads may repeat after a rewind)
		}
		if s.buf.n > 0 && s.buf.body.Len()+len(r.Raw) > w.o.MaxFileBytes {
			// Full: the file is written first, and events from here are read again after it.
			s.stalledAt = seq
			continue
		}
		s.buf.add(seq, m, r.Raw, w.o.Now())
		s.seen = seq
	}
}

// checkpoint remembers where in the journal events of an ingest time were, so
// that a trail that starts logging can be given the events it missed.
func (w *Worker) checkpoint(seq uint64, ingest int64) {
	w.marks = append(w.marks, mark{seq, ingest})
	if len(w.marks) > 4096 {
		w.marks = append(w.marks[:0], w.marks[2048:]...)
	}
}

type mark struct {
	seq    uint64
	ingest int64
}

// rewindFor moves the read position back far enough that events ingested since
// a trail started logging are read again; streams ignore what they have seen.
func (w *Worker) rewindFor(since time.Time) {
	limit := since.Add(-2 * time.Second).UnixNano() // ingest times within a group are not ordered
	pos := w.startPos
	for i := len(w.marks) - 1; i >= 0; i-- {
		if w.marks[i].ingest < limit {
			pos = w.marks[i].seq
			break
		}
	}
	if pos < w.readPos {
		w.readPos = pos
	}
}

// failed backs the stream off after a delivery error: 1 s, doubling, at most 5 min.
func (s *stream) failed(err error, now time.Time) {
	s.failing = err.Error()
	s.backoff = min(max(2*s.backoff, time.Second), 5*time.Minute)
	s.retryAt = now.Add(s.backoff)
}

// stream returns the stream for id, loading its persisted state on first use.
func (w *Worker) stream(tc *trail.Config, id streamID) *stream {
	if s, ok := w.streams[id]; ok {
		s.trail = *tc
		return s
	}
	s := &stream{id: id, trail: *tc}
	_, err := w.loadState(id, &s.state)
	if err != nil {
		w.log.Error("load stream state", "stream", id.stateName(), "err", err)
		return nil
	}
	s.seen = s.state.Delivered
	if s.state.Intent != nil {
		// A file was being uploaded at a crash: hold its events back until
		// flush finds out whether it landed (recover).
		s.seen = s.state.Intent.ToSeq
	}
	w.streams[id] = s
	return s
}

// refresh re-reads the trails; streams of trails that stopped logging or were
// deleted are flushed (a final file and, with validation, a final digest).
func (w *Worker) refresh(ctx context.Context) error {
	configs, err := w.trails.Trails(ctx)
	if err != nil {
		return err
	}
	active := map[string]trail.Config{}
	for _, tc := range configs {
		if tc.Logging {
			active[tc.ARN] = tc
		}
	}
	var ending []*stream
	for _, s := range w.streams {
		tc, ok := active[s.trail.ARN]
		if !ok {
			ending = append(ending, s)
			continue
		}
		s.trail = tc
	}
	// Deliver what the journal holds for the ending streams before forgetting them.
	if len(ending) > 0 {
		if _, err := w.readAll(); err != nil {
			return err
		}
		for _, s := range ending {
			w.flush(ctx, s)
			if w.o.Digests != nil && s.buf.n == 0 && !s.id.Insight {
				w.o.Digests.final(ctx, w, s)
			}
			if s.buf.n == 0 && s.state.Intent == nil {
				delete(w.streams, s.id)
			}
		}
	}
	known := map[string]time.Time{}
	for _, tc := range w.configs {
		known[tc.ARN] = tc.LoggingSince
	}
	w.configs = w.configs[:0]
	for _, tc := range configs {
		if !tc.Logging {
			continue
		}
		w.configs = append(w.configs, tc)
		if since, ok := known[tc.ARN]; !ok || !since.Equal(tc.LoggingSince) {
			w.rewindFor(tc.LoggingSince)
		}
	}
	sort.Slice(w.configs, func(i, j int) bool { return w.configs[i].ARN < w.configs[j].ARN })
	return nil
}

// readAll reads the journal up to its end.
func (w *Worker) readAll() (int, error) {
	total := 0
	for {
		n, err := w.read(w.readPos, w.j.Last(), 4096)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// flushDue writes every stream whose interval has closed or whose buffer is full.
func (w *Worker) flushDue(ctx context.Context, all bool) {
	now := w.o.Now()
	for _, s := range w.streams {
		if s.buf.n == 0 && s.stalledAt == 0 && s.state.Intent == nil {
			continue
		}
		due := all || now.Sub(s.buf.opened) >= w.o.Interval || s.buf.body.Len() >= w.o.MaxFileBytes || s.stalledAt != 0 || s.state.Intent != nil
		if due && !now.Before(s.retryAt) {
			w.flush(ctx, s)
		}
	}
}

// flush writes the stream's buffer as one file; on failure it keeps the buffer and backs off.
func (w *Worker) flush(ctx context.Context, s *stream) {
	if s.state.Intent != nil {
		if err := w.recover(ctx, s); err != nil {
			s.failed(err, w.o.Now())
			return
		}
	}
	if s.buf.n == 0 {
		if s.stalledAt != 0 {
			w.catchUp(ctx, s)
		}
		return
	}
	err := w.deliver(ctx, s)
	now := w.o.Now()
	w.report(s, trail.DeliveryLogFile, now, err)
	if err != nil {
		s.failed(err, now)
		if ctx.Err() == nil { // a shutdown cancels the upload: the events are delivered after the restart
			w.log.Warn("log file delivery failed; will retry", "trail", s.trail.ARN, "region", s.id.Region, "retry_in", s.backoff, "err", err)
		}
		return
	}
	s.failing, s.backoff, s.retryAt = "", 0, time.Time{}
	s.buf.reset()
	if s.stalledAt != 0 {
		w.catchUp(ctx, s)
	}
}

// catchUp re-reads, for one recovered stream, the events it skipped while stalled.
func (w *Worker) catchUp(ctx context.Context, s *stream) {
	for s.stalledAt != 0 && s.failing == "" && ctx.Err() == nil {
		from, to := s.stalledAt, w.readPos-1
		s.stalledAt = 0
		tc := s.trail
		_, err := w.j.Scan(from, 0, func(seq uint64, v []byte) error {
			if seq > to {
				return errStop
			}
			r, err := event.Decode(v)
			if err != nil {
				return nil
			}
			m := &r.Meta
			if m.Region != s.id.Region || (m.Category == event.CategoryInsight) != s.id.Insight || !tc.Takes(m) {
				return nil
			}
			if !s.id.Insight && !tc.Matcher.Match(selector.EventOf(m)) {
				return nil
			}
			if s.buf.n > 0 && s.buf.body.Len()+len(r.Raw) > w.o.MaxFileBytes {
				s.stalledAt = seq
				return errStop
			}
			s.buf.add(seq, m, r.Raw, w.o.Now())
			s.seen = max(s.seen, seq)
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			s.stalledAt = from
			return
		}
		if s.stalledAt == 0 {
			return // the buffer now holds the rest; it is written when due
		}
		w.flush(ctx, s)
	}
}

var errStop = errors.New("stop")

// deliver uploads the buffer as one log file, exactly once.
func (w *Worker) deliver(ctx context.Context, s *stream) error {
	now := w.o.Now().UTC()
	key := logFileKey(s.trail.S3KeyPrefix, s.id.Account, s.id.Region, now, s.id.Insight)
	bucket, err := w.openBucket(ctx, s, key)
	if err != nil {
		return err
	}
	raw := s.buf.file()
	defer s.buf.reopen()
	sum := sha256.Sum256(raw)
	rec := fileRecord{Bucket: bucket.Name(), Key: key, Hash: hex.EncodeToString(sum[:]),
		Oldest: time.Unix(0, s.buf.oldest).UTC(), Newest: time.Unix(0, s.buf.newest).UTC(), ToSeq: s.buf.lastSeq, Events: s.buf.n}
	gz, err := gzipBytes(raw)
	if err != nil {
		return err
	}
	// Intent first: a crash after the upload must not deliver these events again.
	s.state.Intent = &rec
	if err := w.saveState(s); err != nil {
		s.state.Intent = nil
		return err
	}
	if err := bucket.Put(ctx, key, gz, nil); err != nil {
		s.state.Intent = nil
		w.saveState(s)
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := w.complete(s, rec); err != nil {
		return err
	}
	w.log.Info("delivered log file", "trail", s.trail.ARN, "region", s.id.Region, "bucket", rec.Bucket, "key", key, "events", rec.Events, "bytes", len(gz))
	return nil
}

// complete records a delivered file: the watermark moves past its events. The
// notification is queued first, so that a crash in between repeats it rather
// than losing it (at least once).
func (w *Worker) complete(s *stream, rec fileRecord) error {
	if w.o.Notify != nil {
		if err := w.o.Notify.enqueue(s, rec.Bucket, rec.Key); err != nil {
			return err
		}
	}
	s.state.Intent = nil
	s.state.Delivered = rec.ToSeq
	if !s.id.Insight && s.trail.LogFileValidation {
		s.state.Files = append(s.state.Files, rec)
	}
	return w.saveState(s)
}

// recover settles an intent left by a crash: a file found in the bucket is
// completed; otherwise its events, and everything buffered after them, are read
// again from the journal.
func (w *Worker) recover(ctx context.Context, s *stream) error {
	rec := *s.state.Intent
	bucket, err := w.buckets.Bucket(ctx, rec.Bucket)
	if err == nil {
		_, _, err = bucket.Head(ctx, rec.Key)
	}
	switch {
	case err == nil:
		w.log.Info("completing a log file delivered before a crash", "key", rec.Key)
		return w.complete(s, rec)
	case errors.Is(err, objstore.ErrNotFound):
		s.state.Intent = nil
		if err := w.saveState(s); err != nil {
			return err
		}
		s.buf.reset()
		s.seen = s.state.Delivered
		if s.state.Delivered+1 < w.readPos {
			s.stalledAt = s.state.Delivered + 1
		}
		return nil
	default:
		return fmt.Errorf("check %s, started before a crash: %w", rec.Key, err)
	}
}

func (w *Worker) report(s *stream, kind trail.DeliveryKind, at time.Time, err error) {
	u := trail.DeliveryUpdate{Kind: kind, Time: at}
	if err != nil {
		u.Err = err.Error()
	}
	if rerr := w.trails.RecordDelivery(s.id.Account, s.id.HomeRegion, s.id.Trail, u); rerr != nil && !errors.Is(rerr, trail.ErrNotFound) {
		w.log.Error("record delivery status", "err", rerr)
	}
}

// saveCursor persists the oldest seq any stream still needs.
func (w *Worker) saveCursor() error {
	c := w.readPos
	for _, s := range w.streams {
		if s.buf.n > 0 {
			c = min(c, s.buf.firstSeq)
		}
		if s.stalledAt != 0 {
			c = min(c, s.stalledAt)
		}
		if s.state.Intent != nil {
			c = min(c, s.state.Delivered+1)
		}
	}
	b := w.db.NewBatch()
	defer b.Close()
	if err := journal.SetCursor(b, kv.CursorDelivery, c); err != nil {
		return err
	}
	return b.Commit(pebble.NoSync) // behind is safe: streams skip what their watermark covers
}

func (w *Worker) loadState(id streamID, st *streamState) (bool, error) {
	v, closer, err := w.db.Get(kv.StateKey(kv.StateDeliveryStream, id.Account, id.stateName()))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	return true, json.Unmarshal(v, st)
}

func (w *Worker) saveState(s *stream) error {
	b, err := json.Marshal(&s.state)
	if err != nil {
		return err
	}
	return w.db.Set(kv.StateKey(kv.StateDeliveryStream, s.id.Account, s.id.stateName()), b, pebble.Sync)
}

// logFileKey names a log file as CloudTrail does.
func logFileKey(prefix, account, region string, t time.Time, insight bool) string {
	if insight {
		return digest.InsightFileKey(prefix, account, region, t, digest.RandomUnique())
	}
	return digest.LogFileKey(prefix, account, region, t, digest.RandomUnique())
}

// gzipBytes compresses b as one gzip member (the AWS CLI rejects trailing data).
func gzipBytes(b []byte) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(b) / 6)
	zw, err := gzip.NewWriterLevel(&out, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
