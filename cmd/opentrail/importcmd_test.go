package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/archive/archivetest"

	"github.com/opentrail/opentrail/internal/fixture"
)

var summaryRE = regexp.MustCompile(`imported (\d+) new records, (\d+) already present, from (\d+) files \((\d+) corrupt`)

// TestImport imports CloudTrail archives (AWS's layout, an organization trail's
// layout, a digest and a corrupt file among them) into a running server, twice.
func TestImport(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	bin := buildBinary(t)
	srv := startServerBinary(t, bin, t.TempDir())
	t.Setenv("OPENTRAIL_ROOT_ACCESS_KEY_ID", srv.keyID)
	t.Setenv("OPENTRAIL_ROOT_SECRET_ACCESS_KEY", srv.secret)
	t.Setenv("OPENTRAIL_ACCESS_KEY_ID", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "")

	var recs [][]byte
	ids := map[string]bool{}
	for _, r := range fixture.Records(t) {
		var m struct {
			EventTime, EventID string
		}
		json.Unmarshal(r, &m)
		if m.EventTime == "" || m.EventID == "" {
			continue
		}
		recs = append(recs, r)
		ids[m.EventID] = true
	}
	root := t.TempDir()
	at := time.Date(2024, 5, 6, 7, 8, 0, 0, time.UTC)
	half := len(recs) / 2
	archivetest.WriteLogFile(t, root, fmt.Sprintf("AWSLogs/123456789012/CloudTrail/us-east-1/2024/05/06/123456789012_CloudTrail_us-east-1_%s_AAAAAAAAAAAAAAAA.json.gz", at.Format("20060102T1504Z")), recs[:half]...)
	archivetest.WriteLogFile(t, root, fmt.Sprintf("AWSLogs/o-a1b2c3d4e5/210987654321/CloudTrail/eu-west-1/2024/05/06/210987654321_CloudTrail_eu-west-1_%s_BBBBBBBBBBBBBBBB.json.gz", at.Format("20060102T1504Z")), recs[half:]...)
	archivetest.WriteLogFile(t, root, "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/05/06/123456789012_CloudTrail-Digest_us-east-1_main_us-east-1_20240506T080000Z.json.gz",
		[]byte(`{"digestStartTime":"2024-05-06T07:00:00Z"}`))
	os.WriteFile(filepath.Join(root, "AWSLogs/123456789012/CloudTrail/us-east-1/2024/05/06/123456789012_CloudTrail_us-east-1_20240506T0800Z_CCCCCCCCCCCCCCCC.json.gz"), []byte("\x1f\x8bnot really gzip"), 0o644)
	os.WriteFile(filepath.Join(root, "AWSLogs/README.txt"), []byte("not a log file"), 0o644)

	state := filepath.Join(t.TempDir(), "state.json")
	run := func(state string) (newRecs, present, files, corrupt int, out string) {
		t.Helper()
		var buf bytes.Buffer
		// No --quiet: the progress line is drawn only on a terminal, and buf is none.
		err := importMain([]string{"--server", srv.endpoint, "--state", state, root}, &buf)
		out = buf.String()
		m := summaryRE.FindStringSubmatch(out)
		if m == nil || strings.Contains(out, "\r") {
			t.Fatalf("import: %v\n%q", err, out)
		}
		// The corrupt file fails the command, named (issue 12: it exited 0).
		if err == nil || !strings.Contains(err.Error(), "1 files are corrupt and were not imported:\n  AWSLogs/123456789012/CloudTrail/us-east-1/2024/05/06/123456789012_CloudTrail_us-east-1_20240506T0800Z_CCCCCCCCCCCCCCCC.json.gz") {
			t.Fatalf("import with a corrupt file: %v", err)
		}
		fmt.Sscan(m[1], &newRecs)
		fmt.Sscan(m[2], &present)
		fmt.Sscan(m[3], &files)
		fmt.Sscan(m[4], &corrupt)
		return
	}
	n, p, files, corrupt, out := run(state)
	if n != len(ids) || n+p != len(recs) || files != 3 || corrupt != 1 || !strings.Contains(out, "CCCCCCCCCCCCCCCC") {
		t.Fatalf("first import: %d new, %d present, %d files, %d corrupt; want %d new of %d records, 3 files, 1 corrupt\n%s", n, p, files, corrupt, len(ids), len(recs), out)
	}
	byAccount := map[string]int{}
	for _, r := range recs {
		byAccount[recipientAccount(r)]++
	}
	var want []string
	for a, n := range byAccount {
		name := a
		if a == "" {
			name = "the key's account (records without recipientAccountId)"
		}
		want = append(want, fmt.Sprintf("%s: %d", name, n))
	}
	sort.Strings(want)
	if !strings.Contains(out, "records by account: "+strings.Join(want, ", ")+"\n") {
		t.Errorf("the summary does not say which accounts the records went to (want %v):\n%s", want, out)
	}
	// Again with the same state: the two good files are done; only the corrupt one is read again.
	n, p, files, _, out = run(state)
	if n != 0 || p != 0 || files != 1 {
		t.Fatalf("second import: %d new, %d present, %d files\n%s", n, p, files, out)
	}
	// Without the state the server recognises every record.
	n, p, _, _, out = run(filepath.Join(t.TempDir(), "fresh.json"))
	if n != 0 || p != len(recs) {
		t.Fatalf("import without state: %d new, %d present; want 0, %d\n%s", n, p, len(recs), out)
	}
}

func TestRecipientAccount(t *testing.T) {
	for _, tc := range []struct{ rec, want string }{
		{`{"eventName":"X","recipientAccountId":"123456789012"}`, "123456789012"},
		{`{"requestParameters":{"recipientAccountId":"999999999999"},"recipientAccountId":"123456789012","eventCategory":"Management"}`, "123456789012"},
		{`{"eventName":"X"}`, ""},
		{`{"recipientAccountId":"12345`, ""},
	} {
		if got := recipientAccount([]byte(tc.rec)); got != tc.want {
			t.Errorf("recipientAccount(%s) = %q, want %q", tc.rec, got, tc.want)
		}
	}
}
