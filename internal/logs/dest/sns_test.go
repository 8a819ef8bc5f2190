package dest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

const topicARN = "arn:aws:sns:eu-west-1:111122223333:security-alerts"

// recorder is an HTTP endpoint that keeps what it received and answers with
// the status in its status field.
type recorder struct {
	mu       sync.Mutex
	status   int
	bodies   [][]byte
	requests []*http.Request
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.bodies = append(rc.bodies, body)
	rc.requests = append(rc.requests, r.Clone(context.Background()))
	status := rc.status
	rc.mu.Unlock()
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	fmt.Fprint(w, "ok")
}

func (rc *recorder) setStatus(s int) {
	rc.mu.Lock()
	rc.status = s
	rc.mu.Unlock()
}

func (rc *recorder) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.bodies)
}

func (rc *recorder) last(t *testing.T) ([]byte, *http.Request) {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bodies) == 0 {
		t.Fatal("endpoint received nothing")
	}
	return rc.bodies[len(rc.bodies)-1], rc.requests[len(rc.requests)-1]
}

func twoEventBatch() *Batch {
	b := seedBatch()
	b.Events = append(b.Events, LogEvent{ID: "33151510541962474777665171134233651761114350748750184449", Timestamp: 1714564800000, Message: deleteBucketRecord})
	return b
}

func TestSNSHTTPEndpoint(t *testing.T) {
	rc := &recorder{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	c := &Config{Topics: map[string][]string{"security-alerts": {srv.URL + "/sns"}}}
	d, err := c.Resolve(topicARN)
	if err != nil {
		t.Fatal(err)
	}
	b := twoEventBatch()
	if err := d.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	body, r := rc.last(t)

	// Key order as SNS writes it.
	keys := []string{`"Type"`, `"MessageId"`, `"TopicArn"`, `"Subject"`, `"Message"`, `"Timestamp"`}
	pos := -1
	for _, k := range keys {
		i := strings.Index(string(body), k+":")
		if i < pos {
			t.Errorf("key %s out of SNS order in %s", k, body)
		}
		pos = i
	}
	var m map[string]string
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body is not a JSON object of strings: %v: %s", err, body)
	}
	if len(m) != 6 {
		t.Errorf("keys = %d, want 6: %s", len(m), body)
	}
	if m["Type"] != "Notification" || m["TopicArn"] != topicARN {
		t.Errorf("Type/TopicArn = %q/%q", m["Type"], m["TopicArn"])
	}
	if want := "[OpenTrail] 2 events: administrator: DescribeTrails (cloudtrail.amazonaws.com) and 1 more"; m["Subject"] != want {
		t.Errorf("Subject = %q, want %q", m["Subject"], want)
	}
	wantMsg, _ := DataMessage(b)
	if m["Message"] != string(wantMsg) {
		t.Errorf("Message = %s\nwant the DATA_MESSAGE %s", m["Message"], wantMsg)
	}
	if len(m["Timestamp"]) != len("2006-01-02T15:04:05.000Z") || !strings.HasSuffix(m["Timestamp"], "Z") {
		t.Errorf("Timestamp = %q", m["Timestamp"])
	}
	for h, want := range map[string]string{
		"Content-Type":           "text/plain; charset=UTF-8",
		"X-Amz-Sns-Message-Type": "Notification",
		"X-Amz-Sns-Message-Id":   m["MessageId"],
		"X-Amz-Sns-Topic-Arn":    topicARN,
		"User-Agent":             "Amazon Simple Notification Service Agent",
	} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	if sub := r.Header.Get("X-Amz-Sns-Subscription-Arn"); !strings.HasPrefix(sub, topicARN+":") {
		t.Errorf("subscription ARN = %q", sub)
	}
	if m["MessageId"] == "" {
		t.Error("no MessageId")
	}
}

func TestSNSSubjectLimits(t *testing.T) {
	s := snsSubject("[OpenTrail] ユーザー: " + strings.Repeat("x", 300) + "\n\x00")
	if len(s) > snsSubjectMax {
		t.Errorf("subject is %d bytes", len(s))
	}
	for _, r := range s {
		if r < ' ' || r > '~' {
			t.Errorf("subject has %q: %q", r, s)
		}
	}
}

