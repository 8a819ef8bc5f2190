package sigma

import (
	"net/netip"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"time"
)

// detection is a rule's compiled detection section.
type detection struct {
	idents map[string]*search
	order  []string // identifiers in file order
	cond   []node   // the condition list; any one matching is a match
}

func (d *detection) match(e *Event) bool {
	for _, c := range d.cond {
		if c.eval(e) {
			return true
		}
	}
	return false
}

// search is a search identifier: a disjunction of conjunctions of field
// conditions (a map is one conjunction; a list of maps is several; keywords are
// conjunctions of one keyword condition each).
type search struct {
	name string
	alts [][]*fieldCond
}

func (s *search) match(e *Event) bool {
	for _, conj := range s.alts {
		ok := true
		for _, fc := range conj {
			if !fc.match(e) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// fieldCond is one map entry: a field, its modifiers and its values. The
// values are alternatives, or all required with the all modifier.
type fieldCond struct {
	field    field // path "" for keywords: the whole record text
	all      bool
	neq      bool // holds when the field is present and no matcher matches
	matchers []matcher
}

func (fc *fieldCond) match(e *Event) bool {
	var vs []value
	if fc.field.path == "" {
		vs = e.wholeRecord()
	} else {
		vs = e.resolve(fc.field)
	}
	if fc.neq {
		present := false
		for i := range vs {
			if vs[i].kind != kindNull {
				present = true
				break
			}
		}
		if !present {
			return false
		}
		for _, m := range fc.matchers {
			if m.match(e, vs) {
				return false
			}
		}
		return true
	}
	if fc.all {
		for _, m := range fc.matchers {
			if !m.match(e, vs) {
				return false
			}
		}
		return len(fc.matchers) > 0
	}
	for _, m := range fc.matchers {
		if m.match(e, vs) {
			return true
		}
	}
	return false
}

// matcher decides whether the values a field resolved to satisfy one value of
// a rule. vs may hold expanded array elements after their array.
type matcher interface {
	match(e *Event, vs []value) bool
}

// nullMatcher matches an absent field or a null.
type nullMatcher struct{}

func (nullMatcher) match(_ *Event, vs []value) bool {
	for _, v := range vs {
		if v.kind == kindNull {
			return true
		}
	}
	return len(vs) == 0
}

// existsMatcher is the exists modifier.
type existsMatcher struct{ want bool }

func (m existsMatcher) match(_ *Event, vs []value) bool {
	present := false
	for i := range vs {
		if !vs[i].missing {
			present = true
			break
		}
	}
	return present == m.want
}

// strMatcher matches strings (and the JSON text of other values) against one
// or more patterns (a modifier such as base64offset or windash yields several).
type strMatcher struct {
	pats []*pattern
}

func (m *strMatcher) match(_ *Event, vs []value) bool {
	for i := range vs {
		v := &vs[i]
		if v.kind == kindNull {
			continue
		}
		for _, p := range m.pats {
			if p.match(v) {
				return true
			}
		}
	}
	return false
}

// pattern is a compiled Sigma string: literal segments split at '*', or a
// regular expression when it holds '?'.
type pattern struct {
	cased bool
	ascii bool     // segs are ASCII: compare folding ASCII letters, without lowercasing the value
	exact bool     // no '*': text must equal segs[0]
	segs  []string // split at '*', lowercased unless cased
	re    *regexp.Regexp
}

func (p *pattern) match(v *value) bool {
	if p.re != nil {
		if p.cased {
			return p.re.MatchString(v.text)
		}
		return p.re.MatchString(v.lowered())
	}
	switch {
	case p.cased:
		return globMatch(p.exact, p.segs, v.text, false)
	case p.ascii:
		return globMatch(p.exact, p.segs, v.text, true)
	}
	return globMatch(p.exact, p.segs, v.lowered(), false)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// globMatch matches s against segments separated by '*'. With fold, ASCII
// letters of s match regardless of case (the segments are lowercase ASCII).
func globMatch(exact bool, segs []string, s string, fold bool) bool {
	eq, index := equal, strings.Index
	if fold {
		eq, index = equalFold, indexFold
	}
	if exact {
		return len(s) == len(segs[0]) && eq(s, segs[0])
	}
	first, last := segs[0], segs[len(segs)-1]
	if len(s) < len(first)+len(last) || !eq(s[:len(first)], first) || !eq(s[len(s)-len(last):], last) {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	for _, m := range segs[1 : len(segs)-1] {
		i := index(s, m)
		if i < 0 {
			return false
		}
		s = s[i+len(m):]
	}
	return true
}

func equal(a, b string) bool { return a == b }

// equalFold compares s with lower, a lowercase ASCII string of the same
// length, folding ASCII letters of s.
func equalFold(s, lower string) bool {
	for i := 0; i < len(lower); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// indexFold is strings.Index of lower (lowercase ASCII) in s, folding ASCII
// letters of s. It searches for the first byte of lower that is not a letter
// with IndexByte, and falls back to a byte loop for all-letter strings.
func indexFold(s, lower string) int {
	n := len(lower)
	if n == 0 {
		return 0
	}
	k := -1
	for i := 0; i < n; i++ {
		if c := lower[i]; c < 'a' || c > 'z' {
			k = i
			break
		}
	}
	if k >= 0 {
		c := lower[k]
		for i := k; i-k+n <= len(s); {
			j := strings.IndexByte(s[i:len(s)-n+k+1], c)
			if j < 0 {
				return -1
			}
			i += j
			if equalFold(s[i-k:i-k+n], lower) {
				return i - k
			}
			i++
		}
		return -1
	}
	// All letters: look for the first letter in either case with IndexByte,
	// keeping the next position of each case.
	end := len(s) - n + 1
	if end <= 0 {
		return -1
	}
	lc, uc := lower[0], lower[0]-('a'-'A')
	nl, nu := -2, -2 // next position of each case at or after i; -1: none; -2: unknown
	for i := 0; i < end; {
		if nl != -1 && nl < i {
			if j := strings.IndexByte(s[i:end], lc); j < 0 {
				nl = -1
			} else {
				nl = i + j
			}
		}
		if nu != -1 && nu < i {
			if j := strings.IndexByte(s[i:end], uc); j < 0 {
				nu = -1
			} else {
				nu = i + j
			}
		}
		p := nl
		if p < 0 || (nu >= 0 && nu < p) {
			p = nu
		}
		if p < 0 {
			return -1
		}
		if equalFold(s[p:p+n], lower) {
			return p
		}
		i = p + 1
	}
	return -1
}

// cidrMatcher is the cidr modifier.
type cidrMatcher struct{ p netip.Prefix }

func (m cidrMatcher) match(_ *Event, vs []value) bool {
	for _, v := range vs {
		if v.kind != kindString {
			continue
		}
		a, err := netip.ParseAddr(v.text)
		if err != nil {
			continue
		}
		if m.p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// numMatcher is one of gt, gte, lt, lte: numbers and numeric strings compare
// as numbers.
type numMatcher struct {
	op string
	n  float64
}

func (m numMatcher) match(_ *Event, vs []value) bool {
	for _, v := range vs {
		if v.kind != kindNumber && v.kind != kindString {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v.text), 64)
		if err != nil {
			continue
		}
		if compare(m.op, f, m.n) {
			return true
		}
	}
	return false
}

func compare(op string, a, b float64) bool {
	switch op {
	case "gt":
		return a > b
	case "gte":
		return a >= b
	case "lt":
		return a < b
	case "lte":
		return a <= b
	}
	return a == b
}

// timeMatcher is one of the time-part modifiers (minute, hour, day, week,
// month, year): the field, an RFC 3339 time, has that part equal to n.
type timeMatcher struct {
	part string
	n    int
}

func (m timeMatcher) match(_ *Event, vs []value) bool {
	for _, v := range vs {
		if v.kind != kindString {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v.text)
		if err != nil {
			continue
		}
		t = t.UTC()
		var got int
		switch m.part {
		case "minute":
			got = t.Minute()
		case "hour":
			got = t.Hour()
		case "day":
			got = t.Day()
		case "week":
			_, got = t.ISOWeek()
		case "month":
			got = int(t.Month())
		case "year":
			got = t.Year()
		}
		if got == m.n {
			return true
		}
	}
	return false
}

// refMatcher is the fieldref modifier: the field equals (or, with
// contains/startswith/endswith, contains...) a value of another field.
type refMatcher struct {
	other field
	mode  string // "", contains, startswith, endswith
	cased bool
}

func (m refMatcher) match(e *Event, vs []value) bool {
	others := e.resolve(m.other)
	for i := range vs {
		v := &vs[i]
		if v.kind == kindNull {
			continue
		}
		for j := range others {
			o := &others[j]
			if o.kind == kindNull {
				continue
			}
			a, b := v.text, o.text
			if !m.cased {
				a, b = v.lowered(), o.lowered()
			}
			var ok bool
			switch m.mode {
			case "contains":
				ok = strings.Contains(a, b)
			case "startswith":
				ok = strings.HasPrefix(a, b)
			case "endswith":
				ok = strings.HasSuffix(a, b)
			default:
				ok = a == b
			}
			if ok {
				return true
			}
		}
	}
	return false
}

// reMatcher is the re modifier. need, when not empty, is a set of literals
// one of which any match must contain (lowercased when fold): checking them
// first spares running the expression on most values.
type reMatcher struct {
	re   *regexp.Regexp
	need []string
	fold bool
}

func (m *reMatcher) match(_ *Event, vs []value) bool {
	for i := range vs {
		v := &vs[i]
		if v.kind == kindNull {
			continue
		}
		// Unicode case folding matches some non-ASCII letters that
		// lowercasing does not (ſ and s), so fold only pre-checks ASCII.
		if len(m.need) > 0 && (!m.fold || isASCII(v.text)) {
			found := false
			for _, n := range m.need {
				if m.fold && indexFold(v.text, n) >= 0 || !m.fold && strings.Contains(v.text, n) {
					found = true
					break
				}
			}
			if !found {
				continue
			}
		}
		if m.re.MatchString(v.text) {
			return true
		}
	}
	return false
}

// newReMatcher compiles a regular expression and the literals it requires.
func newReMatcher(src string) (*reMatcher, error) {
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, err
	}
	m := &reMatcher{re: re}
	if tree, err := syntax.Parse(src, syntax.Perl); err == nil {
		need, fold, ok := required(tree.Simplify())
		for _, n := range need {
			ok = ok && n != "" && (!fold || isASCII(n)) // indexFold takes lowercase ASCII
		}
		if ok {
			m.need, m.fold = need, fold
		}
	}
	return m, nil
}

// required returns literals one of which every match of re contains, and
// whether they must be compared case-insensitively (lowercased).
func required(re *syntax.Regexp) (lits []string, fold, ok bool) {
	switch re.Op {
	case syntax.OpLiteral:
		if len(re.Rune) == 0 {
			return nil, false, false
		}
		s := string(re.Rune)
		if re.Flags&syntax.FoldCase != 0 {
			return []string{strings.ToLower(s)}, true, true
		}
		return []string{s}, false, true
	case syntax.OpCapture:
		return required(re.Sub[0])
	case syntax.OpPlus:
		return required(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return required(re.Sub[0])
		}
	case syntax.OpConcat:
		// The longest literal requirement of any part.
		best := -1
		for _, sub := range re.Sub {
			l, f, ok := required(sub)
			if !ok {
				continue
			}
			shortest := len(l[0])
			for _, s := range l {
				shortest = min(shortest, len(s))
			}
			if shortest > best {
				lits, fold, best = l, f, shortest
			}
		}
		return lits, fold, best > 0
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			l, f, ok := required(sub)
			if !ok {
				return nil, false, false
			}
			lits = append(lits, l...)
			fold = fold || f
		}
		if fold {
			for i := range lits {
				lits[i] = strings.ToLower(lits[i])
			}
		}
		return lits, fold, true
	}
	return nil, false, false
}
