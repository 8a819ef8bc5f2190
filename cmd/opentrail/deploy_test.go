package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnit checks deploy/opentrail.service with systemd-analyze verify (any warning
// fails, such as a misspelt directive), with ExecStart pointed at the built binary, and
// that the binary accepts ExecStart's arguments.
func TestSystemdUnit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	unit, err := os.ReadFile(filepath.Join("..", "..", "deploy", "opentrail.service"))
	if err != nil {
		t.Fatal(err)
	}
	bin := buildBinary(t)
	var args []string
	sc := bufio.NewScanner(strings.NewReader(string(unit)))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "ExecStart="); ok {
			args = strings.Fields(rest)[1:]
		}
	}
	if len(args) == 0 {
		t.Fatal("no ExecStart")
	}
	if out, err := exec.Command(bin, append(args, "--help")...).CombinedOutput(); err != nil {
		t.Fatalf("opentrail %s --help: %v\n%s", strings.Join(args, " "), err, out)
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		skipE2E(t, "systemd-analyze is not installed")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "opentrail.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/opentrail", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
