package objstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/opentrail/opentrail/internal/objstore"
	"github.com/opentrail/opentrail/internal/objstore/objstoretest"
	"github.com/opentrail/opentrail/internal/objstore/s3test"
)

// TestS3Contract runs the contract against one versitygw; each subtest uses its own buckets.
func TestS3Contract(t *testing.T) {
	s := s3test.NewStore(t)
	objstoretest.Run(t, func(*testing.T) objstore.Store { return s })
}

// TestS3ObjectHeaders checks objects as a reader of the bucket sees them: CloudTrail's
// Content-Type, and gzip bodies stored as they are, without Content-Encoding (which would make
// HTTP clients gunzip them before the AWS CLI's validate-logs does).
func TestS3ObjectHeaders(t *testing.T) {
	ctx := context.Background()
	endpoint, ak, sk := s3test.Start(t)
	s, err := objstore.NewS3(ctx, objstore.S3Config{Endpoint: endpoint, Region: s3test.Region, AccessKeyID: ak, SecretAccessKey: sk, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateBucket(ctx, "audit"); err != nil {
		t.Fatal(err)
	}
	b, err := s.Bucket(ctx, "audit")
	if err != nil {
		t.Fatal(err)
	}
	const key = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/02/x.json.gz"
	if err := b.Put(ctx, key, []byte{0x1f, 0x8b}, map[string]string{"Signature": "ab"}); err != nil {
		t.Fatal(err)
	}

	raw := s3.New(s3.Options{
		Region:       s3test.Region,
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(ak, sk, ""),
	})
	out, err := raw.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("audit"), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.ContentType); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	if out.ContentEncoding != nil {
		t.Errorf("Content-Encoding = %q, want none", *out.ContentEncoding)
	}
	if got := out.Metadata["signature"]; got != "ab" {
		t.Errorf("x-amz-meta-signature = %q (metadata %v), want ab", got, out.Metadata)
	}
}

func TestNewS3Config(t *testing.T) {
	ctx := context.Background()
	for _, c := range []objstore.S3Config{{AccessKeyID: "AKID"}, {SecretAccessKey: "secret"}} {
		if _, err := objstore.NewS3(ctx, c); err == nil {
			t.Errorf("NewS3(%+v) = nil error, want one about the missing half of the key", c)
		}
	}
	// No credentials: the default chain, resolved only when a request is sent. Keep this
	// machine's AWS files and profile out of it.
	dir := t.TempDir()
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	if _, err := objstore.NewS3(ctx, objstore.S3Config{Endpoint: "http://127.0.0.1:1", PathStyle: true}); err != nil {
		t.Errorf("NewS3 with the default chain: %v", err)
	}
}

// A bucket that disappears after Bucket() answers ErrNotFound, as a missing key does.
func TestS3BucketGone(t *testing.T) {
	ctx := context.Background()
	endpoint, ak, sk := s3test.Start(t)
	s, err := objstore.NewS3(ctx, objstore.S3Config{Endpoint: endpoint, Region: s3test.Region, AccessKeyID: ak, SecretAccessKey: sk, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateBucket(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	b, err := s.Bucket(ctx, "gone")
	if err != nil {
		t.Fatal(err)
	}
	raw := s3.New(s3.Options{
		Region: s3test.Region, BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(ak, sk, ""),
	})
	if _, err := raw.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("gone")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Get(ctx, "k"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Get in a deleted bucket = %v, want ErrNotFound", err)
	}
	if _, err := b.List(ctx, "", "", 0); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("List of a deleted bucket = %v, want ErrNotFound", err)
	}
	if err := b.Put(ctx, "k", []byte("x"), nil); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Put in a deleted bucket = %v, want ErrNotFound", err)
	}
}
