package sigma

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Set is a compiled set of rules with correlations resolved, ready to evaluate
// events. A Set is read-only after NewSet and safe for concurrent use.
type Set struct {
	rules []*Rule

	det      []*Rule // applicable detection rules
	byName   map[string][]int
	bySource map[string][]int
	always   []int
	feeds    [][]feed       // per det index: the correlations it feeds
	filters  [][]*detection // per det index: filters whose match suppresses it
	silent   []bool         // per det index: only feeds correlations that do not generate

	corrs      []*Rule // applicable correlation rules
	closing    []*Rule // those whose condition is lt or lte: they fire when a window closes
	corrFeeds  map[*Rule][]feed
	silentCorr map[*Rule]bool // only feeds correlations that do not generate
}

// feed is one place a detection rule's match goes: base rule idx of corr.
type feed struct {
	corr *Rule
	idx  int
}

// Match is a rule that fired: a detection rule on one event, or a correlation
// rule on the events it lists, with the values of its group-by fields.
type Match struct {
	Rule     *Rule
	EventIDs []string
	GroupBy  map[string]string
	Time     time.Time
}

// NewSet compiles rules into a Set. It reports duplicate ids and names,
// correlations and filters whose rules cannot be found and cycles of
// correlations; the rules concerned are left out and the others kept.
// NewSet records in each correlation rule the rules it refers to and sets its
// Applies, so rules must not be given to two NewSet calls at once. A
// correlation whose base rules do not all apply to CloudTrail gets Applies false.
func NewSet(rules []*Rule) (*Set, []error) {
	var errs []error
	s := &Set{byName: map[string][]int{}, bySource: map[string][]int{}}
	byID := map[string]*Rule{}
	byName := map[string]*Rule{}
	for _, r := range rules {
		if r.ID != "" {
			if o := byID[r.ID]; o != nil {
				errs = append(errs, &Error{File: r.File, Line: r.Line, Msg: fmt.Sprintf("rule id %s is also the id of %s:%d", r.ID, o.File, o.Line)})
				continue
			}
		}
		if r.Name != "" {
			if o := byName[r.Name]; o != nil {
				errs = append(errs, &Error{File: r.File, Line: r.Line, Msg: fmt.Sprintf("rule name %s is also the name of %s:%d", r.Name, o.File, o.Line)})
				continue
			}
		}
		if r.ID != "" {
			byID[r.ID] = r
		}
		if r.Name != "" {
			byName[r.Name] = r
		}
		s.rules = append(s.rules, r)
	}
	// Resolve references; a correlation may refer to correlations (chains),
	// but not in a cycle. Applies: all the rules it rests on apply.
	kept := s.rules[:0]
	bad := map[*Rule]bool{}
	for _, r := range s.rules {
		c := r.Correlation
		if c == nil {
			kept = append(kept, r)
			continue
		}
		c.base = c.base[:0]
		for _, ref := range c.Rules {
			b := byID[ref]
			if b == nil {
				b = byName[ref]
			}
			if b == nil {
				errs = append(errs, &Error{File: r.File, Line: r.Line, Msg: fmt.Sprintf("correlation: rule %q not found (by id or name)", ref)})
				bad[r] = true
				break
			}
			if b.Filter != nil {
				errs = append(errs, &Error{File: r.File, Line: r.Line, Msg: fmt.Sprintf("correlation: rule %q is a filter", ref)})
				bad[r] = true
				break
			}
			c.base = append(c.base, b)
		}
		kept = append(kept, r)
	}
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[*Rule]int{}
	var visit func(r *Rule) bool // reports whether r is good
	visit = func(r *Rule) bool {
		c := r.Correlation
		if c == nil {
			return true
		}
		switch state[r] {
		case visiting:
			return false
		case done:
			return !bad[r]
		}
		state[r] = visiting
		applies := true
		for _, b := range c.base {
			if bad[r] {
				break
			}
			if !visit(b) {
				if state[b] == visiting || b == r {
					errs = append(errs, &Error{File: r.File, Line: r.Line, Msg: fmt.Sprintf("correlation: rule %q is part of a cycle of correlations", b.Key())})
				} else {
					errs = append(errs, &Error{File: r.File, Line: r.Line, Msg: fmt.Sprintf("correlation: rule %q was left out", b.Key())})
				}
				bad[r] = true
				break
			}
			applies = applies && b.Applies
		}
		if !bad[r] {
			r.Applies = applies
		}
		state[r] = done
		return !bad[r]
	}
	s.rules = kept[:0:0]
	for _, r := range kept {
		if visit(r) {
			s.rules = append(s.rules, r)
		}
	}

	detIndex := map[*Rule]int{}
	for _, r := range s.rules {
		if r.Correlation != nil || r.Filter != nil || !r.Applies {
			continue
		}
		i := len(s.det)
		detIndex[r] = i
		s.det = append(s.det, r)
		switch {
		case indexOn(r, i, "eventName", s.byName):
		case indexOn(r, i, "eventSource", s.bySource):
		default:
			s.always = append(s.always, i)
		}
	}
	// Filters: each suppresses the matches of the detection rules it names.
	s.filters = make([][]*detection, len(s.det))
	kept = s.rules[:0]
	for _, r := range s.rules {
		if r.Filter == nil {
			kept = append(kept, r)
			continue
		}
		var bad string
		var targets []*Rule
		for _, ref := range r.Filter.Rules {
			b := byID[ref]
			if b == nil {
				b = byName[ref]
			}
			switch {
			case b == nil:
				bad = fmt.Sprintf("filter: rule %q not found (by id or name)", ref)
			case b.Correlation != nil || b.Filter != nil:
				bad = fmt.Sprintf("filter: rule %q is not a detection rule", ref)
			}
			if bad != "" {
				break
			}
			targets = append(targets, b)
		}
		if bad != "" {
			errs = append(errs, &Error{File: r.File, Line: r.Line, Msg: bad})
			continue
		}
		kept = append(kept, r)
		if !r.Applies {
			continue
		}
		for _, b := range targets {
			if i, ok := detIndex[b]; ok {
				s.filters[i] = append(s.filters[i], r.det)
			}
		}
	}
	s.rules = kept

	s.feeds = make([][]feed, len(s.det))
	s.silent = make([]bool, len(s.det))
	s.corrFeeds = map[*Rule][]feed{}
	s.silentCorr = map[*Rule]bool{}
	generates := map[*Rule]bool{}
	fed := map[*Rule]bool{}
	for _, r := range s.rules {
		c := r.Correlation
		if c == nil || !r.Applies {
			continue
		}
		s.corrs = append(s.corrs, r)
		if c.closesWindow() {
			s.closing = append(s.closing, r)
		}
		for idx, b := range c.base {
			if b.Correlation != nil {
				s.corrFeeds[b] = append(s.corrFeeds[b], feed{corr: r, idx: idx})
			} else {
				i := detIndex[b]
				s.feeds[i] = append(s.feeds[i], feed{corr: r, idx: idx})
			}
			fed[b] = true
			generates[b] = generates[b] || c.Generate
		}
	}
	for i, r := range s.det {
		s.silent[i] = fed[r] && !generates[r]
	}
	for _, r := range s.corrs {
		s.silentCorr[r] = fed[r] && !generates[r]
	}
	return s, errs
}

