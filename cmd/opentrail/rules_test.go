package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRulesCheck: every error is printed as file:line:col, the good rules are
// counted, and the command fails when there is an error.
func TestRulesCheck(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"good.yml": "title: Good\nid: 11111111-1111-4111-8111-111111111111\nlogsource:\n    product: aws\n    service: cloudtrail\n" +
			"detection:\n    selection:\n        eventName: StopLogging\n    condition: selection\nlevel: high\n",
		"sub/bad.yaml": "title: Bad\nid: 22222222-2222-4222-8222-222222222222\nlogsource:\n    product: aws\n    service: cloudtrail\n" +
			"detection:\n    selection:\n        eventName|nosuchmodifier: X\n    condition: selection\n",
		"windows.yml": "title: Not CloudTrail\nid: 33333333-3333-4333-8333-333333333333\nlogsource:\n    product: windows\n" +
			"detection:\n    selection:\n        EventID: 4625\n    condition: selection\n",
		"notes.txt": "not a rule",
	} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	err := rulesCheck([]string{dir}, &out)
	if err == nil {
		t.Fatalf("no error for a broken rule:\n%s", out.String())
	}
	bad := regexp.QuoteMeta(filepath.Join(dir, "sub", "bad.yaml"))
	if !regexp.MustCompile(`(?m)^` + bad + `:8:\d+: .*nosuchmodifier`).MatchString(out.String()) {
		t.Errorf("no file:line:col for the broken rule:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "1 rules ok, 1 not applicable, 1 errors") {
		t.Errorf("summary:\n%s", out.String())
	}
	out.Reset()
	if err := rulesCheck([]string{filepath.Join(dir, "good.yml")}, &out); err != nil {
		t.Errorf("good rule: %v\n%s", err, out.String())
	}
}
