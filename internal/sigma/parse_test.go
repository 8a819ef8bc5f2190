package sigma

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type parseErrorTest struct {
	name string
	det  string // detection section, wrapped by ruleText; or a whole file when file is set
	file string
	want string // the error, position included
}

var parseErrorTests = []parseErrorTest{
	{"unknown identifier", "sel:\n  a: b\ncondition: sel and other", "", "t.yml:9:22: detection.condition: unknown search identifier \"other\""},
	{"quoted condition column", "sel:\n  a: b\ncondition: 'sel and other'", "", "t.yml:9:23: detection.condition: unknown search identifier \"other\""},
	{"missing paren", "sel:\n  a: b\ncondition: (sel", "", "t.yml:9:18: detection.condition: want ) to close the ( at offset 0, got end of condition"},
	{"stray paren", "sel:\n  a: b\ncondition: sel)", "", "t.yml:9:17: detection.condition: unexpected \")\""},
	{"dangling and", "sel:\n  a: b\ncondition: sel and", "", "t.yml:9:21: detection.condition: want a search identifier, not, ( or N of, got end of condition"},
	{"of without target", "sel:\n  a: b\ncondition: 1 of", "", "t.yml:9:18: detection.condition: want them or a search identifier pattern after of, got end of condition"},
	{"pattern matches nothing", "sel:\n  a: b\ncondition: 1 of filter*", "", "t.yml:9:19: detection.condition: \"filter*\" matches no search identifier"},
	{"zero of", "sel:\n  a: b\ncondition: 0 of them", "", "t.yml:9:14: detection.condition: 0 of: the count must be at least 1"},
	{"bare pattern", "sel:\n  a: b\ncondition: sel*", "", "t.yml:9:14: detection.condition: a pattern such as \"sel*\" needs 1 of or all of before it"},
	{"aggregation", "sel:\n  a: b\ncondition: sel | count() > 5", "", "t.yml:9:18: detection.condition: aggregations (| count() ...) are deprecated in Sigma; write a correlation rule"},
	{"nested too deeply", "sel:\n  a: b\ncondition: " + strings.Repeat("(", 200) + "sel" + strings.Repeat(")", 200), "", "t.yml:9:114: detection.condition: condition nested too deeply"},
	{"no condition", "sel:\n  a: b", "", "t.yml:7:3: detection.condition is required"},
	{"unknown modifier", "sel:\n  a|contain: b\ncondition: sel", "", "t.yml:8:7: unknown modifier \"contain\""},
	{"two modes", "sel:\n  a|contains|endswith: b\ncondition: sel", "", "t.yml:8:16: modifier endswith: only one of contains, startswith, endswith"},
	{"re flag alone", "sel:\n  a|i: b\ncondition: sel", "", "t.yml:8:7: modifier i: only after re"},
	{"re and contains", "sel:\n  a|re|contains: b\ncondition: sel", "", "t.yml:8:5: modifier re cannot be combined with contains"},
	{"bad regex", "sel:\n  a|re: '(?<=x)y'\ncondition: sel", "", "t.yml:8:11: modifier re: error parsing regexp: invalid named capture: `(?<=x)y` (regular expressions are RE2: no lookaround or backreferences)"},
	{"bad cidr", "sel:\n  a|cidr: 300.0.0.0/8\ncondition: sel", "", "t.yml:8:13: modifier cidr: \"300.0.0.0/8\" is not an IPv4 or IPv6 network"},
	{"gt not number", "sel:\n  a|gt: ten\ncondition: sel", "", "t.yml:8:11: modifier gt: \"ten\" is not a number"},
	{"exists not bool", "sel:\n  a|exists: maybe\ncondition: sel", "", "t.yml:8:15: modifier exists: want true or false"},
	{"expand", "sel:\n  a|expand: '%x%'\ncondition: sel", "", "t.yml:8:7: modifier expand: placeholders are not supported"},
	{"base64 wildcard", "sel:\n  a|base64: 'x*'\ncondition: sel", "", "t.yml:8:15: modifier base64: the value cannot hold wildcards"},
	{"neq with gt", "sel:\n  a|neq|gt: 1\ncondition: sel", "", "t.yml:8:5: modifier neq cannot be combined with gt"},
	{"neq null", "sel:\n  a|neq: null\ncondition: sel", "", "t.yml:8:12: modifier neq: value cannot be null (use exists: true)"},
	{"nested map value", "sel:\n  a:\n    b: c\ncondition: sel", "", "t.yml:9:7: a: want a value or a list of values"},
	{"nested list value", "sel:\n  a:\n    - [b]\ncondition: sel", "", "t.yml:9:9: a: want a value, not a nested list"},
	{"empty value list", "sel:\n  a: []\ncondition: sel", "", "t.yml:8:8: a: empty list of values"},
	{"duplicate identifier", "sel:\n  a: b\nsel:\n  a: c\ncondition: sel", "", "t.yml:9:3: detection: search identifier \"sel\" given twice"},
	{"null with modifier", "sel:\n  a|contains: null\ncondition: sel", "", "t.yml:8:17: null cannot take modifiers"},
	{"timeframe", "sel:\n  a: b\ntimeframe: 5m\ncondition: sel", "", "t.yml:9:3: detection.timeframe: aggregations are deprecated in Sigma; write a correlation rule"},

	{"no title", "", "logsource: {product: aws}\ndetection: {s: {a: b}, condition: s}\n", "t.yml:1:1: rule: title is required"},
	{"no logsource", "", "title: x\ndetection: {s: {a: b}, condition: s}\n", "t.yml:1:1: rule: logsource is required"},
	{"no detection", "", "title: x\nlogsource: {product: aws}\n", "t.yml:1:1: rule: detection (or correlation) is required"},
	{"bad level", "", "title: x\nlevel: severe\nlogsource: {product: aws}\ndetection: {s: {a: b}, condition: s}\n", "t.yml:2:8: level: \"severe\" is not informational, low, medium, high or critical"},
	{"tags not list", "", "title: x\ntags: {a: b}\nlogsource: {product: aws}\ndetection: {s: {a: b}, condition: s}\n", "t.yml:2:7: tags: want a list of strings"},
	{"yaml syntax", "", "title: x\nlogsource: [\n", "t.yml:2: yaml: did not find expected node content"},
	{"not a mapping", "", "- a\n- b\n", "t.yml:1:1: rule: want a mapping of rule attributes"},
	{"filter without rules", "", "title: f\nlogsource: {product: aws}\nfilter:\n  s: {a: b}\n  condition: s\n", "t.yml:4:3: filter.rules is required"},
	{"filter bad condition", "", "title: f\nlogsource: {product: aws}\nfilter:\n  rules: [x]\n  s: {a: b}\n  condition: t\n", "t.yml:6:14: detection.condition: unknown search identifier \"t\""},
	{"global action", "", "action: global\ntitle: x\n", "t.yml:1:9: action: rule collections (action: global/reset/repeat) are not supported; write each rule in full"},

	{"correlation no type", "", "title: c\ncorrelation:\n  rules: [a]\n  timespan: 5m\n", "t.yml:3:3: correlation.type is required"},
	{"correlation bad type", "", "title: c\ncorrelation:\n  type: count\n  rules: [a]\n  timespan: 5m\n", "t.yml:3:9: correlation.type: \"count\" is not event_count, value_count, temporal or temporal_ordered"},
	{"correlation bad timespan", "", "title: c\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 5x\n  condition: {gte: 2}\n", "t.yml:5:13: correlation.timespan: \"5x\": unit must be s, m, h, d or w"},
	{"correlation no condition", "", "title: c\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 5m\n", "t.yml:3:3: correlation.condition is required for event_count"},
	{"value_count no field", "", "title: c\ncorrelation:\n  type: value_count\n  rules: [a]\n  timespan: 5m\n  condition: {gte: 2}\n", "t.yml:6:14: correlation.condition.field is required for value_count"},
	{"correlation bad op", "", "title: c\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 5m\n  condition: {ge: 2}\n", "t.yml:6:15: correlation.condition: unknown operator \"ge\" (want gt, gte, lt, lte, eq or field)"},
	{"temporal one rule", "", "title: c\ncorrelation:\n  type: temporal\n  rules: [a]\n  timespan: 5m\n", "t.yml:3:3: correlation.rules: a temporal correlation needs at least two rules"},
	{"correlation and detection", "", "title: c\nlogsource: {product: aws}\ndetection: {s: {a: b}, condition: s}\ncorrelation:\n  type: temporal\n", "t.yml:1:1: rule: give one of detection, correlation and filter"},
}

