package sigma

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Event is one CloudTrail record prepared for matching by every rule of a Set.
// NewEvent indexes the record's top-level members once; a field path is
// resolved only when a rule asks for it, and then cached, so a record is
// scanned at most once per distinct path whatever the number of rules. An
// Event is not safe for concurrent use.
type Event struct {
	raw   string
	top   []member
	id    string
	when  time.Time
	slots []slot        // resolved fields, by field id
	whole []value       // the record as one value, for keywords
	objs  []splitObject // nested objects already split (a record has few)
}

// splitObject is a nested object of the record, split into members, known
// by where its text starts.
type splitObject struct {
	key     *byte
	members []member
}

// member is one member of a JSON object: its decoded key and its raw value.
type member struct {
	key string
	val string
}

// Value kinds, after the JSON type of a field's value.
const (
	kindString = iota
	kindNumber
	kindBool
	kindNull
	kindObject
	kindArray
)

// value is what a field path resolves to: one JSON value. text is the decoded
// string for a string, the JSON text for everything else.
type value struct {
	kind  int
	text  string
	lower string
	low   bool
	elem  bool // an element of an array value listed before it
	// missing marks an array element that lacks the rest of the path: null
	// for null, nothing for exists and Values.
	missing bool
}

func (v *value) lowered() string {
	if !v.low {
		v.lower = strings.ToLower(v.text)
		v.low = true
	}
	return v.lower
}

// ErrNotObject is returned by NewEvent for a record that is not one JSON object.
var ErrNotObject = errors.New("sigma: record is not a JSON object")

// NewEvent prepares a CloudTrail record for matching. It copies raw. The record
// must be one JSON object; eventTime, if present, must be RFC 3339.
func NewEvent(raw []byte) (*Event, error) {
	s := string(raw)
	p := scanner{s: s}
	p.space()
	if p.i >= len(s) || s[p.i] != '{' {
		return nil, ErrNotObject
	}
	members, ok := p.object()
	if !ok {
		return nil, fmt.Errorf("sigma: record: invalid JSON at offset %d", p.i)
	}
	p.space()
	if p.i != len(s) {
		return nil, fmt.Errorf("sigma: record: trailing data at offset %d", p.i)
	}
	e := &Event{raw: s, top: members}
	for _, m := range members {
		switch m.key {
		case "eventID":
			if m.val != "" && m.val[0] == '"' {
				e.id, _ = unquote(m.val)
			}
		case "eventTime":
			if m.val != "" && m.val[0] == '"' {
				ts, _ := unquote(m.val)
				t, err := time.Parse(time.RFC3339Nano, ts)
				if err != nil {
					return nil, fmt.Errorf("sigma: record: eventTime %q is not RFC 3339", ts)
				}
				e.when = t.UTC()
			}
		}
	}
	return e, nil
}

// ID returns the record's eventID, or "" if it has none.
func (e *Event) ID() string { return e.id }

// Time returns the record's eventTime, or the zero time if it has none.
func (e *Event) Time() time.Time { return e.when }

// Values returns what field names in the record, one string per value: a
// string as itself, a number, boolean or null as its JSON text, an object or
// array as its JSON text. A path that crosses an array yields one value per
// element. An absent field yields nothing.
func (e *Event) Values(path string) []string {
	fields.Lock()
	id, ok := fields.ids[path]
	fields.Unlock()
	var vs []value
	if ok {
		vs = e.resolve(field{path, id})
	} else {
		vs = e.lookup(path)
	}
	if len(vs) == 0 {
		return nil
	}
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		if !v.elem {
			out = append(out, v.text)
		}
	}
	return out
}

// field is a field path with its number in the package's field registry,
// which indexes an Event's cache of resolved values.
type field struct {
	path string
	id   int
}

// fields numbers every field path a rule names, so that an Event caches
// resolved values in a slice rather than a map. It only grows, by the number
// of distinct paths in the rules parsed.
var fields struct {
	sync.Mutex
	ids map[string]int
	n   atomic.Int64
}

// fieldOf returns the numbered field for path.
func fieldOf(path string) field {
	fields.Lock()
	defer fields.Unlock()
	id, ok := fields.ids[path]
	if !ok {
		if fields.ids == nil {
			fields.ids = map[string]int{}
		}
		id = len(fields.ids)
		fields.ids[path] = id
		fields.n.Store(int64(id + 1))
	}
	return field{path: path, id: id}
}

