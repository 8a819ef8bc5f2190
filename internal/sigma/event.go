package sigma

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
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
// resolved only when a rule asks for it, and then cached for the rest of the
// Eval, so a record is scanned at most once per distinct path whatever the
// number of rules. An Event is not safe for concurrent use.
//
// An Event reads the record where the caller keeps it: the caller must not
// change those bytes while it uses the Event. Everything an Event or Eval
// hands out (ID, Values, a Match's event IDs and group-by values) is a copy,
// so it may outlive them.
type Event struct {
	raw     string // the caller's bytes, not copied
	top     []member
	dotted  bool // a key of top holds a dot
	idOwned bool // id is a copy, no longer part of raw
	id      string
	when    time.Time
	sc      *scratch // the cache of resolved fields; nil outside Eval
	// inline holds top for records of up to len(inline) members (CloudTrail's
	// have about 20), so that an Event is one allocation.
	inline [24]member
}

// scratch is the memory an Event uses while rules are matched: resolved
// values, nested objects split, and the cache of fields. Eval takes one from a
// pool and gives it back, so that matching a record allocates little: at
// 50,000 records a second, garbage is CPU.
type scratch struct {
	mem   []member      // members of the nested objects split so far
	vals  []value       // values resolved so far; slots point into it
	slots [][]value     // resolved fields, by field id; nil: not resolved yet
	used  []int         // the slots set, to clear them
	objs  []splitObject // nested objects already split (a record has few)
	whole [1]value      // the record as one value, for keywords
	cand  []uint64      // Eval's bit set of candidate rules
}

var scratches = sync.Pool{New: func() any {
	return &scratch{mem: make([]member, 0, 32), vals: make([]value, 0, 32)}
}}

// maxKept bounds the values and members a pooled scratch keeps room for, so
// that one huge record does not pin its memory.
const maxKept = 4096

// take gives e a scratch from the pool if it has none, and reports whether it
// did (the caller then calls release).
func (e *Event) take() bool {
	if e.sc != nil {
		return false
	}
	e.sc = scratches.Get().(*scratch)
	return true
}

// release clears e's scratch and puts it back in the pool.
func (e *Event) release() {
	sc := e.sc
	e.sc = nil
	for _, id := range sc.used {
		sc.slots[id] = nil
	}
	sc.used = sc.used[:0]
	clear(sc.vals)
	clear(sc.objs)
	sc.vals, sc.mem, sc.objs = sc.vals[:0], sc.mem[:0], sc.objs[:0]
	sc.whole[0] = value{}
	if cap(sc.vals) > maxKept || cap(sc.mem) > maxKept {
		return
	}
	scratches.Put(sc)
}

// splitObject is a nested object of the record, split into members, known
// by where its text starts.
type splitObject struct {
	key     *byte
	members []member
	dotted  bool // a key holds a dot
}

// member is one member of a JSON object of the record: where its key (inside
// the quotes) and its raw value are in the record. It holds no pointers, so
// that splitting objects costs the garbage collector nothing.
type member struct {
	key0, key1 uint32
	val0, val1 uint32
	esc        bool // the key holds an escape: decode it to compare
}

// key returns m's decoded key.
func (e *Event) key(m *member) string {
	k := e.raw[m.key0:m.key1]
	if m.esc {
		k, _ = unquote(e.raw[m.key0-1 : m.key1+1])
	}
	return k
}

// val returns m's raw value.
func (e *Event) val(m *member) string { return e.raw[m.val0:m.val1] }

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
	text  string
	lower string
	kind  uint8
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

// noValues is what a field resolves to when the record lacks it: empty but not
// nil, as nil marks a field not resolved yet.
var noValues = []value{}

// ErrNotObject is returned by NewEvent for a record that is not one JSON object.
var ErrNotObject = errors.New("sigma: record is not a JSON object")

