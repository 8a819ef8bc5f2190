// Package objstoretest is the contract every objstore backend keeps: one suite, run against
// each backend by its own test (FS on a temporary folder, S3 against versitygw), so that trails
// behave the same whichever holds their bucket.
package objstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/objstore"
)

// A CloudTrail log file key and digest key, as trails write them.
const (
	logKey    = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/02/123456789012_CloudTrail_us-east-1_20240102T0305Z_AbCdEfGhIjKlMnOp.json.gz"
	digestKey = "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/01/02/123456789012_CloudTrail-Digest_us-east-1_main_us-east-1_20240102T030500Z.json.gz"
)

// Run runs the contract against stores made by newStore. Each subtest calls newStore once and
// uses bucket names of its own, so newStore may hand out one shared store.
func Run(t *testing.T, newStore func(t *testing.T) objstore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s objstore.Store)
	}{
		{"Buckets", testBuckets},
		{"RoundTrip", testRoundTrip},
		{"Overwrite", testOverwrite},
		{"Missing", testMissing},
		{"ListOrder", testListOrder},
		{"ListPrefixStartAfterMax", testListPrefixStartAfterMax},
		{"ListPaging", testListPaging},
		{"Delete", testDelete},
		{"CloudTrailKeys", testCloudTrailKeys},
		{"ConcurrentPuts", testConcurrentPuts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

var bucketSeq struct {
	sync.Mutex
	n int
}

// newBucket creates a bucket whose name no other subtest uses.
func newBucket(t *testing.T, s objstore.Store) objstore.Bucket {
	t.Helper()
	bucketSeq.Lock()
	bucketSeq.n++
	name := fmt.Sprintf("contract-%d-%d", time.Now().UnixNano()%1e9, bucketSeq.n)
	bucketSeq.Unlock()
	ctx := context.Background()
	if err := s.CreateBucket(ctx, name); err != nil {
		t.Fatalf("CreateBucket(%q): %v", name, err)
	}
	b, err := s.Bucket(ctx, name)
	if err != nil {
		t.Fatalf("Bucket(%q): %v", name, err)
	}
	if b.Name() != name {
		t.Fatalf("Bucket(%q).Name() = %q", name, b.Name())
	}
	return b
}

func put(t *testing.T, b objstore.Bucket, key string, body []byte, meta map[string]string) {
	t.Helper()
	if err := b.Put(context.Background(), key, body, meta); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func keys(objs []objstore.Object) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.Key
	}
	return out
}

func testBuckets(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	b := newBucket(t, s)
	// Creating it again is fine and keeps its objects.
	put(t, b, "k", []byte("v"), nil)
	if err := s.CreateBucket(ctx, b.Name()); err != nil {
		t.Fatalf("CreateBucket again: %v", err)
	}
	if _, _, err := b.Get(ctx, "k"); err != nil {
		t.Fatalf("Get after CreateBucket again: %v", err)
	}
	for _, name := range []string{"", "ab", "Upper-case", "under_score", "-dash", "dot.", "a..b", "192.168.1.2", strings.Repeat("a", 64)} {
		if err := s.CreateBucket(ctx, name); err == nil {
			t.Errorf("CreateBucket(%q) = nil, want an error", name)
		}
	}
}

func testRoundTrip(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	b := newBucket(t, s)
	body := []byte(`{"Records":[]}`)
	meta := map[string]string{
		"signature":           strings.Repeat("0123456789abcdef", 32), // 512 hex digits, like an RSA-4096 signature
		"signature-algorithm": "SHA256withRSA",
	}
	put(t, b, "a/b.json", body, meta)

	got, gotMeta, err := b.Get(ctx, "a/b.json")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !bytes.Equal(got, body) {
		t.Errorf("Get body = %q, want %q", got, body)
	}
	if !maps.Equal(gotMeta, meta) {
		t.Errorf("Get meta = %v, want %v", gotMeta, meta)
	}

	obj, headMeta, err := b.Head(ctx, "a/b.json")
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	if obj.Key != "a/b.json" || obj.Size != int64(len(body)) {
		t.Errorf("Head = %+v, want key a/b.json, size %d", obj, len(body))
	}
	if d := time.Since(obj.LastModified); d < -time.Minute || d > time.Hour {
		t.Errorf("Head LastModified = %v, not about now", obj.LastModified)
	}
	if !maps.Equal(headMeta, meta) {
		t.Errorf("Head meta = %v, want %v", headMeta, meta)
	}

	// No metadata, empty body.
	put(t, b, "empty", nil, nil)
	got, gotMeta, err = b.Get(ctx, "empty")
	if err != nil || len(got) != 0 || len(gotMeta) != 0 {
		t.Errorf("Get(empty) = %q, %v, %v; want empty, no metadata, nil", got, gotMeta, err)
	}

	// Metadata names come back lower-case.
	put(t, b, "mixed", []byte("x"), map[string]string{"Signature-Algorithm": "SHA256withRSA"})
	if _, m, err := b.Head(ctx, "mixed"); err != nil || m["signature-algorithm"] != "SHA256withRSA" {
		t.Errorf("Head(mixed) meta = %v, %v; want signature-algorithm", m, err)
	}
}

func testOverwrite(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	b := newBucket(t, s)
	put(t, b, "k", []byte("first version"), map[string]string{"signature": "aa", "old": "1"})
	put(t, b, "k", []byte("second"), map[string]string{"signature": "bb"})
	body, meta, err := b.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != "second" || !maps.Equal(meta, map[string]string{"signature": "bb"}) {
		t.Errorf("after overwrite Get = %q, %v; want second, signature bb only", body, meta)
	}
	obj, meta, err := b.Head(ctx, "k")
	if err != nil || obj.Size != 6 || meta["signature"] != "bb" {
		t.Errorf("after overwrite Head = %+v, %v, %v", obj, meta, err)
	}
	// Same size, other content and metadata.
	put(t, b, "k", []byte("third!"), map[string]string{"signature": "cc"})
	if body, meta, err := b.Get(ctx, "k"); err != nil || string(body) != "third!" || meta["signature"] != "cc" {
		t.Errorf("after same-size overwrite Get = %q, %v, %v", body, meta, err)
	}
	if _, meta, err := b.Head(ctx, "k"); err != nil || meta["signature"] != "cc" {
		t.Errorf("after same-size overwrite Head meta = %v, %v", meta, err)
	}
	if objs, err := b.List(ctx, "", "", 0); err != nil || len(objs) != 1 {
		t.Errorf("List after overwrites = %v, %v; want one object", keys(objs), err)
	}
}

func testMissing(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	if _, err := s.Bucket(ctx, "missing-bucket-opentrail"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Bucket(missing) error = %v, want ErrNotFound", err)
	}
	b := newBucket(t, s)
	put(t, b, "dir/present", []byte("x"), nil)
	for _, key := range []string{"nope", "dir/nope", "dir", "dir/present/below"} {
		if _, _, err := b.Get(ctx, key); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("Get(%q) error = %v, want ErrNotFound", key, err)
		}
		if _, _, err := b.Head(ctx, key); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("Head(%q) error = %v, want ErrNotFound", key, err)
		}
	}
	if objs, err := b.List(ctx, "nope/", "", 0); err != nil || len(objs) != 0 {
		t.Errorf("List(nope/) = %v, %v; want nothing", keys(objs), err)
	}
}

