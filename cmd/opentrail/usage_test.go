package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// skipE2E skips a test that needs a tool this machine lacks, or fails it under
// OPENTRAIL_REQUIRE_SERVERS=1 (CI), where every test must run.
func skipE2E(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("OPENTRAIL_REQUIRE_SERVERS") == "1" {
		t.Fatal(why + " (OPENTRAIL_REQUIRE_SERVERS=1)")
	}
	t.Skip(why)
}

// cleanEnv is the environment without OPENTRAIL_ and AWS_ variables, with HOME an empty
// directory, so that a test sees only the configuration it sets.
func cleanEnv(t *testing.T, extra ...string) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "OPENTRAIL_") || strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return append(append(env, "HOME="+t.TempDir()), extra...)
}

type result struct {
	stdout, stderr string
	code           int
}

// runBin runs the binary with env and returns what it printed and its exit code.
func runBin(t *testing.T, bin string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// commandPaths lists every command and subcommand, e.g. ["keys", "list"].
func commandPaths(cs []command, prefix []string) (nodes, leaves [][]string) {
	for _, c := range cs {
		p := append(append([]string(nil), prefix...), c.name)
		if sub := subcommands["opentrail "+strings.Join(p, " ")]; sub != nil {
			nodes = append(nodes, p)
			n, l := commandPaths(sub, p)
			nodes, leaves = append(nodes, n...), append(leaves, l...)
		} else {
			leaves = append(leaves, p)
		}
	}
	return nodes, leaves
}

var (
	helpFlagRE    = regexp.MustCompile(`(?m)^  --([a-z0-9-]+)`)
	helpDefaultRE = regexp.MustCompile(`^        \(default (".*")\)$`)
)

// TestEveryCommandHelp: every command and subcommand answers -h and --help with exit 0 and
// its usage, flags, the environment each flag reads and an example, on stdout; and a flag
// name has one default everywhere (issue 12: --s3-path-style differed between import and
// serve).
func TestEveryCommandHelp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	env := cleanEnv(t)
	nodes, leaves := commandPaths(commands, nil)
	for _, p := range nodes {
		for _, h := range []string{"-h", "--help"} {
			r := runBin(t, bin, env, append(p, h)...)
			if r.code != 0 || !strings.Contains(r.stdout, "Usage: opentrail "+strings.Join(p, " ")+" <command>") || !strings.Contains(r.stdout, "Commands:") {
				t.Errorf("opentrail %s %s: exit %d\n%s%s", strings.Join(p, " "), h, r.code, r.stdout, r.stderr)
			}
		}
	}
	defaults := map[string]map[string]string{} // flag → default → first command with it
	for _, p := range leaves {
		name := strings.Join(p, " ")
		for _, h := range []string{"-h", "--help"} {
			r := runBin(t, bin, env, append(p, h)...)
			if r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: opentrail "+name) || !strings.Contains(r.stdout, "\nFlags:\n") ||
				!strings.Contains(r.stdout, "\nExample:\n  ") || !strings.Contains(r.stdout, "--help") {
				t.Errorf("opentrail %s %s: exit %d\n%s%s", name, h, r.code, r.stdout, r.stderr)
			}
		}
		help := runBin(t, bin, env, append(p, "--help")...).stdout
		if strings.Contains(help, "--endpoint") && !strings.Contains(help, "(env $OPENTRAIL_ENDPOINT)") {
			t.Errorf("opentrail %s --help does not name the environment --endpoint reads:\n%s", name, help)
		}
		if p[0] == "bench" {
			continue // a benchmark's parameters are its own
		}
		lines := strings.Split(help, "\n")
		for i, l := range lines {
			m := helpFlagRE.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			def := `""`
			for _, next := range lines[i+1:] {
				if !strings.HasPrefix(next, "        ") {
					break
				}
				if d := helpDefaultRE.FindStringSubmatch(next); d != nil {
					def = d[1]
				}
			}
			if defaults[m[1]] == nil {
				defaults[m[1]] = map[string]string{}
			}
			if _, ok := defaults[m[1]][def]; !ok {
				defaults[m[1]][def] = name
			}
		}
	}
	for flag, defs := range defaults {
		// Two servers cannot listen on one address; serve's data dir is the one it keeps, the
		// others' (validate-logs) is where to look, from OPENTRAIL_DATA_DIR.
		if len(defs) > 1 && flag != "listen" && flag != "data-dir" {
			t.Errorf("--%s has several defaults: %v", flag, defs)
		}
	}
	if len(defaults["s3-path-style"]) != 1 || len(defaults["endpoint"]) != 1 {
		t.Errorf("flags not found in the help: %v", defaults)
	}
}

