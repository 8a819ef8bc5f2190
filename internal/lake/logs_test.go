package lake

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/archive/archivetest"
)

func logKey(account, region string, at time.Time, n int) string {
	return fmt.Sprintf("AWSLogs/%s/CloudTrail/%s/%s/%s_CloudTrail_%s_%s_%016d.json.gz", account, region, at.Format("2006/01/02"),
		account, region, at.Format("20060102T1504Z"), n)
}

func TestQueryLogs(t *testing.T) {
	root := t.TempDir()
	base := time.Date(2021, 12, 4, 3, 25, 0, 0, time.UTC)
	want := map[string]int{}
	var batch [][]byte
	n := 0
	for i := range 500 {
		fn := fmt.Sprintf("vpc-lambda-%d", i%5)
		eni := fmt.Sprintf("eni-%017x", i%3)
		want[`"`+eni+`" "arn:aws:lambda:ap-northeast-1:123456789012:function:`+fn+`"`]++
		batch = append(batch, lambdaInvoke(fn, eni, fmt.Sprintf("77777777-0000-0000-0000-%012d", i), base.Add(time.Duration(i)*time.Second)))
		if len(batch) == 100 {
			archivetest.WriteLogFile(t, root, logKey(acct, "ap-northeast-1", base.Add(time.Duration(i)*time.Second), n), batch...)
			batch, n = nil, n+1
		}
	}
	var mgmt [][]byte
	for _, r := range fixtureRecords(t) {
		if !strings.Contains(string(r), "customerEniId") {
			mgmt = append(mgmt, r)
		}
	}
	// An organization trail's layout, a digest and a corrupt file beside them.
	archivetest.WriteLogFile(t, root, "AWSLogs/o-exampleorg/"+logKey(other, "us-east-1", base, 99), mgmt...)
	archivetest.WriteLogFile(t, root, "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2021/12/04/123456789012_CloudTrail-Digest_us-east-1_main_us-east-1_20211204T040000Z.json.gz",
		[]byte(`{"digestStartTime":"2021-12-04T03:00:00Z"}`))
	os.WriteFile(filepath.Join(root, "AWSLogs", acct, "CloudTrail", "bad_CloudTrail_us-east-1_20211204T0300Z_x.json.gz"), []byte("corrupt"), 0o644)

	res, err := QueryLogs(context.Background(), root, nil, fmt.Sprintf(seedQuery, "cloudtrail_logs"), Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, row := range res.Rows {
		var c int
		fmt.Sscan(str(row[2]), &c)
		got[str(row[0])+" "+str(row[1])] = c
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	if res.BytesScanned == 0 {
		t.Fatal("no bytes scanned")
	}
	res, err = QueryLogs(context.Background(), root, nil, "SELECT count(*), count(DISTINCT eventJsonChecksum), min(eventTime) FROM cloudtrail_logs", Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := table(res); !strings.HasPrefix(got, fmt.Sprintf("_col0 | _col1 | _col2\n%d | ", 500+len(mgmt))) {
		t.Fatalf("count: %s", got)
	}
	// The sandbox holds here too.
	for _, q := range []string{"SELECT * FROM read_text('/etc/passwd')", "SELECT * FROM lake.logs", "DROP TABLE cloudtrail_logs", "SELECT * FROM " + edsID} {
		if _, err := QueryLogs(context.Background(), root, nil, q, Options{Threads: 2}); err == nil {
			t.Errorf("%s: ran", q)
		}
	}
}

// TestQueryLogsTimePruning: a query bounded in eventTime reads only the files
// that can hold such events, and answers as if it had read them all.
func TestQueryLogsTimePruning(t *testing.T) {
	root := t.TempDir()
	d0 := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	size := map[int]int64{} // by day: bytes of that day's file
	for day := range 5 {
		delivered := d0.Add(time.Duration(day)*24*time.Hour + 12*time.Hour)
		var recs [][]byte
		for i := range 10 {
			recs = append(recs, lambdaInvoke("fn", "eni-1", fmt.Sprintf("88888888-0000-0000-%04d-%012d", day, i), delivered.Add(-10*time.Minute)))
		}
		key := logKey(acct, "us-east-1", delivered, day)
		archivetest.WriteLogFile(t, root, key, recs...)
		info, err := os.Stat(filepath.Join(root, key))
		if err != nil {
			t.Fatal(err)
		}
		size[day] = info.Size()
	}
	// A straggler: an event of day 2 delivered just after midnight of day 3.
	late := d0.Add(3*24*time.Hour + 30*time.Minute)
	lateKey := logKey(acct, "us-east-1", late, 9)
	archivetest.WriteLogFile(t, root, lateKey, lambdaInvoke("fn", "eni-1", "88888888-0000-0000-0009-000000000000", late.Add(-time.Hour)))
	lateInfo, _ := os.Stat(filepath.Join(root, lateKey))

	for _, c := range []struct {
		sql   string
		count string
		bytes int64 // read; 0 = all files
	}{
		// Days 1 and 2 and the straggler (day 3's file is read: it came within a day of the bound);
		// day 0 was delivered before the range, day 4 over a day after it.
		{"SELECT count(*) FROM cloudtrail_logs WHERE eventTime >= '2024-03-02 00:00:00' AND eventName = 'Invoke' AND eventTime < '2024-03-04 00:00:00'", "21", size[1] + size[2] + size[3] + lateInfo.Size()},
		{"SELECT count(*) FROM cloudtrail_logs t WHERE t.eventTime BETWEEN TIMESTAMP '2024-03-02 00:00:00' AND date_add('day', 2, TIMESTAMP '2024-03-02 00:00:00')", "21", size[1] + size[2] + size[3] + lateInfo.Size()},
		{"SELECT count(*) FROM cloudtrail_logs WHERE '2024-03-05 00:00:00' <= eventTime", "10", size[4]},
		// Not a top-level AND: every file.
		{"SELECT count(*) FROM cloudtrail_logs WHERE eventTime >= '2024-03-05 00:00:00' OR eventName = 'None'", "10", 0},
		{"SELECT count(*) FROM cloudtrail_logs WHERE eventTime >= '2024-03-02 00:00:00' AND eventTime < '2024-03-04 00:00:00' OR false", "21", 0},
	} {
		res, err := QueryLogs(context.Background(), root, nil, c.sql, Options{Threads: 2})
		if err != nil {
			t.Fatalf("%s: %v", c.sql, err)
		}
		all := lateInfo.Size()
		for _, s := range size {
			all += s
		}
		want := c.bytes
		if want == 0 {
			want = all
		}
		if got := str(res.Rows[0][0]); got != c.count || res.BytesScanned != want {
			t.Errorf("%s: count %s, read %d bytes; want %s, %d (all files: %d)", c.sql, got, res.BytesScanned, c.count, want, all)
		}
	}
}
