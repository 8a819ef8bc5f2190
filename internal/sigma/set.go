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
	feeds    [][]feed // per det index: the correlations it feeds
	silent   []bool   // per det index: only feeds correlations that do not generate

	corrs   []*Rule // applicable correlation rules
	closing []*Rule // those whose condition is lt or lte: they fire when a window closes
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
// correlations whose rules cannot be found, and correlations of correlations
// (not supported); the rules concerned are left out and the others kept. A
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
	kept := s.rules[:0]
	for _, r := range s.rules {
		c := r.Correlation
		if c == nil {
			kept = append(kept, r)
			continue
		}
		c.base = c.base[:0]
		var bad string
		applies := true
		for _, ref := range c.Rules {
			b := byID[ref]
			if b == nil {
				b = byName[ref]
			}
			switch {
			case b == nil:
				bad = fmt.Sprintf("correlation: rule %q not found (by id or name)", ref)
			case b.Correlation != nil:
				bad = fmt.Sprintf("correlation: rule %q is a correlation; correlations of correlations are not supported", ref)
			case !b.Applies:
				applies = false
			}
			if bad != "" {
				break
			}
			c.base = append(c.base, b)
		}
		if bad != "" {
			errs = append(errs, &Error{File: r.File, Line: r.Line, Msg: bad})
			continue
		}
		r.Applies = applies
		kept = append(kept, r)
	}
	s.rules = kept

	detIndex := map[*Rule]int{}
	for _, r := range s.rules {
		if r.Correlation != nil || !r.Applies {
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
	s.feeds = make([][]feed, len(s.det))
	s.silent = make([]bool, len(s.det))
	generates := make([]bool, len(s.det))
	fed := make([]bool, len(s.det))
	for _, r := range s.rules {
		c := r.Correlation
		if c == nil || !r.Applies {
			continue
		}
		s.corrs = append(s.corrs, r)
		if c.Op == "lt" || c.Op == "lte" {
			s.closing = append(s.closing, r)
		}
		for idx, b := range c.base {
			i := detIndex[b]
			s.feeds[i] = append(s.feeds[i], feed{corr: r, idx: idx})
			fed[i] = true
			generates[i] = generates[i] || c.Generate
		}
	}
	for i := range s.det {
		s.silent[i] = fed[i] && !generates[i]
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
			if fc.field != field || (fc.all && len(fc.matchers) > 1) {
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

// candidates returns the indexes of the detection rules that may match e, in
// rule order.
func (s *Set) candidates(e *Event) []int {
	out := make([]int, 0, len(s.always)+4)
	out = append(out, s.always...)
	if len(s.byName) > 0 {
		if vs := e.resolve("eventName"); len(vs) > 0 {
			out = append(out, s.byName[vs[0].lowered()]...)
		}
	}
	if len(s.bySource) > 0 {
		if vs := e.resolve("eventSource"); len(vs) > 0 {
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
		if !r.det.match(e) {
			continue
		}
		if !s.silent[i] || st == nil {
			out = append(out, Match{Rule: r, EventIDs: []string{e.ID()}, Time: e.Time()})
		}
		if st != nil {
			for _, f := range s.feeds[i] {
				out = append(out, st.add(f, e)...)
			}
		}
	}
	if st != nil && len(s.closing) > 0 {
		out = append(out, st.close(s.closing, e.Time())...)
	}
	return out
}