// TestTopicAllEndpoints: a topic's Send succeeds only when every endpoint
// accepted, and the retry goes only to those that did not.
func TestTopicAllEndpoints(t *testing.T) {
	good, bad := &recorder{}, &recorder{status: http.StatusServiceUnavailable}
	gs, bs := httptest.NewServer(good), httptest.NewServer(bad)
	defer gs.Close()
	defer bs.Close()
	c := &Config{Topics: map[string][]string{"security-alerts": {gs.URL, bs.URL + "/?key=SECRET"}}}
	d, err := c.Resolve(topicARN)
	if err != nil {
		t.Fatal(err)
	}
	if s := d.String(); s != "sns security-alerts (2 endpoints)" {
		t.Errorf("String() = %q", s)
	}
	b := seedBatch()
	err = d.Send(context.Background(), b)
	if err == nil {
		t.Fatal("Send succeeded with a failing endpoint")
	}
	if !strings.Contains(err.Error(), "HTTP 503") || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error = %q", err)
	}
	if errors.Is(err, ErrRejected) {
		t.Error("a 503 made the batch rejected")
	}
	if good.count() != 1 || bad.count() != 1 {
		t.Fatalf("deliveries good=%d bad=%d, want 1 and 1", good.count(), bad.count())
	}

	bad.setStatus(http.StatusOK)
	if err := d.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if good.count() != 1 || bad.count() != 2 {
		t.Errorf("after retry good=%d bad=%d, want 1 and 2: the retry notified an endpoint twice", good.count(), bad.count())
	}
	// Delivered everywhere: sending the batch again is a new publication.
	if err := d.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if good.count() != 2 || bad.count() != 3 {
		t.Errorf("after resend good=%d bad=%d, want 2 and 3", good.count(), bad.count())
	}
}

func TestTopicRejected(t *testing.T) {
	gone, down := &recorder{status: http.StatusGone}, &recorder{status: http.StatusInternalServerError}
	s1, s2 := httptest.NewServer(gone), httptest.NewServer(down)
	defer s1.Close()
	defer s2.Close()

	c := &Config{Topics: map[string][]string{"only-gone": {s1.URL}, "mixed": {s1.URL, s2.URL}}}
	d, _ := c.Resolve("arn:aws:sns:eu-west-1:111122223333:only-gone")
	if err := d.Send(context.Background(), seedBatch()); !errors.Is(err, ErrRejected) {
		t.Errorf("all endpoints refused, err = %v, want ErrRejected", err)
	}
	d, _ = c.Resolve("arn:aws:sns:eu-west-1:111122223333:mixed")
	err := d.Send(context.Background(), seedBatch())
	if err == nil || errors.Is(err, ErrRejected) {
		t.Errorf("one endpoint may recover, err = %v, want a retryable error", err)
	}
	if !strings.Contains(err.Error(), "2 endpoints failed") {
		t.Errorf("error = %q", err)
	}
}

