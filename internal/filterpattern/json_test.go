package filterpattern

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

var jsonTests = []string{
	`{}`, ` { } `, `{"a":1}`, `{"a":[]}`, `{"a":[1,2,[3,{"b":null}]]}`, `{"a":"\u00e9\n\t\"\\\/"}`,
	`{"a":"\ud83d\ude00"}`, `{"a":"\ud83d"}`, `{"a":-0.5e+10}`, `{"a":true,"b":false}`, `{"a":1,"a":2}`,
	`{"":""}`, `{"a\u0000b":1}`,
	// Invalid.
	``, `[]`, `1`, `"x"`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`,
	`{"a":-}`, `{"a":tru}`, `{"a":"\x"}`, `{"a":"\u12"}`, "{\"a\":\"\x01\"}", `{"a":1}}`, `{a:1}`, `{"a":1 "b":2}`,
	`{"a":[1 2]}`, `{"a":[1,]}`, `{"a":NaN}`, `{"a":"x`, `{"a":1}` + "\x00",
}

func TestParseJSON(t *testing.T) {
	for _, s := range jsonTests {
		t.Run(s, func(t *testing.T) { checkJSON(t, s) })
	}
	t.Run("deep", func(t *testing.T) {
		deep := `{"a":` + strings.Repeat("[", 2000) + strings.Repeat("]", 2000) + "}"
		if parseJSON(deep) != nil {
			t.Error("accepted nesting beyond the limit")
		}
	})
	t.Run("records", func(t *testing.T) {
		for _, s := range []string{lambdaInvoke, describeTrails, consoleLogin, typed, compound} {
			checkJSON(t, s)
		}
	})
}

// checkJSON compares parseJSON with encoding/json: the same documents are
// accepted, and every member has the same value.
func checkJSON(t *testing.T, s string) {
	t.Helper()
	doc := parseJSON(s)
	var want any
	valid := json.Valid([]byte(s))
	if valid {
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		_, valid = want.(map[string]any)
	}
	if (doc != nil) != valid {
		t.Fatalf("parseJSON(%q) accepted = %v, encoding/json: valid object = %v", s, doc != nil, valid)
	}
	if doc != nil {
		compareJSON(t, doc, 0, want)
	}
}

func compareJSON(t *testing.T, d *jsonDoc, n int32, want any) {
	t.Helper()
	node := &d.nodes[n]
	switch w := want.(type) {
	case nil:
		if node.kind != jsonNull {
			t.Errorf("node %d: kind %d, want null", n, node.kind)
		}
	case bool:
		if node.kind != map[bool]jsonKind{true: jsonTrue, false: jsonFalse}[w] {
			t.Errorf("node %d: kind %d, want %v", n, node.kind, w)
		}
	case json.Number:
		if node.kind != jsonNumber || node.str != string(w) {
			t.Errorf("node %d: %d %q, want number %s", n, node.kind, node.str, w)
		}
	case string:
		// encoding/json replaces invalid UTF-8 with U+FFFD; the parser keeps it.
		if node.kind != jsonString || (!strings.ContainsRune(w, utf8.RuneError) && node.str != w) {
			t.Errorf("node %d: %d %q, want string %q", n, node.kind, node.str, w)
		}
	case []any:
		if node.kind != jsonArray {
			t.Fatalf("node %d: kind %d, want array", n, node.kind)
		}
		for i, x := range w {
			c := d.element(n, i)
			if c < 0 {
				t.Fatalf("node %d: no element %d", n, i)
			}
			compareJSON(t, d, c, x)
		}
		if d.element(n, len(w)) >= 0 {
			t.Errorf("node %d: more than %d elements", n, len(w))
		}
	case map[string]any:
		if node.kind != jsonObject {
			t.Fatalf("node %d: kind %d, want object", n, node.kind)
		}
		for k, x := range w {
			if strings.ContainsRune(k, utf8.RuneError) {
				continue
			}
			c := d.lookup(n, k)
			if c < 0 {
				t.Fatalf("node %d: no member %q", n, k)
			}
			compareJSON(t, d, c, x)
		}
	}
}

func FuzzJSON(f *testing.F) {
	for _, s := range jsonTests {
		f.Add(s)
	}
	f.Add(lambdaInvoke)
	f.Add(typed)
	f.Fuzz(func(t *testing.T, s string) {
		checkJSON(t, s)
	})
}
