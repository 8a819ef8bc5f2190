package filterpattern

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits AWS documents for filter patterns.
const (
	MaxLength            = 1024 // characters in a pattern (the API's length constraint)
	maxRegexes           = 2    // regexes in a JSON or space-delimited pattern
	maxSelectorWildcards = 1    // wildcards in one property selector
	maxPatternWildcards  = 3    // wildcard selectors in one JSON pattern
)

// Limits of this implementation, beyond which AWS's behavior is unknown.
const (
	maxIndex      = 1<<31 - 1 // array index
	maxParenDepth = 100       // nested parentheses, to bound recursion
)

// SyntaxError reports a pattern that does not parse, or that AWS would reject.
type SyntaxError struct {
	Pos     int    // byte offset in the pattern
	Msg     string // what is wrong
	pattern string
}

// Error formats the error as "filterpattern: line:column: message", where the
// column counts bytes from 1.
func (e *SyntaxError) Error() string {
	line, col := 1, e.Pos+1
	if e.Pos <= len(e.pattern) {
		before := e.pattern[:e.Pos]
		line += strings.Count(before, "\n")
		col = e.Pos - strings.LastIndexByte(before, '\n')
	}
	return fmt.Sprintf("filterpattern: %d:%d: %s", line, col, e.Msg)
}

// Parse compiles a filter pattern. Errors are *SyntaxError.
func Parse(pattern string) (*Pattern, error) {
	return parse(pattern, MaxLength)
}

// parse compiles pattern, refusing patterns longer than maxLen characters.
func parse(pattern string, maxLen int) (p *Pattern, err error) {
	t := &parser{input: pattern, lex: lex(pattern)}
	defer t.recover(&err)
	for i := 0; i < len(pattern); {
		r, w := utf8.DecodeRuneInString(pattern[i:])
		if r == utf8.RuneError && w == 1 {
			t.errorf(i, "invalid UTF-8")
		}
		i += w
	}
	if n := utf8.RuneCountInString(pattern); n > maxLen {
		pos := 0
		for i := 0; i < maxLen; i++ {
			_, w := utf8.DecodeRuneInString(pattern[pos:])
			pos += w
		}
		t.errorf(pos, "pattern is %d characters long; the limit is %d", n, maxLen)
	}
	return t.parse(), nil
}

// parser holds the state of one parse. Like text/template's, it reports errors by
// panicking with a *SyntaxError that Parse recovers.
type parser struct {
	input     string
	lex       *lexer
	token     [1]item // one token of lookahead
	peekCount int
	regexes   int // regexes so far
	wildcards int // selector wildcards so far
	depth     int // parenthesis nesting
}

// next returns the next token.
func (t *parser) next() item {
	if t.peekCount > 0 {
		t.peekCount--
	} else {
		t.token[0] = t.lex.nextItem()
		if t.token[0].typ == itemError {
			t.errorf(t.token[0].pos, "%s", t.token[0].val)
		}
	}
	return t.token[t.peekCount]
}

// backup backs the input stream up one token.
func (t *parser) backup() {
	t.peekCount++
}

// peek returns but does not consume the next token.
func (t *parser) peek() item {
	if t.peekCount > 0 {
		return t.token[t.peekCount-1]
	}
	t.peekCount = 1
	t.token[0] = t.lex.nextItem()
	if t.token[0].typ == itemError {
		t.errorf(t.token[0].pos, "%s", t.token[0].val)
	}
	return t.token[0]
}

// errorf stops the parse with a *SyntaxError at pos.
func (t *parser) errorf(pos int, format string, args ...any) {
	panic(&SyntaxError{Pos: pos, Msg: fmt.Sprintf(format, args...), pattern: t.input})
}

// unexpected complains about it, which was found where context was expected.
func (t *parser) unexpected(it item, context string) {
	t.errorf(it.pos, "expected %s, found %s", context, it)
}

