package archive

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/archive/archivetest"
)

func rec(id, at string) []byte {
	return []byte(`{"eventVersion":"1.08","eventTime":"` + at + `","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventID":"` + id + `"}`)
}

func TestListAndDecode(t *testing.T) {
	root := t.TempDir()
	archivetest.WriteLogFile(t, root, "AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/02/123456789012_CloudTrail_us-east-1_20240102T0305Z_abcdefghijklmnop.json.gz",
		rec("a", "2024-01-02T03:01:00Z"), rec("b", "2024-01-02T03:04:00Z"))
	archivetest.WriteLogFile(t, root, "AWSLogs/o-abc123/210987654321/CloudTrail/eu-west-1/2024/01/03/210987654321_CloudTrail_eu-west-1_20240103T0000Z_abcdefghijklmnop.json.gz",
		rec("c", "2024-01-02T23:58:00Z"))
	archivetest.WriteLogFile(t, root, "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/01/02/123456789012_CloudTrail-Digest_us-east-1_main_us-east-1_20240102T040000Z.json.gz",
		[]byte(`{"digestStartTime":"x"}`))
	archivetest.WriteLogFile(t, root, "AWSLogs/123456789012/CloudTrail-Insight/us-east-1/2024/01/02/123456789012_CloudTrail-Insight_us-east-1_20240102T0305Z_abcdefghijklmnop.json.gz",
		rec("i", "2024-01-02T03:01:00Z"))
	os.WriteFile(filepath.Join(root, "AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/02/broken_CloudTrail_us-east-1_20240102T0310Z_x.json.gz"), []byte("not gzip"), 0o644)
	os.WriteFile(filepath.Join(root, "AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/02/readme.txt"), []byte("x"), 0o644)

	a, err := Open(context.Background(), root, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		f       Filter
		ids     string
		corrupt int
	}{
		{Filter{}, "a b c", 1},
		{Filter{Insights: true}, "a b c i", 1},
		{Filter{Start: time.Date(2024, 1, 2, 3, 2, 0, 0, time.UTC)}, "b c", 1},
		{Filter{End: time.Date(2024, 1, 2, 3, 2, 0, 0, time.UTC)}, "a", 1},
		{Filter{Start: time.Date(2024, 1, 2, 23, 0, 0, 0, time.UTC)}, "c", 0},
	} {
		files, err := a.List(context.Background(), c.f, nil)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		corrupt := 0
		err = a.Decode(context.Background(), files, c.f, 2, func(r Result) error {
			if r.Err != nil {
				corrupt++
				return nil
			}
			for _, x := range r.Records {
				ids = append(ids, string(x[len(x)-3:len(x)-2]))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(ids)
		got := ""
		for i, id := range ids {
			if i > 0 {
				got += " "
			}
			got += id
		}
		if got != c.ids || corrupt != c.corrupt {
			t.Errorf("%+v: records %q, %d corrupt; want %q, %d", c.f, got, corrupt, c.ids, c.corrupt)
		}
	}
}

func FuzzSplit(f *testing.F) {
	f.Add([]byte(`{"Records":[{"eventTime":"2024-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"Records":[]}`))
	f.Add([]byte(`{"x":1,"Records":[{"a":[1,2,{"b":null}]}]}`))
	f.Add([]byte(`{"Records":[{"a":"\u00e9","b":[1,-2.5e3,true,false,null],"c":{}},{"eventTime":"2024-01-01T00:00:00Z","d":"x\"y"}]}`))
	f.Add([]byte(`{"Records":[{"a":1,"a":2}]}`))
	f.Add([]byte(`{"Records":[{"s":"\ud83d\ude00 \ud83d \ude00 \u0041"}]}`))
	f.Add([]byte(`{"Records":[{"r":[[{"x":[{"y":1}]}]]}]}`)) // objects inside arrays once indexed past the name stack
	f.Add([]byte(`{"Records":[{"a":01}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		// The compact scan agrees with the decoder on whatever it accepts.
		if fast, ok := splitCompact(b, Filter{}); ok {
			slow, err := splitDecode(b, Filter{})
			if err != nil {
				t.Fatalf("compact scan accepted %q, the decoder: %v", b, err)
			}
			if len(fast) != len(slow) {
				t.Fatalf("%q: %d records, decoder %d", b, len(fast), len(slow))
			}
			for i := range fast {
				if !bytes.Equal(fast[i], slow[i]) {
					t.Fatalf("%q: record %d %q, decoder %q", b, i, fast[i], slow[i])
				}
			}
		}
		recs, err := Split(b, Filter{Start: time.Unix(0, 0)})
		if err == nil {
			for _, r := range recs {
				if len(r) == 0 || r[0] != '{' {
					t.Fatalf("record %q", r)
				}
			}
		}
	})
}

// BenchmarkSplit is the record splitter alone, on a compact 1,000-record file.
func BenchmarkSplit(b *testing.B) {
	rec := `{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:alice","arn":"arn:aws:sts::123456789012:assumed-role/r/alice","accountId":"123456789012","sessionContext":{"attributes":{"creationDate":"2024-01-01T00:00:00Z","mfaAuthenticated":"false"}}},"eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","sourceIPAddress":"10.0.0.1","userAgent":"aws-cli/2.0 \u00e9","requestParameters":{"bucketName":"b","key":"k/\"x\"","Host":"b.s3.amazonaws.com"},"responseElements":null,"requestID":"ABC","eventID":"0000","readOnly":true,"resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::b/k"}],"eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"123456789012","eventCategory":"Data","tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"b.s3.amazonaws.com"}}`
	body := []byte(`{"Records":[` + strings.Repeat(rec+",", 999) + rec + `]}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if recs, err := Split(body, Filter{}); err != nil || len(recs) != 1000 {
			b.Fatal(len(recs), err)
		}
	}
	b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "records/s")
}