// Rules returns the rules of the set, in the order given, without those
// NewSet reported.
func (s *Set) Rules() []*Rule { return s.rules }

// indexOn adds detection rule r (index i) to idx under each value field must
// equal for r to match, if there is such a set of values.
func indexOn(r *Rule, i int, field string, idx map[string][]int) bool {
	all := map[string]bool{}
	for _, c := range r.det.cond {
		vals := need(c, field)
		if vals == nil {
			return false
		}
		for v := range vals {
			all[v] = true
		}
	}
	if len(all) == 0 {
		return false
	}
	for v := range all {
		idx[v] = append(idx[v], i)
	}
	return true
}

// need returns the lowercased values field must equal for n to hold, or nil
// when n does not pin field to a set of values.
func need(n node, field string) map[string]bool {
	switch n := n.(type) {
	case identNode:
		return needSearch(n.s, field)
	case andNode:
		return needAnd(n, field)
	case orNode:
		return needOr(n, field)
	case ofNode:
		nodes := make([]node, len(n.list))
		for i, s := range n.list {
			nodes[i] = identNode{s}
		}
		if n.n == 0 {
			return needAnd(nodes, field)
		}
		return needOr(nodes, field)
	}
	return nil
}

func needAnd(ns []node, field string) map[string]bool {
	var best map[string]bool
	for _, c := range ns {
		if v := need(c, field); v != nil && (best == nil || len(v) < len(best)) {
			best = v
		}
	}
	return best
}

