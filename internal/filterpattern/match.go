package filterpattern

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Match reports whether ev matches p.
func (p *Pattern) Match(ev *Event) bool {
	switch p.kind {
	case MatchAll:
		return true
	case Terms:
		return p.matchTerms(ev.msg)
	case JSON:
		d := ev.doc()
		return d != nil && p.expr.eval(d)
	case SpaceDelimited:
		return p.matchFields(ev)
	}
	return false
}

// matchTerms: every required term is in msg and no excluded term is. Optional
// ('?') terms count only in a pattern made of nothing else, where any one of
// them will do; AWS ignores them when other terms are present.
func (p *Pattern) matchTerms(msg string) bool {
	if p.regex != nil {
		return p.regex.MatchString(msg)
	}
	optionalOnly := true
	for i := range p.terms {
		if p.terms[i].op != '?' {
			optionalOnly = false
			break
		}
	}
	if optionalOnly {
		for i := range p.terms {
			if p.terms[i].in(msg) {
				return true
			}
		}
		return false
	}
	for i := range p.terms {
		t := &p.terms[i]
		switch t.op {
		case 0:
			if !t.in(msg) {
				return false
			}
		case '-':
			if t.in(msg) {
				return false
			}
		}
	}
	return true
}

// in reports whether the term occurs in msg. Matching is case sensitive and
// finds the term anywhere, also inside longer words.
func (t *term) in(msg string) bool {
	return t.all || strings.Contains(msg, t.needle)
}

func (e *orExpr) eval(d *jsonDoc) bool {
	for _, x := range e.list {
		if x.eval(d) {
			return true
		}
	}
	return false
}

func (e *andExpr) eval(d *jsonDoc) bool {
	for _, x := range e.list {
		if !x.eval(d) {
			return false
		}
	}
	return true
}

func (c *cond) eval(d *jsonDoc) bool {
	found := c.find(d, 0, c.sel.steps)
	if c.kind == condNotExists {
		return !found
	}
	return found
}

// find reports whether a node reached from node n by steps passes c's test.
// A wildcard step tries every member; the condition holds if any node passes.
func (c *cond) find(d *jsonDoc, n int32, steps []step) bool {
	for len(steps) > 0 {
		node := &d.nodes[n]
		st := &steps[0]
		steps = steps[1:]
		switch st.kind {
		case stepKey:
			if node.kind != jsonObject {
				return false
			}
			n = d.lookup(n, st.key)
		case stepIndex:
			if node.kind != jsonArray {
				return false
			}
			n = d.element(n, st.index)
		case stepAny:
			if node.kind != jsonObject && node.kind != jsonArray {
				return false
			}
			for ch := node.first; ch >= 0; ch = d.nodes[ch].next {
				if c.find(d, ch, steps) {
					return true
				}
			}
			return false
		}
		if n < 0 {
			return false
		}
	}
	return c.test(&d.nodes[n])
}

// test applies c to one selected node. For NOT EXISTS it only records that the
// node exists. Comparisons follow the type rules in the package comment.
func (c *cond) test(n *jsonNode) bool {
	switch c.kind {
	case condNotExists:
		return true
	case condIsNull:
		return n.kind == jsonNull
	case condIsTrue:
		return n.kind == jsonTrue
	case condIsFalse:
		return n.kind == jsonFalse
	}
	v := &c.val
	switch {
	case v.kind == valNumber:
		if n.kind != jsonNumber {
			return false
		}
		return compare(c.op, parseNumber(n.str), v.num)
	case v.wild():
		if n.kind != jsonString && n.kind != jsonNumber {
			return false
		}
	default:
		if n.kind != jsonString {
			return false
		}
	}
	return v.matchText(n.str) == (c.op == opEq)
}

// compare applies a numeric comparison.
func compare(o op, a, b float64) bool {
	switch o {
	case opEq:
		return a == b
	case opNe:
		return a != b
	case opLt:
		return a < b
	case opLe:
		return a <= b
	case opGt:
		return a > b
	case opGe:
		return a >= b
	}
	return false
}

