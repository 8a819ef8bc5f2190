package cloudtrail

import (
	"context"
	"fmt"
	"time"

	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/selector"
	"github.com/opentrail/opentrail/internal/trail"
)

// What a delivery worker reads from the trails (Trails) and reports back to
// them (RecordDelivery), so that GetTrailStatus can show it.

var _ trail.Registry = (*Service)(nil)

// Trails lists every trail of every account, ordered by account, home Region
// and name, with its selectors compiled.
func (s *Service) Trails(ctx context.Context) ([]trail.Config, error) {
	trails, err := s.accountTrails("")
	if err != nil {
		return nil, err
	}
	out := make([]trail.Config, 0, len(trails))
	for _, t := range trails {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m, err := selector.Compile(t.EventSelectors, t.AdvancedEventSelectors)
		if err != nil {
			return nil, fmt.Errorf("cloudtrail: compile selectors of %s: %w", s.trailARN(t), err)
		}
		tc := trail.Config{
			Account:                    t.Account,
			HomeRegion:                 t.HomeRegion,
			Name:                       t.Name,
			ARN:                        s.trailARN(t),
			MultiRegion:                t.IsMultiRegionTrail,
			IncludeGlobalServiceEvents: t.IncludeGlobalServiceEvents,
			Logging:                    t.Status.IsLogging,
			LoggingSince:               t.Status.StartLoggingTime,
			S3BucketName:               t.S3BucketName,
			S3KeyPrefix:                t.S3KeyPrefix,
			LogFileValidation:          t.LogFileValidationEnabled,
			SnsTopicARN:                t.SnsTopicARN,
			KmsKeyID:                   t.KmsKeyID,
			CloudWatchLogsLogGroupArn:  t.CloudWatchLogsLogGroupArn,
			Matcher:                    m,
		}
		for _, is := range t.InsightSelectors {
			tc.InsightTypes = append(tc.InsightTypes, is.InsightType)
		}
		out = append(out, tc)
	}
	return out, nil
}

// RecordDelivery stores the outcome of a delivery for the trail (account,
// homeRegion, name), for GetTrailStatus. A success sets the Latest…Time and
// clears the error; a failure sets the error and keeps the last success.
func (s *Service) RecordDelivery(account, homeRegion, name string, u trail.DeliveryUpdate) error {
	s.trailMu.Lock()
	defer s.trailMu.Unlock()
	t := new(storedTrail)
	found, err := s.getState(kv.StateTrail, account, trailStateName(homeRegion, name), t)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("record delivery for %s/%s/%s: %w", account, homeRegion, name, trail.ErrNotFound)
	}
	at := u.Time.UTC()
	d := &t.Status.Delivery
	var last *time.Time
	var msg *string
	switch u.Kind {
	case trail.DeliveryLogFile:
		d.LogFileAttempt, last, msg = at, &d.LogFileTime, &d.LogFileError
	case trail.DeliveryDigest:
		last, msg = &d.DigestTime, &d.DigestError
	case trail.DeliveryNotification:
		d.NotificationAttempt, last, msg = at, &d.NotificationTime, &d.NotificationError
	case trail.DeliveryCloudWatchLogs:
		last, msg = &d.CloudWatchLogsTime, &d.CloudWatchLogsError
	default:
		return fmt.Errorf("record delivery for %s/%s/%s: unknown kind %d", account, homeRegion, name, u.Kind)
	}
	*msg = u.Err
	if u.Err == "" {
		*last = at
	}
	return s.putState(context.Background(), kv.StateTrail, t.Account, trailStateName(t.HomeRegion, t.Name), t)
}
