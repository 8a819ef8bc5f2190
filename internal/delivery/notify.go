package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/logs/dest"
	"github.com/opentrail/opentrail/internal/outbox"
	"github.com/opentrail/opentrail/internal/trail"
)

// Notifier tells a trail's SNS topic about each delivered log file. A
// notification is queued durably in the topic's outbox stream (internal/outbox)
// before the file counts as delivered, and published, in delivery order, to
// every endpoint the topic has (SNS HTTP, Slack, email: dest.Config.Topics),
// through the same guarded transport as subscription filters. Failures are
// retried with capped backoff and shown in the trail's status; after
// MaxAttempts a notification becomes a dead letter of its topic's stream.
type Notifier struct {
	db      *pebble.DB
	trails  trail.Registry
	resolve func(topicARN string) (dest.Publisher, error)
	o       NotifierOptions
	log     *slog.Logger

	mu      sync.Mutex
	streams map[string]*outbox.Stream // topic ARN → its stream
	ctx     context.Context
	wg      sync.WaitGroup
	stop    context.CancelFunc
}

// NotifierOptions tune a Notifier; zero values pick the defaults.
type NotifierOptions struct {
	MaxAttempts         int           // default 10
	Backoff, MaxBackoff time.Duration // defaults 1 s and 5 min
	Now                 func() time.Time
}

// ---- Storage format ----
//
// A pending notification is a pendingNotification JSON in the outbox stream
// kv.OutboxPrefix(dead, kv.OutboxTrailNotify, topicARN). Before that,
// notifications were kept under kv.StateKey(kv.StateNotify, "", id); Start
// moves any such entry into its topic's stream.

type pendingNotification struct {
	Account    string   `json:"account"`
	HomeRegion string   `json:"homeRegion"`
	Trail      string   `json:"trail"`
	TopicARN   string   `json:"topicArn"`
	Bucket     string   `json:"s3Bucket"`
	Keys       []string `json:"s3ObjectKey"`
}

// ---- End of storage format. ----

// NewNotifier returns a notifier that POSTs SNS HTTP notifications to one URL
// per topic name (topics: name → URL); Start runs it.
func NewNotifier(db *pebble.DB, trails trail.Registry, topics map[string]string, log *slog.Logger) *Notifier {
	c := &dest.Config{Topics: map[string][]string{}}
	for name, u := range topics {
		c.Topics[name] = []string{u}
	}
	return NewTopicNotifier(db, trails, c.ResolveTopic, NotifierOptions{}, log)
}

// NewTopicNotifier returns a notifier that publishes to the topics resolve
// returns (dest.Config.ResolveTopic: every endpoint of the topic); Start runs it.
func NewTopicNotifier(db *pebble.DB, trails trail.Registry, resolve func(topicARN string) (dest.Publisher, error), o NotifierOptions, log *slog.Logger) *Notifier {
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Notifier{db: db, trails: trails, resolve: resolve, o: o, log: log.With("component", "sns"), streams: map[string]*outbox.Stream{}}
}

// stream returns topic's stream, starting its sender if the notifier runs.
// The caller holds n.mu.
func (n *Notifier) streamLocked(topicARN string) *outbox.Stream {
	if s, ok := n.streams[topicARN]; ok {
		return s
	}
	var (
		pub    dest.Publisher
		pubErr error
		once   sync.Once
	)
	s := outbox.New(n.db, outbox.Options{
		Name:    "trail notifications to " + topicARN,
		Pending: kv.OutboxPrefix(false, kv.OutboxTrailNotify, topicARN),
		Dead:    kv.OutboxPrefix(true, kv.OutboxTrailNotify, topicARN),
		Deliver: func(ctx context.Context, batch []outbox.Entry) error {
			once.Do(func() { pub, pubErr = n.resolve(topicARN) })
			return n.deliver(ctx, pub, pubErr, batch[0])
		},
		Permanent:  func(err error) bool { return errors.Is(err, dest.ErrRejected) }, // as subscriptions: every endpoint refused it
		MaxEntries: 1, MaxAttempts: n.o.MaxAttempts, Backoff: n.o.Backoff, MaxBackoff: n.o.MaxBackoff,
		Valid: func(v []byte) bool { return json.Unmarshal(v, &pendingNotification{}) == nil },
		Now:   n.o.Now, Log: n.log,
	})
	n.streams[topicARN] = s
	if n.ctx != nil {
		n.run(s)
	}
	return s
}

