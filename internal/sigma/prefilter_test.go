package sigma

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// indexedBy returns the field and values s indexes its detection rule r
// under, or "" when r is evaluated on every record.
func indexedBy(s *Set, r *Rule) string {
	i := slices.Index(s.det, r)
	if s.always[i/64]&(1<<(i%64)) != 0 {
		return ""
	}
	for _, ix := range s.index {
		var vals []string
		for v, rules := range ix.rules {
			if slices.Contains(rules, i) {
				vals = append(vals, v)
			}
		}
		if len(vals) > 0 {
			slices.Sort(vals)
			return ix.field.path + "=" + strings.Join(vals, ",")
		}
	}
	return "?"
}

// The rule index is Eval's prefilter: a record is only tested against the
// rules indexed under a value it has (and those never indexed). A rule may
// be indexed under a field only when no record lacking those values can
// match it; each case names the index it gets ("" for none) and records
// that must match, or not, whatever the prefilter decided.
func TestPrefilter(t *testing.T) {
	for _, tt := range []struct {
		name, det string
		index     string
		match     []string
		noMatch   []string
	}{
		{"pinned eventName", "sel: {eventName: CreateUser, eventSource: iam.amazonaws.com}\ncondition: sel",
			"eventName=createuser",
			[]string{`{"eventName":"createUSER","eventSource":"iam.amazonaws.com"}`, `{"eventName":["x","CreateUser"],"eventSource":"iam.amazonaws.com"}`},
			[]string{`{"eventName":"DeleteUser","eventSource":"iam.amazonaws.com"}`, `{"eventSource":"iam.amazonaws.com"}`}},
		{"eventSource when eventName is not pinned", "sel: {eventSource: [s3.amazonaws.com, ec2.amazonaws.com], eventName|startswith: Delete}\ncondition: sel",
			"eventSource=ec2.amazonaws.com,s3.amazonaws.com",
			[]string{`{"eventName":"DeleteBucket","eventSource":"s3.amazonaws.com"}`},
			[]string{`{"eventName":"DeleteBucket","eventSource":"iam.amazonaws.com"}`}},
		{"and not", "sel: {eventName: [StopLogging, DeleteTrail]}\nfilter: {userIdentity.type: Root}\ncondition: sel and not filter",
			"eventName=deletetrail,stoplogging",
			[]string{`{"eventName":"StopLogging","userIdentity":{"type":"IAMUser"}}`},
			[]string{`{"eventName":"StopLogging","userIdentity":{"type":"Root"}}`}},
		{"1 of, each pinned", "sel_a: {eventName: A}\nsel_b: {eventName: B, eventSource: x}\ncondition: 1 of sel_*",
			"eventName=a,b", []string{`{"eventName":"B","eventSource":"x"}`}, []string{`{"eventName":"C","eventSource":"x"}`}},
		{"all of: the fewest values", "sel_a: {eventName: [A, B]}\nsel_b: {eventSource: x}\ncondition: all of sel_*",
			"eventName=a,b", []string{`{"eventName":"A","eventSource":"x"}`}, []string{`{"eventName":"A"}`}},
		{"2 of", "sel_a: {eventName: A}\nsel_b: {eventName: B}\nsel_c: {userAgent: curl}\ncondition: 2 of sel_*",
			"", []string{`{"eventName":"A","userAgent":"curl"}`}, []string{`{"eventName":"A"}`}},
		{"the field of the fewest values", "sel: {userIdentity.type: [Root, IAMUser], errorCode: AccessDenied}\ncondition: sel",
			"errorCode=accessdenied", []string{`{"userIdentity":{"type":"Root"},"errorCode":"AccessDenied"}`}, nil},

		// Rules that must be evaluated on every record.
		{"not", "sel: {eventName: CreateUser}\ncondition: not sel",
			"", []string{`{"eventName":"DeleteUser"}`, `{}`}, []string{`{"eventName":"CreateUser"}`}},
		{"or with an unpinned side", "a: {eventName: CreateUser}\nb: {userAgent|contains: curl}\ncondition: a or b",
			"", []string{`{"eventName":"DeleteUser","userAgent":"curl/8"}`}, []string{`{"eventName":"DeleteUser"}`}},
		{"1 of with keywords", "sel_a: {eventName: CreateUser}\nsel_b: [trufflehog]\ncondition: 1 of sel_*",
			"", []string{`{"eventName":"GetObject","userAgent":"TruffleHog/3"}`}, nil},
		{"a list of conditions", "a: {eventName: CreateUser}\nb: {eventSource: s3.amazonaws.com}\ncondition: [a, b]",
			"", []string{`{"eventName":"GetObject","eventSource":"s3.amazonaws.com"}`}, nil},
		{"list of maps, one unpinned", "sel: [{eventName: CreateUser}, {eventSource: s3.amazonaws.com}]\ncondition: sel",
			"", []string{`{"eventName":"GetObject","eventSource":"s3.amazonaws.com"}`}, nil},
		{"keywords", "keywords: [StopLogging]\ncondition: keywords",
			"", []string{`{"requestParameters":{"note":"StopLogging"}}`}, nil},
		{"null", "sel: {eventName: [CreateUser, null]}\ncondition: sel",
			"", []string{`{"eventSource":"x"}`, `{"eventName":null}`}, []string{`{"eventName":"X"}`}},
		{"neq", "sel: {eventName|neq: CreateUser}\ncondition: sel",
			"", []string{`{"eventName":"DeleteUser"}`}, []string{`{"eventName":"CreateUser"}`, `{}`}},
		{"contains", "sel: {eventName|contains: User}\ncondition: sel", "", []string{`{"eventName":"DeleteUser"}`}, nil},
		{"wildcard", "sel: {eventName: 'Create?ser'}\ncondition: sel", "", []string{`{"eventName":"CreateUser"}`}, nil},
		{"all of two values", "sel: {eventName|all: [CreateUser, DeleteUser]}\ncondition: sel",
			"", []string{`{"eventName":["CreateUser","DeleteUser"]}`}, []string{`{"eventName":"CreateUser"}`}},
		{"exists false", "sel: {eventName|exists: false}\ncondition: sel", "", []string{`{}`}, []string{`{"eventName":"x"}`}},
		{"fieldref", "sel: {eventName|fieldref: eventSource}\ncondition: sel", "", []string{`{"eventName":"a","eventSource":"A"}`}, nil},
		{"regular expression", "sel: {eventName|re: '^Create'}\ncondition: sel", "", []string{`{"eventName":"CreateUser"}`}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rules, errs := ParseFile("p.yml", []byte(ruleText(tt.det)))
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			s, errs := NewSet(rules)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			if got := indexedBy(s, rules[0]); got != tt.index {
				t.Errorf("indexed by %q, want %q", got, tt.index)
			}
			for want, recs := range map[bool][]string{true: tt.match, false: tt.noMatch} {
				for _, rec := range recs {
					ev, err := NewEvent([]byte(rec))
					if err != nil {
						t.Fatal(err)
					}
					if got := len(s.Eval(ev, nil)) == 1; got != want {
						t.Errorf("%s: match %v, want %v", rec, got, want)
					}
				}
			}
		})
	}
}

