// Package logs is OpenTrail's CloudWatch Logs: log groups and streams,
// PutLogEvents, GetLogEvents and FilterLogEvents, subscription filters that
// deliver matching events within milliseconds, and metric filters whose counts
// are exposed to Prometheus.
//
// Events reach a log group two ways: a trail with CloudWatchLogsLogGroupArn
// sends each event it selects (the feed, a journal projection with cursor
// "logs"), and PutLogEvents writes them directly. Both go through one write
// path that, in the same Pebble batch as the events, evaluates the group's
// subscription and metric filters (each event's JSON parsed once for all of
// them), queues matches in each subscription's outbox and updates metric
// values. A sender per subscription drains its outbox in order, retries with
// capped exponential backoff and dead-letters a batch after MaxAttempts, so a
// failing destination delays only itself. Nothing is lost to a crash: feed
// batches carry the journal cursor, PutLogEvents is synced before it answers,
// and an outbox entry is deleted only after its destination accepted it
// (at-least-once).
package logs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/filterpattern"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/logs/dest"
	"github.com/opentrail/opentrail/internal/trail"
)

// Limits, as CloudWatch Logs documents them.
const (
	maxSubscriptionFilters = 2   // per log group, by default
	maxMetricFilters       = 100 // per log group
	maxBatchEvents         = 10000
	maxBatchBytes          = 1 << 20 // PutLogEvents: sum of (message + 26 bytes)
	maxEventBytes          = 256 << 10
	eventOverhead          = 26
)

// Options configure a Service.
type Options struct {
	Now       func() time.Time
	Partition string // ARN partition; default "aws"
	// Resolve maps a subscription filter's destinationArn to where it delivers
	// (dest.Config.Resolve); nil accepts no destination.
	Resolve func(destinationArn string) (dest.Destination, error)
	// MaxAttempts is how often a batch is tried before it is dead-lettered; default 10.
	MaxAttempts int
	// SubscriptionFilters is how many subscription filters a log group may have; default 2, as AWS.
	SubscriptionFilters int
	// Backoff is the first retry delay, doubled per failure up to MaxBackoff; defaults 200 ms and 1 min.
	Backoff, MaxBackoff time.Duration
}

// Service serves the CloudWatch Logs operations and runs the feed and the senders.
type Service struct {
	db     *pebble.DB
	j      *journal.Journal
	trails trail.Registry
	log    *slog.Logger
	o      Options
	ops    awsapi.Ops[*Service, auth.Caller]

	// mu guards the caches below and serialises writes, so that log sequence
	// numbers, stream metadata and metric values change in commit order.
	mu       sync.Mutex
	groups   map[groupID]*group
	seq      uint64        // last log sequence number assigned
	changed  chan struct{} // closed and replaced after every write
	watchers []*watcher    // followers of log groups (Tail)
	ctx      context.Context
	wg       sync.WaitGroup
	cancel   context.CancelFunc

	feedMu      sync.Mutex // guards the feed's trail cache
	feedTrails  []feedTarget
	feedAt      time.Time
	feedVersion uint64            // the TrailsVersion feedTrails were read at
	feedErrs    map[string]string // trail ARN → last reported CloudWatch Logs error
	feedOKAt    map[string]time.Time
	feedPos     uint64 // next journal seq the feed reads (for lag)
}

type opFunc = func(s *Service, ctx context.Context, c auth.Caller, body []byte) (any, error)

type groupID struct{ Account, Region, Name string }

func (id groupID) stateName() string { return id.Region + ":" + id.Name }

// group is one log group with its streams and filters, as cached in memory.
type group struct {
	id      groupID
	meta    groupMeta
	streams map[string]*streamMeta
	subs    []*subscription
	subIdx  *subIndex // nil after subs change; see subscriptionIndex
	metrics []*metricFilter
}

type groupMeta struct {
	Name               string            `json:"name"`
	CreationTime       int64             `json:"creationTime"`
	RetentionInDays    int               `json:"retentionInDays,omitempty"`
	KmsKeyID           string            `json:"kmsKeyId,omitempty"`
	Class              string            `json:"logGroupClass,omitempty"`
	DeletionProtection bool              `json:"deletionProtection,omitempty"`
	Tags               map[string]string `json:"tags,omitempty"`
}

