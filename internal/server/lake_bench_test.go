package server_test

import (
	"bufio"
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/opentrail/opentrail/internal/fixture"
)

// BenchmarkLakeFairness measures issue 11 §4's scenario: account A runs two
// heavy queries (a four-way cross join, and a string_agg over a cross join
// that builds a ~1.5 GB string) and then repeat('a', 2e9); meanwhile account
// B's count(*) is timed from StartQuery to FINISHED. It reports B's latency and
// the process's peak RSS (VmHWM; the server runs in this process).
func BenchmarkLakeFairness(b *testing.B) {
	e := start(b)
	ctx := context.Background()
	acctB := e.newKey("222222222222", "bob", "admin")
	ctA, ctB := e.ct(root, "us-east-1"), e.ct(acctB, "us-east-1")
	store := func(ct *cloudtrail.Client, name string) string {
		out, err := ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String(name)})
		if err != nil {
			b.Fatal(err)
		}
		arn := aws.ToString(out.EventDataStoreArn)
		return arn[strings.LastIndex(arn, "/")+1:]
	}
	idA, idB := store(ctA, "heavy-a"), store(ctB, "small-b")
	var lambda string // a management event (what a store keeps by default) of over 1 KB
	for _, r := range fixture.Records(b) {
		if strings.Contains(string(r), `"managementEvent":true`) && strings.Contains(string(r), `"eventID":"`) && len(r) > 1000 {
			lambda = string(r)
			break
		}
	}
	for n, k := range []key{root, acctB} {
		acct := []string{rootAcct, "222222222222"}[n]
		tmpl := recipientRE.ReplaceAllString(lambda, `"recipientAccountId":"`+acct+`"`)
		for i := range 2 {
			if st, out := e.post(k, "us-east-1", "/v1/records", ingestBody(k.id+strconv.Itoa(i), 500, tmpl)); st != 200 {
				b.Fatalf("%d %s", st, out)
			}
		}
	}
	e.waitLake()
	wait := func(ct *cloudtrail.Client, id *string) *cloudtrail.DescribeQueryOutput {
		for {
			d, err := ct.DescribeQuery(ctx, &cloudtrail.DescribeQueryInput{QueryId: id})
			if err != nil {
				b.Fatal(err)
			}
			if d.QueryStatus != types.QueryStatusQueued && d.QueryStatus != types.QueryStatusRunning {
				return d
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	var worst time.Duration
	b.ResetTimer()
	for range b.N {
		var heavy []*string
		for _, sql := range []string{
			"SELECT length(string_agg(a.eventjson, ',')) FROM " + idA + " a, " + idA + " b",
			"SELECT count(*) FROM " + idA + " a, " + idA + " b, " + idA + " c, " + idA + " d",
			"SELECT length(repeat('a', 2000000000)) FROM " + idA,
		} {
			q, err := ctA.StartQuery(ctx, &cloudtrail.StartQueryInput{QueryStatement: aws.String(sql)})
			if err != nil {
				b.Fatal(err)
			}
			heavy = append(heavy, q.QueryId)
		}
		time.Sleep(500 * time.Millisecond) // A's queries are under way
		t0 := time.Now()
		q, err := ctB.StartQuery(ctx, &cloudtrail.StartQueryInput{QueryStatement: aws.String("SELECT count(*) FROM " + idB)})
		if err != nil {
			b.Fatal(err)
		}
		if d := wait(ctB, q.QueryId); d.QueryStatus != types.QueryStatusFinished {
			b.Fatalf("B's query: %s %s", d.QueryStatus, aws.ToString(d.ErrorMessage))
		}
		worst = max(worst, time.Since(t0))
		time.Sleep(8 * time.Second) // let A's queries build up memory
		for i, id := range heavy {
			ctA.CancelQuery(ctx, &cloudtrail.CancelQueryInput{QueryId: id})
			d := wait(ctA, id)
			b.Logf("A's query %d: %s %s", i, d.QueryStatus, aws.ToString(d.ErrorMessage))
		}
	}
	b.ReportMetric(float64(worst.Milliseconds()), "B-ms")
	b.ReportMetric(float64(peakRSS(b)), "peak-RSS-MiB")
}

var recipientRE = regexp.MustCompile(`"recipientAccountId":"[0-9]{12}"`)

// peakRSS is this process's VmHWM in MiB.
func peakRSS(b *testing.B) int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Skip("no /proc")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return kb >> 10
		}
	}
	return 0
}
