package sigma

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// State holds the correlation windows of a Set, in event time. It is safe for
// concurrent use. Its binary form (MarshalBinary) lets a caller keep it across
// restarts; it is keyed by correlation rule (id, else name, else file:line)
// and group, so a reloaded rule set picks up the windows of the rules it kept.
type State struct {
	mu    sync.Mutex
	corrs map[string]*corrState
}

// corrState is the windows of one correlation rule, one per group.
type corrState struct {
	Span   time.Duration     `json:"span"`
	Groups map[string]*group `json:"groups"`

	// oldest is at most the time of the oldest event held (0: unknown), so
	// that Expire can skip a correlation with nothing to drop.
	oldest int64
}

// group is the events of one group-by value tuple, sorted by time.
type group struct {
	Values []string `json:"values"` // the group-by values, in GroupBy order
	Events []entry  `json:"events"`
	Start  int64    `json:"start,omitempty"` // lt/lte: the open window's start (unix ns); 0 when none
}

// entry is one event matched by a base rule of a correlation.
type entry struct {
	T    int64  `json:"t"` // eventTime, unix ns
	ID   string `json:"id"`
	Rule int    `json:"r"`           // index of the base rule in Correlation.Rules
	Val  string `json:"v,omitempty"` // value_count: the counted field's value
	// IDs, for an entry that is a correlation's firing: its events. ID is
	// then their list, which identifies the firing.
	IDs []string `json:"ids,omitempty"`
}

// MaxLateness is how far (in event time) behind the newest event of its group
// an event may arrive and still meet the events it shares a window with: a
// group keeps the events of the last timespan plus MaxLateness. Expire drops
// more, as the caller's watermark allows.
const MaxLateness = time.Hour

// NewState returns an empty State.
func NewState() *State { return &State{corrs: map[string]*corrState{}} }

// stateVersion is the first byte of MarshalBinary's output. Part of the format:
// never change what a version means; add a version instead.
const stateVersion = 1

// MarshalBinary encodes the state.
func (st *State) MarshalBinary() ([]byte, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	b, err := json.Marshal(st.corrs)
	if err != nil {
		return nil, fmt.Errorf("sigma: encode state: %w", err)
	}
	return append([]byte{stateVersion}, b...), nil
}

// ErrState is returned by UnmarshalBinary for data it cannot read.
var ErrState = errors.New("sigma: bad correlation state")

// UnmarshalBinary replaces the state with one MarshalBinary encoded.
func (st *State) UnmarshalBinary(data []byte) error {
	if len(data) == 0 || data[0] != stateVersion {
		return fmt.Errorf("%w: unknown version", ErrState)
	}
	corrs := map[string]*corrState{}
	if err := json.Unmarshal(data[1:], &corrs); err != nil {
		return fmt.Errorf("%w: %v", ErrState, err)
	}
	for k, c := range corrs {
		if c == nil || c.Span <= 0 {
			return fmt.Errorf("%w: correlation %s has no timespan", ErrState, k)
		}
		if c.Groups == nil {
			c.Groups = map[string]*group{}
		}
		for gk, g := range c.Groups {
			if g == nil {
				delete(c.Groups, gk)
				continue
			}
			slices.SortStableFunc(g.Events, func(a, b entry) int { return cmpInt(a.T, b.T) })
		}
	}
	st.mu.Lock()
	st.corrs = corrs
	st.mu.Unlock()
	return nil
}

// Expire drops the events of every window that ended before the given time:
// those more than the correlation's timespan older than before. Call it with
// the event time the caller has reached (minus any lateness it allows). It
// costs one comparison per correlation when there is nothing to drop, so it
// may be called for every event. It fires nothing: an lt/lte window closes in
// Eval, so give Expire no later time than the newest event Eval has seen.
func (st *State) Expire(before time.Time) {
	b := before.UnixNano()
	st.mu.Lock()
	defer st.mu.Unlock()
	for k, c := range st.corrs {
		limit := b - int64(c.Span)
		if c.oldest != 0 && c.oldest >= limit {
			continue
		}
		c.oldest = 0
		for gk, g := range c.Groups {
			g.prune(limit)
			if len(g.Events) == 0 {
				delete(c.Groups, gk)
				continue
			}
			if t := g.Events[0].T; c.oldest == 0 || t < c.oldest {
				c.oldest = t
			}
		}
		if len(c.Groups) == 0 {
			delete(st.corrs, k)
		}
	}
}

// Len returns the number of events the state holds, for metrics.
func (st *State) Len() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := 0
	for _, c := range st.corrs {
		for _, g := range c.Groups {
			n += len(g.Events)
		}
	}
	return n
}