type streamMeta struct {
	Name          string `json:"name"`
	CreationTime  int64  `json:"creationTime"`
	FirstEvent    int64  `json:"firstEventTimestamp,omitempty"`
	LastEvent     int64  `json:"lastEventTimestamp,omitempty"`
	LastIngestion int64  `json:"lastIngestionTime,omitempty"`
	StoredBytes   int64  `json:"storedBytes,omitempty"`
	Events        uint64 `json:"events,omitempty"`
	dirty         bool
	prefix        []byte // key prefix of its events, built on first write
}

// New returns a Service; Start loads its state and starts the feed and senders.
func New(db *pebble.DB, j *journal.Journal, trails trail.Registry, log *slog.Logger, o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Partition == "" {
		o.Partition = "aws"
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	if o.SubscriptionFilters <= 0 {
		o.SubscriptionFilters = maxSubscriptionFilters
	}
	if o.Backoff <= 0 {
		o.Backoff = 200 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Minute
	}
	if o.Resolve == nil {
		o.Resolve = func(arn string) (dest.Destination, error) {
			return nil, fmt.Errorf("no subscription destinations are configured (serve --lambda, --sns-topic, or a config file)")
		}
	}
	s := &Service{db: db, j: j, trails: trails, log: log.With("component", "logs"), o: o,
		groups: map[groupID]*group{}, changed: make(chan struct{}),
		feedErrs: map[string]string{}, feedOKAt: map[string]time.Time{}}
	s.ops = awsapi.Ops[*Service, auth.Caller]{}
	maps.Copy(s.ops, groupOps)
	maps.Copy(s.ops, eventOps)
	maps.Copy(s.ops, filterOps)
	return s
}

// Handles reports whether op is implemented.
func (s *Service) Handles(op string) bool { _, ok := s.ops[op]; return ok }

// Handle runs op for c. body is the request JSON, already valid against the model.
func (s *Service) Handle(ctx context.Context, c auth.Caller, op string, body []byte) (any, error) {
	return s.ops.Call(s, ctx, c, op, body)
}

// ReadOnly reports whether op only reads.
func ReadOnly(op string) bool {
	for _, p := range []string{"Describe", "Get", "Filter", "Test", "List"} {
		if strings.HasPrefix(op, p) {
			return true
		}
	}
	return false
}

// Audited reports whether a call of op is recorded as a CloudTrail management
// event. As on AWS, the data-plane calls (reading and writing log events) are not.
func Audited(op string) bool {
	switch op {
	case "PutLogEvents", "GetLogEvents", "FilterLogEvents":
		return false
	}
	return true
}

// Start loads the log groups and starts the feed, the senders and the retention janitor.
func (s *Service) Start(ctx context.Context) error {
	ctx, s.cancel = context.WithCancel(ctx)
	s.ctx = ctx
	if err := s.load(); err != nil {
		s.cancel()
		return err
	}
	next, err := s.j.Cursor(kv.CursorLogs)
	if err != nil {
		s.cancel()
		return err
	}
	if next == 0 {
		// A new node follows from the journal's current end: trails send events from when they are configured.
		next = s.j.Last() + 1
		b := s.db.NewBatch()
		if err := journal.SetCursor(b, kv.CursorLogs, next); err == nil {
			err = b.Commit(pebble.Sync)
		}
		b.Close()
		if err != nil {
			s.cancel()
			return fmt.Errorf("logs: save cursor: %w", err)
		}
	}
	s.startSenders()
	s.wg.Add(2)
	go s.follow(ctx, next)
	go s.janitor(ctx)
	return nil
}

// Close stops the feed and the senders.
func (s *Service) Close() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

// load reads every log group, stream and filter into memory.
func (s *Service) load() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.list(kv.StateLogGroup, "", func(account, name string, raw []byte) error {
		region, gname, _ := strings.Cut(name, ":")
		g := &group{id: groupID{account, region, gname}, streams: map[string]*streamMeta{}}
		if err := json.Unmarshal(raw, &g.meta); err != nil {
			return err
		}
		s.groups[g.id] = g
		return nil
	})
	if err != nil {
		return err
	}
	err = s.list(kv.StateLogStream, "", func(account, name string, raw []byte) error {
		g := s.groupOf(account, name)
		if g == nil {
			return nil
		}
		st := new(streamMeta)
		if err := json.Unmarshal(raw, st); err != nil {
			return err
		}
		g.streams[st.Name] = st
		return nil
	})
	if err != nil {
		return err
	}
	err = s.list(kv.StateSubscription, "", func(account, name string, raw []byte) error {
		g := s.groupOf(account, name)
		if g == nil {
			return nil
		}
		var d subscriptionDef
		if err := json.Unmarshal(raw, &d); err != nil {
			return err
		}
		sub, err := s.newSubscription(g, d)
		if err != nil {
			return fmt.Errorf("subscription filter %s of %s: %w", d.FilterName, g.id.Name, err)
		}
		g.subs = append(g.subs, sub)
		return nil
	})
	if err != nil {
		return err
	}
	err = s.list(kv.StateMetricFilter, "", func(account, name string, raw []byte) error {
		g := s.groupOf(account, name)
		if g == nil {
			return nil
		}
		var d metricFilterDef
		if err := json.Unmarshal(raw, &d); err != nil {
			return err
		}
		mf, err := newMetricFilter(g, d)
		if err != nil {
			return fmt.Errorf("metric filter %s of %s: %w", d.FilterName, g.id.Name, err)
		}
		values := map[string]*metricValue{}
		if _, err := s.get(kv.StateMetricValues, account, name, &values); err != nil {
			return err
		}
		mf.values = values
		g.metrics = append(g.metrics, mf)
		return nil
	})
	if err != nil {
		return err
	}
	for _, g := range s.groups {
		sort.Slice(g.subs, func(i, j int) bool { return g.subs[i].def.FilterName < g.subs[j].def.FilterName })
		sort.Slice(g.metrics, func(i, j int) bool { return g.metrics[i].def.FilterName < g.metrics[j].def.FilterName })
	}
	_, err = s.get(kv.StateLogSeq, "", "", &s.seq)
	return err
}

