package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/opentrail/opentrail/internal/app"
)

// subscriptionBench is a node whose trail feeds log group "bench"; ingest
// goes through the same path as POST /v1/records, minus HTTP.
type subscriptionBench struct {
	e  *env
	cw *cloudwatchlogs.Client
}

func newSubscriptionBench(b *testing.B, filtersPerGroup int) *subscriptionBench {
	e := startWith(b, func(c *app.Config) { c.SubscriptionFilters, c.CacheMiB = filtersPerGroup, 256 })
	e.buckets("bench-bucket")
	ctx := context.Background()
	cw, ct := e.logs(root, "us-east-1"), e.ct(root, "us-east-1")
	if _, err := cw.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("bench")}); err != nil {
		b.Fatal(err)
	}
	if _, err := ct.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("bench-trail"), S3BucketName: aws.String("bench-bucket"),
		CloudWatchLogsLogGroupArn: aws.String("arn:aws:logs:us-east-1:123456789012:log-group:bench:*"),
		CloudWatchLogsRoleArn:     aws.String("arn:aws:iam::123456789012:role/r")}); err != nil {
		b.Fatal(err)
	}
	if _, err := ct.StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: aws.String("bench-trail")}); err != nil {
		b.Fatal(err)
	}
	return &subscriptionBench{e: e, cw: cw}
}

func (s *subscriptionBench) subscribe(b *testing.B, name, pattern, url string) {
	if _, err := s.cw.PutSubscriptionFilter(context.Background(), &cloudwatchlogs.PutSubscriptionFilterInput{LogGroupName: aws.String("bench"),
		FilterName: aws.String(name), FilterPattern: aws.String(pattern), DestinationArn: aws.String(url)}); err != nil {
		b.Fatal(err)
	}
}

// send ingests records at rate per second, in batches of batch from 4
// concurrent producers, for d, and returns each eventID's acknowledgement time.
func (s *subscriptionBench) send(b *testing.B, prefix string, rate, batch int, d time.Duration, user func(i int) string) map[string]time.Time {
	k, _, ok := s.e.a.Keys.Lookup(rootID)
	if !ok {
		b.Fatal("no root key")
	}
	const producers = 8
	var mu sync.Mutex
	acked := make(map[string]time.Time, int(d.Seconds())*rate)
	interval := time.Duration(batch*producers) * time.Second / time.Duration(rate)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; time.Since(start) < d; round++ {
				if wait := time.Until(start.Add(time.Duration(round)*interval + time.Duration(p)*interval/producers)); wait > 0 {
					time.Sleep(wait)
				}
				first := (round*producers + p) * batch
				raws := make([][]byte, batch)
				for j := range raws {
					raws[j] = userRecord(fmt.Sprintf("%s-%09d", prefix, first+j), user(first+j), "GetObject", "203.0.113.9")
				}
				if _, err := s.e.a.Handler.IngestRecords(context.Background(), k, "us-east-1", raws); err != nil {
					errs <- err
					return
				}
				now := time.Now()
				mu.Lock()
				for j := range raws {
					acked[fmt.Sprintf("%s-%09d", prefix, first+j)] = now
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	return acked
}

// BenchmarkSubscriptionLatency: acknowledged ingest → webhook received, at
// 10,000 events/s, every event matching the subscription filter.
func BenchmarkSubscriptionLatency(b *testing.B) {
	var mu sync.Mutex
	received := map[string]time.Time{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		now := time.Now()
		var in struct{ Records []struct{ EventID string } }
		json.Unmarshal(body, &in)
		mu.Lock()
		for _, rec := range in.Records {
			received[rec.EventID] = now
		}
		mu.Unlock()
	}))
	defer hook.Close()
	s := newSubscriptionBench(b, 2)
	s.subscribe(b, "alice", `{ $.userIdentity.userName = "alice" }`, hook.URL)
	b.ResetTimer()
	var lat []time.Duration
	for n := range b.N {
		acked := s.send(b, fmt.Sprintf("lat%d", n), 10000, 100, 5*time.Second, func(int) string { return "alice" })
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			done := len(received) >= len(acked)*(n+1)
			mu.Unlock()
			if done || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		for id, at := range acked {
			got, ok := received[id]
			if !ok {
				mu.Unlock()
				b.Fatalf("%s never reached the webhook", id)
			}
			lat = append(lat, got.Sub(at))
		}
		mu.Unlock()
	}
	b.StopTimer()
	reportLatencies(b, lat, "events")
}

// BenchmarkSubscriptionFanout: 100 subscription filters on one log group
// (the per-group limit raised from AWS's 2), each selecting one of 100 users,
// over events ingested at 50,000/s. It reports the rate achieved and how far
// the log-group feed and the senders fell behind.
func BenchmarkSubscriptionFanout(b *testing.B) {
	var mu sync.Mutex
	delivered := 0
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var in struct{ Records []json.RawMessage }
		json.Unmarshal(body, &in)
		mu.Lock()
		delivered += len(in.Records)
		mu.Unlock()
	}))
	defer hook.Close()
	const filters = 100
	s := newSubscriptionBench(b, filters)
	for i := range filters {
		s.subscribe(b, fmt.Sprintf("user-%03d", i), fmt.Sprintf(`{ $.userIdentity.userName = "user-%03d" && $.eventName = "Get*" }`, i), hook.URL)
	}
	b.ResetTimer()
	for n := range b.N {
		const d = 6 * time.Second
		start := time.Now()
		acked := s.send(b, fmt.Sprintf("fan%d", n), 50000, 500, d, func(i int) string { return fmt.Sprintf("user-%03d", i%filters) })
		sent := time.Since(start)
		maxLag := s.e.a.Logs.Lag()
		for {
			mu.Lock()
			done := delivered >= len(acked)*(n+1)
			mu.Unlock()
			if done {
				break
			}
			maxLag = max(maxLag, s.e.a.Logs.Lag())
			if time.Since(start) > d+60*time.Second {
				b.Fatalf("only %d of %d delivered", delivered, len(acked))
			}
			time.Sleep(5 * time.Millisecond)
		}
		all := time.Since(start)
		b.ReportMetric(float64(len(acked))/sent.Seconds(), "ingested/s")
		b.ReportMetric(float64(len(acked))/all.Seconds(), "delivered/s")
		b.ReportMetric((all-sent).Seconds()*1000, "drain-after-last-ack-ms")
		b.ReportMetric(float64(maxLag), "max-feed-lag-after-last-ack")
	}
}

// reportLatencies reports the median, 99th percentile and maximum of lat,
// and how many there were as unit.
func reportLatencies(b *testing.B, lat []time.Duration, unit string) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(len(lat)), unit)
}