// recover turns a *SyntaxError panic into an error return.
func (t *parser) recover(errp *error) {
	if e := recover(); e != nil {
		se, ok := e.(*SyntaxError)
		if !ok {
			panic(e)
		}
		*errp = se
	}
}

// pattern:
//
//	<blank>
//	'{' orExpr '}'
//	'[' fields ']'
//	regex
//	terms
func (t *parser) parse() *Pattern {
	p := &Pattern{ellipsis: -1}
	switch it := t.peek(); it.typ {
	case itemEOF:
		p.kind = MatchAll
		return p
	case itemLeftBrace:
		p.kind = JSON
		t.next()
		p.expr = t.orExpr()
		if it := t.next(); it.typ != itemRightBrace {
			t.unexpected(it, "'&&', '||' or '}'")
		}
	case itemLeftBracket:
		p.kind = SpaceDelimited
		t.next()
		t.fields(p)
	default:
		p.kind = Terms
		if it.typ == itemRegex {
			t.next()
			p.reSrc = it.val[1 : len(it.val)-1]
			p.regex = compileRegex(t, p.reSrc, it.pos+1)
			if it := t.peek(); it.typ != itemEOF {
				t.errorf(it.pos, "a regular expression must be the whole pattern")
			}
			break
		}
		p.terms = t.terms()
	}
	if it := t.next(); it.typ != itemEOF {
		t.errorf(it.pos, "unexpected %s after the end of the pattern", it)
	}
	return p
}

// orExpr:
//
//	andExpr { '||' andExpr }
func (t *parser) orExpr() expr {
	var list []expr
	for {
		x := t.andExpr()
		if or, ok := x.(*orExpr); ok {
			list = append(list, or.list...) // (a || b) || c is a || b || c
		} else {
			list = append(list, x)
		}
		if t.peek().typ != itemOr {
			break
		}
		t.next()
	}
	if len(list) == 1 {
		return list[0]
	}
	return &orExpr{list}
}

// andExpr:
//
//	primary { '&&' primary }
func (t *parser) andExpr() expr {
	var list []expr
	for {
		x := t.primary()
		if and, ok := x.(*andExpr); ok {
			list = append(list, and.list...)
		} else {
			list = append(list, x)
		}
		if t.peek().typ != itemAnd {
			break
		}
		t.next()
	}
	if len(list) == 1 {
		return list[0]
	}
	return &andExpr{list}
}

// primary:
//
//	'(' orExpr ')'
//	condition
func (t *parser) primary() expr {
	it := t.next()
	switch it.typ {
	case itemLeftParen:
		t.depth++
		if t.depth > maxParenDepth {
			t.errorf(it.pos, "parentheses nested more than %d deep", maxParenDepth)
		}
		x := t.orExpr()
		if cl := t.next(); cl.typ != itemRightParen {
			t.unexpected(cl, "'&&', '||' or ')'")
		}
		t.depth--
		return x
	case itemRoot:
		t.backup()
		return t.condition()
	}
	t.unexpected(it, "a property selector starting with '$.' or '('")
	return nil
}

// condition:
//
//	selector op value
//	selector 'IS' ( 'NULL' | 'TRUE' | 'FALSE' )
//	selector 'NOT' 'EXISTS'
func (t *parser) condition() expr {
	c := &cond{sel: t.selector()}
	it := t.next()
	switch it.typ {
	case itemOp:
		c.kind = condCompare
		c.op = parseOp(it.val)
		c.val = t.value(c.op, it)
		return c
	case itemWord:
		switch strings.ToUpper(it.val) {
		case "IS":
			arg := t.next()
			switch strings.ToUpper(arg.val) {
			case "NULL":
				c.kind = condIsNull
			case "TRUE":
				c.kind = condIsTrue
			case "FALSE":
				c.kind = condIsFalse
			case "NOT":
				t.errorf(arg.pos, "IS NOT is not supported; use != or NOT EXISTS")
			default:
				t.unexpected(arg, "NULL, TRUE or FALSE after IS")
			}
			return c
		case "NOT":
			arg := t.next()
			if arg.typ != itemWord || strings.ToUpper(arg.val) != "EXISTS" {
				t.unexpected(arg, "EXISTS after NOT")
			}
			c.kind = condNotExists
			return c
		case "EXISTS":
			t.errorf(it.pos, "EXISTS is not supported; use = * to test that a property has a value")
		}
	}
	t.unexpected(it, "a comparison operator, IS or NOT EXISTS after the property selector")
	return nil
}