// prune drops events before t.
func (g *group) prune(t int64) {
	i := sort.Search(len(g.Events), func(i int) bool { return g.Events[i].T >= t })
	if i > 0 {
		g.Events = append(g.Events[:0], g.Events[i:]...)
	}
	if g.Start != 0 && g.Start < t && len(g.Events) > 0 {
		g.Start = g.Events[0].T
	}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// field returns the field a correlation reads for name in base rule idx,
// after aliases.
func (c *Correlation) field(name string, idx int) string {
	if m, ok := c.Aliases[name]; ok {
		b := c.base[idx]
		if f, ok := m[b.ID]; ok && b.ID != "" {
			return f
		}
		if f, ok := m[b.Name]; ok && b.Name != "" {
			return f
		}
		if f, ok := m[c.Rules[idx]]; ok {
			return f
		}
	}
	return name
}

// add records that e matched base rule f.idx of correlation f.corr and
// returns the match if that completes the correlation.
func (st *State) add(f feed, e *Event) []Match {
	if e.Time().IsZero() {
		return nil // a record without eventTime has no place in a window
	}
	c := f.corr.Correlation
	vals := make([]string, len(c.GroupBy))
	for i, name := range c.GroupBy {
		if vs := e.Values(c.field(name, f.idx)); len(vs) > 0 {
			vals[i] = vs[0]
		}
	}
	en := entry{T: e.Time().UnixNano(), ID: e.ID(), Rule: f.idx}
	if c.Type == "value_count" {
		vs := e.Values(c.field(c.Field, f.idx))
		if len(vs) == 0 {
			return nil // an event without the field adds no value
		}
		en.Val = vs[0]
	}
	return st.insert(f.corr, vals, en)
}

// addMatch records that correlation f.corr's rule f.idx, itself a
// correlation, fired with m. Its group-by values come from m's.
func (st *State) addMatch(f feed, m Match) []Match {
	c := f.corr.Correlation
	vals := make([]string, len(c.GroupBy))
	for i, name := range c.GroupBy {
		vals[i] = m.GroupBy[c.field(name, f.idx)]
	}
	en := entry{T: m.Time.UnixNano(), ID: strings.Join(m.EventIDs, ","), IDs: m.EventIDs, Rule: f.idx}
	if c.Type == "value_count" {
		v, ok := m.GroupBy[c.field(c.Field, f.idx)]
		if !ok {
			return nil
		}
		en.Val = v
	}
	return st.insert(f.corr, vals, en)
}

// insert adds en to its group of correlation r and returns r's match if that
// completes it.
func (st *State) insert(r *Rule, vals []string, en entry) []Match {
	c := r.Correlation
	key := strings.Join(vals, "\x00")
	st.mu.Lock()
	defer st.mu.Unlock()
	cs := st.corrs[r.Key()]
	if cs == nil || cs.Span != c.Timespan {
		cs = &corrState{Span: c.Timespan, Groups: map[string]*group{}}
		st.corrs[r.Key()] = cs
	}
	g := cs.Groups[key]
	if g == nil {
		g = &group{Values: vals}
		cs.Groups[key] = g
	}
	span := int64(c.Timespan)
	// Idempotent: the same event for the same base rule counts once, so a
	// caller that replays events after a restart does not double-count.
	for _, o := range g.Events {
		if o.ID == en.ID && o.Rule == en.Rule && o.T == en.T && en.ID != "" {
			return nil
		}
	}
	if cs.oldest == 0 || en.T < cs.oldest {
		cs.oldest = en.T
	}
	i := sort.Search(len(g.Events), func(i int) bool { return g.Events[i].T > en.T })
	g.Events = slices.Insert(g.Events, i, en)
	if limit := g.Events[len(g.Events)-1].T - span - int64(MaxLateness); g.Events[0].T < limit {
		g.prune(limit)
	}
	if c.closesWindow() {
		if g.Start == 0 || en.T < g.Start {
			g.Start = g.Events[0].T
		}
		return nil // fires when the window closes
	}
	win, ok := g.complete(c, en.T)
	if !ok {
		return nil
	}
	m := st.fire(r, g, win)
	if len(g.Events) == 0 {
		delete(cs.Groups, key)
	}
	return []Match{m}
}

// complete looks for a window of the correlation's timespan that contains t and
// satisfies the correlation; it returns the indexes of the window's events
// that contributed.
func (g *group) complete(c *Correlation, t int64) ([]int, bool) {
	span := int64(c.Timespan)
	first := sort.Search(len(g.Events), func(i int) bool { return g.Events[i].T >= t-span })
	for a := first; a < len(g.Events); a++ {
		s := g.Events[a].T
		if s > t {
			break
		}
		end := s + span
		var win []int
		for j := a; j < len(g.Events) && g.Events[j].T <= end; j++ {
			win = append(win, j)
		}
		if w, ok := satisfied(c, g.Events, win); ok {
			return w, true
		}
	}
	return nil, false
}

// satisfied reports whether the events win of es satisfy c, and which of them
// contributed.
func satisfied(c *Correlation, es []entry, win []int) ([]int, bool) {
	switch c.Type {
	case "event_count":
		ids := map[string]bool{}
		n := 0
		for _, j := range win {
			if es[j].ID == "" || !ids[es[j].ID] {
				ids[es[j].ID] = true
				n++
			}
		}
		return win, c.holds(int64(n))
	case "value_count":
		vals := map[string]bool{}
		for _, j := range win {
			vals[es[j].Val] = true
		}
		return win, c.holds(int64(len(vals)))
	case "temporal":
		seen := make([]bool, len(c.Rules))
		n := 0
		for _, j := range win {
			if r := es[j].Rule; r >= 0 && r < len(seen) && !seen[r] {
				seen[r] = true
				n++
			}
		}
		if len(c.Conds) == 0 {
			return win, n == len(c.Rules)
		}
		return win, c.holds(int64(n))
	case "temporal_ordered":
		// The first event of the window must be of the first rule; then each
		// next rule at the same time or later.
		var chain []int
		k := 0
		for _, j := range win {
			if k < len(c.Rules) && es[j].Rule == k {
				chain = append(chain, j)
				k++
			}
		}
		if len(c.Conds) == 0 {
			return chain, k == len(c.Rules)
		}
		return chain, c.holds(int64(k))
	}
	return nil, false
}

// holds reports whether count n satisfies every criterion of the condition.
func (c *Correlation) holds(n int64) bool {
	for _, cc := range c.Conds {
		var ok bool
		switch cc.Op {
		case "gt":
			ok = n > cc.Count
		case "gte":
			ok = n >= cc.Count
		case "lt":
			ok = n < cc.Count
		case "lte":
			ok = n <= cc.Count
		default:
			ok = n == cc.Count
		}
		if !ok {
			return false
		}
	}
	return true
}

// fire builds the match of r over events win of g and removes them from g, so
// that the next firing needs new events.
func (st *State) fire(r *Rule, g *group, win []int) Match {
	c := r.Correlation
	m := Match{Rule: r, GroupBy: make(map[string]string, len(c.GroupBy))}
	for i, name := range c.GroupBy {
		if i < len(g.Values) { // a state saved under an older rule may lack some
			m.GroupBy[name] = g.Values[i]
		}
	}
	seen := map[string]bool{}
	var last int64
	drop := make(map[int]bool, len(win))
	for _, j := range win {
		en := g.Events[j]
		drop[j] = true
		if en.T > last {
			last = en.T
		}
		ids := en.IDs
		if ids == nil {
			ids = []string{en.ID}
		}
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				m.EventIDs = append(m.EventIDs, id)
			}
		}
	}
	m.Time = time.Unix(0, last).UTC()
	kept := g.Events[:0]
	for j, en := range g.Events {
		if !drop[j] {
			kept = append(kept, en)
		}
	}
	g.Events = kept
	return m
}

// close fires the lt/lte correlations whose windows ended before now (event
// time): a window opens at its group's first event and closes a timespan later.
func (st *State) close(rules []*Rule, now time.Time) []Match {
	t := now.UnixNano()
	var out []Match
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, r := range rules {
		c := r.Correlation
		cs := st.corrs[r.Key()]
		if cs == nil {
			continue
		}
		span := int64(c.Timespan)
		for key, g := range cs.Groups {
			for g.Start != 0 && g.Start+span < t {
				end := g.Start + span
				var win []int
				for j, en := range g.Events {
					if en.T >= g.Start && en.T <= end {
						win = append(win, j)
					}
				}
				if w, ok := satisfied(c, g.Events, win); ok && len(w) > 0 {
					m := st.fire(r, g, w)
					m.Time = time.Unix(0, end).UTC()
					out = append(out, m)
				} else {
					g.prune(end + 1)
				}
				g.Start = 0
				if len(g.Events) > 0 {
					g.Start = g.Events[0].T
				}
			}
			if len(g.Events) == 0 {
				delete(cs.Groups, key)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}
