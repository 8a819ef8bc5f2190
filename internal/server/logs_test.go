package server_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/opentrail/opentrail/internal/app"
	"github.com/opentrail/opentrail/internal/server"
)

// startWith starts a node whose configuration change adjusts.
func startWith(t testing.TB, change func(*app.Config)) *env {
	t.Helper()
	c := app.Config{DataDir: t.TempDir(), RootKeyID: rootID, RootKey: rootSecret, CacheMiB: 16}
	change(&c)
	a, err := app.Open(context.Background(), c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(a.Handler)
	t.Cleanup(func() { ts.Close(); a.Close() })
	return &env{t: t, a: a, url: ts.URL}
}

func (e *env) logs(k key, region string) *cloudwatchlogs.Client {
	return cloudwatchlogs.New(cloudwatchlogs.Options{
		BaseEndpoint: aws.String(e.url), Region: region,
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: k.id, SecretAccessKey: k.secret}, nil
		})),
		RetryMaxAttempts: 1,
	})
}

// userRecord is a management event by an IAM user.
func userRecord(id, user, name, ip string) []byte {
	return fmt.Appendf(nil, `{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::123456789012:user/%[2]s","accountId":"123456789012","accessKeyId":"AKIAEXAMPLE","userName":"%[2]s"},"eventTime":"2026-11-23T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"%[3]s","awsRegion":"us-east-1","sourceIPAddress":"%[4]s","userAgent":"aws-cli/2.15.0","requestParameters":{"bucketName":"b"},"responseElements":null,"requestID":"R%[1]s","eventID":"%[1]s","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management"}`,
		id, user, name, ip)
}

