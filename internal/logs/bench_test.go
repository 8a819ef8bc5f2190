package logs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/cloudtrail"
	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/history"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/logs/dest"
)

// BenchmarkFeed100Filters measures the log-group feed alone: a backlog of
// journal entries, a trail that sends them to one log group, and 100
// subscription filters on it (AWS's limit of 2 raised), each selecting one of
// 100 users. Reported: events/s from the first read until every match is
// delivered (to an in-memory destination). Keeping up with 50,000 events/s of
// ingest needs this to be well above 50,000.
func BenchmarkFeed100Filters(b *testing.B) {
	const filters, events = 100, 200000
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		db, err := kv.Open(filepath.Join(dir, "db"), kv.Options{CacheBytes: 256 << 20})
		if err != nil {
			b.Fatal(err)
		}
		log := slog.New(slog.DiscardHandler)
		j, _ := journal.Open(db, log)
		st := history.New(db, j, log, history.Options{})
		ct := cloudtrail.New(db, st, history.NewTokens([]byte("k")), log, cloudtrail.Options{})
		rec := &recorder{}
		svc := New(db, j, ct, log, Options{SubscriptionFilters: filters, Resolve: func(string) (dest.Destination, error) { return rec, nil }})
		if err := svc.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		call := func(h func(context.Context, auth.Caller, string, []byte) (any, error), op string, in any) {
			body, _ := json.Marshal(in)
			if _, err := h(context.Background(), caller, op, body); err != nil {
				b.Fatalf("%s: %v", op, err)
			}
		}
		call(svc.Handle, "CreateLogGroup", map[string]any{"logGroupName": "bench"})
		for i := range filters {
			call(svc.Handle, "PutSubscriptionFilter", map[string]any{"logGroupName": "bench", "filterName": fmt.Sprintf("f%03d", i),
				"filterPattern": fmt.Sprintf(`{ $.userIdentity.userName = "user-%03d" && $.eventName = "Get*" }`, i), "destinationArn": "x"})
		}
		call(ct.Handle, "CreateTrail", map[string]any{"Name": "bench-trail", "S3BucketName": "bench-bucket",
			"CloudWatchLogsLogGroupArn": "arn:aws:logs:us-east-1:123456789012:log-group:bench:*", "CloudWatchLogsRoleArn": "arn:aws:iam::123456789012:role/r"})
		call(ct.Handle, "StartLogging", map[string]any{"Name": "bench-trail"})
		svc.Close() // the backlog is written while the feed is stopped
		now := time.Now()
		for i := 0; i < events; i += 1000 {
			entries := make([]journal.Entry, 1000)
			for k := range entries {
				raw := fmt.Appendf(nil, `{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::123456789012:user/user-%03[1]d","accountId":"123456789012","accessKeyId":"AKIAEXAMPLE","userName":"user-%03[1]d"},"eventTime":"2026-11-23T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.9","userAgent":"aws-cli/2.15.0","requestParameters":{"bucketName":"b","key":"k/%[2]d"},"responseElements":null,"requestID":"R%[2]d","eventID":"ev-%[2]d","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management"}`, (i+k)%filters, i+k)
				r, err := event.Normalize(raw, event.Defaults{Now: now})
				if err != nil {
					b.Fatal(err)
				}
				entries[k] = journal.Entry{Value: event.Encode(nil, &r)}
			}
			if _, err := j.Append(context.Background(), entries); err != nil {
				b.Fatal(err)
			}
		}
		svc = New(db, j, ct, log, Options{SubscriptionFilters: filters, Resolve: func(string) (dest.Destination, error) { return rec, nil }})
		b.StartTimer()
		start := time.Now()
		if err := svc.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		for rec.n.Load() < events {
			time.Sleep(time.Millisecond)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		b.ReportMetric(events/elapsed.Seconds(), "events/s")
		svc.Close()
		j.Close()
		db.Close()
	}
}
