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
	if got := res.table(); !strings.HasPrefix(got, fmt.Sprintf("_col0 | _col1 | _col2\n%d | ", 500+len(mgmt))) {
		t.Fatalf("count: %s", got)
	}
	// The sandbox holds here too.
	for _, q := range []string{"SELECT * FROM read_text('/etc/passwd')", "SELECT * FROM lake.logs", "DROP TABLE cloudtrail_logs", "SELECT * FROM " + edsID} {
		if _, err := QueryLogs(context.Background(), root, nil, q, Options{Threads: 2}); err == nil {
			t.Errorf("%s: ran", q)
		}
	}
}