func TestLogGroupsAPI(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	cw := e.logs(root, "us-east-1")

	if _, err := cw.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("/aws/cloudtrail/app")}); err != nil {
		t.Fatal(err)
	}
	_, err := cw.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("/aws/cloudtrail/app")})
	if apiCode(err) != "ResourceAlreadyExistsException" {
		t.Fatalf("duplicate group: %v", err)
	}
	_, err = cw.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("bad name!")})
	if apiCode(err) != "InvalidParameterException" {
		t.Fatalf("bad name: %v", err)
	}
	_, err = cw.PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String("/aws/cloudtrail/app"), RetentionInDays: aws.Int32(2)})
	if apiCode(err) != "InvalidParameterException" {
		t.Fatalf("retention 2 days: %v", err)
	}
	if _, err := cw.PutRetentionPolicy(ctx, &cloudwatchlogs.PutRetentionPolicyInput{LogGroupName: aws.String("/aws/cloudtrail/app"), RetentionInDays: aws.Int32(30)}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		cw.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(fmt.Sprintf("other-%d", i))})
	}
	groups, err := cw.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{Limit: aws.Int32(2)})
	if err != nil || len(groups.LogGroups) != 2 || groups.NextToken == nil {
		t.Fatalf("page 1: %+v %v", groups, err)
	}
	var names []string
	p := cloudwatchlogs.NewDescribeLogGroupsPaginator(cw, &cloudwatchlogs.DescribeLogGroupsInput{Limit: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range page.LogGroups {
			names = append(names, *g.LogGroupName)
			if *g.LogGroupName == "/aws/cloudtrail/app" && (g.RetentionInDays == nil || *g.RetentionInDays != 30 ||
				*g.Arn != "arn:aws:logs:us-east-1:123456789012:log-group:/aws/cloudtrail/app:*") {
				t.Fatalf("group: %+v", g)
			}
		}
	}
	if strings.Join(names, ",") != "/aws/cloudtrail/app,other-0,other-1,other-2" {
		t.Fatalf("groups: %v", names)
	}
	// Other Regions and accounts see none of them.
	if g, _ := e.logs(root, "eu-west-1").DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{}); len(g.LogGroups) != 0 {
		t.Fatalf("eu-west-1 sees %d groups", len(g.LogGroups))
	}
	other := e.newKey("210987654321", "carol", "admin")
	if _, err := e.logs(other, "us-east-1").DeleteLogGroup(ctx, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String("other-0")}); apiCode(err) != "ResourceNotFoundException" {
		t.Fatalf("other account deletes: %v", err)
	}

	// Events in, events out.
	g := aws.String("/aws/cloudtrail/app")
	if _, err := cw.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: g, LogStreamName: aws.String("s1"),
		LogEvents: []cwtypes.InputLogEvent{{Timestamp: aws.Int64(1), Message: aws.String("x")}}}); apiCode(err) != "ResourceNotFoundException" {
		t.Fatalf("put to a missing stream: %v", err)
	}
	for _, s := range []string{"s1", "s2"} {
		if _, err := cw.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: g, LogStreamName: aws.String(s)}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UnixMilli()
	var evs1, evs2 []cwtypes.InputLogEvent
	for i := range 30 {
		evs1 = append(evs1, cwtypes.InputLogEvent{Timestamp: aws.Int64(now - 60000 + int64(2*i)), Message: aws.String(string(userRecord(fmt.Sprintf("a%02d", i), "alice", "PutObject", "10.0.0.1")))})
		evs2 = append(evs2, cwtypes.InputLogEvent{Timestamp: aws.Int64(now - 60000 + int64(2*i+1)), Message: aws.String(fmt.Sprintf("127.0.0.1 - bob [x] \"GET /i/%d\" %d 512", i, 200+i%2*204))})
	}
	evs1 = append(evs1, cwtypes.InputLogEvent{Timestamp: aws.Int64(now + 3*3600*1000), Message: aws.String("future")})
	out, err := cw.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: g, LogStreamName: aws.String("s1"), LogEvents: evs1})
	if err != nil {
		t.Fatal(err)
	}
	if out.RejectedLogEventsInfo == nil || aws.ToInt32(out.RejectedLogEventsInfo.TooNewLogEventStartIndex) != 30 {
		t.Fatalf("rejected: %+v", out.RejectedLogEventsInfo)
	}
	if _, err := cw.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: g, LogStreamName: aws.String("s2"), LogEvents: evs2}); err != nil {
		t.Fatal(err)
	}
	unordered := []cwtypes.InputLogEvent{{Timestamp: aws.Int64(now), Message: aws.String("b")}, {Timestamp: aws.Int64(now - 1), Message: aws.String("a")}}
	if _, err := cw.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: g, LogStreamName: aws.String("s2"), LogEvents: unordered}); apiCode(err) != "InvalidParameterException" {
		t.Fatalf("unordered batch: %v", err)
	}

	// GetLogEvents pages forward from the head, and by default returns the newest.
	var got []string
	in := &cloudwatchlogs.GetLogEventsInput{LogGroupName: g, LogStreamName: aws.String("s1"), StartFromHead: aws.Bool(true), Limit: aws.Int32(7)}
	for range 10 {
		page, err := cw.GetLogEvents(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.Events {
			var r struct{ EventID string }
			json.Unmarshal([]byte(*ev.Message), &r)
			got = append(got, r.EventID)
		}
		if len(page.Events) == 0 {
			break
		}
		in.NextToken = page.NextForwardToken
	}
	if len(got) != 30 || got[0] != "a00" || got[29] != "a29" {
		t.Fatalf("forward pages: %v", got)
	}
	tail, err := cw.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: g, LogStreamName: aws.String("s1"), Limit: aws.Int32(2)})
	if err != nil || len(tail.Events) != 2 || !strings.Contains(*tail.Events[1].Message, `"a29"`) {
		t.Fatalf("newest: %+v %v", tail, err)
	}
	back, err := cw.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: g, LogStreamName: aws.String("s1"), Limit: aws.Int32(2), NextToken: tail.NextBackwardToken})
	if err != nil || len(back.Events) != 2 || !strings.Contains(*back.Events[1].Message, `"a27"`) {
		t.Fatalf("backward: %+v %v", back, err)
	}

	// FilterLogEvents: JSON and space-delimited patterns, interleaved across streams, paged.
	filter := func(pattern string, limit int32) []cwtypes.FilteredLogEvent {
		t.Helper()
		var all []cwtypes.FilteredLogEvent
		p := cloudwatchlogs.NewFilterLogEventsPaginator(cw, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: g, FilterPattern: aws.String(pattern), Limit: aws.Int32(limit)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("%s: %v", pattern, err)
			}
			all = append(all, page.Events...)
		}
		return all
	}
	if n := len(filter(`{ $.userIdentity.userName = "alice" }`, 4)); n != 30 {
		t.Fatalf("alice: %d events", n)
	}
	if n := len(filter(`[ip, id, user, ts, request, status=404, size]`, 100)); n != 15 {
		t.Fatalf("404s: %d events", n)
	}
	all := filter("", 11)
	if len(all) != 60 || *all[0].LogStreamName != "s1" || *all[1].LogStreamName != "s2" || *all[0].Timestamp > *all[59].Timestamp {
		t.Fatalf("interleaved: %d events", len(all))
	}
	_, err = cw.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: g, FilterPattern: aws.String(`{ $.a = }`)})
	if apiCode(err) != "InvalidParameterException" {
		t.Fatalf("bad pattern: %v", err)
	}

	// Streams are described with their event times.
	streams, err := cw.DescribeLogStreams(ctx, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: g})
	if err != nil || len(streams.LogStreams) != 2 || aws.ToInt64(streams.LogStreams[0].FirstEventTimestamp) != now-60000 {
		t.Fatalf("streams: %+v %v", streams, err)
	}

	// TestMetricFilter shows the extracted fields.
	tm, err := cw.TestMetricFilter(ctx, &cloudwatchlogs.TestMetricFilterInput{FilterPattern: aws.String(`[ip, id, user, ...]`),
		LogEventMessages: []string{"127.0.0.1 - frank [10/Oct/2000]", "x"}})
	if err != nil || len(tm.Matches) != 1 || tm.Matches[0].ExtractedValues["$user"] != "frank" || tm.Matches[0].EventNumber != 1 {
		t.Fatalf("test metric filter: %+v %v", tm, err)
	}

	// Reader keys read; writer keys only send events.
	reader := e.newKey(rootAcct, "rita", "reader")
	if _, err := e.logs(reader, "us-east-1").DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.logs(reader, "us-east-1").DeleteLogGroup(ctx, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: g}); apiCode(err) != "AccessDeniedException" {
		t.Fatalf("reader deletes: %v", err)
	}
	if _, err := cw.DeleteLogGroup(ctx, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: g}); err != nil {
		t.Fatal(err)
	}
	if _, err := cw.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: g, LogStreamName: aws.String("s1")}); apiCode(err) != "ResourceNotFoundException" {
		t.Fatalf("deleted group: %v", err)
	}
}