// NewEvent prepares a CloudTrail record for matching. It does not copy raw,
// which must stay unchanged while the Event is used (see Event). The record
// must be one JSON object; eventTime, if present, must be RFC 3339.
func NewEvent(raw []byte) (*Event, error) {
	if uint64(len(raw)) > math.MaxUint32 {
		return nil, errors.New("sigma: record: larger than 4 GiB")
	}
	// Copying the record cost a tenth of the CPU of a record evaluated by
	// 100 rules and most of its garbage (BenchmarkEval): an Event reads it
	// in place, and copies only what it hands out.
	s := unsafe.String(unsafe.SliceData(raw), len(raw))
	p := scanner{s: s}
	p.space()
	if p.i >= len(s) || s[p.i] != '{' {
		return nil, ErrNotObject
	}
	e := &Event{raw: s}
	ms, ok := p.object(e.inline[:0])
	if !ok {
		return nil, fmt.Errorf("sigma: record: invalid JSON at offset %d", p.i)
	}
	e.top, e.dotted = ms, p.dotted
	p.space()
	if p.i != len(s) {
		return nil, fmt.Errorf("sigma: record: trailing data at offset %d", p.i)
	}
	for i := range e.top {
		m := &e.top[i]
		k := e.raw[m.key0:m.key1]
		if m.esc {
			k = e.key(m)
		}
		switch k {
		case "eventID":
			if v := e.val(m); v != "" && v[0] == '"' {
				e.id, _ = unquote(v)
			}
		case "eventTime":
			if v := e.val(m); v != "" && v[0] == '"' {
				ts, _ := unquote(v)
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
func (e *Event) ID() string {
	if !e.idOwned {
		e.id, e.idOwned = strings.Clone(e.id), true
	}
	return e.id
}

// Time returns the record's eventTime, or the zero time if it has none.
func (e *Event) Time() time.Time { return e.when }

// Values returns what field names in the record, one string per value: a
// string as itself, a number, boolean or null as its JSON text, an object or
// array as its JSON text. A path that crosses an array yields one value per
// element. An absent field yields nothing.
func (e *Event) Values(path string) []string {
	if e.take() {
		defer e.release()
	}
	fields.Lock()
	f := fields.ids[path]
	fields.Unlock()
	var vs []value
	if f != nil {
		vs = e.resolve(*f)
	} else {
		vs = e.lookup(field{path: path})
	}
	if len(vs) == 0 {
		return nil
	}
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		if !v.elem {
			out = append(out, strings.Clone(v.text))
		}
	}
	return out
}

// field is a field path with its number in the package's field registry,
// which indexes an Event's cache of resolved values.
type field struct {
	path string
	id   int
	// head is the field of the path's first segment when more follows (nil
	// otherwise), rest what follows: rules name many paths under
	// userIdentity or requestParameters, whose member is then found once.
	head *field
	rest string
}

// fields numbers every field path a rule names, so that an Event caches
// resolved values in a slice rather than a map. It only grows, by the number
// of distinct paths in the rules parsed (and their first segments).
var fields struct {
	sync.Mutex
	ids map[string]*field
	n   atomic.Int64
}

// fieldOf returns the numbered field for path.
func fieldOf(path string) field {
	fields.Lock()
	defer fields.Unlock()
	if fields.ids == nil {
		fields.ids = map[string]*field{}
	}
	f := registerField(path)
	fields.n.Store(int64(len(fields.ids)))
	return *f
}

// registerField is fieldOf with fields locked.
func registerField(path string) *field {
	if f := fields.ids[path]; f != nil {
		return f
	}
	f := &field{path: path, id: len(fields.ids)}
	fields.ids[path] = f
	if i := strings.IndexByte(path, '.'); i > 0 && i < len(path)-1 {
		f.head, f.rest = registerField(path[:i]), path[i+1:]
	}
	return f
}

// resolve returns the values f names, cached. Outside Eval (which gives e a
// scratch), e keeps the scratch it takes.
func (e *Event) resolve(f field) []value {
	e.take()
	sc := e.sc
	if f.id >= len(sc.slots) {
		n := int(fields.n.Load())
		if n <= f.id {
			n = f.id + 1
		}
		sc.slots = append(sc.slots, make([][]value, n-len(sc.slots))...)
	}
	vs := sc.slots[f.id]
	if vs == nil {
		vs = e.lookup(f)
		sc.slots[f.id] = vs
		sc.used = append(sc.used, f.id)
	}
	return vs
}

// lookup returns the values f names, arrays followed by their elements.
// They are appended to the scratch's values; what lookup returns has no room
// to grow, so that later lookups never write into it.
func (e *Event) lookup(f field) []value {
	e.take()
	sc := e.sc
	if f.head != nil && !e.dotted {
		// The member f.head names, found once for every path under it (as
		// walk finds it: no key of the record holds a dot).
		hv := e.resolve(*f.head)
		start := len(sc.vals)
		if len(hv) > 0 && (hv[0].kind == kindObject || hv[0].kind == kindArray) {
			e.emit(hv[0].text, f.rest)
		}
		return e.expand(start)
	}
	start := len(sc.vals)
	e.walk(e.top, e.dotted, f.path)
	return e.expand(start)
}

// expand appends the elements of the arrays among the values from start,
// and returns those values.
func (e *Event) expand(start int) []value {
	sc := e.sc
	for i, n := start, len(sc.vals); i < n; i++ {
		if v := sc.vals[i]; v.kind == kindArray {
			e.elements(v.text)
		}
	}
	if len(sc.vals) == start {
		return noValues
	}
	return sc.vals[start:len(sc.vals):len(sc.vals)]
}

// walk finds path in the members of an object and appends its values to the
// scratch's values. A key may itself contain dots: the member whose key is
// the whole remaining path wins, else the one whose key is the longest prefix
// of it ending before a dot, as the record decides what is a member; the
// first of equal keys. When no key holds a dot (dotted false; the rule in
// CloudTrail), only the path up to its first dot can be a key.
func (e *Event) walk(members []member, dotted bool, path string) {
	if !dotted {
		head, rest := path, ""
		if i := strings.IndexByte(path, '.'); i == 0 {
			return // every prefix holds a dot
		} else if i > 0 {
			head, rest = path[:i], path[i+1:]
		}
		for i := range members {
			m := &members[i]
			if m.esc {
				if e.key(m) == head {
					e.emit(e.val(m), rest)
					return
				}
				continue
			}
			// Most keys differ in length or first byte: compare those first.
			if int(m.key1-m.key0) == len(head) && (head == "" || e.raw[m.key0] == head[0]) && e.raw[m.key0:m.key1] == head {
				e.emit(e.val(m), rest)
				return
			}
		}
		return
	}
	best, bestLen := -1, 0
	for i := range members {
		k := e.key(&members[i])
		switch {
		case len(k) == len(path):
			if k == path {
				e.emit(e.val(&members[i]), "")
				return
			}
		case len(k) > bestLen && len(k) < len(path) && path[len(k)] == '.' && path[:len(k)] == k:
			best, bestLen = i, len(k)
		}
	}
	if best >= 0 {
		e.emit(e.val(&members[best]), path[bestLen+1:])
	}
}

// emit appends to the scratch's values the values raw holds at rest (the
// remaining path; "" for raw itself). Arrays on the way are crossed element by
// element.
func (e *Event) emit(raw, rest string) {
	if raw == "" {
		return
	}
	sc := e.sc
	switch raw[0] {
	case '{':
		if rest == "" {
			sc.vals = append(sc.vals, value{kind: kindObject, text: raw})
			return
		}
		ms, dotted, ok := e.split(raw)
		if !ok {
			return
		}
		e.walk(ms, dotted, rest)
	case '[':
		if rest == "" {
			sc.vals = append(sc.vals, value{kind: kindArray, text: raw})
			return
		}
		start := len(sc.vals)
		ok := eachElement(raw, func(el string) {
			n := len(sc.vals)
			e.emit(el, rest)
			if len(sc.vals) == n {
				// The element lacks the path: for null, it is absent there.
				sc.vals = append(sc.vals, value{kind: kindNull, text: "null", elem: true, missing: true})
			}
		})
		if !ok {
			sc.vals = sc.vals[:start] // a malformed array yields nothing
		}
	default:
		if rest != "" {
			return
		}
		sc.vals = append(sc.vals, scalar(raw))
	}
}

// split returns the members of the nested object raw, split once per Eval,
// and whether a key holds a dot.
func (e *Event) split(raw string) ([]member, bool, bool) {
	sc := e.sc
	key := unsafe.StringData(raw)
	for i := range sc.objs {
		if o := &sc.objs[i]; o.key == key {
			return o.members, o.dotted, true
		}
	}
	start := len(sc.mem)
	p := scanner{s: raw, base: e.offset(raw)}
	ms, ok := p.object(sc.mem)
	if !ok {
		return nil, false, false
	}
	sc.mem = ms
	ms = ms[start:len(ms):len(ms)]
	sc.objs = append(sc.objs, splitObject{key, ms, p.dotted})
	return ms, p.dotted, true
}

// offset returns where s, a part of the record, starts in it.
func (e *Event) offset(s string) int {
	return int(uintptr(unsafe.Pointer(unsafe.StringData(s))) - uintptr(unsafe.Pointer(unsafe.StringData(e.raw))))
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

// elements appends to the scratch's values the values of the elements of an
// array value, recursively flattened, for matching "any element".
func (e *Event) elements(raw string) {
	sc := e.sc
	start := len(sc.vals)
	ok := eachElement(raw, func(el string) {
		switch el[0] {
		case '{':
			sc.vals = append(sc.vals, value{kind: kindObject, text: el, elem: true})
		case '[':
			sc.vals = append(sc.vals, value{kind: kindArray, text: el, elem: true})
			e.elements(el)
		default:
			v := scalar(el)
			v.elem = true
			sc.vals = append(sc.vals, v)
		}
	})
	if !ok {
		sc.vals = sc.vals[:start]
	}
}

// wholeRecord returns the record text as the one value keywords search.
func (e *Event) wholeRecord() []value {
	e.take()
	w := &e.sc.whole
	if w[0].text == "" {
		w[0] = value{kind: kindString, text: e.raw}
	}
	return w[:]
}

// scanner is a minimal JSON scanner that splits objects and arrays into the
// raw text of their members without decoding values it does not need.
type scanner struct {
	s      string
	i      int
	base   int  // where s starts in the record, for members' offsets
	dotted bool // the object scanned last has a key holding a dot
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

// object scans an object starting at p.i and appends its members to ms. It
// notes in p.dotted whether a key holds a dot.
func (p *scanner) object(ms []member) ([]member, bool) {
	p.dotted = false
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		return nil, false
	}
	p.i++
	p.space()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return ms, true
	}
	for {
		p.space()
		start := p.i
		dot, esc, ok := p.key()
		if !ok {
			return nil, false
		}
		if esc {
			key, ok := unquote(p.s[start:p.i])
			if !ok {
				return nil, false
			}
			dot = strings.IndexByte(key, '.') >= 0
		}
		p.dotted = p.dotted || dot
		k0, k1 := uint32(p.base+start+1), uint32(p.base+p.i-1)
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
		ms = append(ms, member{key0: k0, key1: k1, val0: uint32(p.base + vs), val1: uint32(p.base + p.i), esc: esc})
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

// eachElement calls f with the raw text of each element of the array raw, and
// reports whether raw is a well-formed array (f may have been called before
// the fault was found).
func eachElement(raw string, f func(el string)) bool {
	p := scanner{s: raw}
	if p.i >= len(p.s) || p.s[p.i] != '[' {
		return false
	}
	p.i++
	p.space()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		return true
	}
	for {
		p.space()
		vs := p.i
		if !p.value(0) {
			return false
		}
		f(p.s[vs:p.i])
		p.space()
		if p.i >= len(p.s) {
			return false
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case ']':
			return true
		default:
			return false
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

// key skips a member name starting at p.i, reporting whether it holds a dot
// or a backslash (an escape: decode it to know its text). Names are short:
// one loop costs less than searching for each byte with IndexByte.
func (p *scanner) key() (dot, esc, ok bool) {
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		return false, false, false
	}
	for j := p.i + 1; j < len(p.s); j++ {
		switch p.s[j] {
		case '"':
			p.i = j + 1
			return dot, esc, true
		case '\\':
			esc = true
			j++
		case '.':
			dot = true
		}
	}
	return false, false, false
}

// str skips a string starting at p.i.
func (p *scanner) str() bool {
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		return false
	}
	// Eight bytes at a time, looking for a quote or a backslash in each
	// (a record's strings are mostly too short for IndexByte to pay).
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	j := p.i + 1
	for j+8 <= len(p.s) {
		w := binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(p.s[j:]), 8))
		q, bs := w^('"'*ones), w^('\\'*ones)
		// The lowest byte that is zero in q or bs sets its high bit here.
		m := ((q-ones)&^q | (bs-ones)&^bs) & highs
		if m == 0 {
			j += 8
			continue
		}
		j += bits.TrailingZeros64(m) / 8
		if p.s[j] == '"' {
			p.i = j + 1
			return true
		}
		j += 2 // a backslash and the character it escapes
	}
	for ; j < len(p.s); j++ {
		switch p.s[j] {
		case '"':
			p.i = j + 1
			return true
		case '\\':
			j++
		}
	}
	return false
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
