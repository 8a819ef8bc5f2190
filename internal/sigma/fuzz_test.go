package sigma

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fuzzRecords are the records every fuzzed rule is evaluated on.
var fuzzRecords = append([]string{record, `{}`, `{"a":[1,[2,[3]],{"b":null}],"eventTime":"2024-05-01T10:00:00Z"}`}, unrelated...)

func FuzzParseFile(f *testing.F) {
	for _, tt := range matchTests {
		f.Add(ruleText(tt.det))
	}
	for _, tt := range parseErrorTests {
		if tt.file != "" {
			f.Add(tt.file)
		} else {
			f.Add(ruleText(tt.det))
		}
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "rules", "*.yml"))
	for _, name := range files {
		b, _ := os.ReadFile(name)
		f.Add(string(b))
	}
	f.Add(corrRules + "title: c\ncorrelation:\n    type: event_count\n    rules: [failed_login]\n    timespan: 5m\n    condition: {gte: 2}\n")
	var events []*Event
	for _, r := range fuzzRecords {
		ev, err := NewEvent([]byte(r))
		if err != nil {
			f.Fatal(err)
		}
		events = append(events, ev)
	}
	f.Fuzz(func(t *testing.T, text string) {
		rules, errs := ParseFile("f.yml", []byte(text))
		for _, err := range errs {
			var pe *Error
			if !errors.As(err, &pe) || pe.Line < 1 || !strings.HasPrefix(err.Error(), "f.yml:") {
				t.Fatalf("error %v (%T) has no position", err, err)
			}
		}
		s, _ := NewSet(rules)
		st := NewState()
		for _, ev := range events {
			s.Eval(ev, st)
		}
		b, err := st.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if err := NewState().UnmarshalBinary(b); err != nil {
			t.Fatalf("state does not round-trip: %v", err)
		}
	})
}

func FuzzCondition(f *testing.F) {
	for _, tt := range matchTests {
		if i := strings.Index(tt.det, "condition: "); i >= 0 {
			f.Add(strings.SplitN(tt.det[i+len("condition: "):], "\n", 2)[0])
		}
	}
	for _, s := range []string{"a and (b or not c)", "1 of sel_* and not all of them", "((a))", "a | count() > 2", "not not a", "2 of them"} {
		f.Add(s)
	}
	rules, errs := ParseFile("c.yml", []byte(ruleText("a: {eventName: CreateUser}\nb: {eventName: X}\nc: {userAgent|contains: s3}\nsel_a: {eventSource: iam.amazonaws.com}\nsel_b: {x: null}\n_f: {readOnly: false}\ncondition: a")))
	if len(errs) > 0 {
		f.Fatal(errs)
	}
	det := rules[0].det
	ev, _ := NewEvent([]byte(record))
	f.Fuzz(func(t *testing.T, cond string) {
		n, err := parseCondition(cond, det)
		if err != nil {
			if err.pos < 0 || err.pos > len(cond) {
				t.Fatalf("error position %d outside %q", err.pos, cond)
			}
			return
		}
		n.eval(ev)
	})
}

func FuzzEval(f *testing.F) {
	for _, r := range fuzzRecords {
		f.Add([]byte(r))
	}
	f.Add([]byte(`{"eventName":"ConsoleLogin","errorMessage":"Failed authentication","eventTime":"2024-05-01T10:00:00Z","eventID":"x"}`))
	f.Add([]byte(`{"a":"\ud83d\ude00\u00e9\\\"","b":[[[[]]]],"c":-1.5e300}`))
	rules := loadRules(f)
	extra, errs := ParseFile("x.yml", []byte(corrRules+"title: c\ncorrelation:\n    type: value_count\n    rules: [failed_login, create_key]\n    group-by: [userIdentity.arn]\n    timespan: 5m\n    condition: {gte: 2, field: sourceIPAddress}\n"))
	if len(errs) > 0 {
		f.Fatal(errs)
	}
	var tests []*Rule
	for _, tt := range matchTests {
		rs, errs := ParseFile("m.yml", []byte(strings.Replace(ruleText(tt.det), "id: 00000000-0000-0000-0000-000000000001\n", "", 1)))
		if len(errs) == 0 {
			tests = append(tests, rs...)
		}
	}
	s, errs := NewSet(append(append(rules, extra...), tests...))
	if len(errs) > 0 {
		f.Fatal(errs)
	}
	st := NewState()
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := NewEvent(raw)
		if err != nil {
			return
		}
		for _, m := range s.Eval(ev, st) {
			if m.Rule == nil || len(m.EventIDs) == 0 {
				t.Fatalf("bad match %+v", m)
			}
		}
		// The rule index only narrows: the detections are those of every
		// rule evaluated.
		got := map[*Rule]bool{}
		for _, m := range s.Eval(ev, nil) {
			got[m.Rule] = true
		}
		for i, r := range s.det {
			if want := r.det.match(ev) && !filtered(s.filters[i], ev); got[r] != want {
				t.Fatalf("rule %s: Eval %v, every rule evaluated %v", r.Key(), got[r], want)
			}
		}
		ev.Values("userIdentity.arn")
		ev.Values("a.b")
		sameAsWalk(t, raw)
	})
}

// FuzzState loads arbitrary state (a state saved under other rules must not
// make Eval panic) and runs the correlation tests' events on it.
func FuzzState(f *testing.F) {
	var sets []*Set
	var events []*Event
	st := NewState()
	for _, tt := range corrTests {
		s := corrSetTB(f, tt.corr)
		sets = append(sets, s)
		for _, e := range tt.events {
			ev, _ := NewEvent([]byte(e.json()))
			events = append(events, ev)
			s.Eval(ev, st)
			b, _ := st.MarshalBinary()
			f.Add(b)
		}
	}
	f.Add([]byte{stateVersion, '{', '}'})
	f.Add([]byte(`x`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st := NewState()
		if err := st.UnmarshalBinary(data); err != nil {
			return
		}
		for _, s := range sets {
			for _, ev := range events {
				s.Eval(ev, st)
			}
		}
		st.Expire(t0.Add(time.Hour))
		if _, err := st.MarshalBinary(); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzIndexFold checks the case-folding search against lowercasing and
// strings.Index, for ASCII texts.
func FuzzIndexFold(f *testing.F) {
	f.Add("xxxaAB", "ab")
	f.Add("x-y x-Z", "-z")
	f.Add("AbxaBC", "abc")
	f.Add("", "a")
	f.Fuzz(func(t *testing.T, s, sub string) {
		if !isASCII(s) || !isASCII(sub) {
			return
		}
		sub = strings.ToLower(sub)
		want := strings.Index(strings.ToLower(s), sub)
		if got := indexFold(s, sub); got != want {
			t.Fatalf("indexFold(%q, %q) = %d, want %d", s, sub, got, want)
		}
	})
}
