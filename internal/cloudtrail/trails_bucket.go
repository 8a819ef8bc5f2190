package cloudtrail

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/digest"
	"github.com/opentrail/opentrail/internal/objstore"
)

// checkBucketAccess refuses, as AWS does with InsufficientS3BucketPolicyException,
// a bucket the trail's account may not deliver into: one another account owns
// whose bucket policy does not allow CloudTrail to put the trail's log, digest
// and insight files (see objstore.CheckCloudTrail).
func (s *Service) checkBucketAccess(ctx context.Context, t *storedTrail) error {
	ar, ok := s.buckets.(objstore.AccessReader)
	if !ok || t.S3BucketName == "" {
		return nil
	}
	a, err := ar.BucketAccess(ctx, t.S3BucketName)
	if errors.Is(err, objstore.ErrNotFound) {
		return awsapi.Errorf("S3BucketDoesNotExistException", "S3 bucket %s does not exist.", t.S3BucketName)
	}
	if err != nil {
		return fmt.Errorf("check bucket %s: %w", t.S3BucketName, err)
	}
	err = objstore.CheckCloudTrail(a, t.S3BucketName, trailDelivery(s.trailARN(t), t.Account, t.HomeRegion, t.Name, t.S3KeyPrefix, s.now()))
	if errors.Is(err, objstore.ErrAccessDenied) {
		prefix := t.S3KeyPrefix
		if prefix != "" {
			prefix += "/"
		}
		return awsapi.Errorf("InsufficientS3BucketPolicyException",
			"Incorrect S3 bucket policy is detected for bucket: %s. Account %s does not own it, and its bucket policy must allow %s to s3:PutObject on arn:aws:s3:::%s/%sAWSLogs/%s/*.",
			t.S3BucketName, t.Account, objstore.CloudTrailService, t.S3BucketName, prefix, t.Account)
	}
	return err
}

// trailDelivery is what a trail writes, as a bucket policy is asked about it:
// one log, digest and insight file key of its home Region.
func trailDelivery(arn, account, homeRegion, name, prefix string, now time.Time) objstore.CloudTrailDelivery {
	at := now.UTC()
	unique := strings.Repeat("0", 16)
	return objstore.CloudTrailDelivery{Account: account, Trail: arn, Keys: []string{
		digest.LogFileKey(prefix, account, homeRegion, at, unique),
		digest.DigestKey(prefix, account, homeRegion, name, homeRegion, at),
		digest.InsightFileKey(prefix, account, homeRegion, at, unique),
	}}
}
