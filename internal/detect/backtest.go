package detect

import (
	"sort"

	"github.com/opentrail/opentrail/internal/sigma"
)

// Backtest evaluates a rule set over records from outside the journal (log
// files, an event data store's query results), with correlation state per
// account as the projection keeps it. It is not safe for concurrent use; for
// sets without correlations, run one Backtest per goroutine and Add them up.
type Backtest struct {
	rs     *RuleSet
	states map[string]*sigma.State
	// Matches counts findings per rule ID; Events and Unreadable count records.
	Matches            map[string]int64
	Events, Unreadable int64
	// OnFinding, if set, is called with every finding.
	OnFinding func(*Finding)
}

// NewBacktest starts a backtest of rs.
func NewBacktest(rs *RuleSet) *Backtest {
	return &Backtest{rs: rs, states: map[string]*sigma.State{}, Matches: map[string]int64{}}
}

// Correlations reports whether rs has correlation rules, whose results depend
// on the order of the events: such a set must see every event in one Backtest,
// in time order.
func (rs *RuleSet) Correlations() bool { return rs.correlations }

// Prepare parses one record for Eval; nil when it is not a readable record.
func Prepare(raw []byte) *sigma.Event {
	ev, err := sigma.NewEvent(raw)
	if err != nil {
		return nil
	}
	return ev
}

// SortByTime orders prepared events by event time, stably.
func SortByTime(evs []*sigma.Event) {
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time().Before(evs[j].Time()) })
}

// Eval evaluates the rules on one prepared event (nil counts as unreadable).
func (b *Backtest) Eval(ev *sigma.Event) {
	if ev == nil {
		b.Unreadable++
		return
	}
	b.Events++
	if b.rs == nil || b.rs.set == nil {
		return
	}
	account := first(ev.Values("recipientAccountId"))
	if account == "" {
		account = first(ev.Values("userIdentity.accountId"))
	}
	st := b.states[account]
	if st == nil {
		st = sigma.NewState()
		b.states[account] = st
	}
	matches := b.rs.set.Eval(ev, st)
	for i := range matches {
		f := findingOf(&matches[i], account, first(ev.Values("awsRegion")), ev.ID(), ev.Time())
		b.Matches[f.RuleID]++
		if b.OnFinding != nil {
			b.OnFinding(f)
		}
	}
	if b.rs.correlations && b.Events%4096 == 0 {
		for _, st := range b.states {
			st.Expire(ev.Time())
		}
	}
}

// Add adds other's counts to b's.
func (b *Backtest) Add(other *Backtest) {
	for k, n := range other.Matches {
		b.Matches[k] += n
	}
	b.Events += other.Events
	b.Unreadable += other.Unreadable
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}