// listKeys holds keys whose S3 order (bytes of the whole key) differs from a walk that lists
// each folder before its siblings: '-' (0x2d) < '/' (0x2f) < '0' < 'b'.
var listKeys = []string{"a/b", "a-b", "a/c/d", "ab", "a/c-e", "a/c/e/f", "a0", "b", "a/b0"}

// wantOrder is listKeys in S3 order.
var wantOrder = []string{"a-b", "a/b", "a/b0", "a/c-e", "a/c/d", "a/c/e/f", "a0", "ab", "b"}

func testListOrder(t *testing.T, s objstore.Store) {
	b := newBucket(t, s)
	if !slices.IsSorted(wantOrder) {
		t.Fatal("wantOrder is not in byte order")
	}
	for _, k := range listKeys {
		put(t, b, k, []byte(k), nil)
	}
	objs, err := b.List(context.Background(), "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(objs); !slices.Equal(got, wantOrder) {
		t.Errorf("List = %q, want %q", got, wantOrder)
	}
	for _, o := range objs {
		if o.Size != int64(len(o.Key)) {
			t.Errorf("List: %s has size %d, want %d", o.Key, o.Size, len(o.Key))
		}
		if o.LastModified.IsZero() {
			t.Errorf("List: %s has no LastModified", o.Key)
		}
	}
}

