package server_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"

	"github.com/opentrail/opentrail/internal/app"
	"github.com/opentrail/opentrail/internal/server"
)

// rssMiB is this process's resident set size.
func rssMiB(tb testing.TB) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	tb.Skip("no VmRSS")
	return 0
}

// BenchmarkSlowUnsignedConnections is issue 11's attack: 1,000 connections
// that announce a 1 MiB unsigned body and then send it one byte a second.
// It reports the RSS they add to the server's process and the latency of a
// signed LookupEvents while they hang on (target: < 100 MiB, still served).
func BenchmarkSlowUnsignedConnections(b *testing.B) {
	a, err := app.Open(context.Background(), app.Config{DataDir: b.TempDir(), RootKeyID: rootID, RootKey: rootSecret, CacheMiB: 16},
		slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: a.Handler, ReadHeaderTimeout: server.ReadHeaderTimeout, IdleTimeout: server.IdleTimeout}
	go srv.Serve(ln)
	defer srv.Close()
	ct := cloudtrail.New(cloudtrail.Options{BaseEndpoint: aws.String("http://" + ln.Addr().String()), Region: "us-east-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: rootID, SecretAccessKey: rootSecret}, nil
		})})
	lookup := func() time.Duration {
		t0 := time.Now()
		if _, err := ct.LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{}); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	lookup()
	for i := 0; i < b.N; i++ {
		runtime.GC()
		before := rssMiB(b)
		const conns = 1000
		var wg sync.WaitGroup
		var mu sync.Mutex
		var opened []net.Conn
		answered := 0
		for c := 0; c < conns; c++ {
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			fmt.Fprintf(conn, "POST /v1/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", 1<<20)
			opened = append(opened, conn)
			wg.Add(1)
			go func() {
				defer wg.Done()
				conn.SetReadDeadline(time.Now().Add(3 * time.Second))
				if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
					resp.Body.Close()
					mu.Lock()
					answered++
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Second)
		during := rssMiB(b)
		latency := lookup()
		wg.Wait()
		for _, c := range opened {
			c.Close()
		}
		b.ReportMetric(during-before, "MiB-added")
		b.ReportMetric(float64(latency.Microseconds())/1000, "signed-ms")
		b.ReportMetric(float64(answered), "refused-at-once")
	}
}
