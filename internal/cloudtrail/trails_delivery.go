package cloudtrail

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/selector"
)

// What a delivery worker reads from the trails (Trails) and reports back to
// them (RecordDelivery), so that GetTrailStatus can show it.

// ErrNoTrail is returned by RecordDelivery for a trail that does not exist
// (any more): deleted while its files were being delivered.
var ErrNoTrail = errors.New("cloudtrail: no such trail")

// TrailConfig is one trail as delivery sees it.
type TrailConfig struct {
	Account    string
	HomeRegion string
	Name       string
	ARN        string
	// MultiRegion trails take events from every Region, others from HomeRegion only.
	MultiRegion                bool
	IncludeGlobalServiceEvents bool
	// Logging is false before StartLogging and after StopLogging; LoggingSince is
	// the latest StartLogging (zero if never started).
	Logging           bool
	LoggingSince      time.Time
	S3BucketName      string
	S3KeyPrefix       string
	LogFileValidation bool
	SnsTopicARN       string
	KmsKeyID          string
	// InsightTypes are the enabled Insights types (ApiCallRateInsight, ApiErrorRateInsight).
	InsightTypes []string
	// CloudWatchLogsLogGroupArn is the log group the trail also sends its events to ("" = none).
	CloudWatchLogsLogGroupArn string
	// Matcher decides which events the trail takes.
	Matcher *selector.Matcher
}

// Trails lists every trail of every account, ordered by account, home Region
// and name, with its selectors compiled.
func (s *Service) Trails(ctx context.Context) ([]TrailConfig, error) {
	trails, err := s.accountTrails("")
	if err != nil {
		return nil, err
	}
	out := make([]TrailConfig, 0, len(trails))
	for _, t := range trails {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m, err := selector.Compile(t.EventSelectors, t.AdvancedEventSelectors)
		if err != nil {
			return nil, fmt.Errorf("cloudtrail: compile selectors of %s: %w", s.trailARN(t), err)
		}
		tc := TrailConfig{
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

// DeliveryKind is what a delivery attempt delivered.
type DeliveryKind int

const (
	DeliveryLogFile        DeliveryKind = iota + 1 // a log file to S3
	DeliveryDigest                                 // a digest file to S3
	DeliveryNotification                           // an SNS notification
	DeliveryCloudWatchLogs                         // events to CloudWatch Logs
)

// DeliveryUpdate is the outcome of one delivery attempt.
type DeliveryUpdate struct {
	Kind DeliveryKind
	Time time.Time
	// Err is the destination's error, such as an S3 error code; "" for success.
	Err string
}

// RecordDelivery stores the outcome of a delivery for the trail (account,
// homeRegion, name), for GetTrailStatus. A success sets the Latest…Time and
// clears the error; a failure sets the error and keeps the last success.
func (s *Service) RecordDelivery(account, homeRegion, name string, u DeliveryUpdate) error {
	s.trailMu.Lock()
	defer s.trailMu.Unlock()
	t := new(storedTrail)
	found, err := s.getState(stateTrail, account, trailStateName(homeRegion, name), t)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("record delivery for %s/%s/%s: %w", account, homeRegion, name, ErrNoTrail)
	}
	at := u.Time.UTC()
	d := &t.Status.Delivery
	var last *time.Time
	var msg *string
	switch u.Kind {
	case DeliveryLogFile:
		d.LogFileAttempt, last, msg = at, &d.LogFileTime, &d.LogFileError
	case DeliveryDigest:
		last, msg = &d.DigestTime, &d.DigestError
	case DeliveryNotification:
		d.NotificationAttempt, last, msg = at, &d.NotificationTime, &d.NotificationError
	case DeliveryCloudWatchLogs:
		last, msg = &d.CloudWatchLogsTime, &d.CloudWatchLogsError
	default:
		return fmt.Errorf("record delivery for %s/%s/%s: unknown kind %d", account, homeRegion, name, u.Kind)
	}
	*msg = u.Err
	if u.Err == "" {
		*last = at
	}
	return s.putState(context.Background(), stateTrail, t.Account, trailStateName(t.HomeRegion, t.Name), t)
}

// Takes applies a trail's scope: its account, logging window, regions and insight settings.
func (tc *TrailConfig) Takes(m *event.Meta) bool {
	if !tc.Logging || m.Account != tc.Account || m.IngestTime < tc.LoggingSince.UnixNano() {
		return false
	}
	if !tc.MultiRegion && m.Region != tc.HomeRegion {
		return false
	}
	if !tc.IncludeGlobalServiceEvents && globalServices[m.Source] {
		return false
	}
	if m.Category == event.CategoryInsight {
		return len(tc.InsightTypes) > 0
	}
	return true
}

// globalServices are the event sources CloudTrail counts as global service events.
var globalServices = map[string]bool{
	"iam.amazonaws.com": true, "sts.amazonaws.com": true, "cloudfront.amazonaws.com": true,
	"route53.amazonaws.com": true, "signin.amazonaws.com": true, "organizations.amazonaws.com": true,
}
