package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDeadLettersCommand: findings a destination rejected are listed and
// replayed with "opentrail deadletters --kind findings", against a real
// server process; flags of another kind are refused with exit code 2.
func TestDeadLettersCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusForbidden) }))
	defer refuse.Close()
	bin := buildBinary(t)
	srv := startServerBinary(t, bin, t.TempDir(), "--rules", "../../internal/detect/testdata/rules/stop_logging.yml",
		"--findings-destination", refuse.URL+"/hook-secret")
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "OPENTRAIL_ENDPOINT="+srv.endpoint,
			"OPENTRAIL_ACCESS_KEY_ID="+srv.keyID, "OPENTRAIL_SECRET_ACCESS_KEY="+srv.secret)
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	rec := `{"Records":[{"eventTime":"2024-02-03T04:05:06Z","eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com",` +
		`"eventID":"dl-stop","userIdentity":{"type":"IAMUser","userName":"mallory"},"requestParameters":{"name":"main"}}]}`
	if err := srv.client().post(t.Context(), "/v1/records", []byte(rec), nil); err != nil {
		t.Fatal(err)
	}
	var out string
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out, "dl-stop") && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		out, _ = run("deadletters", "list", "--kind", "findings")
	}
	if !strings.Contains(out, "dl-stop") || !strings.Contains(out, "critical") || !strings.Contains(out, refuse.URL) || strings.Contains(out, "hook-secret") {
		t.Fatalf("deadletters list --kind findings:\n%s", out)
	}
	if out, code := run("deadletters", "replay", "--kind", "findings"); code != 0 || !strings.Contains(out, "replayed 1 findings") {
		t.Fatalf("replay: %d %s", code, out)
	}
	for _, args := range [][]string{
		{"deadletters", "list", "--destination", refuse.URL},
		{"deadletters", "list", "--kind", "findings", "--log-group", "g"},
		{"deadletters", "list", "--kind", "everything"},
	} {
		if out, code := run(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, out)
		}
	}
}