// A rule that only feeds a correlation is indexed like any other: the
// records the index skips could not have counted.
func TestPrefilterCorrelation(t *testing.T) {
	s := corrSetTB(t, "type: event_count\nrules: [failed_login]\ngroup-by: [userIdentity.userName]\ntimespan: 5m\ncondition: {gte: 2}\n")
	var base *Rule
	for _, r := range s.det {
		if r.Name == "failed_login" {
			base = r
		}
	}
	if got := indexedBy(s, base); got != "eventName=consolelogin" {
		t.Fatalf("failed_login indexed by %q", got)
	}
	st := NewState()
	var fired []string
	for i, e := range []ev{{"a", "ConsoleLogin", "alice", "", 0}, {"b", "GetObject", "alice", "", 1}, {"c", "ConsoleLogin", "alice", "", 2}} {
		raw := e.json()
		if i == 1 {
			raw = strings.Replace(raw, `"eventName"`, `"errorMessage":"Failed authentication","eventName"`, 1)
		}
		evt, err := NewEvent([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range s.Eval(evt, st) {
			fired = append(fired, m.Rule.Key()+" "+fmt.Sprint(m.EventIDs))
		}
	}
	if want := []string{"corr-1 [a c]"}; !slices.Equal(fired, want) {
		t.Errorf("fired %q, want %q", fired, want)
	}
}
