package cloudtrail

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/digest"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/objstore"
)

// checkBucketAccess refuses, as AWS does with InsufficientS3BucketPolicyException,
// a bucket the trail's account may not deliver into: one another account owns
// whose bucket policy does not allow CloudTrail to put the trail's log, digest
// and insight files (see objstore.CheckCloudTrail).
func (s *Service) checkBucketAccess(ctx context.Context, t *storedTrail) error {
	if t.S3BucketName == "" {
		return nil
	}
	d := trailDelivery(s.trailARN(t), t.Account, t.HomeRegion, t.Name, t.S3KeyPrefix, s.now())
	return s.checkDelivery(ctx, t.S3BucketName, t.S3KeyPrefix, d)
}

// mayDeliver reports whether d may be written into bucket now: nil, an error
// wrapping objstore.ErrAccessDenied, or another error.
func (s *Service) mayDeliver(ctx context.Context, bucket string, d objstore.CloudTrailDelivery) error {
	ar, ok := s.buckets.(objstore.AccessReader)
	if !ok {
		return nil
	}
	a, err := ar.BucketAccess(ctx, bucket)
	if err != nil {
		return err
	}
	return objstore.CheckCloudTrail(a, bucket, d)
}

// checkDelivery is mayDeliver for an API call: the AWS error for a missing
// bucket or a refused grant, naming what the bucket policy must allow.
func (s *Service) checkDelivery(ctx context.Context, bucket, prefix string, d objstore.CloudTrailDelivery) error {
	err := s.mayDeliver(ctx, bucket, d)
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return awsapi.Errorf("S3BucketDoesNotExistException", "S3 bucket %s does not exist.", bucket)
	case errors.Is(err, objstore.ErrAccessDenied):
		if prefix != "" {
			prefix += "/"
		}
		return awsapi.Errorf("InsufficientS3BucketPolicyException",
			"Incorrect S3 bucket policy is detected for bucket: %s. Account %s does not own it, and its bucket policy must allow %s to s3:PutObject on arn:aws:s3:::%s/%s%s.",
			bucket, d.Account, objstore.CloudTrailService, bucket, prefix, d.Resource)
	case err != nil:
		return fmt.Errorf("check bucket %s: %w", bucket, err)
	}
	return nil
}

// trailDelivery is what a trail writes, as a bucket policy is asked about it:
// one log, digest and insight file key of its home Region.
func trailDelivery(arn, account, homeRegion, name, prefix string, now time.Time) objstore.CloudTrailDelivery {
	at := now.UTC()
	unique := strings.Repeat("0", 16)
	return objstore.CloudTrailDelivery{Account: account, Source: arn, Resource: "AWSLogs/" + account + "/*", Keys: []string{
		digest.LogFileKey(prefix, account, homeRegion, at, unique),
		digest.DigestKey(prefix, account, homeRegion, name, homeRegion, at),
		digest.InsightFileKey(prefix, account, homeRegion, at, unique),
	}}
}

// resultsKey is where a query's results go under the DeliveryS3Uri prefix.
func resultsKey(prefix, queryID string) string {
	key := queryID + "/result_1.csv.gz"
	if prefix != "" {
		key = prefix + "/" + key
	}
	return key
}

func resultsPrefix(uri string) string { _, p := splitS3URI(uri); return p }

// resultsDelivery is query q's results file for DeliveryS3Uri uri, as a
// bucket policy is asked about it; aws:SourceArn is the ARN of the first event
// data store the query names (storeID), as AWS's bucket policy for Lake query
// results expects.
func (s *Service) resultsDelivery(q *storedQuery, uri, storeID string) objstore.CloudTrailDelivery {
	d := objstore.CloudTrailDelivery{Account: q.Account, Resource: q.ID + "/*",
		Keys: []string{resultsKey(resultsPrefix(uri), q.ID)}}
	eds := new(storedEDS)
	if found, err := s.getState(kv.StateEDS, q.Account, storeID, eds); err == nil && found {
		d.Source = s.edsARN(eds)
	}
	return d
}

func firstStore(q *storedQuery) string {
	if len(q.Stores) == 0 {
		return ""
	}
	return q.Stores[0]
}