// groupOf finds the group of a state name "region:group[:rest]".
func (s *Service) groupOf(account, name string) *group {
	region, rest, _ := strings.Cut(name, ":")
	gname, _, _ := strings.Cut(rest, ":")
	return s.groups[groupID{account, region, gname}]
}

// ---- control-plane persistence ----

func (s *Service) get(kind, account, name string, v any) (bool, error) {
	raw, closer, err := s.db.Get(kv.StateKey(kind, account, name))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	return true, json.Unmarshal(raw, v)
}

func setState(b *pebble.Batch, kind, account, name string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Set(kv.StateKey(kind, account, name), raw, nil)
}

// list calls fn for every stored object of kind ("" account: all accounts).
func (s *Service) list(kind, account string, fn func(account, name string, raw []byte) error) error {
	p := kv.StatePrefix(kind, account)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: kv.PrefixUpper(p)})
	if err != nil {
		return err
	}
	defer it.Close()
	base := len(kv.StatePrefix(kind, ""))
	for ok := it.First(); ok; ok = it.Next() {
		acct, rest, ok := readStr(it.Key()[base:])
		if !ok {
			continue
		}
		name, _, ok := readStr(rest)
		if !ok {
			continue
		}
		if err := fn(acct, name, it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}

// readStr reads one length-prefixed string as kv writes them.
func readStr(b []byte) (string, []byte, bool) {
	n, w := uvarint(b)
	if w <= 0 || uint64(len(b)-w) < n {
		return "", nil, false
	}
	return string(b[w : w+int(n)]), b[w+int(n):], true
}

// commitLocked commits b durably (sync) or not, and tells waiters about the
// change; an API call's writes go into its transaction (kv.Txn), and waiters
// hear of them once they are durable. The caller holds s.mu (for a call, with
// kv.Hold, so s.mu is still held when the waiters are told).
func (s *Service) commitLocked(ctx context.Context, b *pebble.Batch, sync bool) error {
	if err := kv.Commit(ctx, b, sync); err != nil {
		return err
	}
	kv.AfterCommit(ctx, func() {
		close(s.changed)
		s.changed = make(chan struct{})
	})
	return nil
}

// writeLocked fills a new batch and commits it durably. The caller holds s.mu.
func (s *Service) writeLocked(ctx context.Context, fill func(b *pebble.Batch) error) error {
	b := s.db.NewBatch()
	defer b.Close()
	if err := fill(b); err != nil {
		return err
	}
	return s.commitLocked(ctx, b, true)
}

// deleteLocked durably deletes keys and every key under prefixes. The caller holds s.mu.
func (s *Service) deleteLocked(ctx context.Context, keys, prefixes [][]byte) error {
	return s.writeLocked(ctx, func(b *pebble.Batch) error {
		for _, p := range prefixes {
			if err := b.DeleteRange(p, kv.PrefixUpper(p), nil); err != nil {
				return err
			}
		}
		for _, k := range keys {
			if err := b.Delete(k, nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// withGroup decodes body into in, then runs fn with the caller's log group
// named *name (a field of in) while holding s.mu.
func (s *Service) withGroup(ctx context.Context, c auth.Caller, body []byte, in any, name *string, fn func(g *group) (any, error)) (any, error) {
	if err := decode(body, in); err != nil {
		return nil, err
	}
	defer kv.Hold(ctx, &s.mu)()
	g, err := s.lookupGroupLocked(c, *name, "")
	if err != nil {
		return nil, err
	}
	return fn(g)
}

// startSenders starts every subscription filter's sender.
func (s *Service) startSenders() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.groups {
		for _, sub := range g.subs {
			s.startSender(sub)
		}
	}
}

// Reload re-reads the log groups from the database. The server calls it when
// an API call's changes could not be committed with its audit record: the
// call may have changed the groups in memory, and the database is the truth.
func (s *Service) Reload() error {
	s.mu.Lock()
	for _, g := range s.groups {
		for _, sub := range g.subs {
			s.stopSenderLocked(sub)
		}
	}
	clear(s.groups)
	s.mu.Unlock()
	if err := s.load(); err != nil {
		return fmt.Errorf("logs: reload: %w", err)
	}
	s.startSenders()
	return nil
}

// Changed returns a channel that is closed at the next write to any log group.
func (s *Service) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// ---- errors and names ----

// apiErr is a CloudWatch Logs client error: always HTTP 400, as the service answers.
func apiErr(code, format string, args ...any) *awsapi.Error {
	return &awsapi.Error{Code: code, Message: fmt.Sprintf(format, args...), Status: http.StatusBadRequest}
}

func errNoGroup() error {
	return apiErr("ResourceNotFoundException", "The specified log group does not exist.")
}

func errNoStream() error {
	return apiErr("ResourceNotFoundException", "The specified log stream does not exist.")
}

func (s *Service) groupARN(id groupID) string {
	return fmt.Sprintf("arn:%s:logs:%s:%s:log-group:%s", s.o.Partition, id.Region, id.Account, id.Name)
}

// lookupGroupLocked resolves a request's group by name or identifier (name or ARN).
func (s *Service) lookupGroupLocked(c auth.Caller, name, identifier string) (*group, error) {
	switch {
	case name != "" && identifier != "":
		return nil, apiErr("InvalidParameterException", "LogGroup name and LogGroup identifier are mutually exclusive parameters.")
	case name == "" && identifier == "":
		return nil, apiErr("InvalidParameterException", "Either LogGroup name or LogGroup identifier must be specified.")
	case identifier != "":
		id, ok := parseGroupARN(identifier)
		switch {
		case !ok:
			name = identifier
		case id.Account != c.Account || id.Region != c.Region:
			return nil, errNoGroup()
		default:
			name = id.Name
		}
	}
	g := s.groups[groupID{c.Account, c.Region, name}]
	if g == nil {
		return nil, errNoGroup()
	}
	return g, nil
}

// parseGroupARN parses arn:<partition>:logs:<region>:<account>:log-group:<name>[:*].
func parseGroupARN(arn string) (groupID, bool) {
	parts := strings.SplitN(arn, ":", 7)
	if len(parts) != 7 || parts[0] != "arn" || parts[2] != "logs" || !strings.HasPrefix(parts[5], "log-group") {
		return groupID{}, false
	}
	_, name, ok := strings.Cut(parts[5]+":"+parts[6], "log-group:")
	if !ok {
		return groupID{}, false
	}
	name = strings.TrimSuffix(name, ":*")
	if name == "" || strings.ContainsAny(name, ":*") || parts[3] == "" || parts[4] == "" {
		return groupID{}, false
	}
	return groupID{Account: parts[4], Region: parts[3], Name: name}, true
}

func millis(t time.Time) int64 { return t.UnixMilli() }

// compile parses a filter pattern, answering AWS's error for a bad one.
func compile(pattern string) (*filterpattern.Pattern, error) {
	p, err := filterpattern.Parse(pattern)
	if err != nil {
		return nil, apiErr("InvalidParameterException", "Invalid filter pattern: %v", err)
	}
	return p, nil
}