func testListPrefixStartAfterMax(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	b := newBucket(t, s)
	stored := wantOrder
	for _, k := range stored {
		put(t, b, k, []byte(k), nil)
	}
	tests := []struct {
		prefix, startAfter string
		max                int
		want               []string
	}{
		{"", "", 0, stored},
		{"a/", "", 0, []string{"a/b", "a/b0", "a/c-e", "a/c/d", "a/c/e/f"}},
		{"a/c", "", 0, []string{"a/c-e", "a/c/d", "a/c/e/f"}},
		{"a/c/", "", 0, []string{"a/c/d", "a/c/e/f"}},
		{"a/c/e/f", "", 0, []string{"a/c/e/f"}},
		{"a", "", 0, []string{"a-b", "a/b", "a/b0", "a/c-e", "a/c/d", "a/c/e/f", "a0", "ab"}},
		{"a/b", "", 0, []string{"a/b", "a/b0"}},
		{"zzz", "", 0, nil},
		{"a/zzz/", "", 0, nil},
		{"", "a/b", 0, []string{"a/b0", "a/c-e", "a/c/d", "a/c/e/f", "a0", "ab", "b"}},
		{"", "a/c", 0, []string{"a/c-e", "a/c/d", "a/c/e/f", "a0", "ab", "b"}},
		{"", "a/c/", 0, []string{"a/c/d", "a/c/e/f", "a0", "ab", "b"}},
		{"", "a/c/d", 0, []string{"a/c/e/f", "a0", "ab", "b"}},
		{"", "a/", 0, []string{"a/b", "a/b0", "a/c-e", "a/c/d", "a/c/e/f", "a0", "ab", "b"}},
		{"", "a.", 0, []string{"a/b", "a/b0", "a/c-e", "a/c/d", "a/c/e/f", "a0", "ab", "b"}},
		{"", "b", 0, nil},
		{"", "", 3, []string{"a-b", "a/b", "a/b0"}},
		{"", "", 100, stored},
		{"a/", "a/b0", 2, []string{"a/c-e", "a/c/d"}},
		{"a/c", "a/c/d", 1, []string{"a/c/e/f"}},
		{"a/", "b", 0, nil},
		{"b", "a", 0, []string{"b"}},
	}
	for _, tt := range tests {
		objs, err := b.List(ctx, tt.prefix, tt.startAfter, tt.max)
		if err != nil {
			t.Errorf("List(%q, %q, %d): %v", tt.prefix, tt.startAfter, tt.max, err)
			continue
		}
		if got := keys(objs); !slices.Equal(got, tt.want) {
			t.Errorf("List(%q, %q, %d) = %q, want %q", tt.prefix, tt.startAfter, tt.max, got, tt.want)
		}
	}
}