// matchFields matches a space-delimited pattern: the line must have a field for
// every pattern field, and every condition must hold on its field.
func (p *Pattern) matchFields(ev *Event) bool {
	toks := ev.fields()
	if !p.fits(toks) {
		return false
	}
	for i := range p.fields {
		f := &p.fields[i]
		if len(f.alts) == 0 {
			continue
		}
		if !f.match(p.fieldText(ev.msg, toks, i)) {
			return false
		}
	}
	return true
}

// fits reports whether a line split into toks has enough fields for p.
func (p *Pattern) fits(toks []token) bool {
	if p.ellipsis >= 0 {
		return len(toks) >= len(p.fields)-1
	}
	return len(toks) >= len(p.fields)
}

// fieldText returns the text of pattern field i, which must not be the
// ellipsis. Fields before the ellipsis take the first tokens, fields after it
// the last ones. Without an ellipsis the last field takes the rest of the line,
// which is why AWS asks for a trailing field, as in [w1=ERROR, w2].
func (p *Pattern) fieldText(msg string, toks []token, i int) string {
	switch {
	case p.ellipsis >= 0 && i > p.ellipsis:
		return toks[len(toks)-(len(p.fields)-i)].text
	case p.ellipsis < 0 && i == len(p.fields)-1 && len(toks) > len(p.fields):
		return strings.TrimRight(msg[toks[i].start:], " \t\n\r\f\v")
	}
	return toks[i].text
}

