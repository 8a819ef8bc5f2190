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

// benchArchive is the archive every benchmark of query --logs reads, and
// rules test --logs' (detect's BenchmarkBacktestLogs) too.
var benchArchive = archivetest.BenchArchive

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
	cpu := cpuTime() - cpu0
	b.ReportMetric(cpu.Seconds()/b.Elapsed().Seconds(), "cores")
	b.ReportMetric(float64(cpu.Microseconds())/float64(200000*b.N), "cpu-µs/record")
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
