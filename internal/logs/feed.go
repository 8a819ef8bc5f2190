package logs

import (
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/filterpattern"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/selector"
	"github.com/opentrail/opentrail/internal/trail"
)

// feedTarget is a trail that sends its events to a log group.
type feedTarget struct {
	trail trail.Config
	group groupID
	bad   string // why the log group ARN is unusable
}

const feedBatch = 4096

// follow is the feed: it sends every journal entry a trail selects to the
// trail's log group, and moves the "logs" cursor in the same batch.
func (s *Service) follow(ctx context.Context, next uint64) {
	defer s.wg.Done()
	s.j.Follow(ctx, next, "send trail events to log groups", s.feedFrom)
}

// targets returns the trails that send to log groups, re-read at most once a second.
func (s *Service) targets(ctx context.Context) ([]feedTarget, error) {
	s.feedMu.Lock()
	defer s.feedMu.Unlock()
	if v := s.trails.TrailsVersion(); v != s.feedVersion || time.Since(s.feedAt) >= time.Second {
		now := time.Now()
		s.feedVersion = v
		trails, err := s.trails.Trails(ctx)
		if err != nil {
			return nil, err
		}
		s.feedTrails = s.feedTrails[:0]
		for _, tc := range trails {
			if tc.CloudWatchLogsLogGroupArn == "" {
				continue
			}
			t := feedTarget{trail: tc}
			id, ok := parseGroupARN(tc.CloudWatchLogsLogGroupArn)
			switch {
			case !ok:
				t.bad = "InvalidCloudWatchLogsLogGroupArn"
			case id.Account != tc.Account:
				t.bad = "AccessDeniedException: a trail may only send events to a log group of its own account"
			}
			t.group = id
			s.feedTrails = append(s.feedTrails, t)
		}
		s.feedAt = now
	}
	return s.feedTrails, nil
}

func (s *Service) readVersion() uint64 {
	s.feedMu.Lock()
	defer s.feedMu.Unlock()
	return s.feedVersion
}

// Refresh makes the feed re-read the trails before its next batch.
func (s *Service) Refresh() {
	s.feedMu.Lock()
	s.feedAt = time.Time{}
	s.feedMu.Unlock()
}

func (s *Service) feedFrom(ctx context.Context, from uint64) (uint64, error) {
	targets, err := s.targets(ctx)
	if err != nil {
		return from, err
	}
	type pending struct {
		events  []inEvent
		targets map[int]bool
	}
	byGroup := map[groupID]*pending{}
	next, err := s.j.Scan(from, feedBatch, func(seq uint64, v []byte) error {
		if len(targets) == 0 {
			return nil
		}
		r, err := event.Decode(v)
		if err != nil {
			s.log.Error("skip undecodable journal entry", "seq", seq, "err", err)
			return nil
		}
		m := &r.Meta
		if m.Category == event.CategoryInsight || m.Category == event.CategoryActivityAudit {
			return nil // CloudTrail sends neither Insights events nor channel events to CloudWatch Logs
		}
		var raw []byte
		var fe *filterpattern.Event
		var sel *selector.Event // built once, for every trail's selectors
		for i := range targets {
			t := &targets[i]
			if !t.trail.Takes(m) {
				continue
			}
			if sel == nil {
				sel = selector.EventOf(m)
			}
			if !t.trail.Matcher.Match(sel) {
				continue
			}
			p := byGroup[t.group]
			if p == nil {
				p = &pending{targets: map[int]bool{}}
				byGroup[t.group] = p
			}
			p.targets[i] = true
			if t.bad != "" {
				continue
			}
			if raw == nil {
				raw = append([]byte(nil), r.Raw...)
				fe = filterpattern.NewEvent(raw) // parsed at most once, for every group's filters
			}
			p.events = append(p.events, inEvent{stream: m.Account + "_CloudTrail_" + m.Region, ts: m.EventTime / 1e6, msg: raw, fe: fe})
		}
		return nil
	})
	if err != nil {
		return from, err
	}
	if s.trails.TrailsVersion() != s.readVersion() {
		// A trail changed while the batch was read: read it again with the new configuration.
		return from, nil
	}
	if next == from {
		return from, nil
	}
	now := s.o.Now()
	var woke []*subscription
	status := map[int]string{}
	s.mu.Lock()
	b := s.db.NewBatch()
	defer b.Close()
	for id, p := range byGroup {
		g := s.groups[id]
		for i := range p.targets {
			switch {
			case targets[i].bad != "":
				status[i] = targets[i].bad
			case g == nil:
				status[i] = "ResourceNotFoundException: log group " + id.Name + " does not exist"
			default:
				status[i] = ""
			}
		}
		if g == nil || len(p.events) == 0 {
			continue
		}
		w, err := s.appendLocked(b, g, p.events, millis(now))
		if err != nil {
			s.reloadLocked()
			s.mu.Unlock()
			return from, err
		}
		woke = append(woke, w...)
	}
	if err := journal.SetCursor(b, kv.CursorLogs, next); err != nil {
		s.mu.Unlock()
		return from, err
	}
	// No sync: if this batch is lost in a crash, so is the cursor, and the
	// events are sent again from the journal.
	if err := s.commitLocked(context.Background(), b, false); err != nil {
		s.reloadLocked()
		s.mu.Unlock()
		return from, fmt.Errorf("logs: commit: %w", err)
	}
	s.mu.Unlock()
	wake(woke)
	s.feedMu.Lock()
	s.feedPos = next
	s.feedMu.Unlock()
	for i, msg := range status {
		s.reportTrail(&targets[i].trail, msg, now)
	}
	return next, nil
}

