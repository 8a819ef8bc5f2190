package objstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opentrail/opentrail/internal/objstore"
)

const (
	ownerAcct = "111111111111"
	otherAcct = "222222222222"
	trailARN  = "arn:aws:cloudtrail:us-east-1:222222222222:trail/t"
	logKey    = "AWSLogs/222222222222/CloudTrail/us-east-1/2025/01/02/222222222222_CloudTrail_us-east-1_20250102T0304Z_0000000000000000.json.gz"
)

// cloudTrailPolicy is AWS's documented bucket policy for CloudTrail (the
// PutObject statement with its conditions, and the GetBucketAcl one), granting
// account otherAcct's trails.
const cloudTrailPolicy = `{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "AWSCloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
     "Action": "s3:GetBucketAcl", "Resource": "arn:aws:s3:::shared-bucket",
     "Condition": {"StringEquals": {"aws:SourceArn": "arn:aws:cloudtrail:us-east-1:222222222222:trail/t"}}},
    {"Sid": "AWSCloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
     "Action": "s3:PutObject", "Resource": "arn:aws:s3:::shared-bucket/AWSLogs/222222222222/*",
     "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control",
                                    "aws:SourceArn": "arn:aws:cloudtrail:us-east-1:222222222222:trail/t"}}}
  ]
}`

func delivery(keys ...string) objstore.CloudTrailDelivery {
	return objstore.CloudTrailDelivery{Account: otherAcct, Source: trailARN, Keys: keys}
}

// Issue 11 §7: a trail of one account could deliver into another account's
// bucket. It may deliver only into a bucket its account owns, or one whose
// policy grants CloudTrail PutObject for its keys.
func TestCheckCloudTrail(t *testing.T) {
	tests := []struct {
		name   string
		access objstore.Access
		keys   []string
		ok     bool
	}{
		{"own bucket", objstore.Access{Owner: otherAcct}, []string{logKey}, true},
		{"no owner", objstore.Access{}, []string{logKey}, true},
		{"another account's, no policy", objstore.Access{Owner: ownerAcct}, []string{logKey}, false},
		{"documented policy", objstore.Access{Owner: ownerAcct, Policy: json.RawMessage(cloudTrailPolicy)}, []string{logKey}, true},
		{"policy for another account's folder", objstore.Access{Owner: ownerAcct, Policy: json.RawMessage(cloudTrailPolicy)},
			[]string{strings.ReplaceAll(logKey, "222222222222", "333333333333")}, false},
		{"policy under another prefix", objstore.Access{Owner: ownerAcct, Policy: json.RawMessage(cloudTrailPolicy)}, []string{"pfx/" + logKey}, false},
		{"policy for another trail", objstore.Access{Owner: ownerAcct, Policy: json.RawMessage(strings.ReplaceAll(cloudTrailPolicy, "trail/t", "trail/other"))}, []string{logKey}, false},
		{"policy for another service", objstore.Access{Owner: ownerAcct, Policy: json.RawMessage(strings.ReplaceAll(cloudTrailPolicy, "cloudtrail.amazonaws.com", "config.amazonaws.com"))}, []string{logKey}, false},
		{"wildcard principal and action", objstore.Access{Owner: ownerAcct, Policy: json.RawMessage(
			`{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::shared-bucket/*"}}`)}, []string{logKey, "x/" + logKey}, true},
		{"deny wins", objstore.Access{Owner: ownerAcct, Policy: json.RawMessage(
			`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::shared-bucket/*"},
			{"Effect":"Deny","Principal":{"Service":["cloudtrail.amazonaws.com"]},"Action":["s3:PutObject"],"Resource":"arn:aws:s3:::shared-bucket/AWSLogs/2222*"}]}`)}, []string{logKey}, false},
		{"one key of two granted", objstore.Access{Owner: ownerAcct, Policy: json.RawMessage(
			`{"Statement":{"Effect":"Allow","Principal":{"Service":"cloudtrail.amazonaws.com"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::shared-bucket/AWSLogs/222222222222/CloudTrail/*"}}`)},
			[]string{logKey, strings.Replace(logKey, "/CloudTrail/", "/CloudTrail-Digest/", 1)}, false},
		{"account principal is not the service", objstore.Access{Owner: ownerAcct, Policy: json.RawMessage(
			`{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::shared-bucket/*"}}`)}, []string{logKey}, false},
		{"unsupported element is no grant", objstore.Access{Owner: ownerAcct, Policy: json.RawMessage(
			`{"Statement":{"Effect":"Allow","NotPrincipal":{"AWS":"x"},"Action":"s3:PutObject","Resource":"*"}}`)}, []string{logKey}, false},
		{"unsupported operator is no grant", objstore.Access{Owner: ownerAcct, Policy: json.RawMessage(
			`{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}}`)}, []string{logKey}, false},
		{"not JSON", objstore.Access{Owner: ownerAcct, Policy: json.RawMessage(`{`)}, []string{logKey}, false},
		{"StringLike source account", objstore.Access{Owner: ownerAcct, Policy: json.RawMessage(
			`{"Statement":{"Effect":"Allow","Principal":{"Service":"cloudtrail.amazonaws.com"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::shared-bucket/AWSLogs/*","Condition":{"StringLike":{"aws:SourceAccount":"2222*"}}}}`)}, []string{logKey}, true},
		{"StringNotEquals excludes the account", objstore.Access{Owner: ownerAcct, Policy: json.RawMessage(
			`{"Statement":{"Effect":"Allow","Principal":{"Service":"cloudtrail.amazonaws.com"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::shared-bucket/AWSLogs/*","Condition":{"StringNotEquals":{"aws:SourceAccount":"222222222222"}}}}`)}, []string{logKey}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := objstore.CheckCloudTrail(tt.access, "shared-bucket", delivery(tt.keys...))
			if tt.ok && err != nil {
				t.Fatalf("CheckCloudTrail = %v, want allowed", err)
			}
			if !tt.ok && !errors.Is(err, objstore.ErrAccessDenied) {
				t.Fatalf("CheckCloudTrail = %v, want ErrAccessDenied", err)
			}
		})
	}
}

