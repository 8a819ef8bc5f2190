package sigma

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/opentrail/opentrail/internal/fixture"
)

// loadRules parses every rule under testdata/rules.
func loadRules(t testing.TB) []*Rule {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "rules", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no rules: %v", err)
	}
	var rules []*Rule
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rs, errs := ParseFile(f, b)
		for _, err := range errs {
			t.Errorf("%v", err)
		}
		rules = append(rules, rs...)
	}
	return rules
}

func TestSharedRulesLoad(t *testing.T) {
	rules := loadRules(t)
	if len(rules) != 33 {
		t.Fatalf("got %d rules, want 33", len(rules))
	}
	for _, r := range rules {
		if !r.Applies || r.ID == "" || r.Author == "" || r.Level == "" {
			t.Errorf("%s:%d: applies=%v id=%q author=%q level=%q", r.File, r.Line, r.Applies, r.ID, r.Author, r.Level)
		}
	}
	s, errs := NewSet(rules)
	for _, err := range errs {
		t.Error(err)
	}
	counts := map[string]int{}
	for _, raw := range fixture.Records(t) {
		ev, err := NewEvent(raw)
		if err != nil {
			t.Fatalf("NewEvent: %v", err)
		}
		for _, m := range s.Eval(ev, NewState()) {
			counts[m.Rule.Title]++
		}
	}
	t.Logf("%v", counts)
}
