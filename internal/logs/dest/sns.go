package dest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// endpoint is one subscriber of a topic.
type endpoint interface {
	send(ctx context.Context, n *notification) error
	String() string
}

// notification is one batch, or one Message, as a topic publishes it.
type notification struct {
	topicARN string
	batch    *Batch    // nil for a Message
	msg      *Message  // nil for a batch
	data     []byte    // the DATA_MESSAGE JSON
	sums     []summary // per event, for people
	subject  string
	at       time.Time
}

// topic fans a batch out to every endpoint of an SNS topic; Send succeeds
// once all have accepted it.
type topic struct {
	arn, name string
	endpoints []endpoint
	cfg       *Config

	// delivered remembers, per recent batch, the endpoints that accepted it,
	// so that the retry after a partial failure skips them.
	mu        sync.Mutex
	delivered map[[32]byte]map[int]bool
	order     [][32]byte
}

// rememberBatches bounds topic.delivered.
const rememberBatches = 256

func (c *Config) newTopic(arn, name string, eps []string) (Destination, error) {
	t := &topic{arn: arn, name: name, cfg: c, delivered: make(map[[32]byte]map[int]bool)}
	for i, ep := range eps {
		e, err := c.newEndpoint(arn, ep)
		if err != nil {
			return nil, invalidf("Invalid configuration for SNS topic %s endpoint %d: %v", name, i, err)
		}
		t.endpoints = append(t.endpoints, e)
	}
	return t, nil
}

func (c *Config) newEndpoint(topicARN, ep string) (endpoint, error) {
	kind, err := validEndpoint(ep)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "slack":
		u, _ := url.Parse(ep[len("slack+"):])
		return &slackEndpoint{url: u, client: c.httpClient()}, nil
	case "http":
		u, _ := url.Parse(ep)
		// A stable subscription id per endpoint, as SNS has one per subscription.
		sub := topicARN + ":" + uuid.NewSHA1(uuid.NameSpaceURL, []byte(topicARN+" "+ep)).String()
		return &snsHTTPEndpoint{url: u, client: c.httpClient(), subscriptionARN: sub}, nil
	case "lambda":
		fn := ep[len("lambda:"):]
		target, ok := c.Lambdas[fn]
		if !ok {
			return nil, fmt.Errorf("no handler is configured for function %s (--lambda %s=URL|exec:COMMAND)", fn, fn)
		}
		region := strings.Split(topicARN, ":")[3]
		d, err := c.newLambda(fn, region, target)
		if err != nil {
			return nil, err
		}
		sub := topicARN + ":" + uuid.NewSHA1(uuid.NameSpaceURL, []byte(topicARN+" "+ep)).String()
		return &lambdaEndpoint{name: fn, region: region, fn: d.(invoker), subscriptionARN: sub}, nil
	case "mailto":
		to, _ := parseMailto(ep)
		if err := c.SMTP.validate(); err != nil {
			return nil, err
		}
		return &mailEndpoint{to: to, smtp: c.SMTP}, nil
	}
	return nil, fmt.Errorf("unknown endpoint kind %s", kind)
}

func (t *topic) String() string {
	return fmt.Sprintf("sns %s (%d %s)", t.name, len(t.endpoints), plural(len(t.endpoints), "endpoint", "endpoints"))
}

func (t *topic) Send(ctx context.Context, b *Batch) error {
	data, err := DataMessage(b)
	if err != nil {
		return fmt.Errorf("sns %s: %w", t.name, err)
	}
	sums := t.cfg.summarize(b)
	return t.fanOut(ctx, &notification{topicARN: t.arn, batch: b, data: data, sums: sums, subject: subject(sums), at: time.Now()})
}

// Message is a notification other than a batch of log events, published to an
// SNS topic: a trail's log file notification, a detection's finding.
type Message struct {
	Subject string // the SNS Subject; "" = none (CloudTrail's file notifications have none)
	Title   string // one line for people: the Slack header and the email Subject
	Body    string // the SNS Message: what a program reads, usually JSON
	Text    string // for people (Slack, email); "" shows Body
}