func TestParseErrors(t *testing.T) {
	for _, tt := range parseErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			text := tt.file
			if text == "" {
				text = ruleText(tt.det)
			}
			rules, errs := ParseFile("t.yml", []byte(text))
			if len(rules) != 0 || len(errs) != 1 {
				t.Fatalf("got %d rules, errors %v; want one error", len(rules), errs)
			}
			if got := errs[0].Error(); got != tt.want {
				t.Errorf("error\n got %s\nwant %s", got, tt.want)
			}
			var pe *Error
			if !errors.As(errs[0], &pe) {
				t.Errorf("error is %T, want *Error", errs[0])
			}
		})
	}
}

// A file of several documents yields its good rules and one positioned error
// per bad one, whatever comes after the bad one.
func TestParseFileDocuments(t *testing.T) {
	file := `title: one
id: 1
logsource: {product: aws, service: cloudtrail}
detection: {s: {eventName: A}, condition: s}
---
title: broken
logsource: {product: aws
---
# a comment-only document is skipped
---
title: three
logsource:
    product: windows
    category: process_creation
detection:
    s:
        Image|endswith: '\cmd.exe'
    condition: s
---
title: four
logsource: {product: aws}
detection: {s: {eventName: B}, condition: s and t}
---
title: five
name: five_name
logsource: {product: aws, service: cloudtrail}
detection: {s: {eventName: B}, condition: s}
`
	rules, errs := ParseFile("multi.yml", []byte(file))
	if len(rules) != 3 {
		t.Fatalf("got %d rules, want 3", len(rules))
	}
	want := []string{"multi.yml:6: yaml: did not find expected ',' or '}'", "multi.yml:22:49: detection.condition: unknown search identifier \"t\""}
	if len(errs) != len(want) {
		t.Fatalf("errors %v, want %v", errs, want)
	}
	for i, err := range errs {
		if err.Error() != want[i] {
			t.Errorf("error %d\n got %s\nwant %s", i, err, want[i])
		}
	}
	if rules[0].Title != "one" || !rules[0].Applies || rules[0].Line != 1 {
		t.Errorf("rule one: %+v", rules[0])
	}
	if rules[1].Title != "three" || rules[1].Applies || rules[1].Line != 11 || rules[1].Product != "windows" {
		t.Errorf("rule three should parse and not apply: %+v", rules[1])
	}
	if rules[2].Name != "five_name" || rules[2].Line != 24 {
		t.Errorf("rule five: %+v", rules[2])
	}
	s, errs := NewSet(rules)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	ev, _ := NewEvent([]byte(`{"eventName":"x","Image":"C:\\Windows\\cmd.exe"}`))
	if m := s.Eval(ev, nil); len(m) != 0 {
		t.Errorf("a rule that does not apply matched: %v", m)
	}
}