func (n *Notifier) run(s *outbox.Stream) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		s.Run(n.ctx)
	}()
}

// enqueue durably records a notification for one delivered file.
func (n *Notifier) enqueue(s *stream, bucket, key string) error {
	if s.trail.SnsTopicARN == "" {
		return nil
	}
	p := pendingNotification{Account: s.id.Account, HomeRegion: s.id.HomeRegion, Trail: s.id.Trail,
		TopicARN: s.trail.SnsTopicARN, Bucket: bucket, Keys: []string{key}}
	v, err := json.Marshal(p)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	st := n.streamLocked(p.TopicARN)
	b := n.db.NewBatch()
	defer b.Close()
	if _, err := st.Append(b, v); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	st.Wake()
	return nil
}

// Start sends pending notifications until Close.
func (n *Notifier) Start(ctx context.Context) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ctx, n.stop = context.WithCancel(ctx)
	if err := n.migrateLocked(); err != nil {
		n.log.Error("move pending notifications into their topics' outboxes", "err", err)
	}
	// Topics with queued or dead-lettered notifications get their senders now.
	for _, dead := range []bool{false, true} {
		p := kv.OutboxKindPrefix(dead, kv.OutboxTrailNotify)
		it, err := n.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: kv.PrefixUpper(p)})
		if err != nil {
			n.log.Error("list notification outboxes", "err", err)
			continue
		}
		for ok := it.First(); ok; {
			name, good := kv.OutboxStreamName(p, it.Key())
			if !good {
				ok = it.Next()
				continue
			}
			n.streamLocked(name)
			ok = it.SeekGE(kv.PrefixUpper(kv.OutboxPrefix(dead, kv.OutboxTrailNotify, name)))
		}
		it.Close()
	}
	n.ctx = ctx
	for _, s := range n.streams {
		n.run(s)
	}
}

// migrateLocked moves notifications queued by an older version into their
// topics' streams, in their order, in one synced batch.
func (n *Notifier) migrateLocked() error {
	lo := kv.StatePrefix(kv.StateNotify, "")
	it, err := n.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: kv.PrefixUpper(lo)})
	if err != nil {
		return err
	}
	defer it.Close()
	b := n.db.NewBatch()
	defer b.Close()
	moved := 0
	for ok := it.First(); ok; ok = it.Next() {
		var p pendingNotification
		if err := json.Unmarshal(it.Value(), &p); err == nil && p.TopicARN != "" {
			if _, err := n.streamLocked(p.TopicARN).Append(b, bytes.Clone(it.Value())); err != nil {
				return err
			}
		}
		if err := b.Delete(bytes.Clone(it.Key()), nil); err != nil {
			return err
		}
		moved++
	}
	if err := it.Error(); err != nil || moved == 0 {
		return err
	}
	return b.Commit(pebble.Sync)
}

// Close stops sending; what is pending is sent after the next start.
func (n *Notifier) Close() {
	if n.stop != nil {
		n.stop()
	}
	n.wg.Wait()
}

