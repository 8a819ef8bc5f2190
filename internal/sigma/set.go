package sigma

import (
	"fmt"
	"maps"
	"math/bits"
	"slices"
	"strings"
	"time"
)

// Set is a compiled set of rules with correlations resolved, ready to evaluate
// events. A Set is read-only after NewSet and safe for concurrent use.
type Set struct {
	rules []*Rule

	det     []*Rule        // applicable detection rules
	index   []fieldIndex   // rules by a value a field must have for them to match
	always  []uint64       // bit set of the det indexes no index narrows
	feeds   [][]feed       // per det index: the correlations it feeds
	filters [][]*detection // per det index: filters whose match suppresses it
	silent  []bool         // per det index: only feeds correlations that do not generate

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
	s := &Set{}
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
	}
	s.buildIndex()
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

// fieldIndex lists detection rules (det indexes) under each value (lowercased)
// that field must have for them to match.
type fieldIndex struct {
	field  field
	rules  map[string][]int
	maxLen int // of the values
}

// buildIndex indexes each detection rule under the values one of its fields
// must equal for it to match, so that Eval tests a record only against the
// rules that can match it. It prefers eventName, then eventSource, then the
// field with the fewest values; a rule no field pins goes in always.
func (s *Set) buildIndex() {
	s.always = make([]uint64, (len(s.det)+63)/64)
	byPath := map[string]int{}
	for i, r := range s.det {
		f, vals := indexField(r.det)
		if vals == nil {
			s.always[i/64] |= 1 << (i % 64)
			continue
		}
		k, ok := byPath[f.path]
		if !ok {
			k = len(s.index)
			byPath[f.path] = k
			s.index = append(s.index, fieldIndex{field: f, rules: map[string][]int{}})
		}
		ix := &s.index[k]
		for _, v := range slices.Sorted(maps.Keys(vals)) {
			ix.rules[v] = append(ix.rules[v], i)
			ix.maxLen = max(ix.maxLen, len(v))
		}
	}
}

// indexField chooses the field d is indexed by and the values it must have,
// or returns nil values when no field pins d to a set of values.
func indexField(d *detection) (field, map[string]bool) {
	var paths []field
	seen := map[string]bool{}
	for _, name := range d.order {
		for _, conj := range d.idents[name].alts {
			for _, fc := range conj {
				if fc.field.path != "" && !seen[fc.field.path] {
					seen[fc.field.path] = true
					paths = append(paths, fc.field)
				}
			}
		}
	}
	rank := func(p string) int {
		switch p {
		case "eventName":
			return 0
		case "eventSource":
			return 1
		}
		return 2
	}
	var best field
	var bestVals map[string]bool
	for _, f := range paths {
		vals := needAll(d, f.path)
		if vals == nil {
			continue
		}
		if bestVals == nil || rank(f.path) < rank(best.path) ||
			rank(f.path) == rank(best.path) && (len(vals) < len(bestVals) || len(vals) == len(bestVals) && f.path < best.path) {
			best, bestVals = f, vals
		}
	}
	return best, bestVals
}

// needAll returns the lowercased values field must equal for any condition
// of d to hold, or nil when they do not all pin field.
func needAll(d *detection, field string) map[string]bool {
	all := map[string]bool{}
	for _, c := range d.cond {
		vals := need(c, field)
		if vals == nil {
			return nil
		}
		for v := range vals {
			all[v] = true
		}
	}
	if len(all) == 0 {
		return nil
	}
	return all
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

// candidates sets in bits the det indexes of the rules that may match e.
func (s *Set) candidates(e *Event, cand []uint64) {
	copy(cand, s.always)
	for k := range s.index {
		ix := &s.index[k]
		vs := e.resolve(ix.field)
		for j := range vs {
			if vs[j].kind == kindNull {
				continue // no string value matches null
			}
			for _, i := range ix.lookup(vs[j].text) {
				cand[i/64] |= 1 << (i % 64)
			}
		}
	}
}

// lookup returns the rules indexed under the lowercased s.
func (ix *fieldIndex) lookup(s string) []int {
	const short = 64
	if !isASCII(s) {
		return ix.rules[strings.ToLower(s)]
	}
	if len(s) > ix.maxLen {
		return nil // lowercasing ASCII keeps the length
	}
	if len(s) > short {
		return ix.rules[strings.ToLower(s)]
	}
	var buf [short]byte
	b := buf[:len(s)]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return ix.rules[string(b)]
}

// Eval returns the detection rules e matches and the correlations it
// completes, in rule order (correlations after the detection that completes
// them). st holds the correlation windows; with a nil st only detections are
// evaluated. A detection rule whose every correlation has generate: false
// feeds them without being returned itself, as the Sigma specification says.
func (s *Set) Eval(e *Event, st *State) []Match {
	var out []Match
	if e.take() {
		defer e.release()
	}
	if cap(e.sc.cand) < len(s.always) {
		e.sc.cand = make([]uint64, len(s.always))
	}
	cand := e.sc.cand[:len(s.always)]
	s.candidates(e, cand)
	// The matches' one-element EventIDs share chunks of one allocation,
	// each with no room to grow into the next.
	var ids []string
	for w, word := range cand {
		for word != 0 {
			i := w*64 + bits.TrailingZeros64(word)
			word &= word - 1
			r := s.det[i]
			if !r.det.match(e) || filtered(s.filters[i], e) {
				continue
			}
			if !s.silent[i] || st == nil {
				if len(ids) == 0 {
					ids = make([]string, 4)
					if out == nil {
						out = make([]Match, 0, 4)
					}
				}
				ids[0] = e.ID()
				out = append(out, Match{Rule: r, EventIDs: ids[:1:1], Time: e.Time()})
				ids = ids[1:]
			}
			if st != nil {
				for _, f := range s.feeds[i] {
					out = s.chain(st, st.add(f, e), out)
				}
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