// hook records what a destination receives; fail makes it answer 500.
type hook struct {
	mu     sync.Mutex
	bodies [][]byte
	fail   bool
	got    chan struct{}
	srv    *httptest.Server
}

func newHook(t *testing.T) *hook {
	h := &hook{got: make(chan struct{}, 1<<16)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		fail := h.fail
		if !fail {
			h.bodies = append(h.bodies, b)
		}
		h.mu.Unlock()
		if fail {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		h.got <- struct{}{}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) setFail(v bool) { h.mu.Lock(); h.fail = v; h.mu.Unlock() }

// wait waits for n more deliveries.
func (h *hook) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-h.got:
		case <-time.After(20 * time.Second):
			t.Fatalf("destination %s: no delivery within 20 s", h.srv.URL)
		}
	}
}

// lambdaEvents decodes the Lambda payloads a hook received.
func (h *hook) lambdaEvents(t *testing.T) (msgs []map[string]any, logEvents []string) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, b := range h.bodies {
		var p struct {
			Awslogs struct{ Data string } `json:"awslogs"`
		}
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		z, _ := base64.StdEncoding.DecodeString(p.Awslogs.Data)
		r, err := gzip.NewReader(bytes.NewReader(z))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(r)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
		for _, le := range m["logEvents"].([]any) {
			logEvents = append(logEvents, le.(map[string]any)["message"].(string))
		}
	}
	return msgs, logEvents
}

