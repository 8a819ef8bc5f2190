package digest

import (
	"context"
	"testing"
)

// BenchmarkValidate validates 4 digests listing 64 log files of about 1 MiB each
// (uncompressed, records shaped like real ones). MB/s counts uncompressed log bytes;
// gz-MB/s the bytes read from the bucket.
func BenchmarkValidate(b *testing.B) {
	tr := newTrail(b, "", 0)
	for range 4 {
		tr.hour(16, 1300)
	}
	var raw, gz int64
	for _, k := range tr.logs {
		body, _, _ := tr.bucket.Get(context.Background(), k)
		gz += int64(len(body))
		u, err := gunzip(body)
		if err != nil {
			b.Fatal(err)
		}
		raw += int64(len(u))
	}
	o := tr.options(t0, tr.end)
	b.SetBytes(raw)
	b.ResetTimer()
	for b.Loop() {
		rep, err := Validate(context.Background(), o)
		if err != nil || !rep.Valid() || rep.ValidLogs != len(tr.logs) {
			b.Fatalf("%v %+v", err, rep)
		}
	}
	b.ReportMetric(float64(gz)*float64(b.N)/b.Elapsed().Seconds()/1e6, "gz-MB/s")
	b.ReportMetric(float64(raw)/float64(gz), "ratio")
}