// selector:
//
//	'$' property { property | index | wildcard }
//
// property:
//
//	'.' name
//	'.' "['" name "']"
//	"['" name "']"
//
// index:
//
//	'[' digits ']'
//
// wildcard:
//
//	'.*'
//	'[*]'
//
// AWS requires a property first: array indexes follow a property.
func (t *parser) selector() selector {
	root := t.next()
	var s selector
	for {
		it := t.next()
		switch it.typ {
		case itemProperty:
			s.steps = append(s.steps, step{kind: stepKey, key: it.val})
		case itemQuotedProperty:
			q := strings.IndexByte(it.val, '\'')
			raw := it.val[q+1 : len(it.val)-2] // drop the quotes and ']'
			s.steps = append(s.steps, step{kind: stepKey, key: unescapeKey(raw)})
		case itemIndex:
			if len(s.steps) == 0 {
				t.errorf(it.pos, "array index must follow a property: use $.name[n]")
			}
			n, err := strconv.Atoi(it.val)
			if err != nil || n > maxIndex {
				t.errorf(it.pos, "array index %s is too large", it.val)
			}
			s.steps = append(s.steps, step{kind: stepIndex, index: n})
		case itemWildcard:
			if len(s.steps) == 0 && it.val != ".*" {
				t.errorf(it.pos, "array index must follow a property: use $.* or $.name[*]")
			}
			s.wildcards++
			t.wildcards++
			if s.wildcards > maxSelectorWildcards {
				t.errorf(it.pos, "a property selector can hold at most %d wildcard", maxSelectorWildcards)
			}
			if t.wildcards > maxPatternWildcards {
				t.errorf(it.pos, "a pattern can hold at most %d wildcard selectors", maxPatternWildcards)
			}
			s.steps = append(s.steps, step{kind: stepAny})
		default:
			t.backup()
			if len(s.steps) == 0 {
				t.errorf(root.pos+1, "expected '.' and a property name after '$'")
			}
			return s
		}
	}
}