// Publisher publishes Messages to every endpoint of an SNS topic, as Send
// does batches: nil once all accepted; a retry skips those that did.
type Publisher interface {
	Publish(ctx context.Context, m *Message) error
	String() string
}

// ResolveTopic returns the topic an SNS topic ARN names, with the endpoints
// c.Topics configures for its name. Errors wrap ErrInvalidDestination.
func (c *Config) ResolveTopic(topicARN string) (Publisher, error) {
	if p := strings.Split(topicARN, ":"); len(p) != 6 || p[0] != "arn" || p[2] != "sns" {
		return nil, invalidf("Invalid SNS topic ARN %q: expected arn:aws:sns:<region>:<account>:<topic>", trimForError(topicARN))
	}
	d, err := c.resolveARN(topicARN)
	if err != nil {
		return nil, err
	}
	return d.(*topic), nil
}

func (t *topic) Publish(ctx context.Context, m *Message) error {
	return t.fanOut(ctx, &notification{topicARN: t.arn, msg: m, data: []byte(m.Body), subject: m.Title, at: time.Now()})
}

// fanOut sends n to every endpoint that has not accepted it yet.
func (t *topic) fanOut(ctx context.Context, n *notification) error {
	key := sha256.Sum256(n.data)

	t.mu.Lock()
	done := make(map[int]bool)
	for i := range t.delivered[key] {
		done[i] = true
	}
	t.mu.Unlock()

	var failed []error
	allRejected := true
	for i, e := range t.endpoints {
		if done[i] {
			continue
		}
		if err := e.send(ctx, n); err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", e, err))
			allRejected = allRejected && errors.Is(err, ErrRejected)
			continue
		}
		done[i] = true
	}
	t.remember(key, done, len(failed) == 0)
	if len(failed) == 0 {
		return nil
	}
	return &topicError{name: t.name, errs: failed, rejected: allRejected}
}

func (t *topic) remember(key [32]byte, done map[int]bool, complete bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if complete {
		// Delivered everywhere: a later Send of the same batch is a new
		// publication (the sender replaying on purpose), not a retry.
		delete(t.delivered, key)
		return
	}
	if _, ok := t.delivered[key]; !ok {
		t.order = append(t.order, key)
		if len(t.order) > rememberBatches {
			delete(t.delivered, t.order[0])
			t.order = t.order[1:]
		}
	}
	t.delivered[key] = done
}

// topicError lists the endpoints that failed. It is ErrRejected only when
// every failed endpoint rejected the batch: otherwise a retry can still help.
type topicError struct {
	name     string
	errs     []error
	rejected bool
}

func (e *topicError) Error() string {
	msgs := make([]string, len(e.errs))
	for i, err := range e.errs {
		msgs[i] = err.Error()
	}
	return fmt.Sprintf("sns %s: %d %s failed: %s", e.name, len(e.errs), plural(len(e.errs), "endpoint", "endpoints"), strings.Join(msgs, "; "))
}

func (e *topicError) Unwrap() []error {
	if e.rejected {
		return e.errs
	}
	// Hide ErrRejected of some endpoints, keep the others' causes.
	var out []error
	for _, err := range e.errs {
		if !errors.Is(err, ErrRejected) {
			out = append(out, err)
		}
	}
	return out
}

// ---- Wire format: SNS HTTP(S) notification, as SNS POSTs it to subscribers. ----
//
// The Message is the decoded DATA_MESSAGE JSON (what a subscribed Lambda
// function sees after decoding awslogs.data); the Subject is the human
// summary. OpenTrail cannot sign as SNS, so SignatureVersion, Signature,
// SigningCertURL and UnsubscribeURL are absent: a subscriber that verifies
// SNS signatures will refuse these messages.

type snsMessage struct {
	Type      string `json:"Type"`
	MessageID string `json:"MessageId"`
	TopicArn  string `json:"TopicArn"`
	Subject   string `json:"Subject,omitempty"`
	Message   string `json:"Message"`
	Timestamp string `json:"Timestamp"`
}

// snsSubjectMax is SNS's limit on Subject (characters).
const snsSubjectMax = 100

// ---- End of wire format. ----

