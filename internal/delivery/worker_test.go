package delivery

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/cloudtrail"
	"github.com/opentrail/opentrail/internal/digest"
	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/objstore"
)

// memStore is an in-memory objstore.Store that can be made to fail.
type memStore struct {
	mu      sync.Mutex
	objects map[string]map[string][]byte // bucket → key → body
	meta    map[string]map[string]string // bucket + "/" + key → metadata
	fail    error
}

func newMemStore(buckets ...string) *memStore {
	m := &memStore{objects: map[string]map[string][]byte{}, meta: map[string]map[string]string{}}
	for _, b := range buckets {
		m.objects[b] = map[string][]byte{}
	}
	return m
}

func (m *memStore) Bucket(_ context.Context, name string) (objstore.Bucket, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	if _, ok := m.objects[name]; !ok {
		return nil, objstore.ErrNotFound
	}
	return &memBucket{m, name}, nil
}

func (m *memStore) CreateBucket(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.objects[name] == nil {
		m.objects[name] = map[string][]byte{}
	}
	return nil
}

func (m *memStore) setFail(err error) { m.mu.Lock(); m.fail = err; m.mu.Unlock() }

type memBucket struct {
	m    *memStore
	name string
}

func (b *memBucket) Name() string { return b.name }
func (b *memBucket) Put(_ context.Context, key string, body []byte, meta map[string]string) error {
	b.m.mu.Lock()
	defer b.m.mu.Unlock()
	if b.m.fail != nil {
		return b.m.fail
	}
	b.m.objects[b.name][key] = bytes.Clone(body)
	b.m.meta[b.name+"/"+key] = meta
	return nil
}
func (b *memBucket) Get(_ context.Context, key string) ([]byte, map[string]string, error) {
	b.m.mu.Lock()
	defer b.m.mu.Unlock()
	v, ok := b.m.objects[b.name][key]
	if !ok {
		return nil, nil, objstore.ErrNotFound
	}
	return v, b.m.meta[b.name+"/"+key], nil
}
func (b *memBucket) Head(ctx context.Context, key string) (objstore.Object, map[string]string, error) {
	v, meta, err := b.Get(ctx, key)
	return objstore.Object{Key: key, Size: int64(len(v))}, meta, err
}
func (b *memBucket) List(_ context.Context, prefix, after string, max int) ([]objstore.Object, error) {
	b.m.mu.Lock()
	defer b.m.mu.Unlock()
	var out []objstore.Object
	for k, v := range b.m.objects[b.name] {
		if strings.HasPrefix(k, prefix) && k > after {
			out = append(out, objstore.Object{Key: k, Size: int64(len(v))})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return out, nil
}
func (b *memBucket) Delete(_ context.Context, key string) error {
	b.m.mu.Lock()
	defer b.m.mu.Unlock()
	delete(b.m.objects[b.name], key)
	return nil
}

// delivered returns every record in every log file of bucket, by eventID, and the keys.
func (m *memStore) delivered(t *testing.T, bucket string) (map[string]int, []string) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := map[string]int{}
	var keys []string
	for k, v := range m.objects[bucket] {
		if !strings.Contains(k, "/CloudTrail/") && !strings.Contains(k, "/CloudTrail-Insight/") {
			continue
		}
		keys = append(keys, k)
		zr, err := gzip.NewReader(bytes.NewReader(v))
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		zr.Multistream(false)
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		var f struct{ Records []struct{ EventID string } }
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatalf("%s is not a log file: %v", k, err)
		}
		if len(f.Records) == 0 {
			t.Fatalf("%s is empty", k)
		}
		for _, r := range f.Records {
			ids[r.EventID]++
		}
	}
	sort.Strings(keys)
	return ids, keys
}

type rig struct {
	t         *testing.T
	dir       string
	db        *pebble.DB
	j         *journal.Journal
	ct        *cloudtrail.Service
	w         *Worker
	store     *memStore
	now       time.Time
	nowMu     sync.Mutex
	configure []func(*rig, *Options)
}

