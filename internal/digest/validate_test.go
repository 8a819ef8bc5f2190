package digest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/objstore"
)

func TestValidateScenarios(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			tr := newTrail(t, sc.prefix, sc.period)
			start, end := sc.build(tr)
			rep, err := Validate(context.Background(), tr.options(start, end))
			if err != nil {
				t.Fatal(err)
			}
			got := counts{rep.ValidDigests, rep.InvalidDigests, rep.ValidLogs, rep.InvalidLogs}
			var out, errOut bytes.Buffer
			if err := rep.Print(&out, &errOut); err != nil {
				t.Fatal(err)
			}
			if got != sc.want {
				t.Fatalf("counts = %+v, want %+v\nstdout:\n%s\nstderr:\n%s", got, sc.want, &out, &errOut)
			}
			wantValid := sc.want.invalidDigests == 0 && sc.want.invalidLogs == 0
			if rep.Valid() != wantValid {
				t.Errorf("Valid() = %v, want %v", rep.Valid(), wantValid)
			}
			for _, w := range sc.wantLines {
				w = tr.fill(w)
				if !strings.Contains(errOut.String(), w+"\n") {
					t.Errorf("stderr lacks %q:\n%s", w, &errOut)
				}
			}
			if got.validDigests+got.invalidDigests == 0 && !strings.Contains(out.String(), "No digests found\n") {
				t.Errorf("stdout lacks No digests found:\n%s", &out)
			}
		})
	}
}

// TestValidateOutput pins the whole report of a run with every kind of line.
func TestValidateOutput(t *testing.T) {
	tr := newTrail(t, "", 0)
	tr.hour(1, 2)
	tr.pause(2 * time.Hour)
	tr.hour(2, 2)
	tr.hour(1, 2)
	tr.bucket.Delete(context.Background(), tr.logs[1])
	rep, err := Validate(context.Background(), tr.options(t0, tr.end))
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	rep.Print(&out, &errOut)
	wantOut := tr.fill("Validating log files for trail " + testARN + " between 2024-03-01T00:00:00Z and 2024-03-01T05:00:00Z\n\n" +
		"Digest file\ts3://{bucket}/{digest2}\tvalid\n" +
		"Log file\ts3://{bucket}/{log3}\tvalid\n" +
		"Digest file\ts3://{bucket}/{digest1}\tvalid\n" +
		"Log file\ts3://{bucket}/{log2}\tvalid\n" +
		"Digest file\ts3://{bucket}/{digest0}\tvalid\n" +
		"Log file\ts3://{bucket}/{log0}\tvalid\n" +
		"\n" +
		"Results requested for 2024-03-01T00:00:00Z to 2024-03-01T05:00:00Z\n" +
		"Results found for 2024-03-01T00:00:00Z to 2024-03-01T05:00:00Z:\n" +
		"\n3/3 digest files valid\n3/4 log files valid, 1/4 log files INVALID\n")
	wantErr := tr.fill("\nLog file\ts3://{bucket}/{log1}\tINVALID: not found\n\n" +
		"\nNo log files were delivered by CloudTrail between 2024-03-01T01:00:00Z and 2024-03-01T03:00:00Z\n\n")
	if out.String() != wantOut {
		t.Errorf("stdout:\n%q\nwant:\n%q", out.String(), wantOut)
	}
	if errOut.String() != wantErr {
		t.Errorf("stderr:\n%q\nwant:\n%q", errOut.String(), wantErr)
	}
	if rep.Valid() {
		t.Error("Valid() = true with a log file missing")
	}
}

func TestValidateNoPublicKeys(t *testing.T) {
	tr := newTrail(t, "", 0)
	tr.hour(1, 1)
	o := tr.options(t0, tr.end)
	o.PublicKeys = func(context.Context, string, time.Time, time.Time) ([]PublicKey, error) { return nil, nil }
	_, err := Validate(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "No public keys found between 2024-03-01T00:00:00Z and 2024-03-01T03:00:00Z") {
		t.Fatalf("err = %v, want No public keys found", err)
	}
}

