package detect

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/archive"
	"github.com/opentrail/opentrail/internal/archive/archivetest"
	"github.com/opentrail/opentrail/internal/sigma/sigmatest"
)

func logKey(account, region string, at time.Time, n int) string {
	return fmt.Sprintf("AWSLogs/%s/CloudTrail/%s/%s/%s_CloudTrail_%s_%s_%016d.json.gz", account, region, at.Format("2006/01/02"),
		account, region, at.Format("20060102T1504Z"), n)
}

// withAccount adds recipientAccountId, as CloudTrail's log files have it.
func withAccount(rec string, account string) []byte {
	return []byte(strings.Replace(rec, `{`, `{"recipientAccountId":"`+account+`",`, 1))
}

// TestBacktestLogs runs the test rules over an archive whose brute force is
// split over two files: the correlation fires once, as in the projection.
func TestBacktestLogs(t *testing.T) {
	root := t.TempDir()
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	archivetest.WriteLogFile(t, root, logKey(acctA, "us-east-1", t0.Add(5*time.Minute), 1),
		withAccount(other("o1", t0), acctA), withAccount(failedLogin("a2", "alice", t0.Add(time.Minute)), acctA),
		withAccount(failedLogin("a1", "alice", t0), acctA), withAccount(failedLogin("b1", "alice", t0), acctB))
	archivetest.WriteLogFile(t, root, logKey(acctA, "us-east-1", t0.Add(10*time.Minute), 2),
		withAccount(failedLogin("a3", "alice", t0.Add(5*time.Minute)), acctA), withAccount(stopLogging("s1", t0.Add(6*time.Minute)), acctA))
	a, err := archive.Open(context.Background(), root, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		rules []string
		want  map[string]int64
	}{
		{"with a correlation", []string{"testdata/rules"}, map[string]int64{ruleStop: 1, ruleBrute: 1}},
		{"detections only, in parallel", []string{"testdata/rules/stop_logging.yml"}, map[string]int64{ruleStop: 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rs := Load(c.rules)
			if rs.Errors() != 0 {
				t.Fatalf("%+v", rs.Statuses())
			}
			var found []*Finding
			var on func(*Finding)
			if rs.Correlations() {
				on = func(f *Finding) { found = append(found, f) }
			}
			bt, n, err := BacktestLogs(context.Background(), rs, a, archive.Filter{}, 2, on, func(err error) { t.Log(err) })
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(bt.Matches) != fmt.Sprint(c.want) || bt.Events != 6 || n == 0 {
				t.Errorf("matches %v, %d events, %d bytes; want %v and 6 events", bt.Matches, bt.Events, n, c.want)
			}
			for _, f := range found {
				if f.RuleID == ruleBrute && (f.AccountID != acctA || strings.Join(f.EventIDs, ",") != "a1,a2,a3") {
					t.Errorf("brute force finding %+v", f)
				}
			}
		})
	}
}

// BenchmarkBacktestLogs is opentrail rules test --logs with 100 rules over
// the archive the lake's BenchmarkQueryLogs (query --logs) scans: 200 files of
// 1,000 records, a third Lambda Invokes, the rest the fixture's records. Run
// the two in turns to compare them.
func BenchmarkBacktestLogs(b *testing.B) {
	root, size := archivetest.BenchArchive(b, 200)
	a, err := archive.Open(context.Background(), root, nil)
	if err != nil {
		b.Fatal(err)
	}
	rs := Load([]string{sigmatest.HundredRules(b)})
	if rs.Errors() != 0 || rs.Running() != 100 {
		b.Fatalf("%d rules running, %d errors", rs.Running(), rs.Errors())
	}
	b.SetBytes(size)
	cpu0 := cpuTime()
	b.ResetTimer()
	var matches int64
	for b.Loop() {
		bt, _, err := BacktestLogs(context.Background(), rs, a, archive.Filter{}, 0, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		if bt.Events != 200000 {
			b.Fatalf("%d events", bt.Events)
		}
		matches = 0
		for _, n := range bt.Matches {
			matches += n
		}
	}
	b.ReportMetric(float64(200000*b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(matches), "matches")
	cpu := cpuTime() - cpu0
	b.ReportMetric(cpu.Seconds()/b.Elapsed().Seconds(), "cores")
	b.ReportMetric(float64(cpu.Microseconds())/float64(200000*b.N), "cpu-µs/record")
}

// cpuTime is the CPU time this process has used (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
