package server_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"

	"github.com/opentrail/opentrail/internal/objstore"
)

// ownBucket makes account the owner of a folder bucket, as an operator does by
// writing its .opentrail-bucket.json.
func (e *env) ownBucket(bucket, account string) {
	e.t.Helper()
	if err := e.a.Buckets.(*objstore.FS).SetBucketAccess(context.Background(), bucket, objstore.Access{Owner: account}); err != nil {
		e.t.Fatal(err)
	}
}

// Issue 11 §7: an account could point its trail at a folder bucket it does not
// own. A folder that names no owner is the root key's account's; another
// account gets InsufficientS3BucketPolicyException (403) until the bucket is
// declared its own (or its policy grants it).
func TestTrailIntoForeignBucket(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	e.buckets("root-bucket")
	bob := e.ct(e.newKey("222222222222", "bob", "admin"), "us-east-1")
	_, err := bob.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("bob-trail"), S3BucketName: aws.String("root-bucket")})
	var re *awshttp.ResponseError
	if apiCode(err) != "InsufficientS3BucketPolicyException" || !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusForbidden {
		t.Fatalf("CreateTrail into the root account's bucket: %v", err)
	}
	if _, err := e.ct(root, "us-east-1").CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("root-trail"), S3BucketName: aws.String("root-bucket")}); err != nil {
		t.Fatalf("root CreateTrail into its own bucket: %v", err)
	}
	e.buckets("bob-bucket")
	e.ownBucket("bob-bucket", "222222222222")
	if _, err := bob.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("bob-trail"), S3BucketName: aws.String("bob-bucket")}); err != nil {
		t.Fatalf("CreateTrail into the account's own bucket: %v", err)
	}
}
