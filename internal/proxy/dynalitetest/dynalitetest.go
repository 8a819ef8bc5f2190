// Package dynalitetest starts dynalite, an in-memory DynamoDB-compatible
// server, for tests that need a real DynamoDB endpoint.
//
// The binary is found at $OPENTRAIL_DYNALITE, else at
// <module root>/.cache/dynalite/node_modules/.bin/dynalite, else on PATH.
// Without it the test is skipped, unless OPENTRAIL_REQUIRE_SERVERS=1 (CI),
// where it fails.
package dynalitetest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Install is the command that provides the binary.
const Install = `npm install --prefix "$REPO/.cache/dynalite" dynalite@4`

// Binary returns the dynalite executable, or "".
func Binary() string {
	if p := os.Getenv("OPENTRAIL_DYNALITE"); p != "" {
		return p
	}
	if dir, err := os.Getwd(); err == nil {
		for ; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				p := filepath.Join(dir, ".cache", "dynalite", "node_modules", ".bin", "dynalite")
				if _, err := os.Stat(p); err == nil {
					return p
				}
				break
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	if p, err := exec.LookPath("dynalite"); err == nil {
		return p
	}
	return ""
}

// Start runs dynalite on a free loopback port until the test ends and
// returns its URL.
func Start(t testing.TB) string {
	t.Helper()
	bin := Binary()
	if bin == "" {
		msg := "dynalite not found; install it with: " + Install + " (or set OPENTRAIL_DYNALITE)"
		if os.Getenv("OPENTRAIL_REQUIRE_SERVERS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port := freePort(t)
		cmd := exec.Command(bin, "--host", "127.0.0.1", "--port", strconv.Itoa(port),
			"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start dynalite: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		url := fmt.Sprintf("http://127.0.0.1:%d", port)
		if err := waitReady(url, exited); err != nil {
			cmd.Process.Kill()
			lastErr = fmt.Errorf("%v; output: %s", err, out.String())
			continue
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
		})
		return url
	}
	t.Fatalf("dynalite did not start: %v", lastErr)
	return ""
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitReady polls until dynalite answers HTTP (any status) or exits.
func waitReady(url string, exited <-chan error) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("dynalite exited: %v", err)
		default:
		}
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("dynalite did not answer %s within 30s", url)
}