func TestFSBucketAccess(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := objstore.NewFS(root)
	s.Owner = ownerAcct
	// A bucket made with mkdir, as operators do, has no access file: the default owner's.
	if err := os.MkdirAll(filepath.Join(root, "plain-bucket"), 0o700); err != nil {
		t.Fatal(err)
	}
	if a, err := s.BucketAccess(ctx, "plain-bucket"); err != nil || a.Owner != ownerAcct || a.Policy != nil {
		t.Fatalf("BucketAccess(plain) = %+v, %v; want owner %s, no policy", a, err, ownerAcct)
	}
	if _, err := s.BucketAccess(ctx, "missing-bucket"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("BucketAccess(missing) = %v, want ErrNotFound", err)
	}

	if err := s.CreateBucket(ctx, "shared-bucket"); err != nil {
		t.Fatal(err)
	}
	want := objstore.Access{Owner: otherAcct, Policy: json.RawMessage(cloudTrailPolicy)}
	if err := s.SetBucketAccess(ctx, "shared-bucket", want); err != nil {
		t.Fatal(err)
	}
	got, err := s.BucketAccess(ctx, "shared-bucket")
	if err != nil || got.Owner != otherAcct {
		t.Fatalf("BucketAccess = %+v, %v", got, err)
	}
	if err := objstore.CheckCloudTrail(got, "shared-bucket", delivery(logKey)); err != nil {
		t.Errorf("the stored policy no longer grants: %v", err)
	}
	// The access file is no object: List does not show it, Get cannot reach it.
	b, _ := s.Bucket(ctx, "shared-bucket")
	if objs, err := b.List(ctx, "", "", 0); err != nil || len(objs) != 0 {
		t.Errorf("List = %v, %v; want nothing", objs, err)
	}
	if _, _, err := b.Get(ctx, ".opentrail-bucket.json"); err == nil {
		t.Error("Get reached the access file")
	}

	// An owner that is not an account ID, a policy that does not parse, and a
	// hand-edited file that is not JSON are errors, never a grant.
	if err := s.SetBucketAccess(ctx, "shared-bucket", objstore.Access{Owner: "bob"}); err == nil {
		t.Error("SetBucketAccess took owner bob")
	}
	if err := s.SetBucketAccess(ctx, "shared-bucket", objstore.Access{Owner: otherAcct, Policy: json.RawMessage(`{"Statement":[]}`)}); err == nil {
		t.Error("SetBucketAccess took a policy without statements")
	}
	if err := os.WriteFile(filepath.Join(root, "shared-bucket", ".opentrail-bucket.json"), []byte(`{"owner":`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BucketAccess(ctx, "shared-bucket"); err == nil {
		t.Error("BucketAccess read a broken access file")
	}
	// A declaration without an owner keeps the default owner.
	if err := os.WriteFile(filepath.Join(root, "shared-bucket", ".opentrail-bucket.json"), []byte(`{"policy":`+cloudTrailPolicy+`}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if a, err := s.BucketAccess(ctx, "shared-bucket"); err != nil || a.Owner != ownerAcct || len(a.Policy) == 0 {
		t.Errorf("BucketAccess(policy only) = %+v, %v", a, err)
	}
}
