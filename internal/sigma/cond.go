package sigma

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// node is a compiled condition.
type node interface {
	eval(e *Event) bool
}

type identNode struct{ s *search }

func (n identNode) eval(e *Event) bool { return n.s.match(e) }

type andNode []node

func (n andNode) eval(e *Event) bool {
	for _, c := range n {
		if !c.eval(e) {
			return false
		}
	}
	return true
}

type orNode []node

func (n orNode) eval(e *Event) bool {
	for _, c := range n {
		if c.eval(e) {
			return true
		}
	}
	return false
}

type notNode struct{ n node }

func (n notNode) eval(e *Event) bool { return !n.n.eval(e) }

// ofNode is "N of pattern": at least n of the searches match (n == 0: all).
type ofNode struct {
	n    int
	list []*search
}

func (o ofNode) eval(e *Event) bool {
	count := 0
	for _, s := range o.list {
		if s.match(e) {
			count++
			if o.n > 0 && count >= o.n {
				return true
			}
		} else if o.n == 0 {
			return false
		}
	}
	return o.n == 0
}

// condErr is a condition error at a byte offset in the condition.
type condErr struct {
	pos int
	msg string
}

// Condition tokens.
const (
	tEOF = iota
	tIdent
	tNumber
	tAnd
	tOr
	tNot
	tOf
	tAll
	tThem
	tLParen
	tRParen
	tPipe
	tBad
)

type ctoken struct {
	typ  int
	text string
	pos  int
}

// lexCondition splits a condition into tokens. Keywords are case-insensitive.
func lexCondition(s string) []ctoken {
	var toks []ctoken
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
		if i >= len(s) {
			return append(toks, ctoken{typ: tEOF, pos: i})
		}
		switch s[i] {
		case '(':
			toks = append(toks, ctoken{typ: tLParen, text: "(", pos: i})
			i++
			continue
		case ')':
			toks = append(toks, ctoken{typ: tRParen, text: ")", pos: i})
			i++
			continue
		case '|':
			toks = append(toks, ctoken{typ: tPipe, text: "|", pos: i})
			i++
			continue
		}
		start := i
		for i < len(s) && !strings.ContainsRune(" \t\r\n()|", rune(s[i])) {
			i++
		}
		w := s[start:i]
		t := ctoken{typ: tIdent, text: w, pos: start}
		switch strings.ToLower(w) {
		case "and":
			t.typ = tAnd
		case "or":
			t.typ = tOr
		case "not":
			t.typ = tNot
		case "of":
			t.typ = tOf
		case "all":
			t.typ = tAll
		case "them":
			t.typ = tThem
		default:
			if _, err := strconv.Atoi(w); err == nil {
				t.typ = tNumber
			}
		}
		toks = append(toks, t)
	}
}

// condParser parses one condition against a detection's identifiers.
type condParser struct {
	toks  []ctoken
	i     int
	det   *detection
	depth int
}

// maxCondDepth bounds nesting of parentheses and not, so that a hostile
// condition cannot exhaust the stack.
const maxCondDepth = 100

// parseCondition parses a condition. The grammar is in doc.go.
func parseCondition(s string, det *detection) (node, *condErr) {
	p := &condParser{toks: lexCondition(s), det: det}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.typ != tEOF {
		if t.typ == tPipe {
			return nil, &condErr{t.pos, "aggregations (| count() ...) are deprecated in Sigma; write a correlation rule"}
		}
		return nil, &condErr{t.pos, fmt.Sprintf("unexpected %q", t.text)}
	}
	return n, nil
}

func (p *condParser) peek() ctoken { return p.toks[p.i] }
func (p *condParser) next() ctoken {
	t := p.toks[p.i]
	if t.typ != tEOF {
		p.i++
	}
	return t
}

// or:
//
//	orExpr = andExpr { 'or' andExpr }
func (p *condParser) or() (node, *condErr) {
	n, err := p.and()
	if err != nil {
		return nil, err
	}
	list := orNode{n}
	for p.peek().typ == tOr {
		p.next()
		m, err := p.and()
		if err != nil {
			return nil, err
		}
		list = append(list, m)
	}
	if len(list) == 1 {
		return n, nil
	}
	return list, nil
}

// and:
//
//	andExpr = notExpr { 'and' notExpr }
func (p *condParser) and() (node, *condErr) {
	n, err := p.not()
	if err != nil {
		return nil, err
	}
	list := andNode{n}
	for p.peek().typ == tAnd {
		p.next()
		m, err := p.not()
		if err != nil {
			return nil, err
		}
		list = append(list, m)
	}
	if len(list) == 1 {
		return n, nil
	}
	return list, nil
}

// not:
//
//	notExpr = 'not' notExpr | primary
func (p *condParser) not() (node, *condErr) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxCondDepth {
		return nil, &condErr{p.peek().pos, "condition nested too deeply"}
	}
	if p.peek().typ == tNot {
		p.next()
		n, err := p.not()
		if err != nil {
			return nil, err
		}
		return notNode{n}, nil
	}
	return p.primary()
}

// primary:
//
//	primary = '(' orExpr ')' | quantity 'of' target | identifier
//	quantity = number | 'all'
//	target   = 'them' | pattern
func (p *condParser) primary() (node, *condErr) {
	t := p.next()
	switch t.typ {
	case tLParen:
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.typ != tRParen {
			return nil, &condErr{c.pos, fmt.Sprintf("want ) to close the ( at offset %d, got %s", t.pos, describe(c))}
		}
		return n, nil
	case tNumber, tAll:
		n := 0
		if t.typ == tNumber {
			n, _ = strconv.Atoi(t.text)
			if n < 1 {
				return nil, &condErr{t.pos, fmt.Sprintf("%s of: the count must be at least 1", t.text)}
			}
		}
		if o := p.next(); o.typ != tOf {
			return nil, &condErr{o.pos, fmt.Sprintf("want of after %s, got %s", t.text, describe(o))}
		}
		tg := p.next()
		var list []*search
		switch tg.typ {
		case tThem:
			for _, name := range p.det.order {
				if !strings.HasPrefix(name, "_") {
					list = append(list, p.det.idents[name])
				}
			}
		case tIdent, tNumber, tAll, tOf:
			for _, name := range p.det.order {
				if ok, _ := path.Match(tg.text, name); ok {
					list = append(list, p.det.idents[name])
				}
			}
			if len(list) == 0 {
				return nil, &condErr{tg.pos, fmt.Sprintf("%q matches no search identifier", tg.text)}
			}
		default:
			return nil, &condErr{tg.pos, fmt.Sprintf("want them or a search identifier pattern after of, got %s", describe(tg))}
		}
		if len(list) == 0 {
			return nil, &condErr{tg.pos, "them: the detection has no search identifiers"}
		}
		return ofNode{n: n, list: list}, nil
	case tIdent:
		s, ok := p.det.idents[t.text]
		if !ok {
			if strings.ContainsAny(t.text, "*?[") {
				return nil, &condErr{t.pos, fmt.Sprintf("a pattern such as %q needs 1 of or all of before it", t.text)}
			}
			return nil, &condErr{t.pos, fmt.Sprintf("unknown search identifier %q", t.text)}
		}
		return identNode{s}, nil
	}
	return nil, &condErr{t.pos, fmt.Sprintf("want a search identifier, not, ( or N of, got %s", describe(t))}
}

func describe(t ctoken) string {
	if t.typ == tEOF {
		return "end of condition"
	}
	return strconv.Quote(t.text)
}
