package sigma

import (
	"encoding/base64"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf16"

	"gopkg.in/yaml.v3"
)

// detection parses a rule's detection section.
func (d *doc) detection(v *yaml.Node) (*detection, *Error) {
	if v.Kind != yaml.MappingNode {
		return nil, d.errAt(v, "detection: want a mapping of search identifiers and a condition")
	}
	det := &detection{idents: map[string]*search{}}
	var condNode *yaml.Node
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		switch k.Value {
		case "condition":
			condNode = val
			continue
		case "timeframe":
			return nil, d.errAt(k, "detection.timeframe: aggregations are deprecated in Sigma; write a correlation rule")
		}
		if _, dup := det.idents[k.Value]; dup {
			return nil, d.errAt(k, "detection: search identifier %q given twice", k.Value)
		}
		if strings.ContainsAny(k.Value, " \t()|*") || k.Value == "" {
			return nil, d.errAt(k, "detection: %q is not a valid search identifier", k.Value)
		}
		s, err := d.search(k.Value, val)
		if err != nil {
			return nil, err
		}
		det.idents[k.Value] = s
		det.order = append(det.order, k.Value)
	}
	if condNode == nil {
		return nil, d.errAt(v, "detection.condition is required")
	}
	var conds []*yaml.Node
	switch condNode.Kind {
	case yaml.ScalarNode:
		conds = []*yaml.Node{condNode}
	case yaml.SequenceNode:
		conds = condNode.Content
		if len(conds) == 0 {
			return nil, d.errAt(condNode, "detection.condition: empty list")
		}
	default:
		return nil, d.errAt(condNode, "detection.condition: want a string or a list of strings")
	}
	for _, c := range conds {
		if c.Kind != yaml.ScalarNode {
			return nil, d.errAt(c, "detection.condition: want a string")
		}
		n, err := parseCondition(c.Value, det)
		if err != nil {
			e := d.errAt(c, "detection.condition: %s", err.msg)
			if c.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
				e.Col++
			}
			if !strings.Contains(c.Value, "\n") {
				e.Col += err.pos
			}
			return nil, e
		}
		det.cond = append(det.cond, n)
	}
	return det, nil
}

// search parses one search identifier's definition.
func (d *doc) search(name string, v *yaml.Node) (*search, *Error) {
	s := &search{name: name}
	switch v.Kind {
	case yaml.MappingNode:
		conj, err := d.mapping(v)
		if err != nil {
			return nil, err
		}
		s.alts = append(s.alts, conj)
	case yaml.SequenceNode:
		if len(v.Content) == 0 {
			return nil, d.errAt(v, "detection.%s: empty list", name)
		}
		for _, e := range v.Content {
			switch e.Kind {
			case yaml.MappingNode:
				conj, err := d.mapping(e)
				if err != nil {
					return nil, err
				}
				s.alts = append(s.alts, conj)
			case yaml.ScalarNode:
				fc, err := d.keywords(e)
				if err != nil {
					return nil, err
				}
				s.alts = append(s.alts, []*fieldCond{fc})
			default:
				return nil, d.errAt(e, "detection.%s: want maps or keywords in the list", name)
			}
		}
	case yaml.ScalarNode:
		fc, err := d.keywords(v)
		if err != nil {
			return nil, err
		}
		s.alts = append(s.alts, []*fieldCond{fc})
	default:
		return nil, d.errAt(v, "detection.%s: want a map, a list of maps or keywords", name)
	}
	return s, nil
}

// keywords compiles one keyword: a value searched anywhere in the record text.
func (d *doc) keywords(v *yaml.Node) (*fieldCond, *Error) {
	if v.Tag == "!!null" {
		return nil, d.errAt(v, "detection: a keyword cannot be null")
	}
	m, err := d.strMatcher(v, v.Value, mods{mode: "contains"})
	if err != nil {
		return nil, err
	}
	return &fieldCond{matchers: []matcher{m}}, nil
}

// mapping compiles a map of field conditions, all of which must hold.
func (d *doc) mapping(v *yaml.Node) ([]*fieldCond, *Error) {
	if len(v.Content) == 0 {
		return nil, d.errAt(v, "detection: empty map")
	}
	var conj []*fieldCond
	for i := 0; i+1 < len(v.Content); i += 2 {
		fc, err := d.fieldCond(v.Content[i], v.Content[i+1])
		if err != nil {
			return nil, err
		}
		conj = append(conj, fc)
	}
	return conj, nil
}

// mods are the modifiers of one field.
type mods struct {
	mode       string   // "", contains, startswith, endswith
	transforms []string // base64, base64offset, wide, utf16le, utf16be, utf16, windash, in order
	all        bool
	neq        bool // the field is present and differs from every value
	cased      bool
	kind       string // "", re, cidr, exists, gt, gte, lt, lte, fieldref, minute, hour, day, week, month, year
	reFlags    string
}

