package sigma

import (
	"net/netip"
	"regexp"
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
	field    string // "" for keywords: the whole record text
	all      bool
	matchers []matcher
}

func (fc *fieldCond) match(e *Event) bool {
	var vs []value
	if fc.field == "" {
		vs = []value{{kind: kindString, text: e.raw, lower: e.lowerText(), low: true}}
	} else {
		vs = e.resolve(fc.field)
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

func (m existsMatcher) match(_ *Event, vs []value) bool { return (len(vs) > 0) == m.want }

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
	exact bool     // no '*': text must equal segs[0]
	segs  []string // split at '*', lowercased unless cased
	re    *regexp.Regexp
}

func (p *pattern) match(v *value) bool {
	s := v.text
	if !p.cased {
		if p.exact && len(s) != len(p.segs[0]) && isASCII(s) {
			return false
		}
		s = v.lowered()
	}
	if p.re != nil {
		return p.re.MatchString(s)
	}
	return globMatch(p.exact, p.segs, s)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// globMatch matches s against segments separated by '*'.
func globMatch(exact bool, segs []string, s string) bool {
	if exact {
		return s == segs[0]
	}
	first, last := segs[0], segs[len(segs)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	for _, m := range segs[1 : len(segs)-1] {
		i := strings.Index(s, m)
		if i < 0 {
			return false
		}
		s = s[i+len(m):]
	}
	return true
}

// reMatcher is the re modifier.
type reMatcher struct{ re *regexp.Regexp }

func (m reMatcher) match(_ *Event, vs []value) bool {
	for _, v := range vs {
		if v.kind != kindNull && m.re.MatchString(v.text) {
			return true
		}
	}
	return false
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
	other string
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