// testListPaging lists more keys than one S3 page (1000) holds.
func testListPaging(t *testing.T, s objstore.Store) {
	if testing.Short() {
		t.Skip("-short")
	}
	ctx := context.Background()
	b := newBucket(t, s)
	const n = 1005
	want := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range n {
		want[i] = fmt.Sprintf("p/%02d/%04d", i%7, i)
		wg.Add(1)
		sem <- struct{}{}
		go func(k string) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := b.Put(ctx, k, []byte("x"), nil); err != nil {
				errs <- err
			}
		}(want[i])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	slices.Sort(want)
	objs, err := b.List(ctx, "p/", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(objs); !slices.Equal(got, want) {
		t.Errorf("List all: %d keys, want %d in order", len(got), len(want))
	}
	objs, err = b.List(ctx, "p/", want[2], 1001)
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(objs); !slices.Equal(got, want[3:1004]) {
		t.Errorf("List max 1001 after %s: %d keys, want %d from %s", want[2], len(got), 1001, want[3])
	}
}

func testDelete(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	b := newBucket(t, s)
	put(t, b, "d/1", []byte("1"), map[string]string{"signature": "aa"})
	put(t, b, "d/2", []byte("2"), nil)
	if err := b.Delete(ctx, "d/1"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, _, err := b.Get(ctx, "d/1"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Get after Delete error = %v, want ErrNotFound", err)
	}
	if _, _, err := b.Head(ctx, "d/1"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Head after Delete error = %v, want ErrNotFound", err)
	}
	if objs, err := b.List(ctx, "", "", 0); err != nil || !slices.Equal(keys(objs), []string{"d/2"}) {
		t.Errorf("List after Delete = %q, %v; want [d/2]", keys(objs), err)
	}
	for _, key := range []string{"d/1", "never", "d/never/x"} {
		if err := b.Delete(ctx, key); err != nil {
			t.Errorf("Delete(%q) of a missing object: %v", key, err)
		}
	}
	// Put again after Delete: no stale metadata.
	put(t, b, "d/1", []byte("new"), nil)
	if body, meta, err := b.Get(ctx, "d/1"); err != nil || string(body) != "new" || len(meta) != 0 {
		t.Errorf("Get after re-Put = %q, %v, %v; want new, no metadata", body, meta, err)
	}
}

func testCloudTrailKeys(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	b := newBucket(t, s)
	gz := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0} // gzip of ""
	put(t, b, logKey, gz, nil)
	put(t, b, digestKey, gz, map[string]string{"signature": strings.Repeat("ab", 256), "signature-algorithm": "SHA256withRSA"})
	put(t, b, "AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/03/x.json.gz", gz, nil)

	// Bodies come back byte for byte, not gunzipped on the way.
	for _, k := range []string{logKey, digestKey} {
		body, _, err := b.Get(ctx, k)
		if err != nil {
			t.Fatalf("Get(%s): %v", k, err)
		}
		if !bytes.Equal(body, gz) {
			t.Errorf("Get(%s) = %x, want the gzip bytes %x", k, body, gz)
		}
	}
	objs, err := b.List(ctx, "AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/02/", "", 0)
	if err != nil || !slices.Equal(keys(objs), []string{logKey}) {
		t.Errorf("List of the day = %q, %v; want [%s]", keys(objs), err, logKey)
	}
	// "CloudTrail-Digest/" sorts before "CloudTrail/": '-' < '/'.
	objs, err = b.List(ctx, "AWSLogs/123456789012/", "", 0)
	want := []string{digestKey, logKey, "AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/03/x.json.gz"}
	if err != nil || !slices.Equal(keys(objs), want) {
		t.Errorf("List of the account = %q, %v; want %q", keys(objs), err, want)
	}
	objs, err = b.List(ctx, "AWSLogs/123456789012/CloudTrail/", logKey, 0)
	if err != nil || !slices.Equal(keys(objs), want[2:]) {
		t.Errorf("List after the log file = %q, %v; want %q", keys(objs), err, want[2:])
	}
}

func testConcurrentPuts(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	b := newBucket(t, s)
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*2)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// Distinct keys in shared folders, and all writers on one key.
				k := fmt.Sprintf("c/%d/%02d", i%3, w*each+i)
				if err := b.Put(ctx, k, []byte(k), map[string]string{"signature": k}); err != nil {
					errs <- err
				}
				v := fmt.Sprintf("writer %d put %d", w, i)
				if err := b.Put(ctx, "c/shared", []byte(v), map[string]string{"signature": v}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	objs, err := b.List(ctx, "c/", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != writers*each+1 {
		t.Errorf("List: %d objects, want %d", len(objs), writers*each+1)
	}
	for _, o := range objs {
		body, meta, err := b.Get(ctx, o.Key)
		if err != nil {
			t.Errorf("Get(%s): %v", o.Key, err)
			continue
		}
		// The shared key holds one writer's body with that writer's metadata, never a mix.
		if meta["signature"] != string(body) || (o.Key != "c/shared" && string(body) != o.Key) {
			t.Errorf("Get(%s) = %q with signature %q", o.Key, body, meta["signature"])
		}
	}
}