func (r *rig) clock() time.Time { r.nowMu.Lock(); defer r.nowMu.Unlock(); return r.now }
func (r *rig) advance(d time.Duration) {
	r.nowMu.Lock()
	r.now = r.now.Add(d)
	r.nowMu.Unlock()
}

// newRig starts a worker; configure adjusts its options (e.g. a Digester) before it starts.
func newRig(t *testing.T, store *memStore, configure ...func(*rig, *Options)) *rig {
	r := &rig{t: t, dir: t.TempDir(), store: store, now: time.Now(), configure: configure}
	r.open()
	return r
}

func (r *rig) open() {
	t := r.t
	db, err := kv.Open(r.dir, kv.Options{CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	j, err := journal.Open(db, log)
	if err != nil {
		t.Fatal(err)
	}
	r.db, r.j = db, j
	r.ct = cloudtrail.New(db, nil, nil, log, cloudtrail.Options{})
	o := Options{Interval: time.Minute, Now: r.clock}
	for _, f := range r.configure {
		f(r, &o)
	}
	r.w = New(db, j, r.ct, r.store, log, o)
	if err := r.w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) close() { r.w.Close(); r.j.Close(); r.db.Close() }

func (r *rig) call(region, op, body string) any {
	r.t.Helper()
	out, err := r.ct.Handle(context.Background(), auth.Caller{Account: "123456789012", Region: region, Root: true}, op, []byte(body))
	if err != nil {
		r.t.Fatalf("%s: %v", op, err)
	}
	r.w.Kick()
	return out
}

// ingest appends records (JSON with %d for a counter) for ids [from, to).
func (r *rig) ingest(region string, from, to int, tmpl string) {
	r.t.Helper()
	var entries []journal.Entry
	for i := from; i < to; i++ {
		rec, err := event.Normalize([]byte(fmt.Sprintf(tmpl, i)), event.Defaults{Account: "123456789012", Region: region, Now: r.clock()})
		if err != nil {
			r.t.Fatal(err)
		}
		entries = append(entries, journal.Entry{ID: kv.EventIDKey(rec.Meta.Account, rec.Meta.EventID), Value: event.Encode(nil, &rec)})
	}
	if _, err := r.j.Append(context.Background(), entries); err != nil {
		r.t.Fatal(err)
	}
}

// waitFor polls cond for up to 5 s of real time, moving the worker's clock on
// by a second each time, so that intervals and backoffs elapse.
func (r *rig) waitFor(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s", what)
		}
		r.advance(time.Second)
		time.Sleep(20 * time.Millisecond)
	}
}

const mgmt = `{"eventID":"m-%d","eventTime":"2024-01-01T00:00:00Z","eventName":"PutObject","eventSource":"s3.amazonaws.com","readOnly":false}`

func TestDeliversSelectedEventsOnce(t *testing.T) {
	store := newMemStore("trail-bucket")
	r := newRig(t, store)
	defer func() { r.close() }()
	r.call("us-east-1", "CreateTrail", `{"Name":"trail-1","S3BucketName":"trail-bucket","S3KeyPrefix":"pfx"}`)
	r.ingest("us-east-1", 0, 10, mgmt) // before StartLogging: not delivered
	r.advance(time.Second)
	r.call("us-east-1", "StartLogging", `{"Name":"trail-1"}`)
	r.advance(time.Second)
	r.ingest("us-east-1", 10, 50, mgmt)
	r.ingest("eu-west-1", 50, 60, mgmt) // not a multi-region trail: not delivered
	r.ingest("us-east-1", 60, 70, `{"eventID":"d-%d","eventTime":"2024-01-01T00:00:00Z","eventCategory":"Data","managementEvent":false,"eventName":"GetObject","resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::b/k"}]}`)
	time.Sleep(300 * time.Millisecond)
	if ids, _ := store.delivered(t, "trail-bucket"); len(ids) != 0 {
		t.Fatalf("a file was written before its interval closed: %v", ids)
	}
	r.advance(time.Minute)
	r.waitFor("the first file", func() bool { ids, _ := store.delivered(t, "trail-bucket"); return len(ids) == 40 })
	ids, keys := store.delivered(t, "trail-bucket")
	for i := 10; i < 50; i++ {
		if ids[fmt.Sprintf("m-%d", i)] != 1 {
			t.Fatalf("m-%d delivered %d times", i, ids[fmt.Sprintf("m-%d", i)])
		}
	}
	if len(keys) != 1 || !strings.HasPrefix(keys[0], "pfx/AWSLogs/123456789012/CloudTrail/us-east-1/") || !strings.HasSuffix(keys[0], ".json.gz") {
		t.Fatalf("keys: %v", keys)
	}
	st := r.call("us-east-1", "GetTrailStatus", `{"Name":"trail-1"}`)
	b, _ := json.Marshal(st)
	if !strings.Contains(string(b), `"LatestDeliveryTime"`) {
		t.Fatalf("status after delivery: %s", b)
	}
}

