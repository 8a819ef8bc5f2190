package sigma

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/opentrail/opentrail/internal/fixture"
)

// An Event reads the caller's bytes in place (NewEvent stopped copying them):
// what it and Eval hand out, and what a State keeps, must still be right
// after the caller reuses the bytes, as the journal's iterator does.
func TestEventCopiesWhatItHandsOut(t *testing.T) {
	s := corrSetTB(t, "type: value_count\nrules: [failed_login]\ngroup-by: [userIdentity.userName]\ntimespan: 5m\n"+
		"condition: {gte: 2, field: sourceIPAddress}\ngenerate: true\n")
	st := NewState()
	buf := []byte(ev{"e1", "ConsoleLogin", "alice", "192.0.2.1", 0}.json())
	e1, err := NewEvent(buf)
	if err != nil {
		t.Fatal(err)
	}
	ms := s.Eval(e1, st)
	id, user := e1.ID(), e1.Values("userIdentity.userName")
	for i := range buf {
		buf[i] = 'x' // the caller reuses its buffer
	}
	if len(ms) != 1 || !slices.Equal(ms[0].EventIDs, []string{"e1"}) || id != "e1" || !slices.Equal(user, []string{"alice"}) {
		t.Fatalf("after the record's bytes changed: matches %+v, ID %q, Values %q", ms, id, user)
	}
	e2, err := NewEvent([]byte(ev{"e2", "ConsoleLogin", "alice", "192.0.2.2", 1}.json()))
	if err != nil {
		t.Fatal(err)
	}
	ms = s.Eval(e2, st)
	if len(ms) != 2 || ms[1].Rule.ID != "corr-1" || !slices.Equal(ms[1].EventIDs, []string{"e1", "e2"}) ||
		ms[1].GroupBy["userIdentity.userName"] != "alice" {
		t.Fatalf("the correlation kept the first record's bytes: %+v", ms)
	}
}

// FuzzNewEvent checks NewEvent's scanner against encoding/json: on a valid
// JSON object with distinct member names, every top-level member is found
// with its value (strings decoded, anything else as written).
func FuzzNewEvent(f *testing.F) {
	for _, r := range fuzzRecords {
		f.Add([]byte(r))
	}
	for _, tt := range matchTests {
		if tt.rec != "" {
			f.Add([]byte(tt.rec))
		}
	}
	// Escapes before, at and after the 16th byte of a string, where the
	// scanner stops looking byte by byte.
	f.Add([]byte(`{"a":"0123456789abcd\"","b":"0123456789abcde\\","c":"0123456789abcdef\"\\\"x","d.e":1,"f\u002eg":[{"h":"\\"}]}`))
	f.Add([]byte(`{"k\"ey":"v","\\":"\\\\\\\"","":null,"n":-1.5e3,"t":true,"o":{"x":"}"},"l":["]",{"y":"["}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		members, ok := topMembers(raw)
		if !ok {
			return
		}
		e, err := NewEvent(raw)
		if err != nil {
			if _, has := members["eventTime"]; has || depth(raw) > maxDepth {
				return // an eventTime that is not RFC 3339, or nesting NewEvent refuses
			}
			t.Fatalf("NewEvent(%q): %v", raw, err)
		}
		for k, v := range members {
			if k == "" || strings.Contains(k, ".") {
				continue // not a path to the member itself
			}
			want := string(v)
			if v[0] == '"' {
				json.Unmarshal(v, &want)
			}
			if got := e.Values(k); len(got) != 1 || got[0] != want {
				t.Fatalf("%q: Values(%q) = %q, want [%q]", raw, k, got, want)
			}
		}
	})
}

// topMembers returns a JSON object's members, their values as written; ok
// is false unless raw is one valid object whose member names are distinct.
// (encoding/json decodes invalid UTF-8 as U+FFFD, which the record does not hold.)
func topMembers(raw []byte) (map[string]json.RawMessage, bool) {
	if !json.Valid(raw) || !utf8.Valid(raw) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		k := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		if _, dup := out[k]; dup {
			return nil, false
		}
		out[k] = v
	}
	return out, true
}

// depth is how deeply raw, valid JSON, nests objects and arrays.
func depth(raw []byte) int {
	dec := json.NewDecoder(bytes.NewReader(raw))
	d, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil { // io.EOF at the end
			return deepest
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			d++
			deepest = max(deepest, d)
		case json.Delim('}'), json.Delim(']'):
			d--
		}
	}
}

// sameAsWalk fails t unless every registered path that has a head resolves
// in raw to what walking the record from its top finds.
func sameAsWalk(t *testing.T, raw []byte) {
	t.Helper()
	fields.Lock()
	var fs []field
	for _, f := range fields.ids {
		if f.head != nil {
			fs = append(fs, *f)
		}
	}
	fields.Unlock()
	for _, f := range fs {
		a, errA := NewEvent(raw)
		b, errB := NewEvent(raw)
		if errA != nil || errB != nil {
			return
		}
		a.take()
		b.take()
		got, want := a.resolve(f), b.lookup(field{path: f.path})
		if !slices.Equal(got, want) {
			t.Fatalf("%q: %s resolves to %+v, walking from the top finds %+v", raw, f.path, got, want)
		}
		a.release()
		b.release()
	}
}

// Paths are resolved from their first segment's member, found once: the
// same values as walking every path from the top (keys holding dots, arrays,
// absent and scalar members).
func TestHeadAgreesWithWalk(t *testing.T) {
	benchRules(t, fixture.Records(t)) // registers their paths
	for _, p := range []string{"a.b", "a.b.c", "userIdentity.x.y", "requestParameters.dotted.key", "a..b", "k\\.k", "resources.ARN", "eventName.x"} {
		fieldOf(p)
	}
	var raws []string
	for _, r := range fixture.Records(t) {
		raws = append(raws, string(r))
	}
	raws = append(append(append(raws, record), indexRecords...), fuzzRecords...)
	raws = append(raws, `{"a":{"b":[{"c":1},{"d":2},[{"c":3}]]},"resources":"x","eventName":{"x":1}}`, `{"a":"{\"b\":1}","a.b":2}`, `{"a":"{\"b\":1}"}`, `{"a":"[1]","resources":"{}"}`, `{"a":[{"":{"b":1}}]}`)
	for _, r := range raws {
		sameAsWalk(t, []byte(r))
	}
}