func TestParseMetadata(t *testing.T) {
	file := `title: Meta
id: 5f3c1a1e-0000-4000-8000-000000000001
name: meta_rule
status: experimental
description: |
    Two lines
    of description.
author: Ana, Ben
license: DRL-1.1
date: 2024-01-02
modified: 2024-03-04
references:
    - https://example.com/a
tags:
    - attack.t1078
    - attack.persistence
level: critical
falsepositives: Admins
fields:
    - eventName
logsource:
    product: aws
detection:
    s: {eventName: A}
    condition: s
`
	rules, errs := ParseFile("m.yml", []byte(file))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	r := rules[0]
	if r.ID != "5f3c1a1e-0000-4000-8000-000000000001" || r.Name != "meta_rule" || r.Status != "experimental" ||
		r.Description != "Two lines\nof description.\n" || r.Author != "Ana, Ben" || r.License != "DRL-1.1" ||
		r.Date != "2024-01-02" || r.Modified != "2024-03-04" || len(r.References) != 1 ||
		strings.Join(r.Tags, ",") != "attack.t1078,attack.persistence" || r.Level != "critical" ||
		strings.Join(r.FalsePositives, ",") != "Admins" || strings.Join(r.Fields, ",") != "eventName" ||
		!r.Applies || r.Key() != r.ID {
		t.Errorf("metadata: %+v", r)
	}
}

func TestParseCorrelation(t *testing.T) {
	file := `title: Many failed logins
id: c1
correlation:
    type: value_count
    rules:
        - failed_login
    group-by:
        - sourceIPAddress
        - user
    timespan: 1h
    condition:
        gte: 3
        field: userIdentity.userName
    generate: true
    aliases:
        user:
            failed_login: userIdentity.arn
level: high
`
	rules, errs := ParseFile("c.yml", []byte(file))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	c := rules[0].Correlation
	if c == nil || c.Type != "value_count" || c.Rules[0] != "failed_login" || len(c.GroupBy) != 2 ||
		c.Timespan != time.Hour || c.Op != "gte" || c.Count != 3 || c.Field != "userIdentity.userName" ||
		!c.Generate || c.Aliases["user"]["failed_login"] != "userIdentity.arn" {
		t.Errorf("correlation: %+v", c)
	}
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{{"30s", 30 * time.Second}, {"5m", 5 * time.Minute}, {"2h", 2 * time.Hour}, {"1d", 24 * time.Hour}, {"1w", 7 * 24 * time.Hour}} {
		if got, err := parseTimespan(tt.in); err != nil || got != tt.want {
			t.Errorf("parseTimespan(%q) = %v, %v", tt.in, got, err)
		}
	}
	for _, bad := range []string{"", "5", "m", "0m", "-1m", "1.5h", "99999999999d"} {
		if _, err := parseTimespan(bad); err == nil {
			t.Errorf("parseTimespan(%q) succeeded", bad)
		}
	}
}