// TestCrashDuringUploadDeliversOnce: an intent left by a crash is completed
// when its object is in the bucket, and dropped (its events re-read) when not.
func TestCrashDuringUploadDeliversOnce(t *testing.T) {
	for _, landed := range []bool{true, false} {
		t.Run(fmt.Sprintf("object landed %v", landed), func(t *testing.T) {
			store := newMemStore("b1-bucket")
			r := newRig(t, store)
			r.call("us-east-1", "CreateTrail", `{"Name":"trail-1","S3BucketName":"b1-bucket"}`)
			r.call("us-east-1", "StartLogging", `{"Name":"trail-1"}`)
			r.advance(time.Second)
			r.ingest("us-east-1", 0, 20, mgmt)
			r.waitFor("buffered", func() bool { return r.j.Last() == 20 })
			time.Sleep(300 * time.Millisecond)
			r.close()

			// Simulate the crash window by hand: the intent is saved, the upload happened (or not), nothing more.
			r.open()
			r.w.Close() // drive the stream by hand
			tc, _ := r.ct.Trails(context.Background())
			r.w.configs = tc
			if _, err := r.w.readAll(); err != nil {
				t.Fatal(err)
			}
			s := r.w.streams[streamID{Account: "123456789012", HomeRegion: "us-east-1", Trail: "trail-1", Region: "us-east-1"}]
			raw := s.buf.file()
			gz, _ := gzipBytes(raw)
			rec := fileRecord{Bucket: "b1-bucket", Key: logFileKey("", "123456789012", "us-east-1", r.clock(), false), ToSeq: s.buf.lastSeq, Events: s.buf.n}
			s.state.Intent = &rec
			if err := r.w.saveState(s); err != nil {
				t.Fatal(err)
			}
			if landed {
				store.objects["b1-bucket"][rec.Key] = gz
			}
			r.close()

			r.open()
			defer r.close()
			r.advance(2 * time.Minute)
			r.ingest("us-east-1", 20, 25, mgmt)
			r.advance(2 * time.Minute)
			r.waitFor("all 25 delivered", func() bool {
				r.advance(time.Minute)
				ids, _ := store.delivered(t, "b1-bucket")
				return len(ids) == 25
			})
			ids, _ := store.delivered(t, "b1-bucket")
			for id, n := range ids {
				if n != 1 {
					t.Fatalf("%s delivered %d times", id, n)
				}
			}
		})
	}
}