// fieldCond compiles "field|modifier...: value(s)".
func (d *doc) fieldCond(k, v *yaml.Node) (*fieldCond, *Error) {
	parts := strings.Split(k.Value, "|")
	fc := &fieldCond{field: fieldOf(parts[0])}
	var m mods
	col := len(parts[0]) + 1
	errMod := func(format string, args ...any) *Error {
		e := d.errAt(k, format, args...)
		e.Col += col
		return e
	}
	for _, mod := range parts[1:] {
		switch mod {
		case "contains", "startswith", "endswith":
			if m.mode != "" {
				return nil, errMod("modifier %s: only one of contains, startswith, endswith", mod)
			}
			m.mode = mod
		case "all":
			m.all = true
		case "neq":
			m.neq = true
		case "cased":
			m.cased = true
		case "base64", "base64offset", "wide", "utf16le", "utf16be", "utf16", "windash":
			m.transforms = append(m.transforms, mod)
		case "i", "m", "s":
			if m.kind != "re" {
				return nil, errMod("modifier %s: only after re", mod)
			}
			m.reFlags += mod
		case "re", "cidr", "exists", "gt", "gte", "lt", "lte", "fieldref",
			"minute", "hour", "day", "week", "month", "year":
			if m.kind != "" {
				return nil, errMod("modifier %s: cannot be combined with %s", mod, m.kind)
			}
			m.kind = mod
		case "expand":
			return nil, errMod("modifier expand: placeholders are not supported")
		case "":
			return nil, errMod("empty modifier")
		default:
			return nil, errMod("unknown modifier %q", mod)
		}
		col += len(mod) + 1
	}
	col = 0
	if m.kind != "" && m.kind != "fieldref" && (m.mode != "" || len(m.transforms) > 0) {
		return nil, d.errAt(k, "modifier %s cannot be combined with %s", m.kind, firstNonEmpty(m.mode, strings.Join(m.transforms, "|")))
	}
	if m.kind == "fieldref" && len(m.transforms) > 0 {
		return nil, d.errAt(k, "modifier fieldref cannot be combined with %s", strings.Join(m.transforms, "|"))
	}
	if fc.field.path == "" && m.mode == "" && m.kind == "" {
		m.mode = "contains" // keywords match anywhere in the record text
	}
	if m.neq {
		switch m.kind {
		case "", "fieldref":
		default:
			return nil, d.errAt(k, "modifier neq cannot be combined with %s", m.kind)
		}
		if m.all {
			return nil, d.errAt(k, "modifier neq cannot be combined with all (neq already asks the field to differ from every value)")
		}
	}
	fc.all = m.all
	fc.neq = m.neq
	var vals []*yaml.Node
	switch v.Kind {
	case yaml.ScalarNode:
		vals = []*yaml.Node{v}
	case yaml.SequenceNode:
		if len(v.Content) == 0 {
			return nil, d.errAt(v, "%s: empty list of values", k.Value)
		}
		vals = v.Content
	default:
		return nil, d.errAt(v, "%s: want a value or a list of values", k.Value)
	}
	if m.all && len(vals) == 1 && v.Kind == yaml.ScalarNode {
		fc.all = false // all of one value is that value
	}
	for _, val := range vals {
		if val.Kind != yaml.ScalarNode {
			return nil, d.errAt(val, "%s: want a value, not a nested %s", k.Value, kindName(val))
		}
		mt, err := d.matcher(val, m)
		if err != nil {
			return nil, err
		}
		fc.matchers = append(fc.matchers, mt)
	}
	return fc, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func kindName(n *yaml.Node) string {
	if n.Kind == yaml.MappingNode {
		return "map"
	}
	return "list"
}

// matcher compiles one value under the field's modifiers.
func (d *doc) matcher(v *yaml.Node, m mods) (matcher, *Error) {
	isNull := v.Tag == "!!null"
	if isNull && m.kind != "" {
		return nil, d.errAt(v, "modifier %s: value cannot be null", m.kind)
	}
	if m.neq && m.kind == "" && m.mode == "" && len(m.transforms) == 0 && (v.Tag == "!!int" || v.Tag == "!!float") {
		f, err := strconv.ParseFloat(v.Value, 64)
		if err == nil {
			return numMatcher{op: "eq", n: f}, nil // a number differs as a number: 42 equals 42.0
		}
	}
	if m.neq && isNull {
		return nil, d.errAt(v, "modifier neq: value cannot be null (use exists: true)")
	}
	switch m.kind {
	case "":
		if isNull {
			if m.mode != "" || len(m.transforms) > 0 {
				return nil, d.errAt(v, "null cannot take modifiers")
			}
			return nullMatcher{}, nil
		}
		return d.strMatcher(v, v.Value, m)
	case "re":
		flags := ""
		if strings.Contains(m.reFlags, "i") {
			flags += "i"
		}
		if strings.Contains(m.reFlags, "m") {
			flags += "m"
		}
		if strings.Contains(m.reFlags, "s") {
			flags += "s"
		}
		src := v.Value
		if flags != "" {
			src = "(?" + flags + ")" + src
		}
		m, err := newReMatcher(src)
		if err != nil {
			return nil, d.errAt(v, "modifier re: %v (regular expressions are RE2: no lookaround or backreferences)", err)
		}
		return m, nil
	case "cidr":
		p, err := netip.ParsePrefix(v.Value)
		if err != nil {
			a, aerr := netip.ParseAddr(v.Value)
			if aerr != nil {
				return nil, d.errAt(v, "modifier cidr: %q is not an IPv4 or IPv6 network", v.Value)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		return cidrMatcher{p: p.Masked()}, nil
	case "exists":
		switch v.Value {
		case "true", "false":
			return existsMatcher{want: v.Value == "true"}, nil
		}
		return nil, d.errAt(v, "modifier exists: want true or false")
	case "gt", "gte", "lt", "lte":
		f, err := strconv.ParseFloat(v.Value, 64)
		if err != nil {
			return nil, d.errAt(v, "modifier %s: %q is not a number", m.kind, v.Value)
		}
		return numMatcher{op: m.kind, n: f}, nil
	case "fieldref":
		if v.Value == "" {
			return nil, d.errAt(v, "modifier fieldref: want a field name")
		}
		return refMatcher{other: fieldOf(v.Value), mode: m.mode, cased: m.cased}, nil
	default: // minute, hour, day, week, month, year
		n, err := strconv.Atoi(v.Value)
		if err != nil {
			return nil, d.errAt(v, "modifier %s: %q is not an integer", m.kind, v.Value)
		}
		return timeMatcher{part: m.kind, n: n}, nil
	}
}

// tok is one piece of a Sigma string: a literal run, '*', '?', or (after
// windash) 'd' for any dash.
type tok struct {
	wild byte // 0 for a literal, '*', '?' or 'd'
	lit  string
}

// sigmaString splits a Sigma string value into literals and wildcards. \*, \?
// and \\ stand for '*', '?' and '\'; any other backslash is itself.
func sigmaString(s string) []tok {
	var out []tok
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 {
			out = append(out, tok{lit: b.String()})
			b.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			if i+1 < len(s) && (s[i+1] == '*' || s[i+1] == '?' || s[i+1] == '\\') {
				b.WriteByte(s[i+1])
				i++
				continue
			}
			b.WriteByte(c)
		case '*', '?':
			flush()
			out = append(out, tok{wild: c})
		default:
			b.WriteByte(c)
		}
	}
	flush()
	return out
}

// variant is one form of a value after its transforms.
type variant struct {
	toks  []tok
	cased bool // base64 output is case-sensitive whatever the rule says
}

// strMatcher compiles a string value with its transforms and mode.
func (d *doc) strMatcher(v *yaml.Node, s string, m mods) (*strMatcher, *Error) {
	vars := []variant{{toks: sigmaString(s), cased: m.cased}}
	for _, t := range m.transforms {
		var next []variant
		for _, vr := range vars {
			switch t {
			case "wide", "utf16le", "utf16be", "utf16":
				out := make([]tok, len(vr.toks))
				for i, tk := range vr.toks {
					out[i] = tk
					if tk.wild == 0 {
						out[i].lit = utf16Text(tk.lit, t == "utf16be")
					}
				}
				if t == "utf16" {
					out = append([]tok{{lit: "\xff\xfe"}}, out...)
				}
				next = append(next, variant{toks: out, cased: vr.cased})
			case "windash":
				var out []tok
				for _, tk := range vr.toks {
					if tk.wild != 0 {
						out = append(out, tk)
						continue
					}
					out = append(out, windash(tk.lit)...)
				}
				next = append(next, variant{toks: out, cased: vr.cased})
			case "base64", "base64offset":
				var raw strings.Builder
				for _, tk := range vr.toks {
					if tk.wild != 0 {
						return nil, d.errAt(v, "modifier %s: the value cannot hold wildcards", t)
					}
					raw.WriteString(tk.lit)
				}
				if t == "base64" {
					next = append(next, variant{toks: []tok{{lit: base64.StdEncoding.EncodeToString([]byte(raw.String()))}}, cased: true})
					continue
				}
				for _, enc := range base64Offsets(raw.String()) {
					next = append(next, variant{toks: []tok{{lit: enc}}, cased: true})
				}
			}
		}
		vars = next
	}
	sm := &strMatcher{}
	seen := map[string]bool{}
	for _, vr := range vars {
		toks := vr.toks
		switch m.mode {
		case "contains":
			toks = append(append([]tok{{wild: '*'}}, toks...), tok{wild: '*'})
		case "startswith":
			toks = append(toks, tok{wild: '*'})
		case "endswith":
			toks = append([]tok{{wild: '*'}}, toks...)
		}
		p := compilePattern(toks, vr.cased)
		key := patternKey(p)
		if seen[key] {
			continue
		}
		seen[key] = true
		sm.pats = append(sm.pats, p)
	}
	return sm, nil
}

func patternKey(p *pattern) string {
	if p.re != nil {
		return "re:" + p.re.String()
	}
	return strconv.FormatBool(p.cased) + strconv.FormatBool(p.exact) + strings.Join(p.segs, "\x00*")
}

// compilePattern turns tokens into a pattern.
func compilePattern(toks []tok, cased bool) *pattern {
	p := &pattern{cased: cased}
	low := func(s string) string {
		if cased {
			return s
		}
		return strings.ToLower(s)
	}
	hasQ, hasStar := false, false
	for _, t := range toks {
		hasQ = hasQ || t.wild == '?' || t.wild == 'd'
		hasStar = hasStar || t.wild == '*'
	}
	if hasQ {
		var b strings.Builder
		b.WriteString("^(?s:")
		for _, t := range toks {
			switch t.wild {
			case '*':
				b.WriteString(".*")
			case '?':
				b.WriteString(".")
			case 'd':
				b.WriteString("(?:-|/|\u2013|\u2014|\u2015)")
			default:
				b.WriteString(regexp.QuoteMeta(low(t.lit)))
			}
		}
		b.WriteString(")$")
		p.re = regexp.MustCompile(b.String())
		return p
	}
	p.ascii = true
	for _, t := range toks {
		p.ascii = p.ascii && isASCII(t.lit)
	}
	if !hasStar {
		var b strings.Builder
		for _, t := range toks {
			b.WriteString(t.lit)
		}
		p.exact = true
		p.segs = []string{low(b.String())}
		return p
	}
	cur := ""
	for _, t := range toks {
		if t.wild == '*' {
			p.segs = append(p.segs, low(cur))
			cur = ""
			continue
		}
		cur += t.lit
	}
	p.segs = append(p.segs, low(cur))
	// Collapse runs of '*': empty middle segments match anywhere.
	segs := p.segs[:1]
	for _, s := range p.segs[1 : len(p.segs)-1] {
		if s != "" {
			segs = append(segs, s)
		}
	}
	p.segs = append(segs, p.segs[len(p.segs)-1])
	return p
}

// utf16Text encodes s as UTF-16 (little-endian unless be), returned as bytes in a string.
func utf16Text(s string, be bool) string {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 0, 2*len(u))
	for _, c := range u {
		if be {
			b = append(b, byte(c>>8), byte(c))
		} else {
			b = append(b, byte(c), byte(c>>8))
		}
	}
	return string(b)
}

// windash splits a literal at each '-' or '/' that starts an option, as
// pySigma finds them (the regular expression \B[-/]\b: after a non-word
// character or the start, before a word character), making each a dash token
// that matches any of - / – — ―, independently of the others.
func windash(s string) []tok {
	var out []tok
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '-' && c != '/' {
			continue
		}
		if i > 0 && isWordByte(s[i-1]) || i+1 >= len(s) || !isWordByte(s[i+1]) {
			continue
		}
		if i > start {
			out = append(out, tok{lit: s[start:i]})
		}
		out = append(out, tok{wild: 'd'})
		start = i + 1
	}
	if start < len(s) {
		out = append(out, tok{lit: s[start:]})
	}
	return out
}

func isWordByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// base64Offsets returns the three forms s takes inside a longer base64 text,
// depending on its offset modulo 3, trimmed of the characters that depend on
// the neighbouring bytes.
func base64Offsets(s string) []string {
	start := [3]int{0, 2, 3}
	endCut := [3]int{0, 3, 2}
	var out []string
	for i := 0; i < 3; i++ {
		enc := base64.StdEncoding.EncodeToString([]byte(strings.Repeat(" ", i) + s))
		end := len(enc) - endCut[(len(s)+i)%3]
		if start[i] >= end {
			continue
		}
		out = append(out, enc[start[i]:end])
	}
	return out
}
