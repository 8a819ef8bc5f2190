package filterpattern

import (
	"regexp"
	"strconv"
	"strings"
)

// Kind is the kind of a filter pattern, fixed by its first non-space character.
type Kind int

const (
	MatchAll       Kind = iota // empty or blank pattern: every event matches
	Terms                      // unstructured terms, quoted phrases or one %regex%
	JSON                       // { conditions on property selectors }
	SpaceDelimited             // [ fields of a space-delimited line ]
)

func (k Kind) String() string {
	switch k {
	case MatchAll:
		return "MatchAll"
	case Terms:
		return "Terms"
	case JSON:
		return "JSON"
	case SpaceDelimited:
		return "SpaceDelimited"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Pattern is a compiled filter pattern. It is immutable and safe for concurrent use.
type Pattern struct {
	kind Kind

	// Terms
	terms []term
	regex *regexp.Regexp // standalone %regex%; terms is then empty
	reSrc string

	// JSON
	expr expr

	// SpaceDelimited
	fields   []field
	ellipsis int // index of the "..." field, or -1

	refs refCache // compiled metric value references, for Value
}

// Kind reports the kind of p.
func (p *Pattern) Kind() Kind { return p.kind }

// String prints p canonically: one space between terms and around operators,
// minimal parentheses, strings quoted unless they are plain words. Parsing the
// result yields an equivalent pattern that prints the same. The canonical form
// can be longer than the text p was parsed from.
func (p *Pattern) String() string {
	var b strings.Builder
	switch p.kind {
	case Terms:
		if p.regex != nil {
			b.WriteString("%" + p.reSrc + "%")
			break
		}
		for i, t := range p.terms {
			if i > 0 {
				b.WriteByte(' ')
			}
			t.write(&b)
		}
	case JSON:
		b.WriteString("{ ")
		p.expr.write(&b)
		b.WriteString(" }")
	case SpaceDelimited:
		b.WriteByte('[')
		for i, f := range p.fields {
			if i > 0 {
				b.WriteString(", ")
			}
			f.write(&b)
		}
		b.WriteByte(']')
	}
	return b.String()
}

// term is one unstructured term or quoted phrase.
type term struct {
	op     byte   // 0 (required), '?' (optional) or '-' (excluded)
	text   string // the term as written, quotes and escapes removed
	needle string // text without the leading and trailing '*' wildcards
	all    bool   // needle is blank: the term is in every event
}

func (t term) write(b *strings.Builder) {
	if t.op != 0 {
		b.WriteByte(t.op)
	}
	if isPlainWord(t.text, false) {
		b.WriteString(t.text)
		return
	}
	writeQuoted(b, t.text)
}

// expr is a node of a JSON pattern's boolean expression.
type expr interface {
	eval(d *jsonDoc) bool
	write(b *strings.Builder)
}

// orExpr holds when any of its operands holds. Operands are never orExprs.
type orExpr struct{ list []expr }

// andExpr holds when all of its operands hold. Operands are never andExprs.
type andExpr struct{ list []expr }

func (e *orExpr) write(b *strings.Builder) {
	for i, x := range e.list {
		if i > 0 {
			b.WriteString(" || ")
		}
		x.write(b)
	}
}

func (e *andExpr) write(b *strings.Builder) {
	for i, x := range e.list {
		if i > 0 {
			b.WriteString(" && ")
		}
		if _, ok := x.(*orExpr); ok {
			b.WriteByte('(')
			x.write(b)
			b.WriteByte(')')
			continue
		}
		x.write(b)
	}
}

// condKind is what a JSON condition tests.
type condKind uint8

const (
	condCompare   condKind = iota // selector op value
	condIsNull                    // selector IS NULL
	condIsTrue                    // selector IS TRUE
	condIsFalse                   // selector IS FALSE
	condNotExists                 // selector NOT EXISTS
)

// cond is one JSON condition.
type cond struct {
	kind condKind
	sel  selector
	op   op
	val  value
}

func (c *cond) write(b *strings.Builder) {
	c.sel.write(b)
	switch c.kind {
	case condCompare:
		b.WriteByte(' ')
		b.WriteString(c.op.String())
		b.WriteByte(' ')
		c.val.write(b)
	case condIsNull:
		b.WriteString(" IS NULL")
	case condIsTrue:
		b.WriteString(" IS TRUE")
	case condIsFalse:
		b.WriteString(" IS FALSE")
	case condNotExists:
		b.WriteString(" NOT EXISTS")
	}
}

// stepKind is the kind of one step of a property selector.
type stepKind uint8

const (
	stepKey   stepKind = iota // .name or .['name']
	stepIndex                 // [n]
	stepAny                   // .* or [*]: every member or element
)

type step struct {
	kind  stepKind
	key   string
	index int
}

// selector is a compiled property selector such as $.userIdentity.userName.
type selector struct {
	steps     []step
	wildcards int
}

func (s selector) write(b *strings.Builder) {
	b.WriteByte('$')
	for i, st := range s.steps {
		switch st.kind {
		case stepKey:
			if isPropertyName(st.key) {
				b.WriteByte('.')
				b.WriteString(st.key)
				break
			}
			b.WriteString(".['")
			for j := 0; j < len(st.key); j++ {
				if c := st.key[j]; c == '\'' || c == '\\' {
					b.WriteByte('\\')
				}
				b.WriteByte(st.key[j])
			}
			b.WriteString("']")
		case stepIndex:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(st.index))
			b.WriteByte(']')
		case stepAny:
			if i == 0 {
				b.WriteString(".*")
			} else {
				b.WriteString("[*]")
			}
		}
	}
}

func (s selector) String() string {
	var b strings.Builder
	s.write(&b)
	return b.String()
}

func isPropertyName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameRune(rune(s[i])) {
			return false
		}
	}
	return true
}

