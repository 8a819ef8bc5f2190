package sigma

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// corrRules are the base rules every correlation test refers to.
const corrRules = `title: failed login
id: base-failed
name: failed_login
logsource: {product: aws, service: cloudtrail}
detection:
    s: {eventName: ConsoleLogin, errorMessage: Failed authentication}
    condition: s
---
title: create key
name: create_key
logsource: {product: aws, service: cloudtrail}
detection:
    s: {eventName: CreateAccessKey}
    condition: s
---
title: attach policy
name: attach_policy
logsource: {product: aws, service: cloudtrail}
detection:
    s: {eventName: AttachUserPolicy}
    condition: s
---
`

var t0 = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

// ev is a test event: "id name user ip minute[:second]".
type ev struct {
	id, name, user, ip string
	at                 time.Duration
}

func (e ev) json() string {
	msg := ""
	if e.name == "ConsoleLogin" {
		msg = `,"errorMessage":"Failed authentication"`
	}
	return fmt.Sprintf(`{"eventID":%q,"eventTime":%q,"eventName":%q,"sourceIPAddress":%q,"userIdentity":{"userName":%q,"arn":"arn:aws:iam::1:user/%s"}%s}`,
		e.id, t0.Add(e.at).Format(time.RFC3339Nano), e.name, e.ip, e.user, e.user, msg)
}

type firing struct {
	after string // the event id after which it fires
	ids   string // the event ids, comma-separated, sorted
	group string // group-by values "k=v,..." sorted
}

type corrTest struct {
	name   string
	corr   string // the correlation section
	events []ev
	want   []firing
}

const m = time.Minute

