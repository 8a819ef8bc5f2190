package sigma

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// generate builds a record that rule r matches, from its own detection: it
// tries truth assignments of the search identifiers until one satisfies the
// condition, writes a value for each field of each identifier that must hold
// (and nothing for those that must not), and keeps the first record r
// matches. It also returns the paths it wrote.
func generate(r *Rule) (string, []string, error) {
	d := r.det
	n := len(d.order)
	if n > 12 {
		return "", nil, fmt.Errorf("too many identifiers")
	}
	for mask := 0; mask < 1<<n; mask++ {
		truth := map[*search]bool{}
		for i, name := range d.order {
			truth[d.idents[name]] = mask&(1<<i) != 0
		}
		if !evalWith(d.cond, truth) {
			continue
		}
		rec := map[string]any{"eventID": "gen-1", "eventTime": "2024-05-01T10:00:00Z"}
		var paths []string
		ok := true
		for i, name := range d.order {
			if mask&(1<<i) == 0 {
				continue
			}
			for _, fc := range d.idents[name].alts[0] {
				v, fine := valueFor(fc)
				if !fine {
					ok = false
					break
				}
				if v == nil {
					continue // null: leave absent
				}
				setPath(rec, fc.field.path, *v)
				paths = append(paths, fc.field.path)
			}
		}
		if !ok {
			continue
		}
		b, _ := json.Marshal(rec)
		ev, err := NewEvent(b)
		if err != nil {
			return "", nil, err
		}
		if d.match(ev) {
			return string(b), paths, nil
		}
	}
	return "", nil, fmt.Errorf("no record found")
}

// evalWith evaluates a condition with given identifier results.
func evalWith(conds []node, truth map[*search]bool) bool {
	var ev func(n node) bool
	ev = func(n node) bool {
		switch n := n.(type) {
		case identNode:
			return truth[n.s]
		case andNode:
			for _, c := range n {
				if !ev(c) {
					return false
				}
			}
			return true
		case orNode:
			for _, c := range n {
				if ev(c) {
					return true
				}
			}
			return false
		case notNode:
			return !ev(n.n)
		case ofNode:
			k := 0
			for _, s := range n.list {
				if truth[s] {
					k++
				}
			}
			if n.n == 0 {
				return k == len(n.list)
			}
			return k >= n.n
		}
		panic(fmt.Sprintf("node %T", n))
	}
	for _, c := range conds {
		if ev(c) {
			return true
		}
	}
	return false
}

// valueFor returns a string satisfying fc (nil for null), joining the values
// of an all list.
func valueFor(fc *fieldCond) (*string, bool) {
	ms := fc.matchers[:1]
	if fc.all {
		ms = fc.matchers
	}
	var b strings.Builder
	for _, m := range ms {
		switch m := m.(type) {
		case nullMatcher:
			return nil, true
		case *strMatcher:
			p := m.pats[0]
			if p.re != nil {
				return nil, false
			}
			b.WriteString(strings.Join(p.segs, "")) // '*' matches the empty string
		default:
			return nil, false
		}
	}
	s := b.String()
	return &s, true
}

// setPath sets a dotted path in nested maps.
func setPath(rec map[string]any, path string, v string) {
	parts := strings.Split(path, ".")
	m := rec
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}

// unrelated are records none of the shared rules may match.
var unrelated = []string{
	`{"eventID":"n1","eventTime":"2024-05-01T10:00:00Z","eventName":"DescribeInstances","eventSource":"ec2.amazonaws.com","userIdentity":{"type":"IAMUser"},"userAgent":"aws-cli/2.15"}`,
	`{"eventID":"n2","eventTime":"2024-05-01T10:00:00Z","eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com","responseElements":{"ConsoleLogin":"Success"}}`,
	`{"eventID":"n3","eventTime":"2024-05-01T10:00:00Z","eventName":"GetObject","eventSource":"s3.amazonaws.com","userIdentity":{"type":"AssumedRole","sessionContext":{"sessionIssuer":{"type":"User"}}}}`,
	`{"eventID":"n4","eventTime":"2024-05-01T10:00:00Z","eventName":"CreateUser","eventSource":"iam.amazonaws.com","userAgent":"console.amazonaws.com"}`,
	`{"eventID":"n5","eventTime":"2024-05-01T10:00:00Z","eventName":"SendCommand","eventSource":"ssm.amazonaws.com","errorCode":"AccessDenied"}`,
	`{"eventID":"n6","eventTime":"2024-05-01T10:00:00Z","eventName":"UpdateDetector","eventSource":"guardduty.amazonaws.com","requestParameters":{"enable":true}}`,
	`{"eventID":"n7","eventTime":"2024-05-01T10:00:00Z","eventName":"CreateInstanceExportTask","eventSource":"ec2.amazonaws.com","errorCode":"Client.InvalidParameter","errorMessage":"bad"}`,
}

