package cloudtrail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/objstore"
)

// Issue 11 §7: a trail of account B could deliver into a folder bucket of
// account A. A trail delivers only into a bucket its account owns, or one
// whose bucket policy grants CloudTrail PutObject on its AWSLogs/<account>/
// folder; otherwise CreateTrail and UpdateTrail answer
// InsufficientS3BucketPolicyException (403), as AWS does.
func TestTrailBucketOwnership(t *testing.T) {
	db, err := kv.Open(t.TempDir(), kv.Options{CacheBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	root := t.TempDir()
	buckets := objstore.NewFS(root)
	buckets.Owner = acctA // the root key's account owns folders that name no owner
	s := New(db, nil, nil, slog.New(slog.DiscardHandler), Options{Now: (&testClock{t: t0}).Now, Buckets: buckets})
	ctx := context.Background()
	for _, b := range []string{"a-bucket", "b-bucket"} {
		if err := buckets.CreateBucket(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "mkdir-bucket"), 0o700); err != nil { // as an operator makes one
		t.Fatal(err)
	}
	if err := buckets.SetBucketAccess(ctx, "b-bucket", objstore.Access{Owner: acctB}); err != nil {
		t.Fatal(err)
	}

	trail := func(name, bucket, prefix string) string {
		return `{"Name":"` + name + `","S3BucketName":"` + bucket + `","S3KeyPrefix":"` + prefix + `"}`
	}
	const denied = "InsufficientS3BucketPolicyException"

	// Each account delivers into its own buckets; a folder that names no owner is the root account's.
	ok(t, s, eastA, "CreateTrail", trail("a-trail", "a-bucket", ""))
	ok(t, s, eastA, "CreateTrail", trail("a-mkdir", "mkdir-bucket", "x"))
	ok(t, s, eastB, "CreateTrail", trail("b-trail", "b-bucket", ""))
	// Not into another account's.
	fails(t, s, eastB, "CreateTrail", trail("b-into-a", "a-bucket", ""), denied, "Incorrect S3 bucket policy is detected for bucket: a-bucket")
	fails(t, s, eastB, "CreateTrail", trail("b-into-mkdir", "mkdir-bucket", ""), denied, "arn:aws:s3:::mkdir-bucket/AWSLogs/"+acctB+"/*")
	fails(t, s, eastA, "CreateTrail", trail("a-into-b", "b-bucket", "p"), denied, "arn:aws:s3:::b-bucket/p/AWSLogs/"+acctA+"/*")
	fails(t, s, eastB, "UpdateTrail", `{"Name":"b-trail","S3BucketName":"a-bucket"}`, denied, "a-bucket")
	var ae *awsapi.Error
	if _, err := do(t, s, eastB, "CreateTrail", trail("b-into-a", "a-bucket", "")); !errors.As(err, &ae) || ae.Status != 403 {
		t.Errorf("CreateTrail into another account's bucket = %v, want HTTP 403", err)
	}

	// A bucket policy that grants B's folder lets B's trails in, under that folder only.
	grant := func(resource string) json.RawMessage {
		return json.RawMessage(`{"Version":"2012-10-17","Statement":[{"Sid":"AWSCloudTrailWrite","Effect":"Allow",
			"Principal":{"Service":"cloudtrail.amazonaws.com"},"Action":"s3:PutObject","Resource":"` + resource + `",
			"Condition":{"StringEquals":{"s3:x-amz-acl":"bucket-owner-full-control"}}}]}`)
	}
	if err := buckets.SetBucketAccess(ctx, "a-bucket", objstore.Access{Owner: acctA, Policy: grant("arn:aws:s3:::a-bucket/shared/AWSLogs/" + acctB + "/*")}); err != nil {
		t.Fatal(err)
	}
	fails(t, s, eastB, "CreateTrail", trail("b-into-a", "a-bucket", ""), denied, "a-bucket")
	ok(t, s, eastB, "CreateTrail", trail("b-into-a", "a-bucket", "shared"))
	fails(t, s, eastB, "UpdateTrail", `{"Name":"b-into-a","S3KeyPrefix":"elsewhere"}`, denied, "a-bucket/elsewhere/AWSLogs")

	// Refused calls changed nothing.
	got := ok(t, s, eastB, "GetTrail", `{"Name":"b-trail"}`)["Trail"].(map[string]any)["S3BucketName"]
	if got != "b-bucket" {
		t.Errorf("b-trail's bucket after a refused UpdateTrail = %v", got)
	}
	if n := len(ok(t, s, eastB, "ListTrails", `{}`)["Trails"].([]any)); n != 2 {
		t.Errorf("account B has %d trails, want 2 (b-trail, b-into-a)", n)
	}
}

// Lake query results (StartQuery DeliveryS3Uri) go into a bucket too: the same
// rule, checked at StartQuery and again when the results are written
// (DeliveryStatus ACCESS_DENIED if the grant went away meanwhile).
func TestQueryResultsBucketOwnership(t *testing.T) {
	db, err := kv.Open(t.TempDir(), kv.Options{CacheBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	buckets := objstore.NewFS(t.TempDir())
	buckets.Owner = acctA
	s := New(db, nil, nil, slog.New(slog.DiscardHandler), Options{Now: (&testClock{t: t0}).Now, Buckets: buckets})
	eng := &fakeEngine{rows: 3}
	if err := s.StartLake(context.Background(), eng); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); db.Close() })
	ctx := context.Background()
	for _, b := range []string{"a-bucket", "b-bucket"} {
		if err := buckets.CreateBucket(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := buckets.SetBucketAccess(ctx, "b-bucket", objstore.Access{Owner: acctB}); err != nil {
		t.Fatal(err)
	}
	_, id := createStore(t, s, eastB, "b-store", "")
	query := func(uri string) string {
		return fmt.Sprintf(`{"QueryStatement":"SELECT * FROM %s","DeliveryS3Uri":%q}`, id, uri)
	}

	fails(t, s, eastB, "StartQuery", query("s3://a-bucket/results"), "InsufficientS3BucketPolicyException", "arn:aws:s3:::a-bucket/results/")
	qid := ok(t, s, eastB, "StartQuery", query("s3://b-bucket/results"))["QueryId"].(string)
	if d := waitQuery(t, s, eastB, qid); d["DeliveryStatus"] != "SUCCESS" {
		t.Fatalf("results into the account's own bucket: %v", d)
	}

	eng.mu.Lock()
	eng.release = make(chan struct{})
	eng.mu.Unlock()
	qid = ok(t, s, eastB, "StartQuery", query("s3://b-bucket/results"))["QueryId"].(string)
	if err := buckets.SetBucketAccess(ctx, "b-bucket", objstore.Access{Owner: acctA}); err != nil {
		t.Fatal(err)
	}
	close(eng.release)
	if d := waitQuery(t, s, eastB, qid); d["DeliveryStatus"] != "ACCESS_DENIED" {
		t.Fatalf("results after the bucket changed owner: %v", d)
	}
	b, _ := buckets.Bucket(ctx, "b-bucket")
	if objs, _ := b.List(ctx, "results/"+qid, "", 0); len(objs) != 0 {
		t.Errorf("results were written into the other account's bucket: %v", objs)
	}
}
