package sigma

import (
	"fmt"
	"testing"

	"github.com/opentrail/opentrail/internal/fixture"
)

// indexRecords are records for the corners of the rule index: an indexed
// field that is an array, a number, a boolean, null, absent, non-ASCII or
// longer than any indexed value, and keys holding dots.
var indexRecords = []string{
	`{"eventName":["CreateUser","x"],"eventSource":"iam.amazonaws.com"}`,
	`{"eventName":[["DeleteTrail"]],"eventSource":["cloudtrail.amazonaws.com"]}`,
	`{"eventName":"CREATEUSER","readOnly":false,"userIdentity":{"type":"ROOT"}}`,
	`{"eventName":null,"userIdentity":{"type":null},"readOnly":"FALSE"}`,
	`{"eventName":"CreateUſer","userIdentity":{"type":"Roo\u212a"},"eventSource":"İam.amazonaws.com"}`,
	`{"eventName":"` + string(make([]byte, 300)) + `"}`,
	`{"userIdentity.type":"Root","userIdentity":{"type":"IAMUser"},"eventName.x":"CreateUser"}`,
	`{"userIdentity":{"sessionContext.sessionIssuer":{"type":"Role"},"type":"AssumedRole"},"tlsDetails":{"tlsVersion":["TLSv1"]}}`,
	`{"eventType":"AwsConsoleSignIn","additionalEventData":{"MFAUsed":"No"},"errorCode":"AccessDenied","sourceIPAddress":"10.1.2.3"}`,
}

// The rule index only narrows: over the fixture records, the match tests'
// records and the index's corners, Eval reports exactly the detection rules
// that match when every rule is evaluated.
func TestIndexAgreesWithEvaluation(t *testing.T) {
	recs := fixture.Records(t)
	rules := benchRules(t, recs)
	for _, tt := range matchTests {
		rs, errs := ParseFile("m.yml", []byte(ruleText(tt.det)))
		if len(errs) == 0 {
			for i, r := range rs {
				r.ID = fmt.Sprintf("%s-%d", tt.name, i)
			}
			rules = append(rules, rs...)
		}
	}
	s, errs := NewSet(rules)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var raws []string
	for _, r := range recs {
		raws = append(raws, string(r))
	}
	raws = append(raws, record)
	for _, tt := range matchTests {
		if tt.rec != "" {
			raws = append(raws, tt.rec)
		}
	}
	raws = append(raws, indexRecords...)
	raws = append(raws, unrelated...)
	for n, raw := range raws {
		ev, err := NewEvent([]byte(raw))
		if err != nil {
			t.Fatalf("record %d: %v", n, err)
		}
		got := map[*Rule]bool{}
		for _, m := range s.Eval(ev, nil) {
			got[m.Rule] = true
		}
		for i, r := range s.det {
			want := r.det.match(ev) && !filtered(s.filters[i], ev)
			if got[r] != want {
				t.Errorf("record %d: rule %s: Eval %v, every rule evaluated %v", n, r.Key(), got[r], want)
			}
		}
	}
}

func TestIsASCII(t *testing.T) {
	for n := 0; n < 20; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = 'a' + byte(i%26)
		}
		if !isASCII(string(b)) {
			t.Errorf("isASCII(%q) = false", b)
		}
		for i := range b {
			c := append([]byte(nil), b...)
			c[i] = 0x80
			if isASCII(string(c)) {
				t.Errorf("isASCII(%q) = true", c)
			}
		}
	}
}

// Members are kept as offsets into the record: keys with escapes, dots and
// quotes still resolve as their decoded text.
func TestEventEscapedKeys(t *testing.T) {
	ev, err := NewEvent([]byte(`{"event\u004eame":"CreateUser","a\"b":{"c":1},"userIdentity":{"ty\u0070e":"Root","x.y":"d","x":{"y":"e"}},"k\\":[{"\u006b":"v"},{}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ field, want string }{
		{"eventName", "CreateUser"},
		{`a"b.c`, "1"},
		{"userIdentity.type", "Root"},
		{"userIdentity.x.y", "d"},
		{`k\.k`, "v"},
		{"eventNam", ""},
	} {
		if got := fmt.Sprint(ev.Values(tt.field)); got != "["+tt.want+"]" {
			t.Errorf("Values(%s) = %s, want [%s]", tt.field, got, tt.want)
		}
	}
}
