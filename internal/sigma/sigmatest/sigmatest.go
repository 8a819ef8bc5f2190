// Package sigmatest gives tests and benchmarks of other packages the rule
// set the detection figures are measured with.
package sigmatest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

var topLevelID = regexp.MustCompile(`(?m)^id:\s*\S+`)

// HundredRules writes 100 rules to a temporary folder and returns it: the
// 33 SigmaHQ CloudTrail rules of the sigma package's testdata, then variants
// of them under new IDs.
func HundredRules(tb testing.TB) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("sigmatest: cannot find its own source")
	}
	src := filepath.Join(filepath.Dir(file), "..", "testdata", "rules")
	ents, err := os.ReadDir(src)
	if err != nil {
		tb.Fatal(err)
	}
	var texts []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".yml") {
			t, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				tb.Fatal(err)
			}
			texts = append(texts, string(t))
		}
	}
	if len(texts) == 0 {
		tb.Fatalf("sigmatest: no rules in %s", src)
	}
	dir := tb.TempDir()
	for i := range 100 {
		t := texts[i%len(texts)]
		if i >= len(texts) {
			t = topLevelID.ReplaceAllString(t, fmt.Sprintf("id: 00000000-0000-4000-8000-%012d", i))
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("r%03d.yml", i)), []byte(t), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}