// match evaluates the field's conditions: || of && groups.
func (f *field) match(s string) bool {
	for _, and := range f.alts {
		ok := true
		for i := range and {
			if !and[i].match(s) {
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

// match applies one comparison to a field. A number compares numerically and
// holds only if the field is a number; strings and regexes compare the text.
func (c *fieldCond) match(s string) bool {
	if c.val.kind == valNumber {
		if !isNumber(s) {
			return false
		}
		return compare(c.op, parseNumber(s), c.val.num)
	}
	return c.val.matchText(s) == (c.op == opEq)
}

// Value extracts a metric value or dimension reference from ev: a property
// selector such as "$.latency" for a JSON pattern, or "$name" (a named field)
// or "$3" (the third field) for a space-delimited pattern. It reports false
// when the reference does not apply to p's kind, does not parse, or selects
// nothing in ev. A JSON reference must select a string, number or boolean.
// Value does not check that ev matches p.
func (p *Pattern) Value(ev *Event, ref string) (string, bool) {
	switch p.kind {
	case JSON:
		sel, ok := p.refs.selector(ref)
		if !ok {
			return "", false
		}
		d := ev.doc()
		if d == nil {
			return "", false
		}
		return firstScalar(d, 0, sel.steps)
	case SpaceDelimited:
		if len(ref) < 2 || ref[0] != '$' {
			return "", false
		}
		toks := ev.fields()
		if !p.fits(toks) {
			return "", false
		}
		name := ref[1:]
		if n, err := strconv.Atoi(name); err == nil && name[0] != '+' && name[0] != '-' {
			return p.slotText(ev.msg, toks, n)
		}
		for i := range p.fields {
			if !p.fields[i].ellipsis && p.fields[i].name != "" && strings.EqualFold(p.fields[i].name, name) {
				return p.fieldText(ev.msg, toks, i), true
			}
		}
	}
	return "", false
}

// slotText returns the n-th field of the line (from 1) as the pattern sees it:
// the ellipsis contributes one slot per field it covers.
func (p *Pattern) slotText(msg string, toks []token, n int) (string, bool) {
	if n < 1 {
		return "", false
	}
	if p.ellipsis < 0 {
		if n > len(p.fields) {
			return "", false
		}
		return p.fieldText(msg, toks, n-1), true
	}
	if n > len(toks) {
		return "", false
	}
	return toks[n-1].text, true
}

// firstScalar returns the first string, number or boolean selected by steps.
func firstScalar(d *jsonDoc, n int32, steps []step) (string, bool) {
	for i, st := range steps {
		node := &d.nodes[n]
		switch st.kind {
		case stepKey:
			if node.kind != jsonObject {
				return "", false
			}
			n = d.lookup(n, st.key)
		case stepIndex:
			if node.kind != jsonArray {
				return "", false
			}
			n = d.element(n, st.index)
		case stepAny:
			if node.kind != jsonObject && node.kind != jsonArray {
				return "", false
			}
			for ch := node.first; ch >= 0; ch = d.nodes[ch].next {
				if s, ok := firstScalar(d, ch, steps[i+1:]); ok {
					return s, true
				}
			}
			return "", false
		}
		if n < 0 {
			return "", false
		}
	}
	switch node := &d.nodes[n]; node.kind {
	case jsonString, jsonNumber:
		return node.str, true
	case jsonTrue:
		return "true", true
	case jsonFalse:
		return "false", true
	}
	return "", false
}

// refCache holds the selectors compiled for Value, so a metric filter does not
// parse its reference for every event.
type refCache struct {
	m sync.Map     // string -> selector; only valid references are kept
	n atomic.Int32 // entries in m
}

// maxRefs bounds the cache: a metric filter has one value and a few dimensions.
const maxRefs = 32

func (c *refCache) selector(ref string) (selector, bool) {
	if v, ok := c.m.Load(ref); ok {
		return v.(selector), true
	}
	s, ok := parseRef(ref)
	if ok && c.n.Load() < maxRefs {
		if _, loaded := c.m.LoadOrStore(ref, s); !loaded {
			c.n.Add(1)
		}
	}
	return s, ok
}

// parseRef parses a metric value reference as a property selector.
func parseRef(ref string) (s selector, ok bool) {
	if !strings.HasPrefix(ref, "$") || len(ref) > MaxLength {
		return selector{}, false
	}
	defer func() {
		if e := recover(); e != nil {
			if _, isSyntax := e.(*SyntaxError); !isSyntax {
				panic(e)
			}
			ok = false
		}
	}()
	t := &parser{input: ref, lex: &lexer{input: ref, mode: modeJSON}}
	t.wildcards = -1 << 30 // the pattern quota does not apply to references
	s = t.selector()
	if t.next().typ != itemEOF {
		return selector{}, false
	}
	return s, true
}

// FieldRefs lists the value references of a space-delimited pattern's fields
// in order: "$name" for a named field, "$N" (from 1) for an unnamed one; "..."
// fields have none. Other kinds have no fields.
func (p *Pattern) FieldRefs() []string {
	var refs []string
	for i, f := range p.fields {
		switch {
		case f.ellipsis:
		case f.name != "":
			refs = append(refs, "$"+f.name)
		default:
			refs = append(refs, "$"+strconv.Itoa(i+1))
		}
	}
	return refs
}

// Requirement returns a condition that every event p matches satisfies: the
// property ref names (a selector without wildcards, such as
// "$.userIdentity.userName") holds exactly the JSON string value. A caller
// with many patterns can index them by that value, read the property of an
// event once (Value), and evaluate only the patterns it can satisfy. ok is
// false when p states no such condition at its top level (an || pattern,
// wildcards, numbers, terms, space-delimited patterns).
func (p *Pattern) Requirement() (ref, value string, ok bool) {
	if p.kind != JSON {
		return "", "", false
	}
	exact := func(e expr) (string, string, bool) {
		c, isCond := e.(*cond)
		if !isCond || c.kind != condCompare || c.op != opEq || c.val.kind != valString || c.val.wild() || c.sel.wildcards > 0 {
			return "", "", false
		}
		var b strings.Builder
		c.sel.write(&b)
		return b.String(), c.val.needle, true
	}
	switch e := p.expr.(type) {
	case *andExpr:
		for _, x := range e.list {
			if ref, v, ok := exact(x); ok {
				return ref, v, true
			}
		}
		return "", "", false
	default:
		return exact(e)
	}
}