var corrTests = []corrTest{
	{"event_count", "type: event_count\nrules: [failed_login]\ngroup-by: [userIdentity.userName]\ntimespan: 5m\ncondition: {gte: 3}",
		[]ev{{"a", "ConsoleLogin", "ana", "ip1", 0}, {"b", "ConsoleLogin", "ben", "ip1", m}, {"c", "ConsoleLogin", "ana", "ip1", 2 * m},
			{"x", "GetUser", "ana", "ip1", 2 * m}, {"d", "ConsoleLogin", "ana", "ip1", 3 * m}},
		[]firing{{"d", "a,c,d", "userIdentity.userName=ana"}}},
	{"event_count window slides", "type: event_count\nrules: [failed_login]\ngroup-by: [userIdentity.userName]\ntimespan: 5m\ncondition: {gte: 3}",
		[]ev{{"a", "ConsoleLogin", "ana", "ip1", 0}, {"b", "ConsoleLogin", "ana", "ip1", 4 * m}, {"c", "ConsoleLogin", "ana", "ip1", 8 * m},
			{"d", "ConsoleLogin", "ana", "ip1", 9 * m}},
		[]firing{{"d", "b,c,d", "userIdentity.userName=ana"}}},
	{"event_count out of order", "type: event_count\nrules: [failed_login]\ntimespan: 5m\ncondition: {gte: 3}",
		[]ev{{"a", "ConsoleLogin", "ana", "ip1", 4 * m}, {"b", "ConsoleLogin", "ben", "ip1", 0}, {"z", "ConsoleLogin", "ana", "ip1", 20 * m},
			{"c", "ConsoleLogin", "cy", "ip1", 2 * m}},
		[]firing{{"c", "a,b,c", ""}}},
	{"event_count fires again only on new events", "type: event_count\nrules: [failed_login]\ntimespan: 5m\ncondition: {gte: 2}",
		[]ev{{"a", "ConsoleLogin", "ana", "ip1", 0}, {"b", "ConsoleLogin", "ana", "ip1", m}, {"c", "ConsoleLogin", "ana", "ip1", 2 * m},
			{"d", "ConsoleLogin", "ana", "ip1", 3 * m}},
		[]firing{{"b", "a,b", ""}, {"d", "c,d", ""}}},
	{"event_count replayed event counts once", "type: event_count\nrules: [failed_login]\ntimespan: 5m\ncondition: {gte: 2}",
		[]ev{{"a", "ConsoleLogin", "ana", "ip1", 0}, {"a", "ConsoleLogin", "ana", "ip1", 0}, {"b", "ConsoleLogin", "ana", "ip1", m}},
		[]firing{{"b", "a,b", ""}}},
	{"event_count eq", "type: event_count\nrules: [failed_login, create_key]\ntimespan: 1h\ncondition: {eq: 2}",
		[]ev{{"a", "ConsoleLogin", "ana", "ip1", 0}, {"b", "CreateAccessKey", "ana", "ip1", m}},
		[]firing{{"b", "a,b", ""}}},
	{"event_count gt", "type: event_count\nrules: [failed_login]\ntimespan: 1h\ncondition: {gt: 2}",
		[]ev{{"a", "ConsoleLogin", "ana", "ip1", 0}, {"b", "ConsoleLogin", "ana", "ip1", m}, {"c", "ConsoleLogin", "ana", "ip1", 2 * m}},
		[]firing{{"c", "a,b,c", ""}}},
	{"event_count lt fires when the window closes", "type: event_count\nrules: [create_key]\ngroup-by: [userIdentity.userName]\ntimespan: 5m\ncondition: {lt: 2}",
		[]ev{{"a", "CreateAccessKey", "ana", "ip1", 0}, {"b", "CreateAccessKey", "ben", "ip1", m}, {"c", "CreateAccessKey", "ben", "ip1", 2 * m},
			{"x", "GetUser", "cy", "ip1", 7 * m}},
		[]firing{{"x", "a", "userIdentity.userName=ana"}}},
	{"value_count", "type: value_count\nrules: [failed_login]\ngroup-by: [sourceIPAddress]\ntimespan: 10m\ncondition: {gte: 3, field: userIdentity.userName}",
		[]ev{{"a", "ConsoleLogin", "ana", "ip1", 0}, {"b", "ConsoleLogin", "ana", "ip1", m}, {"c", "ConsoleLogin", "ben", "ip1", 2 * m},
			{"d", "ConsoleLogin", "cy", "ip2", 3 * m}, {"e", "ConsoleLogin", "cy", "ip1", 4 * m}},
		[]firing{{"e", "a,b,c,e", "sourceIPAddress=ip1"}}},
	{"temporal", "type: temporal\nrules: [create_key, attach_policy]\ngroup-by: [userIdentity.userName]\ntimespan: 10m",
		[]ev{{"a", "AttachUserPolicy", "ana", "ip1", 0}, {"b", "CreateAccessKey", "ben", "ip1", m}, {"c", "CreateAccessKey", "ana", "ip1", 5 * m}},
		[]firing{{"c", "a,c", "userIdentity.userName=ana"}}},
	{"temporal too far apart", "type: temporal\nrules: [create_key, attach_policy]\ntimespan: 10m",
		[]ev{{"a", "AttachUserPolicy", "ana", "ip1", 0}, {"b", "CreateAccessKey", "ana", "ip1", 11 * m}},
		nil},
	{"temporal_ordered", "type: temporal_ordered\nrules: [create_key, attach_policy]\ngroup-by: [userIdentity.userName]\ntimespan: 10m",
		[]ev{{"a", "AttachUserPolicy", "ana", "ip1", 0}, {"b", "CreateAccessKey", "ana", "ip1", m}, {"c", "AttachUserPolicy", "ana", "ip1", 2 * m}},
		[]firing{{"c", "b,c", "userIdentity.userName=ana"}}},
	{"temporal_ordered wrong order", "type: temporal_ordered\nrules: [create_key, attach_policy]\ntimespan: 10m",
		[]ev{{"a", "AttachUserPolicy", "ana", "ip1", 0}, {"b", "CreateAccessKey", "ana", "ip1", m}},
		nil},
	{"temporal_ordered out of order arrival", "type: temporal_ordered\nrules: [create_key, attach_policy]\ntimespan: 10m",
		[]ev{{"b", "AttachUserPolicy", "ana", "ip1", 2 * m}, {"a", "CreateAccessKey", "ana", "ip1", m}},
		[]firing{{"a", "a,b", ""}}},
	{"aliases", "type: temporal\nrules: [create_key, attach_policy]\ngroup-by: [who]\ntimespan: 10m\naliases:\n  who:\n    create_key: userIdentity.userName\n    attach_policy: sourceIPAddress",
		[]ev{{"a", "AttachUserPolicy", "x", "ana", 0}, {"b", "CreateAccessKey", "ana", "ip9", m}},
		[]firing{{"b", "a,b", "who=ana"}}},
}