// op is a comparison operator.
type op uint8

const (
	opEq op = iota
	opNe
	opLt
	opLe
	opGt
	opGe
)

var opNames = [...]string{opEq: "=", opNe: "!=", opLt: "<", opLe: "<=", opGt: ">", opGe: ">="}

func (o op) String() string { return opNames[o] }

// valueKind is the type of a comparison's right-hand side. It decides which
// values of the event it can match; see the package comment.
type valueKind uint8

const (
	valString valueKind = iota // "text" or text, possibly with * wildcards at either end
	valNumber                  // unquoted number, compared numerically
	valRegex                   // %regex%
)

// value is the right-hand side of a comparison.
type value struct {
	kind   valueKind
	text   string  // string: content as written (wildcards included); number: literal; regex: source
	needle string  // string: text without leading and trailing '*'
	prefix bool    // string: a leading '*' matches any prefix
	suffix bool    // string: a trailing '*' matches any suffix
	num    float64 // number
	re     *regexp.Regexp
}

// wild reports whether v is a pattern (wildcard or regex) rather than an exact
// value. Patterns match the text of numbers too; exact strings match only strings.
func (v *value) wild() bool {
	return v.kind == valRegex || v.prefix || v.suffix
}

// matchText matches a string or regex value against text.
func (v *value) matchText(s string) bool {
	if v.kind == valRegex {
		return v.re.MatchString(s)
	}
	switch {
	case v.prefix && v.suffix:
		return strings.Contains(s, v.needle)
	case v.prefix:
		return strings.HasSuffix(s, v.needle)
	case v.suffix:
		return strings.HasPrefix(s, v.needle)
	}
	return s == v.needle
}

func (v *value) write(b *strings.Builder) {
	switch v.kind {
	case valNumber:
		b.WriteString(v.text)
	case valRegex:
		b.WriteString("%" + v.text + "%")
	default:
		if isPlainWord(v.text, true) && !isNumber(v.text) {
			b.WriteString(v.text)
			return
		}
		writeQuoted(b, v.text)
	}
}

// newString builds a string value, splitting off its wildcards. AWS documents
// '*' as a wildcard at the start or end of a value only; inside it is literal.
func newString(s string) value {
	v := value{kind: valString, text: s}
	core := strings.TrimLeft(s, "*")
	v.prefix = len(core) < len(s)
	trimmed := strings.TrimRight(core, "*")
	v.suffix = len(trimmed) < len(core)
	v.needle = trimmed
	return v
}

// field is one comma-separated field of a space-delimited pattern.
type field struct {
	name     string // "" for an unnamed field
	ellipsis bool   // "...": any number of fields
	alts     [][]fieldCond
}

// fieldCond is one comparison on a space-delimited field.
type fieldCond struct {
	name string // as written; equal to the field's name up to case
	op   op
	val  value
}

func (f field) write(b *strings.Builder) {
	switch {
	case f.ellipsis:
		b.WriteString("...")
	case len(f.alts) == 0:
		b.WriteString(f.name)
	default:
		for i, and := range f.alts {
			if i > 0 {
				b.WriteString(" || ")
			}
			for j, c := range and {
				if j > 0 {
					b.WriteString(" && ")
				}
				b.WriteString(c.name)
				b.WriteByte(' ')
				b.WriteString(c.op.String())
				b.WriteByte(' ')
				c.val.write(b)
			}
		}
	}
}

// isPlainWord reports whether s can be printed without quotes: letters, digits
// and '_' (the characters AWS lets go unquoted), optionally with '*' wildcards at
// either end when star is set.
func isPlainWord(s string, star bool) bool {
	if star {
		s = strings.Trim(s, "*")
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// writeQuoted writes s in double quotes. A backslash is escaped only where an
// unescaped one would change the meaning: before '"' or '\', and at the end.
func writeQuoted(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\' && (i+1 == len(s) || s[i+1] == '"' || s[i+1] == '\\'):
			b.WriteString(`\\`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// unquote removes the quotes from a lexed string. Inside, \" and \\ stand for
// '"' and '\'; any other backslash is kept as written, so "C:\temp" means C:\temp.
func unquote(s string) string {
	s = s[1 : len(s)-1]
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// isNumber reports whether s is a number as AWS documents it: an integer or
// decimal with an optional sign, optionally followed by e and a signed integer.
func isNumber(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := func() bool {
		j := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		return i > j
	}
	if !digits() {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == len(s)
}

// parseNumber parses a string accepted by isNumber. Out-of-range values become
// ±Inf or 0, which still compare sensibly.
func parseNumber(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}