// TestTrailToLogGroupToSubscription is seed 003's path: a trail sends its
// events to a log group, a subscription filter on one user's name invokes a
// Lambda with the awslogs payload, another posts to a webhook; a metric
// filter counts, and /metrics shows the counts.
func TestTrailToLogGroupToSubscription(t *testing.T) {
	lambda, webhook := newHook(t), newHook(t)
	e := startWith(t, func(c *app.Config) {
		c.Destinations.Lambdas = map[string]string{"notify-alice": lambda.srv.URL}
		c.Destinations.URLPrefixes = []string{webhook.srv.URL + "/"}
	})
	e.buckets("trail-bucket")
	ctx := context.Background()
	cw, ct := e.logs(root, "us-east-1"), e.ct(root, "us-east-1")
	group := "/aws/cloudtrail/swx-trail"
	if _, err := cw.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)}); err != nil {
		t.Fatal(err)
	}
	arn := "arn:aws:logs:us-east-1:123456789012:log-group:" + group + ":*"
	if _, err := ct.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("swx-trail"), S3BucketName: aws.String("trail-bucket"),
		CloudWatchLogsLogGroupArn: aws.String(arn), CloudWatchLogsRoleArn: aws.String("arn:aws:iam::123456789012:role/CloudTrail_CloudWatchLogs_Role")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ct.StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: aws.String("swx-trail")}); err != nil {
		t.Fatal(err)
	}
	_, err := cw.PutSubscriptionFilter(ctx, &cloudwatchlogs.PutSubscriptionFilterInput{LogGroupName: aws.String(group), FilterName: aws.String("LambdaStream_CloudTrail-Notification"),
		FilterPattern: aws.String(`{ $.userIdentity.userName = "alice" }`), DestinationArn: aws.String("arn:aws:lambda:us-east-1:123456789012:function:notify-alice")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cw.PutSubscriptionFilter(ctx, &cloudwatchlogs.PutSubscriptionFilterInput{LogGroupName: aws.String(group), FilterName: aws.String("all-deletes"),
		FilterPattern: aws.String(`{ $.eventName = "Delete*" }`), DestinationArn: aws.String(webhook.srv.URL)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cw.PutSubscriptionFilter(ctx, &cloudwatchlogs.PutSubscriptionFilterInput{LogGroupName: aws.String(group), FilterName: aws.String("third"),
		FilterPattern: aws.String(""), DestinationArn: aws.String(webhook.srv.URL)})
	if apiCode(err) != "LimitExceededException" {
		t.Fatalf("third subscription filter: %v", err)
	}
	_, err = cw.PutSubscriptionFilter(ctx, &cloudwatchlogs.PutSubscriptionFilterInput{LogGroupName: aws.String(group), FilterName: aws.String("all-deletes"),
		FilterPattern: aws.String(""), DestinationArn: aws.String("arn:aws:lambda:us-east-1:123456789012:function:missing")})
	if apiCode(err) != "InvalidParameterException" {
		t.Fatalf("unknown function: %v", err)
	}
	_, err = cw.PutSubscriptionFilter(ctx, &cloudwatchlogs.PutSubscriptionFilterInput{LogGroupName: aws.String(group), FilterName: aws.String("all-deletes"),
		FilterPattern: aws.String(""), DestinationArn: aws.String("http://127.0.0.2:1/elsewhere")})
	if apiCode(err) != "InvalidParameterException" {
		t.Fatalf("a URL outside --subscription-url-prefix: %v", err)
	}
	_, err = cw.PutMetricFilter(ctx, &cloudwatchlogs.PutMetricFilterInput{LogGroupName: aws.String(group), FilterName: aws.String("deletes-by-user"),
		FilterPattern: aws.String(`{ $.eventName = "Delete*" }`), MetricTransformations: []cwtypes.MetricTransformation{{
			MetricName: aws.String("DeleteCount"), MetricNamespace: aws.String("CloudTrailMetrics"), MetricValue: aws.String("1"),
			Dimensions: map[string]string{"User": "$.userIdentity.userName"}}}})
	if err != nil {
		t.Fatal(err)
	}

	var recs [][]byte
	for i := range 20 {
		user, name := "bob", "GetObject"
		if i%2 == 0 {
			user = "alice"
		}
		if i%5 == 0 {
			name = "DeleteObject"
		}
		recs = append(recs, userRecord(fmt.Sprintf("ev-%02d", i), user, name, fmt.Sprintf("198.51.100.%d", i)))
	}
	e.ingest(root, "us-east-1", recs...)

	// Alice's 10 events reach the Lambda, in order, with CloudWatch's payload shape.
	var logEvents []string
	var msgs []map[string]any
	for len(logEvents) < 10 {
		lambda.wait(t, 1)
		msgs, logEvents = lambda.lambdaEvents(t)
	}
	if len(logEvents) != 10 {
		t.Fatalf("lambda got %d events", len(logEvents))
	}
	m := msgs[0]
	if m["messageType"] != "DATA_MESSAGE" || m["owner"] != rootAcct || m["logGroup"] != group ||
		m["logStream"] != "123456789012_CloudTrail_us-east-1" || fmt.Sprint(m["subscriptionFilters"]) != "[LambdaStream_CloudTrail-Notification]" {
		t.Fatalf("payload: %v", m)
	}
	for i, msg := range logEvents {
		if want := string(userRecord(fmt.Sprintf("ev-%02d", 2*i), "alice", map[bool]string{true: "DeleteObject", false: "GetObject"}[(2*i)%5 == 0], fmt.Sprintf("198.51.100.%d", 2*i))); msg != want {
			t.Fatalf("event %d:\n got %s\nwant %s", i, msg, want)
		}
	}
	// The four deletes reach the webhook as records.
	var deletes []string
	for len(deletes) < 4 {
		webhook.wait(t, 1)
		deletes = deletes[:0]
		webhook.mu.Lock()
		for _, b := range webhook.bodies {
			var body struct{ Records []struct{ EventID string } }
			if err := json.Unmarshal(b, &body); err != nil {
				t.Fatalf("webhook body %s: %v", b, err)
			}
			for _, r := range body.Records {
				deletes = append(deletes, r.EventID)
			}
		}
		webhook.mu.Unlock()
	}
	if strings.Join(deletes, ",") != "ev-00,ev-05,ev-10,ev-15" {
		t.Fatalf("webhook: %v", deletes)
	}

	// The log group holds all 20 records (and the management events of this test's own calls since
	// StartLogging); the trail's status shows the delivery.
	fe, err := cw.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group), FilterPattern: aws.String(`{ $.eventSource = "s3.amazonaws.com" }`)})
	if err != nil || len(fe.Events) != 20 {
		t.Fatalf("group holds %d events: %v", len(fe.Events), err)
	}
	st, err := ct.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String("swx-trail")})
	if err != nil || st.LatestCloudWatchLogsDeliveryTime == nil || aws.ToString(st.LatestCloudWatchLogsDeliveryError) != "" {
		t.Fatalf("trail status: %+v %v", st, err)
	}

	// /metrics (on the operator's listener, issue 11 §2): the metric filter's counts per user, and the subscriptions' state.
	resp, err := http.Get(e.metricsURL(""))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`cloudwatch_CloudTrailMetrics_DeleteCount_total{account="123456789012",dim_User="alice",filter="deletes-by-user",log_group="/aws/cloudtrail/swx-trail",region="us-east-1"} 2`,
		`cloudwatch_CloudTrailMetrics_DeleteCount_total{account="123456789012",dim_User="bob",filter="deletes-by-user",log_group="/aws/cloudtrail/swx-trail",region="us-east-1"} 2`,
		`opentrail_subscription_delivered_events_total{account="123456789012",destination="arn:aws:lambda:us-east-1:123456789012:function:notify-alice",filter="LambdaStream_CloudTrail-Notification",log_group="/aws/cloudtrail/swx-trail",region="us-east-1"} 10`,
		`opentrail_projection_lag_entries{projection="log_groups"}`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