// slot is a field's cached values in an Event.
type slot struct {
	vs   []value
	done bool
}

// resolve returns the values f names, cached.
func (e *Event) resolve(f field) []value {
	if f.id >= len(e.slots) {
		n := int(fields.n.Load())
		if n <= f.id {
			n = f.id + 1
		}
		e.slots = append(e.slots, make([]slot, n-len(e.slots))...)
	}
	sl := &e.slots[f.id]
	if !sl.done {
		sl.vs, sl.done = e.lookup(f.path), true
	}
	return sl.vs
}

// lookup returns the values path names, arrays followed by their elements.
func (e *Event) lookup(path string) []value {
	var vs []value
	e.walk(e.top, path, &vs)
	for i, n := 0, len(vs); i < n; i++ {
		if vs[i].kind == kindArray {
			for _, el := range elements(vs[i].text) {
				el.elem = true
				vs = append(vs, el)
			}
		}
	}
	return vs
}

// walk finds path in the members of an object and appends its values to out.
func (e *Event) walk(members []member, path string, out *[]value) {
	// A key may itself contain dots: try the whole remaining path first,
	// then ever shorter prefixes, as the record decides what is a member.
	for _, m := range members {
		if m.key == path {
			e.emit(m.val, "", out)
			return
		}
	}
	for i := len(path) - 1; i > 0; i-- {
		if path[i] != '.' {
			continue
		}
		head := path[:i]
		for _, m := range members {
			if m.key == head {
				e.emit(m.val, path[i+1:], out)
				return
			}
		}
	}
}

// emit appends the values raw holds at rest (the remaining path; "" for raw
// itself). Arrays on the way are crossed element by element.
func (e *Event) emit(raw, rest string, out *[]value) {
	if raw == "" {
		return
	}
	switch raw[0] {
	case '{':
		if rest == "" {
			*out = append(*out, value{kind: kindObject, text: raw})
			return
		}
		key := unsafe.StringData(raw)
		var ms []member
		found := false
		for i := range e.objs {
			if e.objs[i].key == key {
				ms, found = e.objs[i].members, true
				break
			}
		}
		if !found {
			p := scanner{s: raw}
			var ok bool
			if ms, ok = p.object(); !ok {
				return
			}
			e.objs = append(e.objs, splitObject{key, ms})
		}
		e.walk(ms, rest, out)
	case '[':
		if rest == "" {
			*out = append(*out, value{kind: kindArray, text: raw})
			return
		}
		p := scanner{s: raw}
		elems, ok := p.array()
		if !ok {
			return
		}
		for _, el := range elems {
			n := len(*out)
			e.emit(el, rest, out)
			if len(*out) == n {
				// The element lacks the path: for null, it is absent there.
				*out = append(*out, value{kind: kindNull, text: "null", elem: true, missing: true})
			}
		}
	default:
		if rest != "" {
			return
		}
		*out = append(*out, scalar(raw))
	}
}

// scalar converts a raw JSON scalar into a value.
func scalar(raw string) value {
	switch raw[0] {
	case '"':
		s, _ := unquote(raw)
		return value{kind: kindString, text: s}
	case 't', 'f':
		return value{kind: kindBool, text: raw}
	case 'n':
		return value{kind: kindNull, text: raw}
	default:
		return value{kind: kindNumber, text: raw}
	}
}

// elements returns the values of the elements of an array value, recursively
// flattened, for matching "any element".
func elements(raw string) []value {
	p := scanner{s: raw}
	elems, ok := p.array()
	if !ok {
		return nil
	}
	out := make([]value, 0, len(elems))
	for _, el := range elems {
		switch el[0] {
		case '{':
			out = append(out, value{kind: kindObject, text: el})
		case '[':
			out = append(out, value{kind: kindArray, text: el})
			out = append(out, elements(el)...)
		default:
			out = append(out, scalar(el))
		}
	}
	return out
}

// wholeRecord returns the record text as the one value keywords search.
func (e *Event) wholeRecord() []value {
	if e.whole == nil {
		e.whole = []value{{kind: kindString, text: e.raw}}
	}
	return e.whole
}