func corrSet(t *testing.T, corr string) *Set { return corrSetTB(t, corr) }

func corrSetTB(t testing.TB, corr string) *Set {
	t.Helper()
	text := corrRules + "title: the correlation\nid: corr-1\ncorrelation:\n" + indent(corr, "    ") + "level: high\n"
	rules, errs := ParseFile("c.yml", []byte(text))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	s, errs := NewSet(rules)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return s
}

// run feeds events through s with st and returns the correlation firings.
func run(t *testing.T, s *Set, st *State, events []ev) []firing {
	t.Helper()
	var got []firing
	for _, e := range events {
		event, err := NewEvent([]byte(e.json()))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range s.Eval(event, st) {
			if m.Rule.Correlation == nil {
				continue
			}
			ids := slices.Clone(m.EventIDs)
			slices.Sort(ids)
			var g []string
			for k, v := range m.GroupBy {
				g = append(g, k+"="+v)
			}
			slices.Sort(g)
			got = append(got, firing{e.id, strings.Join(ids, ","), strings.Join(g, ",")})
		}
	}
	return got
}

func TestCorrelations(t *testing.T) {
	for _, tt := range corrTests {
		t.Run(tt.name, func(t *testing.T) {
			s := corrSet(t, tt.corr)
			got := run(t, s, NewState(), tt.events)
			if !slices.Equal(got, tt.want) {
				t.Errorf("firings\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

// The state survives MarshalBinary/UnmarshalBinary between any two events: a
// restart anywhere gives the same firings.
func TestStateRoundTrip(t *testing.T) {
	for _, tt := range corrTests {
		t.Run(tt.name, func(t *testing.T) {
			s := corrSet(t, tt.corr)
			var got []firing
			st := NewState()
			for _, e := range tt.events {
				b, err := st.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				st = NewState()
				if err := st.UnmarshalBinary(b); err != nil {
					t.Fatal(err)
				}
				got = append(got, run(t, s, st, []ev{e})...)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("firings\n got %v\nwant %v", got, tt.want)
			}
		})
	}
	if err := NewState().UnmarshalBinary([]byte("x{}")); err == nil {
		t.Error("UnmarshalBinary accepted an unknown version")
	}
	if err := NewState().UnmarshalBinary([]byte{stateVersion, '{'}); err == nil {
		t.Error("UnmarshalBinary accepted truncated JSON")
	}
}

func TestStateExpire(t *testing.T) {
	s := corrSet(t, corrTests[0].corr) // gte 3 in 5m by user
	st := NewState()
	run(t, s, st, []ev{{"a", "ConsoleLogin", "ana", "ip1", 0}, {"b", "ConsoleLogin", "ana", "ip1", m}})
	if st.Len() != 2 {
		t.Fatalf("state holds %d events, want 2", st.Len())
	}
	st.Expire(t0.Add(5*m + 30*time.Second)) // a (0m) can no longer be in a window with events after it; b (1m) can
	if st.Len() != 1 {
		t.Fatalf("after Expire the state holds %d events, want 1", st.Len())
	}
	got := run(t, s, st, []ev{{"c", "ConsoleLogin", "ana", "ip1", 2 * m}, {"d", "ConsoleLogin", "ana", "ip1", 3 * m}})
	if want := []firing{{"d", "b,c,d", "userIdentity.userName=ana"}}; !slices.Equal(got, want) {
		t.Errorf("firings %v, want %v", got, want)
	}
	run(t, s, st, []ev{{"e", "ConsoleLogin", "ana", "ip1", 4 * m}})
	st.Expire(t0.Add(5 * m)) // nothing to drop: e (4m) and later are within 5m
	if st.Len() != 1 {
		t.Fatalf("an early Expire left %d events, want 1", st.Len())
	}
	// A state read back does not know its oldest event: Expire still drops.
	b, _ := st.MarshalBinary()
	st = NewState()
	if err := st.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	st.Expire(t0.Add(time.Hour))
	if st.Len() != 0 {
		t.Errorf("after a late Expire the state holds %d events", st.Len())
	}
}

// Base rules of a correlation with generate: false feed it without being
// reported; with generate: true both are reported. Without a State only
// detections are evaluated, so the base rule is reported.
func TestGenerate(t *testing.T) {
	for _, gen := range []bool{false, true} {
		s := corrSet(t, fmt.Sprintf("type: event_count\nrules: [failed_login]\ntimespan: 5m\ncondition: {gte: 1}\ngenerate: %v", gen))
		event, _ := NewEvent([]byte(ev{"a", "ConsoleLogin", "ana", "ip1", 0}.json()))
		var titles []string
		for _, m := range s.Eval(event, NewState()) {
			titles = append(titles, m.Rule.Title)
		}
		want := "the correlation"
		if gen {
			want = "failed login,the correlation"
		}
		if got := strings.Join(titles, ","); got != want {
			t.Errorf("generate %v: matches %s, want %s", gen, got, want)
		}
		if ms := s.Eval(event, nil); len(ms) != 1 || ms[0].Rule.Title != "failed login" {
			t.Errorf("generate %v: nil state gives %v", gen, ms)
		}
	}
}

// The specification's example: a correlation of a correlation. Many failed
// logins (an event_count that does not generate on its own) followed by an
// access key creation by the same user.
func TestChain(t *testing.T) {
	text := corrRules + `title: failed logins then key
id: chain-outer
correlation:
    type: temporal_ordered
    rules: [many_failed, create_key]
    group-by: [userIdentity.userName]
    timespan: 10m
level: high
---
title: many failed logins
id: chain-inner
name: many_failed
correlation:
    type: event_count
    rules: [failed_login]
    group-by: [userIdentity.userName]
    timespan: 10m
    condition: {gte: 2}
`
	rules, errs := ParseFile("chain.yml", []byte(text))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	s, errs := NewSet(rules)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	st := NewState()
	var got []string
	for _, e := range []ev{{"k0", "CreateAccessKey", "ana", "ip1", 0}, {"a", "ConsoleLogin", "ana", "ip1", m}, {"b", "ConsoleLogin", "ben", "ip1", 2 * m},
		{"c", "ConsoleLogin", "ana", "ip1", 3 * m}, {"k1", "CreateAccessKey", "ben", "ip1", 4 * m}, {"k2", "CreateAccessKey", "ana", "ip1", 5 * m}} {
		event, err := NewEvent([]byte(e.json()))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range s.Eval(event, st) {
			if m.Rule.Correlation == nil {
				continue
			}
			got = append(got, fmt.Sprintf("%s:%s:%s:%s", e.id, m.Rule.ID, strings.Join(m.EventIDs, ","), m.GroupBy["userIdentity.userName"]))
		}
	}
	want := []string{"k2:chain-outer:a,c,k2:ana"}
	if !slices.Equal(got, want) {
		t.Errorf("firings\n got %v\nwant %v", got, want)
	}
}

// A range condition (gt and lte together) and a temporal condition counting
// rules.
func TestCorrelationConditions(t *testing.T) {
	s := corrSet(t, "type: temporal\nrules: [failed_login, create_key, attach_policy]\ntimespan: 10m\ncondition: {gte: 2}")
	got := run(t, s, NewState(), []ev{{"a", "ConsoleLogin", "ana", "ip1", 0}, {"b", "CreateAccessKey", "ana", "ip1", m}})
	if want := []firing{{"b", "a,b", ""}}; !slices.Equal(got, want) {
		t.Errorf("temporal gte 2: %v, want %v", got, want)
	}
	s = corrSet(t, "type: event_count\nrules: [failed_login]\ntimespan: 5m\ncondition: {gt: 1, lte: 2}")
	got = run(t, s, NewState(), []ev{{"a", "ConsoleLogin", "ana", "ip1", 0}, {"b", "ConsoleLogin", "ana", "ip1", m},
		{"c", "ConsoleLogin", "ben", "ip1", 10 * m}, {"d", "ConsoleLogin", "ben", "ip1", 11 * m}, {"e", "ConsoleLogin", "ben", "ip1", 12 * m},
		{"x", "GetUser", "cy", "ip1", 30 * m}})
	if want := []firing{{"c", "a,b", ""}}; !slices.Equal(got, want) {
		t.Errorf("range: %v, want %v", got, want)
	}
}