// TestFailingBucketRetriesAndCatchesUp: a failing bucket never loses events;
// delivery resumes when it is back, and the status shows the error meanwhile.
func TestFailingBucketRetriesAndCatchesUp(t *testing.T) {
	store := newMemStore("flaky-bucket")
	// Small files, so that the buffer fills while the bucket is down.
	r := newRig(t, store, func(_ *rig, o *Options) { o.MaxFileBytes = 4 << 10 })
	defer r.close()
	r.call("us-east-1", "CreateTrail", `{"Name":"trail-1","S3BucketName":"flaky-bucket"}`)
	r.call("us-east-1", "StartLogging", `{"Name":"trail-1"}`)
	r.advance(time.Second)
	store.setFail(errors.New("SlowDown: the bucket is unavailable"))
	r.ingest("us-east-1", 0, 200, mgmt)
	r.advance(2 * time.Minute)
	r.waitFor("the error in the trail status", func() bool {
		b, _ := json.Marshal(r.call("us-east-1", "GetTrailStatus", `{"Name":"trail-1"}`))
		return strings.Contains(string(b), "SlowDown")
	})
	store.setFail(nil)
	for range 40 { // backoff is capped; move the clock past it
		r.advance(time.Minute)
		if ids, _ := store.delivered(t, "flaky-bucket"); len(ids) == 200 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	ids, keys := store.delivered(t, "flaky-bucket")
	if len(ids) != 200 {
		t.Fatalf("delivered %d of 200 events after the bucket came back", len(ids))
	}
	for id, n := range ids {
		if n != 1 {
			t.Fatalf("%s delivered %d times", id, n)
		}
	}
	if len(keys) < 10 {
		t.Fatalf("size bound not honoured: %d files", len(keys))
	}
}

// TestSNSNotification: each delivered file is announced to the trail's topic in
// the SNS HTTP format; a failing endpoint shows in the status and is retried.
func TestSNSNotification(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]string
	failing := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var m map[string]string
		json.NewDecoder(req.Body).Decode(&m)
		m["header-type"] = req.Header.Get("x-amz-sns-message-type")
		got = append(got, m)
	}))
	defer srv.Close()
	store := newMemStore("sns-bucket")
	var n *Notifier
	r := newRig(t, store, func(r *rig, o *Options) {
		n = NewNotifier(r.db, r.ct, map[string]string{"trail-topic": srv.URL}, slog.New(slog.DiscardHandler))
		o.Notify = n
	})
	defer r.close()
	n.Start(context.Background())
	defer n.Close()
	r.call("us-east-1", "CreateTrail", `{"Name":"trail-1","S3BucketName":"sns-bucket","SnsTopicName":"trail-topic"}`)
	r.call("us-east-1", "StartLogging", `{"Name":"trail-1"}`)
	r.advance(time.Second)
	r.ingest("us-east-1", 0, 5, mgmt)
	r.advance(2 * time.Minute)
	r.waitFor("the failure in the status", func() bool {
		b, _ := json.Marshal(r.call("us-east-1", "GetTrailStatus", `{"Name":"trail-1"}`))
		return strings.Contains(string(b), "HTTP 503")
	})
	mu.Lock()
	failing = false
	mu.Unlock()
	r.waitFor("the notification", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
	_, keys := store.delivered(t, "sns-bucket")
	m := got[0]
	if m["Type"] != "Notification" || m["header-type"] != "Notification" || m["TopicArn"] != "arn:aws:sns:us-east-1:123456789012:trail-topic" ||
		m["Message"] != fmt.Sprintf(`{"s3Bucket":"sns-bucket","s3ObjectKey":[%q]}`, keys[0]) {
		t.Fatalf("notification: %v", m)
	}
}

