package filterpattern

import (
	"errors"
	"testing"
	"unicode/utf8"
)

// fuzzEvents are the events every fuzzed pattern is matched against, to check
// that a pattern and its canonical form agree.
var fuzzEvents = []string{
	"", "ERROR 400 BAD REQUEST", lambdaInvoke, describeTrails, consoleLogin, typed, compound,
	apache, lineGet, lineError, `{"a": "x y", "b": 2, "c": [1, "2"], "d": null}`,
}

// fuzzRefs are the metric value references FuzzMatch tries.
var fuzzRefs = []string{"$.a", "$.latency", "$.list[*]", "$1", "$a", "$bytes", "$", "$.", "$[0]"}

func FuzzParse(f *testing.F) {
	for _, tt := range parseTests {
		f.Add(tt.input)
	}
	for _, tt := range parseErrorTests {
		f.Add(tt.input)
	}
	for _, tt := range matchTests {
		f.Add(tt.pattern)
	}
	events := make([]*Event, len(fuzzEvents))
	for i, m := range fuzzEvents {
		events[i] = NewEvent([]byte(m))
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error %v is %T", s, err, err)
			}
			if se.Pos < 0 || se.Pos > len(s) {
				t.Fatalf("Parse(%q): position %d outside the pattern", s, se.Pos)
			}
			_ = se.Error()
			return
		}
		c := p.String()
		q, err := parse(c, 1<<30)
		if err != nil {
			t.Fatalf("Parse(%q) printed %q, which does not parse: %v", s, c, err)
		}
		if q.String() != c || q.Kind() != p.Kind() {
			t.Fatalf("Parse(%q): canonical %q (%v) reprints as %q (%v)", s, c, p.Kind(), q.String(), q.Kind())
		}
		if utf8.RuneCountInString(c) <= MaxLength {
			if _, err := Parse(c); err != nil {
				t.Fatalf("Parse(%q) printed %q, rejected: %v", s, c, err)
			}
		}
		for i, ev := range events {
			if p.Match(ev) != q.Match(ev) {
				t.Fatalf("Parse(%q) and its canonical %q disagree on %.60q", s, c, fuzzEvents[i])
			}
		}
	})
}

func FuzzMatch(f *testing.F) {
	for _, tt := range matchTests {
		f.Add(tt.pattern, tt.message)
	}
	f.Fuzz(func(t *testing.T, pattern, message string) {
		p, err := Parse(pattern)
		if err != nil {
			return
		}
		ev := NewEvent([]byte(message))
		got := p.Match(ev)
		if p.Match(ev) != got {
			t.Fatal("Match is not stable")
		}
		for _, ref := range fuzzRefs {
			p.Value(ev, ref)
		}
	})
}
