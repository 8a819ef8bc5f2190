package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"

	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/trail"
)

// Notifier tells a trail's SNS topic about each delivered log file, by POSTing
// an SNS HTTP notification to the URL configured for the topic's name. Pending
// notifications are kept in the database, so a crash or a dead endpoint delays
// them but loses none; failures are retried with capped backoff and shown in
// the trail's status.
type Notifier struct {
	db     *pebble.DB
	trails trail.Registry
	topics map[string]string // topic name → URL
	client *http.Client
	log    *slog.Logger
	now    func() time.Time

	mu   sync.Mutex
	seq  uint64
	kick chan struct{}
	wg   sync.WaitGroup
	stop context.CancelFunc
}

// ---- Storage format: a pending notification under kv.StateKey(kv.StateNotify, "", seq). ----

type pendingNotification struct {
	Account    string   `json:"account"`
	HomeRegion string   `json:"homeRegion"`
	Trail      string   `json:"trail"`
	TopicARN   string   `json:"topicArn"`
	Bucket     string   `json:"s3Bucket"`
	Keys       []string `json:"s3ObjectKey"`
}

// ---- End of storage format. ----

// NewNotifier returns a notifier for topics (name → URL); Start runs it.
func NewNotifier(db *pebble.DB, trails trail.Registry, topics map[string]string, log *slog.Logger) *Notifier {
	return &Notifier{db: db, trails: trails, topics: topics, log: log.With("component", "sns"),
		client: &http.Client{Timeout: 10 * time.Second}, now: time.Now, kick: make(chan struct{}, 1)}
}

// enqueue durably records a notification for one delivered file.
func (n *Notifier) enqueue(s *stream, bucket, key string) error {
	if s.trail.SnsTopicARN == "" {
		return nil
	}
	p := pendingNotification{Account: s.id.Account, HomeRegion: s.id.HomeRegion, Trail: s.id.Trail,
		TopicARN: s.trail.SnsTopicARN, Bucket: bucket, Keys: []string{key}}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.seq++
	id := fmt.Sprintf("%020d", uint64(n.now().UnixNano())+n.seq) // ordered, unique within this process and across restarts
	n.mu.Unlock()
	if err := n.db.Set(kv.StateKey(kv.StateNotify, "", id), b, pebble.Sync); err != nil {
		return err
	}
	select {
	case n.kick <- struct{}{}:
	default:
	}
	return nil
}

// Start sends pending notifications until Close.
func (n *Notifier) Start(ctx context.Context) {
	ctx, n.stop = context.WithCancel(ctx)
	n.wg.Add(1)
	go n.run(ctx)
}

// Close stops sending; what is pending is sent after the next start.
func (n *Notifier) Close() {
	if n.stop != nil {
		n.stop()
	}
	n.wg.Wait()
}

func (n *Notifier) run(ctx context.Context) {
	defer n.wg.Done()
	backoff := time.Duration(0)
	for {
		failed := n.sendPending(ctx)
		switch {
		case failed:
			backoff = min(max(2*backoff, time.Second), 5*time.Minute)
		default:
			backoff = 0
		}
		wait := backoff
		if wait == 0 {
			wait = time.Minute // also picks up anything a kick missed
		}
		select {
		case <-ctx.Done():
			return
		case <-n.kick:
			if !failed {
				continue
			}
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
		case <-time.After(wait):
		}
	}
}

// sendPending sends notifications in order; it stops at the first failure so
// that a topic sees files in delivery order, and reports whether one failed.
func (n *Notifier) sendPending(ctx context.Context) bool {
	lo := kv.StatePrefix(kv.StateNotify, "")
	it, err := n.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: kv.PrefixUpper(lo)})
	if err != nil {
		return true
	}
	type item struct {
		key []byte
		p   pendingNotification
	}
	var items []item
	for ok := it.First(); ok && len(items) < 1000; ok = it.Next() {
		var p pendingNotification
		if json.Unmarshal(it.Value(), &p) == nil {
			items = append(items, item{bytes.Clone(it.Key()), p})
		}
	}
	it.Close()
	for _, x := range items {
		err := n.send(ctx, x.p)
		u := trail.DeliveryUpdate{Kind: trail.DeliveryNotification, Time: n.now()}
		if err != nil {
			u.Err = err.Error()
		}
		if rerr := n.trails.RecordDelivery(x.p.Account, x.p.HomeRegion, x.p.Trail, u); rerr != nil && !errors.Is(rerr, trail.ErrNotFound) {
			n.log.Error("record notification status", "err", rerr)
		}
		if err != nil {
			n.log.Warn("SNS notification failed; will retry", "topic", x.p.TopicARN, "err", err)
			return true
		}
		if err := n.db.Delete(x.key, pebble.Sync); err != nil {
			return true
		}
	}
	return false
}

// send POSTs one notification in the SNS HTTP message format.
func (n *Notifier) send(ctx context.Context, p pendingNotification) error {
	name := p.TopicARN[strings.LastIndexByte(p.TopicARN, ':')+1:]
	url, ok := n.topics[name]
	if !ok {
		return fmt.Errorf("no endpoint is configured for SNS topic %s (serve --sns-topic %s=URL)", name, name)
	}
	msg, _ := json.Marshal(struct {
		Bucket string   `json:"s3Bucket"`
		Keys   []string `json:"s3ObjectKey"`
	}{p.Bucket, p.Keys})
	id := uuid.NewString()
	body, _ := json.Marshal(map[string]string{
		"Type":      "Notification",
		"MessageId": id,
		"TopicArn":  p.TopicARN,
		"Message":   string(msg),
		"Timestamp": n.now().UTC().Format("2006-01-02T15:04:05.000Z"),
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain; charset=UTF-8")
	req.Header.Set("x-amz-sns-message-type", "Notification")
	req.Header.Set("x-amz-sns-message-id", id)
	req.Header.Set("x-amz-sns-topic-arn", p.TopicARN)
	resp, err := n.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: HTTP %d", url, resp.StatusCode)
	}
	return nil
}
