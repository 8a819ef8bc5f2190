package detect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/logs/dest"
	"github.com/opentrail/opentrail/internal/outbox"
)

// sender is one findings destination: its stream of the generic outbox
// (internal/outbox) delivers one finding at a time, in order, at least once,
// dead-lettering a finding after MaxAttempts or at once when the destination
// rejected it.
type sender struct {
	s       *Service
	route   dest.FindingRoute
	d       dest.Destination
	name    string // dest.Redact's form of the destination: for logs, metrics and dead letters
	minRank int
	stream  *outbox.Stream
}

func newSender(s *Service, r dest.FindingRoute, d dest.Destination) *sender {
	sd := &sender{s: s, route: r, d: d, name: dest.Redact(r.Destination), minRank: max(dest.LevelRank(r.MinLevel), 0)}
	sd.stream = outbox.New(s.db, outbox.Options{
		Name:    "findings " + sd.name,
		Pending: kv.OutboxPrefix(false, kv.OutboxFindings, r.Destination),
		Dead:    kv.OutboxPrefix(true, kv.OutboxFindings, r.Destination),
		Deliver: sd.deliverBatch,
		Permanent: func(err error) bool {
			return errors.Is(err, dest.ErrRejected)
		},
		Valid: func(v []byte) bool { return json.Valid(v) },
		// A finding is one delivery; a batch is sent one finding at a time and
		// reports how far it got (outbox.Partial), so one removal from the
		// outbox covers many findings and a retry repeats none that was accepted.
		MaxEntries:  alertBatch,
		MaxAttempts: s.o.MaxAttempts,
		Backoff:     s.o.Backoff,
		MaxBackoff:  s.o.MaxBackoff,
		Log:         s.log,
	})
	return sd
}

// alertSeq is a finding's place in a stream: the journal entry that produced
// it, then its index among that entry's findings, so that a replay of the
// entry queues it under the same key.
func alertSeq(seq uint64, n uint32) uint64 { return seq<<16 | uint64(n&0xffff) }

// alertPayload is the body webhooks and Lambda functions receive.
type alertPayload struct {
	Finding *Finding          `json:"finding"`
	Records []json.RawMessage `json:"records"`
}

// alertBatch is how many findings a sender takes from its outbox at once.
const alertBatch = 64

func (sd *sender) deliverBatch(ctx context.Context, batch []outbox.Entry) error {
	for i, e := range batch {
		var f Finding
		if err := json.Unmarshal(e.Value, &f); err != nil {
			return &outbox.Partial{N: i, Err: &permanent{fmt.Errorf("undecodable finding: %w", err)}}
		}
		if err := sd.deliver(ctx, &f); err != nil {
			sd.s.stats.failed(f.RuleID, sd.name)
			return &outbox.Partial{N: i, Err: err}
		}
		sd.s.stats.delivered(f.RuleID, sd.name)
	}
	return nil
}

// permanent marks an error retrying cannot fix.
type permanent struct{ err error }

func (e *permanent) Error() string        { return e.err.Error() }
func (e *permanent) Is(target error) bool { return target == dest.ErrRejected }

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

// ErrNoDestination: no findings destination has the name asked for.
var ErrNoDestination = errors.New("detect: no such findings destination")

// DeadFinding is one finding a findings destination gave up on.
type DeadFinding struct {
	Destination string // as logs and metrics name it: never credentials
	*Finding
}

// Destinations are the findings destinations by the names logs, metrics and
// dead letters use.
func (s *Service) Destinations() []string {
	out := make([]string, len(s.senders))
	for i, sd := range s.senders {
		out[i] = sd.name
	}
	return out
}

// senders returns the sender named destination, or every one for "".
func (s *Service) sendersNamed(destination string) ([]*sender, error) {
	if destination == "" {
		return s.senders, nil
	}
	for _, sd := range s.senders {
		if sd.name == destination {
			return []*sender{sd}, nil
		}
	}
	return nil, fmt.Errorf("%w: %q (the destinations are %s)", ErrNoDestination, destination, strings.Join(s.Destinations(), ", "))
}

// DeadLetters returns up to limit (<= 0: all) findings that one destination
// (or every one, "") gave up on, of one account (or of all, ""; root only),
// oldest first per destination.
func (s *Service) DeadLetters(destination, account string, limit int) ([]DeadFinding, error) {
	sds, err := s.sendersNamed(destination)
	if err != nil {
		return nil, err
	}
	out := []DeadFinding{}
	for _, sd := range sds {
		entries, err := sd.stream.DeadLetters(0)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if limit > 0 && len(out) >= limit {
				return out, nil
			}
			f := new(Finding)
			if json.Unmarshal(e.Value, f) != nil || (account != "" && f.AccountID != account) {
				continue
			}
			out = append(out, DeadFinding{Destination: sd.name, Finding: f})
		}
	}
	return out, nil
}

// Replay puts the dead-lettered findings of one destination (or of every
// one, "") and of one account (or of all, "") back in their outboxes, in
// their original order, and returns how many. Inside an API call's
// transaction (ctx) the move commits with the call's audit record.
func (s *Service) Replay(ctx context.Context, destination, account string) (int, error) {
	sds, err := s.sendersNamed(destination)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, sd := range sds {
		n, err := sd.stream.Replay(ctx, func(e outbox.Entry) bool {
			var f struct {
				AccountID string `json:"AccountId"`
			}
			return account == "" || (json.Unmarshal(e.Value, &f) == nil && f.AccountID == account)
		})
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