func TestValidateWrongKey(t *testing.T) {
	tr := newTrail(t, "", 0)
	tr.hour(1, 1)
	other := newTrail(t, "", 0)
	other.hour(0, 0) // makes a key in the other ring
	o := tr.options(t0, tr.end)
	o.PublicKeys = func(_ context.Context, region string, start, end time.Time) ([]PublicKey, error) {
		return other.ring.PublicKeys(region, start, end), nil
	}
	rep, err := Validate(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.InvalidDigests != 1 || !strings.Contains(rep.Results[0].Line, "INVALID: public key not found in region us-east-1 for fingerprint ") {
		t.Fatalf("results = %+v", rep.Results)
	}
}

func TestValidateArguments(t *testing.T) {
	b := newMemBucket("b")
	keys := func(context.Context, string, time.Time, time.Time) ([]PublicKey, error) { return nil, nil }
	for _, tc := range []struct {
		name string
		o    ValidateOptions
		want string
	}{
		{"bad arn", ValidateOptions{TrailARN: "arn:aws:s3:::bucket", Bucket: b, PublicKeys: keys}, "invalid trail ARN"},
		{"short account", ValidateOptions{TrailARN: "arn:aws:cloudtrail:us-east-1:1234:trail/x", Bucket: b, PublicKeys: keys}, "invalid trail ARN"},
		{"start after end", ValidateOptions{TrailARN: testARN, Bucket: b, PublicKeys: keys, Start: t0.Add(time.Hour), End: t0}, "start-time must occur before end-time"},
		{"no bucket", ValidateOptions{TrailARN: testARN, PublicKeys: keys, Start: t0}, "required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Validate(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// failingBucket fails every read, as an unreachable S3 would.
type failingBucket struct{ *memBucket }

var errDown = errors.New("storage down")

func (failingBucket) Get(context.Context, string) ([]byte, map[string]string, error) {
	return nil, nil, errDown
}

func TestValidateStorageFailureIsAnError(t *testing.T) {
	tr := newTrail(t, "", 0)
	tr.hour(1, 1)
	o := tr.options(t0, tr.end)
	o.Bucket = failingBucket{tr.bucket}
	if _, err := Validate(context.Background(), o); !errors.Is(err, errDown) {
		t.Fatalf("err = %v, want %v", err, errDown)
	}
}

// TestValidateOtherBucket follows a chain whose older digests sit in another bucket,
// as after a trail's bucket was changed.
func TestValidateOtherBucket(t *testing.T) {
	tr := newTrail(t, "", 0)
	tr.hour(1, 2)
	old := tr.bucket
	tr.bucket = newMemBucket("new-bucket")
	tr.hour(1, 2)
	o := tr.options(t0, tr.end)
	o.Buckets = func(_ context.Context, name string) (objstore.Bucket, error) {
		if name == old.Name() {
			return old, nil
		}
		return nil, objstore.ErrNotFound
	}
	rep, err := Validate(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if got := (counts{rep.ValidDigests, rep.InvalidDigests, rep.ValidLogs, rep.InvalidLogs}); got != (counts{2, 0, 2, 0}) {
		t.Fatalf("counts = %+v, results %+v", got, rep.Results)
	}
	o.Buckets = nil
	rep, err = Validate(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.InvalidDigests != 1 || !strings.HasSuffix(rep.Results[len(rep.Results)-1].Line, "INVALID: not found") {
		t.Fatalf("without Buckets: results %+v", rep.Results)
	}
}

// TestValidateRegions checks two regions' chains in one bucket, each signed with its
// region's key, as one CLI run per --region would.
func TestValidateRegions(t *testing.T) {
	east := newTrail(t, "", 0)
	west := newTrailWithRing(t, "", east.ring)
	west.bucket, west.region = east.bucket, "eu-west-1"
	for range 2 {
		east.hour(1, 2)
		west.hour(2, 2)
	}
	o := east.options(t0, east.end)
	o.Regions = []string{"us-east-1", "eu-west-1"}
	rep, err := Validate(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if got := (counts{rep.ValidDigests, rep.InvalidDigests, rep.ValidLogs, rep.InvalidLogs}); got != (counts{4, 0, 6, 0}) {
		t.Fatalf("counts = %+v", got)
	}
	if !strings.Contains(rep.Results[4].Line, "/CloudTrail-Digest/eu-west-1/2024/03/01/123456789012_CloudTrail-Digest_eu-west-1_audit_us-east-1_20240301T020000Z.json.gz\tvalid") {
		t.Errorf("west digest line %q", rep.Results[4].Line)
	}
	// The keys are regional: west's digests do not verify with east's keys, and the
	// CLI names the home region when it says so.
	o.PublicKeys = func(_ context.Context, _ string, start, end time.Time) ([]PublicKey, error) {
		return east.ring.PublicKeys("us-east-1", start, end), nil
	}
	o.Regions = []string{"eu-west-1"}
	if rep, err = Validate(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if rep.InvalidDigests != 2 || !strings.Contains(rep.Results[0].Line, "INVALID: public key not found in region us-east-1 for fingerprint") {
		t.Fatalf("results %+v", rep.Results)
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2015, 1, 8, 5, 21, 42, 0, time.UTC)
	for _, s := range []string{"2015-01-08T05:21:42Z", "2015-01-08T07:21:42+02:00", "2015-01-08T05:21:42", "20150108T052142Z",
		"2015-01-08 05:21:42"} {
		if got, err := ParseTime(s); err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v", s, got, err)
		}
	}
	if got, err := ParseTime("2015-01-08"); err != nil || !got.Equal(time.Date(2015, 1, 8, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("ParseTime(date) = %v, %v", got, err)
	}
	if _, err := ParseTime("yesterday"); err == nil {
		t.Error("ParseTime(yesterday): no error")
	}
}