func TestSetErrors(t *testing.T) {
	file := `title: a
id: a1
name: base
logsource: {product: aws, service: cloudtrail}
detection: {s: {eventName: A}, condition: s}
---
title: a again
id: a1
logsource: {product: aws, service: cloudtrail}
detection: {s: {eventName: A}, condition: s}
---
title: c missing
correlation: {type: event_count, rules: [nope], timespan: 5m, condition: {gte: 2}}
---
title: c of c
id: cc
correlation: {type: event_count, rules: [c2], timespan: 5m, condition: {gte: 2}}
---
title: c2
id: c2
correlation: {type: event_count, rules: [base], timespan: 5m, condition: {gte: 2}}
---
title: cycle one
id: cy1
correlation: {type: temporal, rules: [cy2, base], timespan: 5m}
---
title: cycle two
id: cy2
correlation: {type: temporal, rules: [cy1, base], timespan: 5m}
---
title: windows base
id: w1
logsource: {product: windows}
detection: {s: {a: b}, condition: s}
---
title: c on windows
id: cw
correlation: {type: event_count, rules: [w1], timespan: 5m, condition: {gte: 2}}
`
	rules, errs := ParseFile("s.yml", []byte(file))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	s, errs := NewSet(rules)
	want := []string{
		"s.yml:7: rule id a1 is also the id of s.yml:1",
		`s.yml:12: correlation: rule "nope" not found (by id or name)`,
		`s.yml:27: correlation: rule "cy1" is part of a cycle of correlations`,
		`s.yml:23: correlation: rule "cy2" was left out`,
	}
	if len(errs) != len(want) {
		t.Fatalf("errors %v, want %v", errs, want)
	}
	for i := range want {
		if errs[i].Error() != want[i] {
			t.Errorf("error %d: got %s, want %s", i, errs[i], want[i])
		}
	}
	var keys []string
	for _, r := range s.Rules() {
		keys = append(keys, r.Key()+"="+map[bool]string{true: "applies", false: "n/a"}[r.Applies])
	}
	if got := strings.Join(keys, " "); got != "a1=applies cc=applies c2=applies w1=n/a cw=n/a" {
		t.Errorf("rules %s", got)
	}
}

// A filter rule suppresses the matches of the rules it names when its
// condition holds.
func TestFilter(t *testing.T) {
	file := `title: key created
id: k1
logsource: {product: aws, service: cloudtrail}
detection: {s: {eventName: CreateAccessKey}, condition: s}
---
title: other
id: k2
logsource: {product: aws, service: cloudtrail}
detection: {s: {eventName: CreateAccessKey}, condition: s}
---
title: Filter the automation role
id: f1
logsource: {product: aws, service: cloudtrail}
filter:
    rules: [k1]
    selection:
        userIdentity.arn|endswith: ':role/automation'
    condition: selection
---
title: filter of nothing
logsource: {product: aws}
filter:
    rules: [nope]
    selection: {a: b}
    condition: selection
---
title: correlation of a filter
correlation: {type: event_count, rules: [f1], timespan: 5m, condition: {gte: 1}}
`
	rules, errs := ParseFile("f.yml", []byte(file))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	if rules[2].Filter == nil || rules[2].Filter.Rules[0] != "k1" || !rules[2].Applies {
		t.Fatalf("filter rule: %+v", rules[2])
	}
	s, errs := NewSet(rules)
	want := []string{`f.yml:27: correlation: rule "f1" is a filter`, `f.yml:20: filter: rule "nope" not found (by id or name)`}
	if len(errs) != len(want) {
		t.Fatalf("errors %v, want %v", errs, want)
	}
	for i := range want {
		if errs[i].Error() != want[i] {
			t.Errorf("error %d: %s, want %s", i, errs[i], want[i])
		}
	}
	for _, tt := range []struct {
		arn  string
		want string
	}{
		{"arn:aws:iam::1:role/automation", "k2"},
		{"arn:aws:iam::1:user/ana", "k1,k2"},
	} {
		ev, _ := NewEvent([]byte(`{"eventName":"CreateAccessKey","userIdentity":{"arn":"` + tt.arn + `"}}`))
		var got []string
		for _, m := range s.Eval(ev, nil) {
			got = append(got, m.Rule.ID)
		}
		if strings.Join(got, ",") != tt.want {
			t.Errorf("%s: matches %v, want %s", tt.arn, got, tt.want)
		}
	}
}