// deliver publishes one notification and records the outcome in its trail's status.
func (n *Notifier) deliver(ctx context.Context, pub dest.Publisher, pubErr error, e outbox.Entry) error {
	var p pendingNotification
	if err := json.Unmarshal(e.Value, &p); err != nil {
		return err
	}
	err := pubErr
	if err == nil {
		err = pub.Publish(ctx, fileMessage(p))
	}
	if ctx.Err() != nil && err != nil {
		return err // shutting down: not the destination's fault
	}
	u := trail.DeliveryUpdate{Kind: trail.DeliveryNotification, Time: n.o.Now()}
	if err != nil {
		u.Err = err.Error()
	}
	if rerr := n.trails.RecordDelivery(p.Account, p.HomeRegion, p.Trail, u); rerr != nil && !errors.Is(rerr, trail.ErrNotFound) {
		n.log.Error("record notification status", "err", rerr)
	}
	return err
}

// fileMessage is CloudTrail's SNS notification of a delivered log file: the
// Message {"s3Bucket":...,"s3ObjectKey":[...]} and no Subject.
func fileMessage(p pendingNotification) *dest.Message {
	body, _ := json.Marshal(struct {
		Bucket string   `json:"s3Bucket"`
		Keys   []string `json:"s3ObjectKey"`
	}{p.Bucket, p.Keys})
	return &dest.Message{
		Title: fmt.Sprintf("[OpenTrail] trail %s delivered a log file", p.Trail),
		Body:  string(body),
		Text: fmt.Sprintf("Trail %s of account %s delivered a log file to bucket %s:\n%s",
			p.Trail, p.Account, p.Bucket, strings.Join(p.Keys, "\n")),
	}
}

// DeadLetters returns up to limit (<= 0: all) notifications the outboxes gave
// up on, oldest first per topic: of one SNS topic (topicARN) or of every one
// (""), and of one account's trails (account) or of all (""; root only).
func (n *Notifier) DeadLetters(topicARN, account string, limit int) ([]DeadNotification, error) {
	out := []DeadNotification{}
	for _, ts := range n.topics(topicARN) {
		entries, err := ts.s.DeadLetters(0)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if limit > 0 && len(out) >= limit {
				return out, nil
			}
			var p pendingNotification
			if json.Unmarshal(e.Value, &p) != nil || (account != "" && p.Account != account) {
				continue
			}
			out = append(out, DeadNotification{TopicARN: ts.arn, Account: p.Account, Trail: p.Trail, Bucket: p.Bucket, Keys: p.Keys})
		}
	}
	return out, nil
}

// DeadNotification is one trail file notification that was given up on.
type DeadNotification struct {
	TopicARN, Account, Trail, Bucket string
	Keys                             []string
}

// Replay puts the dead-lettered notifications of one SNS topic (or of all,
// "") and of one account's trails (or of all, "") back in their outboxes, in
// their original order, and returns how many. Inside an API call's
// transaction (ctx) the move commits with the call's audit record.
func (n *Notifier) Replay(ctx context.Context, topicARN, account string) (int, error) {
	total := 0
	for _, ts := range n.topics(topicARN) {
		k, err := ts.s.Replay(ctx, func(e outbox.Entry) bool {
			var p pendingNotification
			return account == "" || (json.Unmarshal(e.Value, &p) == nil && p.Account == account)
		})
		total += k
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

type topicStream struct {
	arn string
	s   *outbox.Stream
}

// topics returns the stream of topicARN, or every stream by ARN when it is "".
func (n *Notifier) topics(topicARN string) []topicStream {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []topicStream
	for arn, s := range n.streams {
		if topicARN == "" || arn == topicARN {
			out = append(out, topicStream{arn, s})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].arn < out[j].arn })
	return out
}

// NotificationStat is one SNS topic's trail notification state, for metrics.
type NotificationStat struct {
	TopicARN string
	outbox.Stats
}

// Stats reports every topic's notification state, by topic ARN.
func (n *Notifier) Stats() []NotificationStat {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]NotificationStat, 0, len(n.streams))
	for arn, s := range n.streams {
		out = append(out, NotificationStat{TopicARN: arn, Stats: s.Stats()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TopicARN < out[j].TopicARN })
	return out
}