func needOr(ns []node, field string) map[string]bool {
	out := map[string]bool{}
	for _, c := range ns {
		v := need(c, field)
		if v == nil {
			return nil
		}
		for k := range v {
			out[k] = true
		}
	}
	return out
}

func needSearch(s *search, field string) map[string]bool {
	out := map[string]bool{}
	for _, conj := range s.alts {
		found := false
		for _, fc := range conj {
			if fc.field.path != field || fc.neq || (fc.all && len(fc.matchers) > 1) {
				continue
			}
			vals := map[string]bool{}
			ok := true
			for _, m := range fc.matchers {
				sm, isStr := m.(*strMatcher)
				if !isStr {
					ok = false
					break
				}
				for _, p := range sm.pats {
					if !p.exact || p.re != nil {
						ok = false
						break
					}
					vals[strings.ToLower(p.segs[0])] = true
				}
			}
			if ok {
				for v := range vals {
					out[v] = true
				}
				found = true
				break
			}
		}
		if !found {
			return nil
		}
	}
	return out
}

var eventNameField, eventSourceField = fieldOf("eventName"), fieldOf("eventSource")

// candidates returns the indexes of the detection rules that may match e, in
// rule order.
func (s *Set) candidates(e *Event) []int {
	out := make([]int, 0, len(s.always)+4)
	out = append(out, s.always...)
	if len(s.byName) > 0 {
		if vs := e.resolve(eventNameField); len(vs) > 0 {
			out = append(out, s.byName[vs[0].lowered()]...)
		}
	}
	if len(s.bySource) > 0 {
		if vs := e.resolve(eventSourceField); len(vs) > 0 {
			out = append(out, s.bySource[vs[0].lowered()]...)
		}
	}
	slices.Sort(out)
	return out
}

// Eval returns the detection rules e matches and the correlations it
// completes, in rule order (correlations after the detection that completes
// them). st holds the correlation windows; with a nil st only detections are
// evaluated. A detection rule whose every correlation has generate: false
// feeds them without being returned itself, as the Sigma specification says.
func (s *Set) Eval(e *Event, st *State) []Match {
	var out []Match
	for _, i := range s.candidates(e) {
		r := s.det[i]
		if !r.det.match(e) || filtered(s.filters[i], e) {
			continue
		}
		if !s.silent[i] || st == nil {
			out = append(out, Match{Rule: r, EventIDs: []string{e.ID()}, Time: e.Time()})
		}
		if st != nil {
			for _, f := range s.feeds[i] {
				out = s.chain(st, st.add(f, e), out)
			}
		}
	}
	if st != nil && len(s.closing) > 0 {
		out = s.chain(st, st.close(s.closing, e.Time()), out)
	}
	return out
}

// filtered reports whether any of the filters suppresses e.
func filtered(fs []*detection, e *Event) bool {
	for _, f := range fs {
		if f.match(e) {
			return true
		}
	}
	return false
}

// chain appends correlation matches ms to out, feeding each to the
// correlations that refer to it (and their firings to theirs).
func (s *Set) chain(st *State, ms, out []Match) []Match {
	for _, m := range ms {
		if !s.silentCorr[m.Rule] {
			out = append(out, m)
		}
		for _, f := range s.corrFeeds[m.Rule] {
			out = s.chain(st, st.addMatch(f, m), out)
		}
	}
	return out
}
