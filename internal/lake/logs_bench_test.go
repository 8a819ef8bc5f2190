package lake

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

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
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		if _, err := QueryLogs(context.Background(), root, nil, q, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(200000*b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric((cpuTime()-cpu0).Seconds()/b.Elapsed().Seconds(), "cores")
	os.Remove(root)
}

// BenchmarkGunzipOnly is the floor under any scan of the archive: every file
// read and decompressed (klauspost/compress, one goroutine per CPU), nothing
// parsed. Its MB/s (of compressed input) bounds what query --logs can reach.
func BenchmarkGunzipOnly(b *testing.B) {
	root, size := benchArchive(b, 200)
	var paths []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			paths = append(paths, p)
		}
		return nil
	})
	b.SetBytes(size)
	var out atomic.Int64
	b.ResetTimer()
	for b.Loop() {
		var wg sync.WaitGroup
		next := atomic.Int64{}
		for range runtime.GOMAXPROCS(0) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int(next.Add(1)) - 1; i < len(paths); i = int(next.Add(1)) - 1 {
					f, err := os.Open(paths[i])
					if err != nil {
						b.Error(err)
						return
					}
					zr, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<16))
					if err != nil {
						b.Error(err)
						return
					}
					n, _ := io.Copy(io.Discard, zr)
					out.Add(n)
					f.Close()
				}
			}()
		}
		wg.Wait()
	}
	b.ReportMetric(float64(out.Load())/b.Elapsed().Seconds()/1e6, "MB/s-json")
}

// cpuTime is the CPU time this process has used (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
