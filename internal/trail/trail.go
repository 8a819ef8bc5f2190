// Package trail is the trail model the projections work from: what a trail
// is configured to do and take (Config), how a delivery attempt reports back
// (DeliveryUpdate), and the Registry that holds the trails. The CloudTrail API
// (package cloudtrail) implements Registry; delivery and the CloudWatch Logs
// feed depend only on this package, so they build without the API, the Lake or
// cgo.
package trail

import (
	"context"
	"errors"
	"time"

	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/selector"
)

// ErrNotFound is returned by RecordDelivery for a trail that does not exist
// (any more): deleted while its files were being delivered.
var ErrNotFound = errors.New("trail: no such trail")

// Registry is where projections read the trails from and report deliveries to.
type Registry interface {
	// Trails lists every trail of every account, ordered by account, home
	// Region and name, with its selectors compiled.
	Trails(ctx context.Context) ([]Config, error)
	// TrailsVersion changes whenever a trail's configuration does (not its
	// delivery status): projections that cache Trails re-read them when it moves.
	TrailsVersion() uint64
	// RecordDelivery stores the outcome of a delivery for the trail (account,
	// homeRegion, name), for GetTrailStatus; ErrNotFound if it is gone.
	RecordDelivery(account, homeRegion, name string, u DeliveryUpdate) error
}

// Config is one trail as delivery sees it.
type Config struct {
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

// Takes applies a trail's scope: its account, logging window, regions and insight settings.
func (tc *Config) Takes(m *event.Meta) bool {
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