// TestSubscriptionFailuresAndDeadLetters: a failing destination is retried,
// then dead-lettered, and replays in order once it is back; meanwhile the
// other subscription of the group delivers everything.
func TestSubscriptionFailuresAndDeadLetters(t *testing.T) {
	bad, good := newHook(t), newHook(t)
	bad.setFail(true)
	e := startWith(t, func(c *app.Config) { c.SubscriptionAttempts = 3 })
	ctx := context.Background()
	cw := e.logs(root, "us-east-1")
	g := aws.String("app")
	cw.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: g})
	cw.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: g, LogStreamName: aws.String("s")})
	for name, url := range map[string]string{"bad": bad.srv.URL, "good": good.srv.URL} {
		if _, err := cw.PutSubscriptionFilter(ctx, &cloudwatchlogs.PutSubscriptionFilterInput{LogGroupName: g, FilterName: aws.String(name),
			FilterPattern: aws.String("ERROR"), DestinationArn: aws.String(url)}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UnixMilli()
	for i := range 5 {
		_, err := cw.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: g, LogStreamName: aws.String("s"),
			LogEvents: []cwtypes.InputLogEvent{{Timestamp: aws.Int64(now + int64(i)), Message: aws.String(fmt.Sprintf("ERROR %d", i))}, {Timestamp: aws.Int64(now + int64(i)), Message: aws.String("INFO fine")}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	received := func(h *hook) []string {
		h.mu.Lock()
		defer h.mu.Unlock()
		var out []string
		for _, b := range h.bodies {
			var body struct{ Records []string }
			json.Unmarshal(b, &body)
			out = append(out, body.Records...)
		}
		return out
	}
	for len(received(good)) < 5 {
		good.wait(t, 1)
	}
	if got := strings.Join(received(good), ","); got != "ERROR 0,ERROR 1,ERROR 2,ERROR 3,ERROR 4" {
		t.Fatalf("good: %s", got)
	}
	// The bad destination's events end up as dead letters after 3 attempts.
	var dead struct{ DeadLetters []struct{ Message string } }
	deadline := time.Now().Add(20 * time.Second)
	for len(dead.DeadLetters) < 5 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		status, b := e.postLogs(root, "/v1/deadletters", `{"Action":"list","LogGroupName":"app","FilterName":"bad"}`)
		if status != 200 {
			t.Fatalf("list dead letters: %d %s", status, b)
		}
		json.Unmarshal(b, &dead)
	}
	if len(dead.DeadLetters) != 5 || dead.DeadLetters[0].Message != "ERROR 0" {
		t.Fatalf("dead letters: %+v", dead)
	}
	bad.setFail(false)
	status, b := e.postLogs(root, "/v1/deadletters", `{"Action":"replay","LogGroupName":"app","FilterName":"bad"}`)
	if status != 200 || !strings.Contains(string(b), `"Replayed":5`) {
		t.Fatalf("replay: %d %s", status, b)
	}
	for len(received(bad)) < 5 {
		bad.wait(t, 1)
	}
	if got := strings.Join(received(bad), ","); got != "ERROR 0,ERROR 1,ERROR 2,ERROR 3,ERROR 4" {
		t.Fatalf("bad after replay: %s", got)
	}
	reader := e.newKey(rootAcct, "rita", "reader")
	if status, _ := e.postLogs(reader, "/v1/deadletters", `{"Action":"replay","LogGroupName":"app","FilterName":"bad"}`); status != 403 {
		t.Fatalf("reader replays: %d", status)
	}
	writer := e.newKey(rootAcct, "app", "writer")
	for _, path := range []string{"/v1/deadletters", "/v1/tail"} {
		if status, _ := e.postLogs(writer, path, `{"Action":"list","LogGroupName":"app","FilterName":"bad"}`); status != 403 {
			t.Fatalf("writer reads %s: %d", path, status)
		}
	}
}

// postLogs sends a signed POST (service cloudtrail) to an OpenTrail path.
func (e *env) postLogs(k key, path, body string) (int, []byte) {
	return e.post(k, "us-east-1", path, []byte(body))
}

// TestTail streams a log group's history, then live events, and the journal.
func TestTail(t *testing.T) {
	e := start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cw := e.logs(root, "us-east-1")
	g := aws.String("app")
	cw.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: g})
	cw.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: g, LogStreamName: aws.String("s")})
	now := time.Now().UnixMilli()
	put := func(msgs ...string) {
		var evs []cwtypes.InputLogEvent
		for _, m := range msgs {
			evs = append(evs, cwtypes.InputLogEvent{Timestamp: aws.Int64(now), Message: aws.String(m)})
		}
		if _, err := cw.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: g, LogStreamName: aws.String("s"), LogEvents: evs}); err != nil {
			t.Fatal(err)
		}
	}
	put("ERROR old", "INFO old")
	body, _ := json.Marshal(server.TailRequest{LogGroupName: "app", FilterPattern: "ERROR", StartTime: now - 1000, Follow: true})
	lines := e.stream(ctx, "/v1/tail", body)
	if l := recv(t, lines); l.Message != "ERROR old" {
		t.Fatalf("history: %+v", l)
	}
	put("INFO new", "ERROR new")
	if l := recv(t, lines); l.Message != "ERROR new" || l.LogStreamName != "s" {
		t.Fatalf("live: %+v", l)
	}

	// Without a log group: the account's records from the journal.
	body, _ = json.Marshal(server.TailRequest{FilterPattern: `{ $.userIdentity.userName = "alice" }`, StartTime: now - 60000, Follow: true})
	e.ingest(root, "us-east-1", userRecord("t1", "alice", "PutObject", "10.0.0.1"), userRecord("t2", "bob", "PutObject", "10.0.0.2"))
	jl := e.stream(ctx, "/v1/tail", body)
	if l := recv(t, jl); !strings.Contains(l.Message, `"eventID":"t1"`) {
		t.Fatalf("journal history: %+v", l)
	}
	e.ingest(root, "us-east-1", userRecord("t3", "bob", "PutObject", "10.0.0.2"), userRecord("t4", "alice", "DeleteObject", "10.0.0.1"))
	if l := recv(t, jl); !strings.Contains(l.Message, `"eventID":"t4"`) {
		t.Fatalf("journal live: %+v", l)
	}
}

// stream POSTs a signed request and yields the NDJSON lines of the answer.
func (e *env) stream(ctx context.Context, path string, body []byte) <-chan server.TailLine {
	e.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url+path, bytes.NewReader(body))
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: rootID, SecretAccessKey: rootSecret},
		req, hex.EncodeToString(sum[:]), "cloudtrail", "us-east-1", time.Now()); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
	}
	ch := make(chan server.TailLine, 100)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var l server.TailLine
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				ch <- l
			}
		}
	}()
	return ch
}

func recv(t *testing.T, ch <-chan server.TailLine) server.TailLine {
	t.Helper()
	select {
	case l := <-ch:
		return l
	case <-time.After(20 * time.Second):
		t.Fatal("no tail line within 20 s")
		return server.TailLine{}
	}
}
