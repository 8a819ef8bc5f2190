package dest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestTopicLambdaEndpoint: a Lambda function subscribed to a topic
// (lambda:NAME) gets the event SNS gives a function, for log batches and for
// Messages (trail file notifications) alike (issue 13 §4).
func TestTopicLambdaEndpoint(t *testing.T) {
	events := make(chan []byte, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		events <- b
	}))
	defer srv.Close()
	c := Config{Lambdas: map[string]string{"notify": srv.URL}, Topics: map[string][]string{"alerts": {"lambda:notify"}}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	arn := "arn:aws:sns:eu-west-1:123456789012:alerts"
	p, err := c.ResolveTopic(arn)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(context.Background(), &Message{Title: "t", Body: `{"s3Bucket":"b","s3ObjectKey":["k"]}`}); err != nil {
		t.Fatal(err)
	}
	d, err := c.Resolve(arn)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Send(context.Background(), seedBatch()); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{`{"s3Bucket":"b","s3ObjectKey":["k"]}`, `"messageType":"DATA_MESSAGE"`} {
		var ev struct {
			Records []struct {
				EventSource, EventVersion, EventSubscriptionArn string
				Sns                                             map[string]any
			}
		}
		if err := json.Unmarshal(<-events, &ev); err != nil || len(ev.Records) != 1 {
			t.Fatalf("event %d: %v %+v", i, err, ev)
		}
		r := ev.Records[0]
		if r.EventSource != "aws:sns" || r.EventVersion != "1.0" || !strings.HasPrefix(r.EventSubscriptionArn, arn+":") ||
			r.Sns["Type"] != "Notification" || r.Sns["TopicArn"] != arn || !strings.Contains(r.Sns["Message"].(string), want) {
			t.Fatalf("event %d: %+v", i, r)
		}
		if i == 0 && r.Sns["Subject"] != nil {
			t.Fatalf("a trail notification has no Subject: %v", r.Sns["Subject"])
		}
	}

	// A topic endpoint naming a function without a handler is a configuration error.
	bad := Config{Topics: map[string][]string{"alerts": {"lambda:missing"}}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "no handler is configured for function missing") {
		t.Fatalf("Validate: %v", err)
	}
}
