package objstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/opentrail/opentrail/internal/objstore"
	"github.com/opentrail/opentrail/internal/objstore/s3test"
)

// TestS3BucketAccess: on S3 the owner comes from the configuration (Owners,
// else Owner) and the policy from GetBucketPolicy, as the operator set it with
// PutBucketPolicy.
func TestS3BucketAccess(t *testing.T) {
	ctx := context.Background()
	endpoint, ak, sk := s3test.Start(t)
	s, err := objstore.NewS3(ctx, objstore.S3Config{Endpoint: endpoint, Region: s3test.Region, AccessKeyID: ak, SecretAccessKey: sk, PathStyle: true,
		Owners: map[string]string{"shared-bucket": ownerAcct}, Owner: otherAcct})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"shared-bucket", "default-bucket"} {
		if err := s.CreateBucket(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	a, err := s.BucketAccess(ctx, "default-bucket")
	if err != nil || a.Owner != otherAcct || len(a.Policy) != 0 {
		t.Fatalf("BucketAccess(default-bucket) = %+v, %v; want owner %s, no policy", a, err, otherAcct)
	}
	a, err = s.BucketAccess(ctx, "shared-bucket")
	if err != nil || a.Owner != ownerAcct {
		t.Fatalf("BucketAccess(shared-bucket) = %+v, %v", a, err)
	}
	if err := objstore.CheckCloudTrail(a, "shared-bucket", delivery(logKey)); !errors.Is(err, objstore.ErrAccessDenied) {
		t.Fatalf("another account's bucket without a policy: %v, want ErrAccessDenied", err)
	}

	raw := s3.New(s3.Options{Region: s3test.Region, BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(ak, sk, "")})
	// versitygw refuses service principals ("Invalid principal in policy"), so
	// this grant names any principal, limited to the account's folder.
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:PutObject",
		"Resource":"arn:aws:s3:::shared-bucket/AWSLogs/222222222222/*"}]}`
	if _, err := raw.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("shared-bucket"), Policy: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	if a, err = s.BucketAccess(ctx, "shared-bucket"); err != nil || len(a.Policy) == 0 {
		t.Fatalf("BucketAccess after PutBucketPolicy = %+v, %v", a, err)
	}
	if err := objstore.CheckCloudTrail(a, "shared-bucket", delivery(logKey)); err != nil {
		t.Errorf("the bucket policy set with PutBucketPolicy does not grant: %v", err)
	}
	if err := objstore.CheckCloudTrail(a, "shared-bucket", delivery("AWSLogs/333333333333/CloudTrail/x.json.gz")); !errors.Is(err, objstore.ErrAccessDenied) {
		t.Errorf("the policy granted another account's folder: %v", err)
	}
	if _, err := s.BucketAccess(ctx, "missing-bucket"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("BucketAccess(missing-bucket) = %v, want ErrNotFound", err)
	}
}