// Every shared rule loads, fires on a record built from its own detection,
// stops firing when one of the values it asked for changes, and does not fire
// on unrelated records.
func TestSharedRules(t *testing.T) {
	rules := loadRules(t)
	if len(rules) != 33 {
		t.Fatalf("got %d rules, want 33", len(rules))
	}
	s, errs := NewSet(rules)
	for _, err := range errs {
		t.Error(err)
	}
	var negs []*Event
	for _, u := range unrelated {
		ev, err := NewEvent([]byte(u))
		if err != nil {
			t.Fatal(err)
		}
		negs = append(negs, ev)
	}
	for _, r := range rules {
		name := filepath.Base(r.File)
		if !r.Applies || r.ID == "" || r.Author == "" || r.Level == "" || r.Title == "" {
			t.Errorf("%s: applies=%v id=%q author=%q level=%q", name, r.Applies, r.ID, r.Author, r.Level)
		}
		rec, paths, err := generate(r)
		if err != nil {
			t.Errorf("%s: generate: %v", name, err)
			continue
		}
		ev, _ := NewEvent([]byte(rec))
		if !fired(s.Eval(ev, NewState()), r) {
			t.Errorf("%s: does not fire on %s", name, rec)
		}
		// Some value the rule asked for matters: changing it stops the rule.
		broken := false
		for _, p := range paths {
			var m map[string]any
			_ = json.Unmarshal([]byte(rec), &m)
			setPath(m, p, "zz-no-match")
			b, _ := json.Marshal(m)
			ev, _ := NewEvent(b)
			if !fired(s.Eval(ev, nil), r) {
				broken = true
				break
			}
		}
		if !broken {
			t.Errorf("%s: still fires whatever value of %v changes", name, paths)
		}
		for i, neg := range negs {
			if fired(s.Eval(neg, nil), r) {
				t.Errorf("%s: fires on unrelated record %d", name, i+1)
			}
		}
	}
}

func fired(ms []Match, r *Rule) bool {
	for _, m := range ms {
		if m.Rule == r {
			return true
		}
	}
	return false
}

// The real TrailDiscover records: no error, the pre-filter gives the same
// answers as evaluating every rule, and the rules that fire are plausible.
func TestFixtureRecords(t *testing.T) {
	rules := loadRules(t)
	s, _ := NewSet(rules)
	counts := map[string]int{}
	recs := fixture.Records(t)
	for i, raw := range recs {
		ev, err := NewEvent(raw)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		got := map[*Rule]bool{}
		for _, m := range s.Eval(ev, NewState()) {
			got[m.Rule] = true
			counts[filepath.Base(m.Rule.File)]++
			if m.EventIDs[0] != ev.ID() {
				t.Errorf("record %d: match lists %v, want %s", i, m.EventIDs, ev.ID())
			}
		}
		for _, r := range rules {
			if want := r.det.match(ev); want != got[r] {
				t.Errorf("record %d: %s: indexed %v, unindexed %v", i, r.File, got[r], want)
			}
		}
		// The real records the rules are about must fire them.
		var rec struct{ EventName, EventSource string }
		_ = json.Unmarshal(raw, &rec)
		if rec.EventName == "DeleteMountTarget" && rec.EventSource == "elasticfilesystem.amazonaws.com" && !firedFile(got, "aws_efs_fileshare_mount_modified_or_deleted.yml") {
			t.Errorf("record %d: DeleteMountTarget does not fire the EFS rule", i)
		}
	}
	t.Logf("matches over %d records: %v", len(recs), counts)
	for _, f := range []string{"aws_sts_assumerole_misuse.yml", "aws_snapshot_backup_exfiltration.yml", "aws_efs_fileshare_mount_modified_or_deleted.yml"} {
		if counts[f] == 0 {
			t.Errorf("%s never fires on the fixture records", f)
		}
	}
	if counts["aws_sts_assumerole_misuse.yml"] >= len(recs) {
		t.Errorf("the AssumeRole rule fires on every record")
	}
}

func firedFile(got map[*Rule]bool, file string) bool {
	for r := range got {
		if filepath.Base(r.File) == file {
			return true
		}
	}
	return false
}