// TestExitCodes: 0 for success and help, 2 with a suggestion for a mistake in the command
// line (unknown command or flag, a value not among a flag's choices), 1 for a failure.
func TestExitCodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	env := cleanEnv(t)
	for _, tc := range []struct {
		args   []string
		env    []string
		code   int
		stderr string // substring
		stdout string // substring
	}{
		{args: nil, code: 2, stderr: "Usage: opentrail <command>"},
		{args: []string{"--help"}, code: 0, stdout: "validate-logs"},
		{args: []string{"help", "lookup"}, code: 0, stdout: "Usage: opentrail lookup"},
		{args: []string{"lookp"}, code: 2, stderr: `unknown command "lookp" (did you mean lookup?)`},
		{args: []string{"lookup", "--outptu", "json"}, code: 2, stderr: "unknown flag --outptu (did you mean --output?)"},
		{args: []string{"lookup", "--output", "yaml"}, code: 2, stderr: `--output "yaml": want table or json`},
		{args: []string{"query", "--output", "jsn", "SELECT 1"}, code: 2, stderr: "want table, json or csv (did you mean json?)"},
		{args: []string{"lookup", "extra"}, code: 2, stderr: `unexpected arguments ["extra"]`},
		{args: []string{"keys"}, code: 2, stderr: "name a command: create, list, disable, enable, delete"},
		{args: []string{"keys", "lst"}, code: 2, stderr: "(did you mean list?)"},
		{args: []string{"keys", "disable"}, code: 2, stderr: "give one ACCESS_KEY_ID"},
		{args: []string{"bench", "ingets"}, code: 2, stderr: "(did you mean ingest?)"},
		{args: []string{"serve", "--log-format", "xml"}, code: 2, stderr: "want text or json"},
		{args: []string{"serve"}, env: []string{"OPENTRAIL_LOG_FORMAT=xml"}, code: 2, stderr: "$OPENTRAIL_LOG_FORMAT (for --log-format)"},
		{args: []string{"proxy", "--redact", "hash", "--upstream", "http://127.0.0.1:1"}, code: 2, stderr: "want mask or hmac"},
		{args: []string{"completion", "bash"}, code: 0, stdout: "complete -o default -F _opentrail opentrail"},
		{args: []string{"completion", "zsh"}, code: 0, stdout: "compdef _opentrail opentrail"},
		{args: []string{"completion", "fish"}, code: 0, stdout: "complete -c opentrail"},
		{args: []string{"completion", "tcsh"}, code: 2, stderr: "unknown command"},
		{args: []string{"version"}, code: 0, stdout: "duckdb:      v"},
		{args: []string{"lookup"}, code: 1, stderr: "no credentials: set OPENTRAIL_ACCESS_KEY_ID"},
	} {
		r := runBin(t, bin, append(env, tc.env...), tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) || !strings.Contains(r.stdout, tc.stdout) {
			t.Errorf("opentrail %s: exit %d, want %d with %q on stderr and %q on stdout\nstdout: %s\nstderr: %s",
				strings.Join(tc.args, " "), r.code, tc.code, tc.stderr, tc.stdout, r.stdout, r.stderr)
		}
	}
	v := runBin(t, bin, env, "version").stdout
	for _, want := range []string{"opentrail ", "revision:", "build time:", "go:          go1.", "duckdb:"} {
		if !strings.Contains(v, want) {
			t.Errorf("version lacks %q:\n%s", want, v)
		}
	}
}

// TestBashCompletion loads the bash script and completes commands, flags and a flag's choices.
func TestBashCompletion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		skipE2E(t, "bash is not installed")
	}
	bin := buildBinary(t)
	for _, tc := range []struct{ words, want string }{
		{"opentrail ke", "keys"},
		{"opentrail keys di", "disable"},
		{"opentrail lookup --outp", "--output"},
		{"opentrail lookup --output ", "table json"},
		{"opentrail serve --log-format j", "json"},
		{"opentrail completion ", "bash zsh fish"},
	} {
		script := `source <(opentrail completion bash)
COMP_WORDS=(` + tc.words + `); [[ "` + tc.words + `" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _opentrail; echo "${COMPREPLY[*]}"`
		cmd := exec.Command(bash, "-c", script)
		cmd.Env = cleanEnv(t, "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != tc.want {
			t.Errorf("complete %q: %q (%v), want %q", tc.words, out, err, tc.want)
		}
	}
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