type snsHTTPEndpoint struct {
	url             *url.URL
	client          *http.Client
	subscriptionARN string
}

func (e *snsHTTPEndpoint) String() string { return "sns-http " + safeURL(e.url) }

func (e *snsHTTPEndpoint) send(ctx context.Context, n *notification) error {
	id := uuid.NewString()
	body, err := marshalNoHTML(snsMessage{
		Type:      "Notification",
		MessageID: id,
		TopicArn:  n.topicARN,
		Subject:   n.snsSubject(),
		Message:   string(n.data),
		Timestamp: n.at.UTC().Format("2006-01-02T15:04:05.000Z"),
	})
	if err != nil {
		return err
	}
	h := http.Header{}
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("User-Agent", "Amazon Simple Notification Service Agent")
	h.Set("x-amz-sns-message-type", "Notification")
	h.Set("x-amz-sns-message-id", id)
	h.Set("x-amz-sns-topic-arn", n.topicARN)
	h.Set("x-amz-sns-subscription-arn", e.subscriptionARN)
	return post(ctx, e.client, e.url, safeURL(e.url), body, h, nil)
}

func (n *notification) snsSubject() string {
	if n.msg != nil {
		if n.msg.Subject == "" {
			return ""
		}
		return snsSubject(n.msg.Subject)
	}
	return snsSubject(n.subject)
}

// ---- Wire format: the event SNS gives a subscribed Lambda function. ----

type snsLambdaEvent struct {
	Records []snsLambdaRecord `json:"Records"`
}

type snsLambdaRecord struct {
	EventSource          string         `json:"EventSource"` // "aws:sns"
	EventVersion         string         `json:"EventVersion"`
	EventSubscriptionArn string         `json:"EventSubscriptionArn"`
	Sns                  snsLambdaInner `json:"Sns"`
}

type snsLambdaInner struct {
	Type              string         `json:"Type"`
	MessageID         string         `json:"MessageId"`
	TopicArn          string         `json:"TopicArn"`
	Subject           *string        `json:"Subject"` // null without a subject
	Message           string         `json:"Message"`
	Timestamp         string         `json:"Timestamp"`
	SignatureVersion  string         `json:"SignatureVersion"`
	Signature         string         `json:"Signature"`      // empty: OpenTrail cannot sign as SNS
	SigningCertURL    string         `json:"SigningCertUrl"` // empty
	UnsubscribeURL    string         `json:"UnsubscribeUrl"` // empty
	MessageAttributes map[string]any `json:"MessageAttributes"`
}

// ---- End of wire format. ----

// lambdaEndpoint invokes a function subscribed to the topic with the event
// SNS gives a Lambda: {"Records":[{"EventSource":"aws:sns",...,"Sns":{...}}]}.
type lambdaEndpoint struct {
	name, region    string
	fn              invoker
	subscriptionARN string
}

func (e *lambdaEndpoint) String() string { return "lambda " + e.name }

func (e *lambdaEndpoint) send(ctx context.Context, n *notification) error {
	var subject *string
	if s := n.snsSubject(); s != "" {
		subject = &s
	}
	body, err := marshalNoHTML(snsLambdaEvent{Records: []snsLambdaRecord{{
		EventSource: "aws:sns", EventVersion: "1.0", EventSubscriptionArn: e.subscriptionARN,
		Sns: snsLambdaInner{Type: "Notification", MessageID: uuid.NewString(), TopicArn: n.topicARN, Subject: subject,
			Message: string(n.data), Timestamp: n.at.UTC().Format("2006-01-02T15:04:05.000Z"), SignatureVersion: "1",
			MessageAttributes: map[string]any{}},
	}}})
	if err != nil {
		return err
	}
	return e.fn.invoke(ctx, e.region, body)
}

// snsSubject fits s to what SNS allows in a Subject: one line of printable
// ASCII, at most 100 characters.
func snsSubject(s string) string {
	s = strings.ReplaceAll(oneLine(s, snsSubjectMax-3), "…", "...")
	return strings.Map(func(r rune) rune {
		if r < ' ' || r > '~' {
			return '?'
		}
		return r
	}, s)
}
