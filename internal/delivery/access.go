package delivery

import (
	"context"
	"fmt"

	"github.com/opentrail/opentrail/internal/objstore"
)

// openBucket returns the stream's bucket if its trail may write key there
// (objstore.CheckCloudTrail). CreateTrail checked it too, but a bucket's owner
// and policy can change afterwards: a trail whose grant is gone keeps its
// events and retries, as for any failing bucket, until the grant is back.
func (w *Worker) openBucket(ctx context.Context, s *stream, key string) (objstore.Bucket, error) {
	name := s.trail.S3BucketName
	bucket, err := w.buckets.Bucket(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", name, err)
	}
	if ar, ok := w.buckets.(objstore.AccessReader); ok {
		a, err := ar.BucketAccess(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("bucket %s: %w", name, err)
		}
		d := objstore.CloudTrailDelivery{Account: s.id.Account, Source: s.trail.ARN, Keys: []string{key}}
		if err := objstore.CheckCloudTrail(a, name, d); err != nil {
			return nil, err
		}
	}
	return bucket, nil
}
