package digest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// cliJob is one run of testdata/cli_validate.py.
type cliJob struct {
	Dir      string `json:"dir"`
	TrailARN string `json:"trailArn"`
	Region   string `json:"region"`
	Bucket   string `json:"bucket"`
	Prefix   string `json:"prefix"`
	Start    string `json:"start"`
	End      string `json:"end"`
	Verbose  bool   `json:"verbose"`
}

type cliResult struct {
	RC       int         `json:"rc"`
	Stdout   string      `json:"stdout"`
	Stderr   string      `json:"stderr"`
	Error    *string     `json:"error"`
	KeyCalls [][]float64 `json:"keyCalls"`
}

// runCLI runs the AWS CLI's validation code over jobs, skipping the test when the CLI
// is not installed.
func runCLI(t *testing.T, jobs []cliJob) []cliResult {
	t.Helper()
	if err := exec.Command("python3", "-c", "import awscli.customizations.cloudtrail.validation").Run(); err != nil {
		t.Skipf("the AWS CLI (python3 -m awscli) is not installed: %v", err)
	}
	in := filepath.Join(t.TempDir(), "jobs.json")
	b, _ := json.Marshal(jobs)
	if err := os.WriteFile(in, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("python3", filepath.Join("testdata", "cli_validate.py"), in)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cli_validate.py: %v\n%s", err, &stderr)
	}
	var res []cliResult
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(jobs) {
		t.Fatalf("cli_validate.py output (%v): %s", err, out)
	}
	return res
}

// dump writes the trail's bucket and public keys where cli_validate.py reads them.
func (tr *trail) dump(t *testing.T) string {
	dir := t.TempDir()
	type object struct {
		Bucket string            `json:"bucket"`
		Key    string            `json:"key"`
		File   string            `json:"file"`
		Meta   map[string]string `json:"meta"`
	}
	type key struct {
		Fingerprint       string  `json:"Fingerprint"`
		Value             string  `json:"Value"`
		ValidityStartTime float64 `json:"ValidityStartTime"`
		ValidityEndTime   float64 `json:"ValidityEndTime"`
	}
	var m struct {
		Objects []object `json:"objects"`
		Keys    []key    `json:"keys"`
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range tr.bucket.objs {
			if !yield(k) {
				return
			}
		}
	})
	for i, k := range keys {
		o := tr.bucket.objs[k]
		f := fmt.Sprintf("o%d", i)
		if err := os.WriteFile(filepath.Join(dir, f), o.body, 0o600); err != nil {
			t.Fatal(err)
		}
		m.Objects = append(m.Objects, object{tr.bucket.Name(), k, f, o.meta})
	}
	epoch := func(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
	for _, pk := range tr.ring.PublicKeys(tr.region, time.Time{}, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)) {
		// On the wire and as the CLI keeps it (identity blob parser): base64 of the DER.
		m.Keys = append(m.Keys, key{pk.Fingerprint, base64.StdEncoding.EncodeToString(pk.Value), epoch(pk.ValidityStartTime), epoch(pk.ValidityEndTime)})
	}
	b, _ := json.Marshal(&m)
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestCLIAgrees runs every scenario through the AWS CLI's validate-logs code and through
// Validate: the CLI must accept what we write, and both must print the same report, byte
// for byte, and agree on the exit status. Scenarios marked stricter are ones where our
// extra link check finds what the CLI cannot; there the CLI must call everything valid.
func TestCLIAgrees(t *testing.T) {
	type run struct {
		sc   scenario
		tr   *trail
		rep  Report
		jobs []cliJob
	}
	var runs []run
	var jobs []cliJob
	for _, sc := range scenarios {
		tr := newTrail(t, sc.prefix, sc.period)
		start, end := sc.build(tr)
		dir := tr.dump(t)
		r := run{sc: sc, tr: tr}
		for _, verbose := range []bool{true, false} {
			r.jobs = append(r.jobs, cliJob{Dir: dir, TrailARN: testARN, Region: tr.region, Bucket: tr.bucket.Name(), Prefix: tr.prefix,
				Start: start.Format(time.RFC3339), End: end.Format(time.RFC3339), Verbose: verbose})
		}
		o := tr.options(start, end)
		rep, err := Validate(t.Context(), o)
		if err != nil {
			t.Fatalf("%s: %v", sc.name, err)
		}
		r.rep = rep
		runs = append(runs, r)
		jobs = append(jobs, r.jobs...)
	}
	results := runCLI(t, jobs)
	for i, r := range runs {
		t.Run(r.sc.name, func(t *testing.T) {
			for j, job := range r.jobs {
				cli := results[2*i+j]
				if cli.Error != nil {
					t.Fatalf("the CLI failed: %s\nstdout:\n%s\nstderr:\n%s", *cli.Error, cli.Stdout, cli.Stderr)
				}
				if r.sc.stricter {
					// The CLI follows links by name only: everything is valid to it.
					if n := r.sc.want.validDigests + r.sc.want.invalidDigests; cli.RC != 0 || cli.Stderr != "" ||
						!strings.Contains(cli.Stdout, fmt.Sprintf("\n%d/%d digest files valid\n", n, n)) {
						t.Fatalf("CLI exit %d\nstdout:\n%s\nstderr:\n%s", cli.RC, cli.Stdout, cli.Stderr)
					}
					continue
				}
				rep := r.rep
				rep.Verbose = job.Verbose
				var out, errOut bytes.Buffer
				rep.Print(&out, &errOut)
				if out.String() != cli.Stdout {
					t.Errorf("verbose=%v stdout differs\nours:\n%s\nCLI:\n%s", job.Verbose, &out, cli.Stdout)
				}
				if errOut.String() != cli.Stderr {
					t.Errorf("verbose=%v stderr differs\nours:\n%s\nCLI:\n%s", job.Verbose, &errOut, cli.Stderr)
				}
				if want := r.sc.wantRC(); cli.RC != want {
					t.Errorf("CLI exit status %d, want %d", cli.RC, want)
				}
				if !strings.Contains(cli.Stdout, r.sc.wantSummary()) {
					t.Errorf("CLI stdout lacks %q:\n%s", r.sc.wantSummary(), cli.Stdout)
				}
			}
			// The CLI asks ListPublicKeys for [start, end+2h] once.
			if calls := results[2*i].KeyCalls; len(calls) != 1 || calls[0][1]-calls[0][0] != r.rep.End.Sub(r.rep.Start).Seconds()+7200 {
				t.Errorf("ListPublicKeys calls %v", calls)
			}
		})
	}
}