// TestDigestChainAndFinalDigest: digests chain every interval, even with no
// log files; StopLogging writes a final digest, and the next logging period
// starts a new chain; the whole range validates.
func TestDigestChainAndFinalDigest(t *testing.T) {
	store := newMemStore("dg-bucket")
	ring, err := digest.OpenKeyRing(digest.FileKeyStore(filepath.Join(t.TempDir(), "keys.json")), 0)
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, store, func(_ *rig, o *Options) { o.Digests = NewDigester(ring, 10*time.Minute) })
	defer r.close()
	start := r.clock().Add(-time.Minute)
	r.call("us-east-1", "CreateTrail", `{"Name":"trail-1","S3BucketName":"dg-bucket","EnableLogFileValidation":true}`)
	r.call("us-east-1", "StartLogging", `{"Name":"trail-1"}`)
	r.advance(time.Second)
	r.ingest("us-east-1", 0, 10, mgmt)
	digests := func() []string {
		b, _ := store.Bucket(context.Background(), "dg-bucket")
		objs, _ := b.List(context.Background(), "AWSLogs/123456789012/CloudTrail-Digest/", "", 0)
		var keys []string
		for _, o := range objs {
			keys = append(keys, o.Key)
		}
		return keys
	}
	r.waitFor("two digests", func() bool { r.advance(2 * time.Minute); return len(digests()) >= 2 })
	r.call("us-east-1", "StopLogging", `{"Name":"trail-1"}`)
	n := len(digests())
	r.waitFor("the final digest", func() bool { return len(digests()) == n+1 })
	final := digests()[len(digests())-1]
	time.Sleep(300 * time.Millisecond)
	r.advance(time.Hour)
	time.Sleep(300 * time.Millisecond)
	if got := digests(); got[len(got)-1] != final {
		t.Fatalf("a digest was written after StopLogging: %v", got)
	}
	b, _ := store.Bucket(context.Background(), "dg-bucket")
	rep, err := digest.Validate(context.Background(), digest.ValidateOptions{
		TrailARN: "arn:aws:cloudtrail:us-east-1:123456789012:trail/trail-1", Bucket: b, Buckets: store.Bucket,
		Start: start, End: r.clock(),
		PublicKeys: func(_ context.Context, region string, s, e time.Time) ([]digest.PublicKey, error) {
			return ring.PublicKeys(region, s, e), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Valid() || rep.ValidLogs != 1 {
		var out strings.Builder
		rep.Print(&out, &out)
		t.Fatalf("chain not valid:\n%s", out.String())
	}
}

// TestInsightFiles: insight events go to CloudTrail-Insight files of trails
// with insight selectors, and to no other trail.
func TestInsightFiles(t *testing.T) {
	store := newMemStore("ins-bucket", "plain-bucket")
	r := newRig(t, store)
	defer r.close()
	r.call("us-east-1", "CreateTrail", `{"Name":"with-insights","S3BucketName":"ins-bucket"}`)
	r.call("us-east-1", "PutInsightSelectors", `{"TrailName":"with-insights","InsightSelectors":[{"InsightType":"ApiCallRateInsight"}]}`)
	r.call("us-east-1", "StartLogging", `{"Name":"with-insights"}`)
	r.call("us-east-1", "CreateTrail", `{"Name":"plain","S3BucketName":"plain-bucket"}`)
	r.call("us-east-1", "StartLogging", `{"Name":"plain"}`)
	r.advance(time.Second)
	r.ingest("us-east-1", 0, 2, `{"eventID":"ins-%d","eventTime":"2024-01-01T00:00:00Z","eventType":"AwsCloudTrailInsight","insightDetails":{"state":"Start","eventSource":"s3.amazonaws.com","eventName":"PutObject","insightType":"ApiCallRateInsight"}}`)
	r.ingest("us-east-1", 0, 3, mgmt)
	r.waitFor("both files in the insights trail", func() bool { ids, _ := store.delivered(t, "ins-bucket"); return len(ids) == 5 })
	_, keys := store.delivered(t, "ins-bucket")
	var insightKeys int
	for _, k := range keys {
		if strings.HasPrefix(k, "AWSLogs/123456789012/CloudTrail-Insight/us-east-1/") && strings.Contains(k, "_CloudTrail-Insight_us-east-1_") {
			insightKeys++
		}
	}
	if insightKeys != 1 {
		t.Fatalf("insight files: %v", keys)
	}
	r.waitFor("the plain trail's file", func() bool { ids, _ := store.delivered(t, "plain-bucket"); return len(ids) == 3 })
	if ids, _ := store.delivered(t, "plain-bucket"); ids["ins-0"] != 0 {
		t.Fatal("an insight event went to a trail without insight selectors")
	}
}