// unescapeKey removes the backslashes from a quoted property name.
func unescapeKey(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func parseOp(s string) op {
	switch s {
	case "=":
		return opEq
	case "!=":
		return opNe
	case "<":
		return opLt
	case "<=":
		return opLe
	case ">":
		return opGt
	}
	return opGe
}

// value:
//
//	number
//	string          (after = and != only)
//	word            (after = and != only; unquoted string)
//	regex           (after = and != only)
//
// Relational operators take numbers only.
func (t *parser) value(o op, opItem item) value {
	it := t.next()
	numeric := o != opEq && o != opNe
	switch it.typ {
	case itemWord:
		if isNumber(it.val) {
			return value{kind: valNumber, text: it.val, num: parseNumber(it.val)}
		}
		if !numeric {
			return newString(it.val)
		}
	case itemString:
		if !numeric {
			return newString(unquote(it.val))
		}
	case itemRegex:
		if !numeric {
			t.regexes++
			if t.regexes > maxRegexes {
				t.errorf(it.pos, "a pattern can hold at most %d regular expressions", maxRegexes)
			}
			src := it.val[1 : len(it.val)-1]
			return value{kind: valRegex, text: src, re: compileRegex(t, src, it.pos+1)}
		}
	}
	if numeric {
		t.errorf(it.pos, "expected number after '%s', found %s", opItem.val, it)
	}
	t.errorf(it.pos, "expected value after '%s', found %s", opItem.val, it)
	return value{}
}

// fields:
//
//	field { ',' field } ']'
//
// A field may be empty: it then matches one unnamed field of the line.
func (t *parser) fields(p *Pattern) {
	if it := t.peek(); it.typ == itemRightBracket {
		t.errorf(it.pos, "expected field name, found ']'")
	}
	names := map[string]bool{}
	for {
		f, pos := t.field()
		if f.ellipsis {
			if p.ellipsis >= 0 {
				t.errorf(pos, "a pattern can hold at most one '...'")
			}
			p.ellipsis = len(p.fields)
		}
		if f.name != "" {
			key := strings.ToLower(f.name)
			if names[key] {
				t.errorf(pos, "duplicate field name %q", f.name)
			}
			names[key] = true
		}
		p.fields = append(p.fields, f)
		switch it := t.next(); it.typ {
		case itemComma:
			if t.peek().typ == itemRightBracket && len(p.fields) > 0 {
				// A trailing comma, as in an AWS example, adds an unnamed field.
				p.fields = append(p.fields, field{})
				t.next()
				return
			}
		case itemRightBracket:
			return
		default:
			t.unexpected(it, "',' or ']'")
		}
	}
}

// field:
//
//	<empty>
//	'...'
//	name
//	fieldCond { ( '&&' | '||' ) fieldCond }
//
// All conditions of a field name that field; && binds tighter than ||.
func (t *parser) field() (field, int) {
	it := t.peek()
	switch it.typ {
	case itemComma, itemRightBracket:
		return field{}, it.pos
	case itemWord:
	default:
		t.unexpected(it, "field name")
	}
	t.next()
	if it.val == "..." {
		return field{ellipsis: true}, it.pos
	}
	checkFieldName(t, it)
	f := field{name: it.val}
	if t.peek().typ != itemOp {
		return f, it.pos
	}
	var and []fieldCond
	for name := it; ; name = t.next() {
		and = append(and, t.fieldCond(f.name, name))
		switch t.peek().typ {
		case itemAnd:
			t.next()
			continue
		case itemOr:
			t.next()
			f.alts = append(f.alts, and)
			and = nil
			continue
		}
		f.alts = append(f.alts, and)
		return f, it.pos
	}
}

// fieldCond:
//
//	name op value
//
// The name has been read.
func (t *parser) fieldCond(fieldName string, it item) fieldCond {
	if it.typ != itemWord {
		t.unexpected(it, "field name")
	}
	checkFieldName(t, it)
	if !strings.EqualFold(it.val, fieldName) {
		// AWS rejects conditions on two fields in one position.
		t.errorf(it.pos, "condition on %q inside field %q: each field's conditions must name that field", it.val, fieldName)
	}
	opItem := t.next()
	if opItem.typ != itemOp {
		t.unexpected(opItem, "comparison operator")
	}
	o := parseOp(opItem.val)
	return fieldCond{name: it.val, op: o, val: t.value(o, opItem)}
}

func checkFieldName(t *parser, it item) {
	if !isPropertyName(it.val) {
		t.errorf(it.pos, "invalid field name %q: use letters, digits, '_' and '-'", it.val)
	}
}

// terms:
//
//	term { term }
//
// term:
//
//	[ '?' | '-' ] ( word | string )
func (t *parser) terms() []term {
	var list []term
	for {
		it := t.next()
		var tm term
		switch it.typ {
		case itemEOF:
			return list
		case itemQuestion, itemMinus:
			tm.op = it.val[0]
			it = t.next()
		}
		switch it.typ {
		case itemWord:
			tm.text = it.val
		case itemString:
			tm.text = unquote(it.val)
		case itemRegex:
			t.errorf(it.pos, "a regular expression must be the whole pattern")
		default:
			t.unexpected(it, fmt.Sprintf("term after '%c'", tm.op))
		}
		tm.needle = strings.Trim(tm.text, "*")
		tm.all = strings.TrimSpace(tm.needle) == ""
		list = append(list, tm)
	}
}
