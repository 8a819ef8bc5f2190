package filterpattern

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonKind is the type of a JSON value.
type jsonKind uint8

const (
	jsonNull jsonKind = iota
	jsonFalse
	jsonTrue
	jsonNumber
	jsonString
	jsonObject
	jsonArray
)

// jsonNode is one value of a parsed JSON document. The document is a flat table
// of nodes linked by index, so a property lookup walks a few small structs
// instead of maps, and strings without escapes are slices of the message.
type jsonNode struct {
	key   string // member name, when the parent is an object
	str   string // string contents, or a number's literal text
	first int32  // first child of an object or array, or -1
	next  int32  // next sibling, or -1
	kind  jsonKind
}

// jsonDoc is a parsed JSON object; nodes[0] is the root.
type jsonDoc struct {
	nodes []jsonNode
}

// maxJSONDepth bounds nesting so a hostile message cannot exhaust the stack.
const maxJSONDepth = 1000

// parseJSON parses msg, which must be exactly one JSON object (RFC 8259, with
// surrounding white space). It returns nil if msg is anything else: filter
// patterns in braces match only JSON objects.
func parseJSON(msg string) *jsonDoc {
	p := jsonParser{s: msg}
	p.space()
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		return nil
	}
	p.nodes = make([]jsonNode, 0, len(msg)/24+8)
	if p.value(0) < 0 {
		return nil
	}
	p.space()
	if p.i != len(p.s) {
		return nil
	}
	return &jsonDoc{nodes: p.nodes}
}

type jsonParser struct {
	s     string
	i     int
	nodes []jsonNode
}

func (p *jsonParser) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// add appends a node and returns its index.
func (p *jsonParser) add(n jsonNode) int32 {
	p.nodes = append(p.nodes, n)
	return int32(len(p.nodes) - 1)
}

// value parses one value at p.i and returns its node index, or -1 if the input
// is not valid JSON.
func (p *jsonParser) value(depth int) int32 {
	if depth > maxJSONDepth || p.i >= len(p.s) {
		return -1
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, ok := p.string()
		if !ok {
			return -1
		}
		return p.add(jsonNode{kind: jsonString, str: s, first: -1, next: -1})
	case c == '-' || '0' <= c && c <= '9':
		start := p.i
		if !p.number() {
			return -1
		}
		return p.add(jsonNode{kind: jsonNumber, str: p.s[start:p.i], first: -1, next: -1})
	case strings.HasPrefix(p.s[p.i:], "true"):
		p.i += 4
		return p.add(jsonNode{kind: jsonTrue, first: -1, next: -1})
	case strings.HasPrefix(p.s[p.i:], "false"):
		p.i += 5
		return p.add(jsonNode{kind: jsonFalse, first: -1, next: -1})
	case strings.HasPrefix(p.s[p.i:], "null"):
		p.i += 4
		return p.add(jsonNode{kind: jsonNull, first: -1, next: -1})
	}
	return -1
}

func (p *jsonParser) object(depth int) int32 {
	obj := p.add(jsonNode{kind: jsonObject, first: -1, next: -1})
	p.i++ // '{'
	p.space()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return obj
	}
	prev := int32(-1)
	for {
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return -1
		}
		key, ok := p.string()
		if !ok {
			return -1
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return -1
		}
		p.i++
		p.space()
		v := p.value(depth + 1)
		if v < 0 {
			return -1
		}
		p.nodes[v].key = key
		p.link(obj, prev, v)
		prev = v
		p.space()
		if p.i >= len(p.s) {
			return -1
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return obj
		default:
			return -1
		}
	}
}

func (p *jsonParser) array(depth int) int32 {
	arr := p.add(jsonNode{kind: jsonArray, first: -1, next: -1})
	p.i++ // '['
	p.space()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return arr
	}
	prev := int32(-1)
	for {
		p.space()
		v := p.value(depth + 1)
		if v < 0 {
			return -1
		}
		p.link(arr, prev, v)
		prev = v
		p.space()
		if p.i >= len(p.s) {
			return -1
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return arr
		default:
			return -1
		}
	}
}

// link makes child the member after prev (or the first member) of parent.
func (p *jsonParser) link(parent, prev, child int32) {
	if prev < 0 {
		p.nodes[parent].first = child
	} else {
		p.nodes[prev].next = child
	}
}

// number scans a JSON number.
func (p *jsonParser) number() bool {
	s, i := p.s, p.i
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		j := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	p.i = i
	return true
}

// string scans a JSON string at p.i and returns its contents. Without escapes
// the contents are a slice of the message and cost no allocation.
func (p *jsonParser) string() (string, bool) {
	start := p.i + 1
	for i := start; i < len(p.s); i++ {
		switch c := p.s[i]; {
		case c == '"':
			p.i = i + 1
			return p.s[start:i], true
		case c == '\\':
			return p.escapedString(start)
		case c < 0x20:
			return "", false
		}
	}
	return "", false
}

// escapedString decodes a string that contains escapes, starting at start.
func (p *jsonParser) escapedString(start int) (string, bool) {
	s := p.s
	b := make([]byte, 0, 32)
	for i := start; i < len(s); {
		c := s[i]
		switch {
		case c == '"':
			p.i = i + 1
			return string(b), true
		case c < 0x20:
			return "", false
		case c != '\\':
			b = append(b, c)
			i++
			continue
		}
		if i+1 >= len(s) {
			return "", false
		}
		switch s[i+1] {
		case '"', '\\', '/':
			b = append(b, s[i+1])
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(s, i+2)
			if !ok {
				return "", false
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(s, i+2); ok && i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						i += 6
						b = utf8.AppendRune(b, d)
						continue
					}
				}
				r = utf8.RuneError
			}
			b = utf8.AppendRune(b, r)
			continue
		default:
			return "", false
		}
		i += 2
	}
	return "", false
}

// hex4 decodes the four hex digits at s[i:].
func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}

// lookup returns the child of object node n named key, or -1. When a name
// repeats, the last member wins, as in JavaScript.
func (d *jsonDoc) lookup(n int32, key string) int32 {
	found := int32(-1)
	for c := d.nodes[n].first; c >= 0; c = d.nodes[c].next {
		if d.nodes[c].key == key {
			found = c
		}
	}
	return found
}

// element returns element i of array node n, or -1.
func (d *jsonDoc) element(n int32, i int) int32 {
	for c := d.nodes[n].first; c >= 0; c = d.nodes[c].next {
		if i == 0 {
			return c
		}
		i--
	}
	return -1
}