// reportTrail records the outcome of sending to CloudWatch Logs in the trail's
// status: every change of error, and success at most once a second.
func (s *Service) reportTrail(tc *trail.Config, errMsg string, now time.Time) {
	s.feedMu.Lock()
	last, seen := s.feedErrs[tc.ARN]
	if seen && last == errMsg && (errMsg != "" || now.Sub(s.feedOKAt[tc.ARN]) < time.Second) {
		s.feedMu.Unlock()
		return
	}
	s.feedErrs[tc.ARN] = errMsg
	if errMsg == "" {
		s.feedOKAt[tc.ARN] = now
	}
	s.feedMu.Unlock()
	err := s.trails.RecordDelivery(tc.Account, tc.HomeRegion, tc.Name,
		trail.DeliveryUpdate{Kind: trail.DeliveryCloudWatchLogs, Time: now, Err: errMsg})
	if err != nil {
		s.log.Debug("record CloudWatch Logs delivery", "trail", tc.ARN, "err", err)
	}
}

// Lag is how many journal entries the feed has yet to read.
func (s *Service) Lag() uint64 {
	s.feedMu.Lock()
	pos := s.feedPos
	s.feedMu.Unlock()
	last := s.j.Last()
	if pos == 0 || last < pos {
		return 0
	}
	return last + 1 - pos
}

// janitor deletes events past their group's retention, once a minute.
func (s *Service) janitor(ctx context.Context) {
	defer s.wg.Done()
	for {
		if err := s.Expire(); err != nil {
			s.log.Error("expire log events", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Minute):
		}
	}
}

// Expire deletes the events of every group older than its retention.
func (s *Service) Expire() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.o.Now()
	b := s.db.NewBatch()
	defer b.Close()
	for _, g := range s.groups {
		if g.meta.RetentionInDays <= 0 {
			continue
		}
		cutoff := millis(now.Add(-time.Duration(g.meta.RetentionInDays) * 24 * time.Hour))
		for name, st := range g.streams {
			if st.FirstEvent == 0 || st.FirstEvent >= cutoff {
				continue
			}
			p := kv.LogStreamPrefix(g.id.Account, g.id.Region, g.id.Name, name)
			if err := b.DeleteRange(kv.LogEventKey(p, -1<<62, 0), kv.LogEventKey(p, cutoff, 0), nil); err != nil {
				return err
			}
			st.FirstEvent = cutoff
			if st.LastEvent < cutoff {
				st.StoredBytes = 0
			}
			if err := setState(b, kv.StateLogStream, g.id.Account, g.id.stateName()+":"+name, st); err != nil {
				return err
			}
		}
	}
	if b.Empty() {
		return nil
	}
	return b.Commit(pebble.NoSync)
}
