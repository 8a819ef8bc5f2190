package detect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/logs/dest"
)

// sender delivers one findings destination's outbox, one finding at a time,
// in order, at least once: an alert leaves the outbox only after the
// destination accepted it, or into the dead letters after MaxAttempts (or at
// once when the destination rejected it).
type sender struct {
	s            *Service
	route        dest.FindingRoute
	d            dest.Destination
	minRank      int
	outbox, dead []byte
	after        []byte // the last alert removed: the next read starts past its tombstone
	wakeCh       chan struct{}

	pending, deadN atomic.Int64
}

func newSender(s *Service, r dest.FindingRoute, d dest.Destination) *sender {
	return &sender{s: s, route: r, d: d, minRank: max(dest.LevelRank(r.MinLevel), 0),
		outbox: kv.AlertPrefix(false, r.Destination), dead: kv.AlertPrefix(true, r.Destination),
		wakeCh: make(chan struct{}, 1)}
}

func (sd *sender) wake() {
	select {
	case sd.wakeCh <- struct{}{}:
	default:
	}
}

// alertPayload is the body webhooks and Lambda functions receive.
type alertPayload struct {
	Finding *Finding          `json:"finding"`
	Records []json.RawMessage `json:"records"`
}

func (sd *sender) run(ctx context.Context) {
	s := sd.s
	if n, err := countPrefix(s.db, sd.outbox); err == nil {
		sd.pending.Store(n)
	}
	if n, err := countPrefix(s.db, sd.dead); err == nil {
		sd.deadN.Store(n)
	}
	attempts, backoff := 0, s.o.Backoff
	for ctx.Err() == nil {
		key, f, err := sd.next()
		if err != nil {
			s.log.Error("read findings outbox", "destination", sd.d.String(), "err", err)
			sleep(ctx, time.Second)
			continue
		}
		if key == nil {
			select {
			case <-sd.wakeCh:
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		err = sd.deliver(ctx, f)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			attempts, backoff = 0, s.o.Backoff
			if err := sd.drop(key, nil); err != nil {
				s.log.Error("remove a delivered finding from the outbox", "destination", sd.d.String(), "err", err)
			}
			s.stats.delivered(f.RuleID, sd.d.String())
			continue
		}
		s.stats.failed(f.RuleID, sd.d.String())
		attempts++
		s.log.Warn("finding delivery failed", "rule", f.RuleID, "finding", f.FindingID, "destination", sd.d.String(),
			"attempt", attempts, "err", err)
		if attempts >= s.o.MaxAttempts || errors.Is(err, dest.ErrRejected) {
			if err := sd.drop(key, sd.dead); err != nil {
				s.log.Error("dead-letter a finding", "destination", sd.d.String(), "err", err)
			} else {
				sd.deadN.Add(1)
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

// next returns the oldest pending alert, or a nil key when there is none.
func (sd *sender) next() ([]byte, *Finding, error) {
	for {
		lower := sd.outbox
		if sd.after != nil {
			lower = sd.after
		}
		it, err := sd.s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: kv.PrefixUpper(sd.outbox)})
		if err != nil {
			return nil, nil, err
		}
		if !it.First() {
			return nil, nil, it.Close()
		}
		key := slices.Clone(it.Key())
		var f Finding
		err = json.Unmarshal(it.Value(), &f)
		it.Close()
		if err == nil {
			return key, &f, nil
		}
		sd.s.log.Error("drop undecodable outbox entry", "destination", sd.d.String(), "err", err)
		if err := sd.drop(key, nil); err != nil {
			return nil, nil, err
		}
	}
}

// drop removes an alert from the outbox, into the dead letters (prefix dead) if set.
// No sync: if the removal is lost in a crash, the alert is sent again (at least once).
func (sd *sender) drop(key, dead []byte) error {
	b := sd.s.db.NewBatch()
	defer b.Close()
	if dead != nil {
		v, closer, err := sd.s.db.Get(key)
		if err != nil {
			return err
		}
		err = b.Set(append(slices.Clone(dead), key[len(sd.outbox):]...), v, nil)
		closer.Close()
		if err != nil {
			return err
		}
	}
	if err := b.Delete(key, nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	sd.pending.Add(-1)
	// Alerts are queued in journal order, so every pending one sorts after this key.
	sd.after = append(key, 0)
	return nil
}

// deliver sends f with the records it matched.
func (sd *sender) deliver(ctx context.Context, f *Finding) error {
	recs, err := sd.s.records(f)
	if err != nil {
		return err
	}
	body, err := json.Marshal(alertPayload{Finding: f, Records: recs})
	if err != nil {
		return err
	}
	b := &dest.Batch{Owner: f.AccountID, Region: f.Region, LogGroup: "detections", LogStream: f.RuleID,
		SubscriptionFilters: []string{f.RuleTitle}, Alert: alertOf(f, body)}
	for i, r := range recs {
		b.Events = append(b.Events, dest.LogEvent{ID: f.EventIDs[i], Timestamp: f.Time.UnixMilli(), Message: string(r)})
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return sd.d.Send(ctx, b)
}

// records reads the records of a finding's events from the journal; an event
// no longer there (trimmed) is left out.
func (s *Service) records(f *Finding) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, 0, len(f.EventIDs))
	for _, id := range f.EventIDs {
		seq, ok, err := s.j.Lookup(kv.EventIDKey(f.AccountID, id))
		if err != nil {
			return nil, err
		}
		if !ok {
			out = append(out, json.RawMessage("null"))
			continue
		}
		v, found, err := s.j.Get(seq)
		if err != nil {
			return nil, err
		}
		r, derr := event.Decode(v)
		if !found || derr != nil {
			out = append(out, json.RawMessage("null"))
			continue
		}
		out = append(out, json.RawMessage(bytes.Clone(r.Raw)))
	}
	return out, nil
}

// alertOf is what people are told about f.
func alertOf(f *Finding, body []byte) *dest.Alert {
	level := f.Level
	if level == "" {
		level = "informational"
	}
	a := &dest.Alert{Body: body,
		Subject: fmt.Sprintf("[OpenTrail] %s: %s (%d %s)", level, f.RuleTitle, len(f.EventIDs), plural(len(f.EventIDs), "event", "events")),
		Lines: []string{
			"Rule: " + f.RuleTitle + " (" + f.RuleID + ")",
			"Level: " + level,
			"Account: " + f.AccountID + " (" + f.Region + ")",
			"Time: " + f.Time.Format(time.RFC3339),
		}}
	if len(f.GroupBy) > 0 {
		keys := make([]string, 0, len(f.GroupBy))
		for k := range f.GroupBy {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, k+"="+f.GroupBy[k])
		}
		a.Lines = append(a.Lines, "Group: "+strings.Join(parts, ", "))
	}
	return a
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
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
