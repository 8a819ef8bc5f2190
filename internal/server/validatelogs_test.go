package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"

	"github.com/opentrail/opentrail/internal/app"
	"github.com/opentrail/opentrail/internal/digest"
	"github.com/opentrail/opentrail/internal/objstore"
	"github.com/opentrail/opentrail/internal/objstore/s3test"
)

// TestAWSCLIValidateLogs: a trail delivers log files and signed digests to a
// real S3-compatible server; the real "aws cloudtrail validate-logs" finds
// every digest and log file valid, and INVALID after one log file is altered
// and after one is deleted. Our own validator agrees each time.
func TestAWSCLIValidateLogs(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("the AWS CLI is not installed")
	}
	s3URL, ak, sk := s3test.Start(t)
	ctx := context.Background()
	buckets, err := objstore.NewS3(ctx, objstore.S3Config{Endpoint: s3URL, Region: "us-east-1", AccessKeyID: ak, SecretAccessKey: sk, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := buckets.CreateBucket(ctx, "validated-logs"); err != nil {
		t.Fatal(err)
	}
	// One key pair for both services, as the AWS CLI uses one set of credentials.
	a, err := app.Open(ctx, app.Config{DataDir: t.TempDir(), RootKeyID: ak, RootKey: sk, CacheMiB: 16, Buckets: buckets,
		DeliveryInterval: 300 * time.Millisecond, DigestInterval: 2 * time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(a.Handler)
	defer func() { ts.Close(); a.Close() }()
	e := &env{t: t, a: a, url: ts.URL}
	me := key{ak, sk}
	ct := e.ct(me, "us-east-1")

	start := time.Now().UTC().Add(-time.Minute)
	trail, err := ct.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("validated"), S3BucketName: aws.String("validated-logs"),
		S3KeyPrefix: aws.String("org"), EnableLogFileValidation: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ct.StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: trail.Name}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond) // the delivery worker reads trails every second
	for range 6 {
		var recs [][]byte
		for k := range 20 {
			recs = append(recs, []byte(fmt.Sprintf(`{"eventTime":%q,"eventName":"PutItem%d","eventSource":"dynamodb.amazonaws.com","readOnly":false}`,
				time.Now().UTC().Format(time.RFC3339), k)))
		}
		e.ingest(me, "us-east-1", recs...)
		time.Sleep(700 * time.Millisecond)
	}
	// Wait for a digest that lists log files after a chain of at least two.
	bucket, _ := buckets.Bucket(ctx, "validated-logs")
	var logs, digests []string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		objs, err := bucket.List(ctx, "org/AWSLogs/", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		logs, digests = nil, nil
		for _, o := range objs {
			if strings.Contains(o.Key, "/CloudTrail-Digest/") {
				digests = append(digests, o.Key)
			} else {
				logs = append(logs, o.Key)
			}
		}
		if len(digests) >= 3 && len(logs) >= 3 {
			break
		}
	}
	if len(digests) < 3 || len(logs) < 3 {
		t.Fatalf("delivered %d log files and %d digests", len(logs), len(digests))
	}
	end := time.Now().UTC().Add(time.Minute)

	cli := func() (string, error) {
		cmd := exec.Command("aws", "cloudtrail", "validate-logs", "--trail-arn", aws.ToString(trail.TrailARN),
			"--start-time", start.Format(time.RFC3339), "--end-time", end.Format(time.RFC3339), "--verbose", "--region", "us-east-1")
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+ak, "AWS_SECRET_ACCESS_KEY="+sk,
			"AWS_ENDPOINT_URL_CLOUDTRAIL="+ts.URL, "AWS_ENDPOINT_URL_S3="+s3URL,
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	ours := func() digest.Report {
		rep, err := digest.Validate(ctx, digest.ValidateOptions{TrailARN: aws.ToString(trail.TrailARN), Bucket: bucket, Buckets: buckets.Bucket,
			Prefix: "org", Start: start, End: end,
			PublicKeys: func(_ context.Context, region string, s, e time.Time) ([]digest.PublicKey, error) {
				out, err := ct.ListPublicKeys(ctx, &cloudtrail.ListPublicKeysInput{StartTime: &s, EndTime: &e})
				if err != nil {
					return nil, err
				}
				var keys []digest.PublicKey
				for _, k := range out.PublicKeyList {
					keys = append(keys, digest.PublicKey{Value: k.Value, Fingerprint: aws.ToString(k.Fingerprint),
						ValidityStartTime: aws.ToTime(k.ValidityStartTime), ValidityEndTime: aws.ToTime(k.ValidityEndTime)})
				}
				return keys, nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}

	// The two log files tampered with below are ones a valid digest lists:
	// wait for digests to cover two (file names need not sort in delivery order).
	logs = nil
	for deadline := time.Now().Add(30 * time.Second); len(logs) < 2; time.Sleep(200 * time.Millisecond) {
		rep := ours()
		if !rep.Valid() {
			t.Fatalf("our validator finds untouched files invalid: %+v", rep)
		}
		logs = nil
		for _, r := range rep.Results {
			if r.Kind == digest.KindLogFile && r.Valid {
				logs = append(logs, r.Key)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s valid digests list %d log files", len(logs))
		}
	}
	out, err := cli()
	if err != nil || strings.Contains(out, "INVALID") || !strings.Contains(out, "digest files valid") {
		t.Fatalf("validate-logs on untouched files: %v\n%s", err, out)
	}
	t.Logf("AWS CLI on %d log files and %d digests:\n%s", len(logs), len(digests), out)

	// Alter one log file.
	body, _, err := bucket.Get(ctx, logs[0])
	if err != nil {
		t.Fatal(err)
	}
	altered, err := digest.Gzip([]byte(`{"Records":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := bucket.Put(ctx, logs[0], altered, nil); err != nil {
		t.Fatal(err)
	}
	out, err = cli()
	if err == nil || !strings.Contains(out, "INVALID: hash value doesn't match") {
		t.Fatalf("validate-logs after altering %s: %v\n%s", logs[0], err, out)
	}
	if rep := ours(); rep.Valid() {
		t.Fatal("our validator accepted an altered log file")
	}
	// Put it back, then delete another one.
	if err := bucket.Put(ctx, logs[0], body, nil); err != nil {
		t.Fatal(err)
	}
	if err := bucket.Delete(ctx, logs[1]); err != nil {
		t.Fatal(err)
	}
	out, err = cli()
	if err == nil || !strings.Contains(out, "INVALID: not found") {
		t.Fatalf("validate-logs after deleting %s: %v\n%s", logs[1], err, out)
	}
	if rep := ours(); rep.Valid() {
		t.Fatal("our validator accepted a deleted log file")
	}
}
