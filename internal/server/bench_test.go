package server_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opentrail/opentrail/internal/fixture"
)

// BenchmarkIngest measures acknowledged (fsynced) ingest of the seed's Lambda
// Invoke record (~1.5 KB) in 500-record requests over loopback HTTP, with
// request bodies prepared in advance so the figure is the server's.
func BenchmarkIngest(b *testing.B) {
	e := startWithCache(b, 256)
	recs := fixture.Records(b)
	lambda := string(recs[563]) // the seed's Lambda Invoke data event
	const perRequest = 500
	// Bodies are made before the clock starts: the figure is the server's (and the signing client's).
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = ingestBody(fmt.Sprintf("b%d", i), perRequest, lambda)
	}
	var n atomic.Int64
	b.SetBytes(int64(len(lambda)) * perRequest)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := bodies[n.Add(1)-1]
			if status, out := e.post(root, "us-east-1", "/v1/records", body); status != 200 {
				b.Fatalf("%d %s", status, out)
			}
		}
	})
	b.ReportMetric(float64(b.N*perRequest)/b.Elapsed().Seconds(), "records/s")
}

func ingestBody(prefix string, n int, tmpl string) []byte {
	var sb strings.Builder
	sb.WriteString(`{"Records":[`)
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strings.Replace(tmpl, `"eventID":"`, fmt.Sprintf(`"eventID":"%s-%d-`, prefix, i), 1))
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}