// scanner is a minimal JSON scanner that splits objects and arrays into the
// raw text of their members without decoding values it does not need.
type scanner struct {
	s string
	i int
}

func (p *scanner) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// object scans an object starting at p.i and returns its members.
func (p *scanner) object() ([]member, bool) {
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		return nil, false
	}
	p.i++
	ms := make([]member, 0, 24)
	p.space()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return ms, true
	}
	for {
		p.space()
		start := p.i
		if !p.str() {
			return nil, false
		}
		key, ok := unquote(p.s[start:p.i])
		if !ok {
			return nil, false
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return nil, false
		}
		p.i++
		p.space()
		vs := p.i
		if !p.value(0) {
			return nil, false
		}
		ms = append(ms, member{key: key, val: p.s[vs:p.i]})
		p.space()
		if p.i >= len(p.s) {
			return nil, false
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return ms, true
		default:
			return nil, false
		}
	}
}

// array scans an array starting at p.i and returns the raw text of its elements.
func (p *scanner) array() ([]string, bool) {
	if p.i >= len(p.s) || p.s[p.i] != '[' {
		return nil, false
	}
	p.i++
	var els []string
	p.space()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return els, true
	}
	for {
		p.space()
		vs := p.i
		if !p.value(0) {
			return nil, false
		}
		els = append(els, p.s[vs:p.i])
		p.space()
		if p.i >= len(p.s) {
			return nil, false
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return els, true
		default:
			return nil, false
		}
	}
}

// maxDepth bounds nesting so that a hostile record cannot exhaust the stack.
const maxDepth = 512

// value skips one JSON value. Objects and arrays are skipped by counting
// brackets outside strings, without validating what is inside: a record comes
// from the journal, which accepted it as JSON, and a member that is not is
// only looked into if a rule asks, when object and array check it.
func (p *scanner) value(depth int) bool {
	if depth > maxDepth || p.i >= len(p.s) {
		return false
	}
	switch c := p.s[p.i]; {
	case c == '"':
		return p.str()
	case c == '{' || c == '[':
		level := 0
		for p.i < len(p.s) {
			switch p.s[p.i] {
			case '"':
				if !p.str() {
					return false
				}
				continue
			case '{', '[':
				level++
				if level > maxDepth {
					return false
				}
			case '}', ']':
				level--
				if level == 0 {
					p.i++
					return true
				}
			}
			p.i++
		}
		return false
	case c == 't':
		return p.lit("true")
	case c == 'f':
		return p.lit("false")
	case c == 'n':
		return p.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.i
		for p.i < len(p.s) && strings.IndexByte("+-0123456789.eE", p.s[p.i]) >= 0 {
			p.i++
		}
		_, err := strconv.ParseFloat(p.s[start:p.i], 64)
		return err == nil || errors.Is(err, strconv.ErrRange)
	}
	return false
}

func (p *scanner) lit(w string) bool {
	if strings.HasPrefix(p.s[p.i:], w) {
		p.i += len(w)
		return true
	}
	return false
}

// str skips a string starting at p.i.
func (p *scanner) str() bool {
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		return false
	}
	j := p.i + 1
	for {
		k := strings.IndexByte(p.s[j:], '"')
		if k < 0 {
			return false
		}
		j += k
		// The quote ends the string unless an odd number of backslashes precede it.
		n := 0
		for b := j - 1; b > p.i && p.s[b] == '\\'; b-- {
			n++
		}
		if n%2 == 0 {
			p.i = j + 1
			return true
		}
		j++
	}
}

// unquote decodes a JSON string literal, quotes included.
func unquote(q string) (string, bool) {
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		return "", false
	}
	body := q[1 : len(q)-1]
	if strings.IndexByte(body, '\\') < 0 {
		return body, true
	}
	var b strings.Builder
	b.Grow(len(body))
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(body) {
			return "", false
		}
		switch body[i] {
		case '"', '\\', '/':
			b.WriteByte(body[i])
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := hex4(body, i+1)
			if !ok {
				return "", false
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(body, i+3); ok && i+2 < len(body) && body[i+1] == '\\' && body[i+2] == 'u' {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						b.WriteRune(d)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	return b.String(), true
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	n, err := strconv.ParseUint(s[i:i+4], 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(n), true
}
