package lake

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/archive/archivetest"

	"github.com/opentrail/opentrail/internal/archive"
)

// benchArchive writes files × 1000 records (seed 000's Lambda Invokes and the
// fixture's management events) in AWS's layout and returns its root and size.
func benchArchive(b *testing.B, files int) (string, int64) {
	root := b.TempDir()
	mgmt := fixtureRecords(b)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for f := range files {
		var recs [][]byte
		for i := range 1000 {
			if i%3 == 0 {
				recs = append(recs, lambdaInvoke(fmt.Sprintf("fn-%d", i%20), fmt.Sprintf("eni-%017x", i%8), fmt.Sprintf("%08d-0000-0000-0000-%012d", f, i), base.Add(time.Duration(f)*time.Minute)))
			} else {
				recs = append(recs, mgmt[(f*1000+i)%len(mgmt)])
			}
		}
		archivetest.WriteLogFile(b, root, logKey(acct, "us-east-1", base.Add(time.Duration(f)*5*time.Minute), f), recs...)
	}
	var size int64
	ar, _ := archive.Open(context.Background(), root, nil)
	fs, _ := ar.List(context.Background(), archive.Filter{}, nil)
	for _, f := range fs {
		size += f.Size
	}
	return root, size
}

// BenchmarkArchiveDecode is the reader alone: list, read, gunzip, split records.
func BenchmarkArchiveDecode(b *testing.B) {
	root, size := benchArchive(b, 200)
	ar, _ := archive.Open(context.Background(), root, nil)
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		files, _ := ar.List(context.Background(), archive.Filter{}, nil)
		n := 0
		ar.Decode(context.Background(), files, archive.Filter{}, 0, func(r archive.Result) error { n += len(r.Records); return nil })
		if n != 200000 {
			b.Fatal(n)
		}
	}
	b.ReportMetric(float64(200000*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkQueryLogs runs the seed 000 query over the archive (table cloudtrail_logs).
func BenchmarkQueryLogs(b *testing.B) {
	root, size := benchArchive(b, 200)
	b.SetBytes(size)
	q := fmt.Sprintf(seedQuery, "cloudtrail_logs")
	b.ResetTimer()
	for b.Loop() {
		if _, err := QueryLogs(context.Background(), root, nil, q, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(200000*b.N)/b.Elapsed().Seconds(), "records/s")
	os.Remove(root)
}