func TestSlackWebhook(t *testing.T) {
	rc := &recorder{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	// The test server is plain HTTP; endpoints need https, so build directly.
	u, _ := url.Parse(srv.URL + "/services/T000/B000/SECRETTOKEN")
	e := &slackEndpoint{url: u, client: srv.Client()}
	c := &Config{}
	b := twoEventBatch()
	b.Events = append(b.Events, LogEvent{ID: "3", Timestamp: 1714564801000, Message: "plain text <not> json"})
	sums := c.summarize(b)
	n := &notification{topicARN: topicARN, batch: b, sums: sums, subject: subject(sums)}
	if err := e.send(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	body, r := rc.last(t)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
	var m slackMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(m.Text, "[OpenTrail] 3 events: administrator: DescribeTrails (cloudtrail.amazonaws.com) and 2 more") {
		t.Errorf("text = %q", m.Text)
	}
	if len(m.Blocks) != 5 || m.Blocks[0].Type != "header" || m.Blocks[1].Type != "context" {
		t.Fatalf("blocks = %+v", m.Blocks)
	}
	if h := m.Blocks[0].Text.Text; h != "OpenTrail: 3 CloudTrail events" {
		t.Errorf("header = %q", h)
	}
	ctx := m.Blocks[1].Elements[0].Text
	for _, want := range []string{"`/aws/cloudtrail/swx-trail`", "`LambdaStream_CloudTrail-Notification`", "506364634079", "ap-northeast-1"} {
		if !strings.Contains(ctx, want) {
			t.Errorf("context %q lacks %q", ctx, want)
		}
	}
	second := m.Blocks[3].Text.Text
	for _, want := range []string{
		"*DeleteBucket* (s3.amazonaws.com)",
		"*User:* alice",
		"*Time:* 2024-05-01T12:00:00Z",
		"*Source IP:* 203.0.113.7",
		"*User agent:* aws-cli/2.15.0 &lt;md/arch#x86_64&gt; &amp; more",
		"*Error:* AccessDenied",
		"*Region:* eu-west-1",
		"<https://eu-west-1.console.aws.amazon.com/cloudtrailv2/home?region=eu-west-1#/events/0c6a4b2e-1111-2222-3333-444455556666|View event in CloudTrail>",
	} {
		if !strings.Contains(second, want) {
			t.Errorf("event section lacks %q:\n%s", want, second)
		}
	}
	if first := m.Blocks[2].Text.Text; strings.Contains(first, "*Error:*") || !strings.Contains(first, "*User:* administrator") {
		t.Errorf("first section: %s", first)
	}
	if txt := m.Blocks[4].Text.Text; !strings.Contains(txt, "```plain text &lt;not&gt; json```") {
		t.Errorf("text event: %s", txt)
	}
	if strings.Contains(string(body), "SECRETTOKEN") {
		t.Error("webhook token in the message")
	}
	if s := e.String(); s != "slack "+u.Host {
		t.Errorf("String() = %q", s)
	}
}

func TestSlackLimits(t *testing.T) {
	c := &Config{}
	b := &Batch{Owner: "111122223333", Region: "eu-west-1", LogGroup: "g", LogStream: "s", SubscriptionFilters: []string{"f"}}
	for i := range 120 {
		// Big messages: 120 × 2,000 bytes would pass every limit if not cut.
		b.Events = append(b.Events, LogEvent{ID: fmt.Sprint(i), Timestamp: int64(i), Message: strings.Repeat("é", 2000)})
	}
	b.Events[0].Message = strings.Repeat("x", 10000) // a section over 3,000
	sums := c.summarize(b)
	m := slackPayload(&notification{batch: b, sums: sums, subject: subject(sums)})
	if len(m.Blocks) != slackBlocksMax {
		t.Errorf("%d blocks, want %d", len(m.Blocks), slackBlocksMax)
	}
	last := m.Blocks[len(m.Blocks)-1]
	if last.Type != "context" || last.Elements[0].Text != "…and 73 more" {
		t.Errorf("last block = %+v", last)
	}
	if len(m.Text) > slackTextMax {
		t.Errorf("text is %d bytes", len(m.Text))
	}
	if !strings.Contains(m.Text, "more") {
		t.Error("text does not say events were left out")
	}
	for i, bl := range m.Blocks {
		if bl.Text != nil && len(bl.Text.Text) > slackSectionMax {
			t.Errorf("block %d has %d bytes", i, len(bl.Text.Text))
		}
	}
	if first := m.Blocks[2].Text.Text; !strings.HasSuffix(first, "…```") {
		t.Errorf("a cut text event must still close its code block: …%q", first[len(first)-20:])
	}
	// At most 48 events fit without a "more" block.
	b.Events = b.Events[:48]
	sums = c.summarize(b)
	m = slackPayload(&notification{batch: b, sums: sums, subject: subject(sums)})
	if len(m.Blocks) != 50 || m.Blocks[49].Type != "section" {
		t.Errorf("48 events: %d blocks, last %s", len(m.Blocks), m.Blocks[len(m.Blocks)-1].Type)
	}
}

func TestUserOf(t *testing.T) {
	tests := []struct{ identity, long, short string }{
		{`{"type":"IAMUser","userName":"alice","arn":"arn:aws:iam::1:user/alice"}`, "alice", "alice"},
		{`{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/Admin/bob","principalId":"AROA:bob","sessionContext":{"sessionIssuer":{"userName":"Admin"}}}`,
			"arn:aws:sts::111122223333:assumed-role/Admin/bob", "assumed-role/Admin/bob"},
		{`{"type":"Root","arn":"arn:aws:iam::111122223333:root","principalId":"111122223333"}`, "arn:aws:iam::111122223333:root", "root"},
		{`{"type":"AWSService","invokedBy":"lambda.amazonaws.com"}`, "AWSService lambda.amazonaws.com", "lambda.amazonaws.com"},
		{`{"type":"AWSAccount","principalId":"AIDA","accountId":"444455556666"}`, "AWSAccount 444455556666", "account 444455556666"},
		{`{"type":"WebIdentityUser","principalId":"accounts.google.com:123"}`, "WebIdentityUser accounts.google.com:123", "accounts.google.com:123"},
		{`{"type":"Unknown"}`, "Unknown", "Unknown"},
		{`null`, "unknown", "unknown"},
	}
	for _, tt := range tests {
		var r record
		if err := json.Unmarshal([]byte(`{"userIdentity":`+tt.identity+`}`), &r); err != nil {
			t.Fatal(err)
		}
		long, short := userOf(&r)
		if long != tt.long || short != tt.short {
			t.Errorf("%s: got %q/%q, want %q/%q", tt.identity, long, short, tt.long, tt.short)
		}
	}
}

func TestEventLink(t *testing.T) {
	c := &Config{EventLink: "https://ct.example.com/{account}/{region}/{eventID}"}
	s := c.summarizeEvent(&Batch{Owner: "999999999999", Region: "us-east-1"}, LogEvent{Message: `{"eventID":"a b/c","awsRegion":"eu-west-1"}`})
	if want := "https://ct.example.com/999999999999/eu-west-1/a%20b%2Fc"; s.Link != want {
		t.Errorf("link = %q, want %q", s.Link, want)
	}
	s = c.summarizeEvent(&Batch{Region: "us-east-1"}, LogEvent{Timestamp: 0, Message: "{not json"})
	if s.Text != "{not json" || s.Link != "" || s.Time != "1970-01-01T00:00:00Z" || s.Region != "us-east-1" {
		t.Errorf("text event summary = %+v", s)
	}
}
