package detect

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/history"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/logs/dest"
	"github.com/opentrail/opentrail/internal/sigma"
)

// Finding is one rule match.
type Finding struct {
	FindingID string            `json:"FindingId"`
	RuleID    string            `json:"RuleId"`
	RuleTitle string            `json:"RuleTitle"`
	Level     string            `json:"Level,omitempty"`
	Tags      []string          `json:"Tags,omitempty"`
	Time      time.Time         `json:"Time"` // the (last) matching event's time
	AccountID string            `json:"AccountId"`
	Region    string            `json:"Region"`
	EventIDs  []string          `json:"EventIds"`
	GroupBy   map[string]string `json:"GroupBy,omitempty"` // correlations only
}

// ---- Storage format: a finding's ID. Never change it: replays rely on it. ----

// FindingID is derived from the rule and the events it matched, so that
// evaluating the same events again yields the same finding.
func FindingID(ruleID string, eventIDs []string) string {
	h := sha256.New()
	h.Write([]byte(ruleID))
	for _, id := range eventIDs {
		h.Write([]byte{0})
		h.Write([]byte(id))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// ---- End of storage format. ----

// newFinding makes the finding of match mt on the event with metadata m.
func newFinding(mt *sigma.Match, m *event.Meta) *Finding {
	return findingOf(mt, m.Account, m.Region, m.EventID, time.Unix(0, m.EventTime))
}

// findingOf makes the finding of match mt on an event of account and region.
func findingOf(mt *sigma.Match, account, region, eventID string, at time.Time) *Finding {
	r := mt.Rule
	ids := mt.EventIDs
	if len(ids) == 0 {
		ids = []string{eventID}
	}
	t := mt.Time
	if t.IsZero() {
		t = at
	}
	id := r.Key()
	return &Finding{
		FindingID: FindingID(id, ids), RuleID: id, RuleTitle: r.Title, Level: strings.ToLower(r.Level),
		Tags: r.Tags, Time: t.UTC(), AccountID: account, Region: region, EventIDs: ids, GroupBy: mt.GroupBy,
	}
}

func (f *Finding) marshal() ([]byte, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("detect: encode finding %s: %w", f.FindingID, err)
	}
	return b, nil
}

func (f *Finding) key() []byte {
	var id [8]byte
	hex.Decode(id[:], []byte(f.FindingID[:16]))
	return kv.FindingKey(f.AccountID, f.Time.UnixNano(), id)
}

// Query selects findings of one account, newest first.
type Query struct {
	Account    string
	Region     string    // "" = every region
	Start, End time.Time // inclusive; zero: unbounded
	RuleID     string    // "" = every rule
	MinLevel   string    // "" = every level
	Max        int       // 1..1000
	NextToken  string
}

// Page is one page of findings; NextToken is "" on the last one.
type Page struct {
	Findings  []Finding
	NextToken string
}

// ErrBadToken reports a NextToken this server did not issue for the same query.
var ErrBadToken = errors.New("detect: invalid next token")

// maxScan bounds how many findings one page reads past its filters, so that a
// rare rule's page answers in bounded time (with a NextToken to continue).
var maxScan = 20000

// Findings returns one page of q.
func (s *Service) Findings(q Query) (Page, error) {
	tokens := s.o.Tokens
	start, end := int64(math.MinInt64), int64(math.MaxInt64)
	if !q.Start.IsZero() {
		start = q.Start.UnixNano()
	}
	if !q.End.IsZero() {
		end = q.End.UnixNano()
	}
	// The token is bound to every parameter but Max and NextToken.
	tq := history.Query{Account: q.Account, Region: q.Region, Attr: "findings", Value: q.RuleID + "\x00" + q.MinLevel, Start: start, End: end}
	prefix := kv.FindingPrefix(q.Account)
	lower := kv.FindingKey(q.Account, end, [8]byte{})
	upper := kv.FindingKey(q.Account, start, [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	upper = append(upper, 0) // inclusive of the last key at start
	if q.NextToken != "" {
		pos, err := tokens.Decode(tq, q.NextToken)
		if err != nil {
			return Page{}, ErrBadToken
		}
		lower = append(append(append([]byte(nil), prefix...), pos...), 0) // just after the last key returned
	}
	minRank := 0
	if q.MinLevel != "" {
		minRank = dest.LevelRank(q.MinLevel)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return Page{}, err
	}
	defer it.Close()
	var p Page
	scanned := 0
	var last []byte
	for ok := it.First(); ok; ok = it.Next() {
		if len(p.Findings) >= q.Max || scanned >= maxScan {
			p.NextToken = tokens.Encode(tq, last[len(prefix):])
			break
		}
		scanned++
		last = append(last[:0], it.Key()...)
		v, err := it.ValueAndErr()
		if err != nil {
			return Page{}, err
		}
		var f Finding
		if err := json.Unmarshal(v, &f); err != nil {
			s.log.Error("skip undecodable finding", "err", err)
			continue
		}
		if q.RuleID != "" && f.RuleID != q.RuleID || q.Region != "" && f.Region != q.Region {
			continue
		}
		if max(dest.LevelRank(f.Level), 0) < minRank {
			continue
		}
		p.Findings = append(p.Findings, f)
	}
	if err := it.Error(); err != nil {
		return Page{}, err
	}
	if p.Findings == nil {
		p.Findings = []Finding{}
	}
	return p, nil
}
