package selector

import (
	"encoding/json"
	"reflect"
	"testing"
)

// fuzzEvents are matched against every selector set the fuzzers compile.
var fuzzEvents = []Event{mgmtRead, mgmtWrite, mgmtKMS, mgmtOld, lambdaInvoke, s3Get, s3Put, s3Logs, ddbStream, snsPublish,
	netEC2Denied, netKMSDenied, insight, external, {}}

// FuzzNormalizeBasic checks that NormalizeBasic never panics, that its output
// normalizes to itself, and that whatever it accepts compiles and matches.
func FuzzNormalizeBasic(f *testing.F) {
	for _, tc := range basicCases {
		f.Add([]byte(tc.in))
	}
	for _, tab := range matchTables {
		if tab.basic != "" {
			f.Add([]byte(tab.basic))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var in []EventSelector
		if json.Unmarshal(data, &in) != nil {
			return
		}
		// Compile must cope with anything decodable, valid or not.
		if m, err := Compile(in, nil); err == nil {
			matchAll(m)
		}
		out, err := NormalizeBasic(in)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		again, err := NormalizeBasic(out)
		if err != nil {
			t.Fatalf("normalized selectors rejected: %v\n%s", err, mustJSON(t, out))
		}
		if !reflect.DeepEqual(again, out) {
			t.Fatalf("normalization is not idempotent:\n%s\n%s", mustJSON(t, out), mustJSON(t, again))
		}
		roundTrip(t, out)
		m, err := Compile(out, nil)
		if err != nil {
			t.Fatalf("Compile of normalized selectors: %v", err)
		}
		matchAll(m)
	})
}

// FuzzNormalizeAdvanced is FuzzNormalizeBasic for advanced selectors, under both
// the trail and the event data store rules.
func FuzzNormalizeAdvanced(f *testing.F) {
	for _, tc := range advancedCases {
		f.Add([]byte(tc.in), tc.store)
	}
	for _, tab := range matchTables {
		if tab.advanced != "" {
			f.Add([]byte(tab.advanced), tab.store)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, store bool) {
		var in []AdvancedEventSelector
		if json.Unmarshal(data, &in) != nil {
			return
		}
		if m, err := Compile(nil, in); err == nil {
			matchAll(m)
		}
		normalize := NormalizeAdvanced
		if store {
			normalize = NormalizeAdvancedStore
		}
		out, err := normalize(in)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		again, err := normalize(out)
		if err != nil {
			t.Fatalf("normalized selectors rejected: %v\n%s", err, mustJSON(t, out))
		}
		if !reflect.DeepEqual(again, out) {
			t.Fatalf("normalization is not idempotent:\n%s\n%s", mustJSON(t, out), mustJSON(t, again))
		}
		if !store {
			// Every trail selector is also a valid event data store selector,
			// except userIdentity.arn on network activity events.
			if _, err := NormalizeAdvancedStore(out); err != nil && !usesNetworkUserARN(out) {
				t.Fatalf("valid for a trail, not for a store: %v\n%s", err, mustJSON(t, out))
			}
		}
		roundTrip(t, out)
		m, err := Compile(nil, out)
		if err != nil {
			t.Fatalf("Compile of normalized selectors: %v", err)
		}
		matchAll(m)
	})
}

func matchAll(m *Matcher) {
	for i := range fuzzEvents {
		m.Match(&fuzzEvents[i])
	}
}

// roundTrip checks that normalized selectors survive the JSON a handler returns
// and the store keeps.
func roundTrip[T any](t *testing.T, out []T) {
	t.Helper()
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	var back []T
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, out) {
		t.Fatalf("JSON round trip changed the selectors:\n%s\n%s", b, mustJSON(t, back))
	}
}

func usesNetworkUserARN(sel []AdvancedEventSelector) bool {
	for _, s := range sel {
		net, user := false, false
		for _, f := range s.FieldSelectors {
			net = net || f.Field == FieldEventCategory && len(f.Equals) == 1 && f.Equals[0] == CategoryNetworkActivity
			user = user || f.Field == FieldUserARN
		}
		if net && user {
			return true
		}
	}
	return false
}
