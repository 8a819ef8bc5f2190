package outbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/kv"
)

// sink records what Deliver got and fails while fail says so.
type sink struct {
	mu      sync.Mutex
	batches [][]string
	fail    func(batch []Entry) error
}

func (k *sink) deliver(_ context.Context, batch []Entry) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		if err := k.fail(batch); err != nil {
			return err
		}
	}
	var vs []string
	for _, e := range batch {
		vs = append(vs, string(e.Value))
	}
	k.batches = append(k.batches, vs)
	return nil
}

func (k *sink) got() [][]string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([][]string(nil), k.batches...)
}

func openDB(t *testing.T, dir string) *pebble.DB {
	t.Helper()
	db, err := kv.Open(dir, kv.Options{CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func newStream(db *pebble.DB, k *sink, o Options) *Stream {
	o.Name = "test"
	o.Pending, o.Dead = kv.OutboxPrefix(false, "test", "s"), kv.OutboxPrefix(true, "test", "s")
	o.Deliver = k.deliver
	o.Backoff, o.MaxBackoff, o.Idle = time.Millisecond, 4*time.Millisecond, 10*time.Millisecond
	return New(db, o)
}

func appendAll(t *testing.T, db *pebble.DB, s *Stream, vals ...string) {
	t.Helper()
	b := db.NewBatch()
	defer b.Close()
	for _, v := range vals {
		if _, err := s.Append(b, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	s.Wake()
}

func run(t *testing.T, s *Stream) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	return func() { cancel(); <-done }
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestOrderAndBatches: payloads arrive in order, grouped as SameBatch and
// MaxEntries allow, and leave the queue once delivered.
func TestOrderAndBatches(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	k := &sink{}
	s := newStream(db, k, Options{MaxEntries: 2, SameBatch: func(first, e Entry) bool { return first.Value[0] == e.Value[0] }})
	appendAll(t, db, s, "a1", "a2", "a3", "b1", "a4")
	stop := run(t, s)
	defer stop()
	want := fmt.Sprint([][]string{{"a1", "a2"}, {"a3"}, {"b1"}, {"a4"}})
	waitFor(t, "delivery", func() bool { return fmt.Sprint(k.got()) == want })
	waitFor(t, "an empty queue", func() bool { return s.Stats().Pending == 0 })
	if st := s.Stats(); st.Delivered != 5 || st.Failures != 0 || st.DeadLetters != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

// TestDeadLettersAndReplay: a batch that keeps failing becomes a dead letter
// after MaxAttempts, one that fails permanently at once; the stream goes on;
// Replay puts them back in their original places.
func TestDeadLettersAndReplay(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	errPermanent := errors.New("rejected")
	down := true
	k := &sink{}
	k.fail = func(batch []Entry) error {
		switch v := string(batch[0].Value); {
		case v == "perm" && down:
			return errPermanent
		case v == "flaky" && down:
			return errors.New("HTTP 503")
		}
		return nil
	}
	s := newStream(db, k, Options{MaxEntries: 1, MaxAttempts: 3, Permanent: func(err error) bool { return errors.Is(err, errPermanent) }})
	appendAll(t, db, s, "one", "flaky", "perm", "two")
	stop := run(t, s)
	waitFor(t, "the healthy payloads", func() bool { return fmt.Sprint(k.got()) == "[[one] [two]]" })
	waitFor(t, "two dead letters", func() bool { return s.Stats().DeadLetters == 2 })
	st := s.Stats()
	if st.Failures != 4 || st.LastError != "HTTP 503" && st.LastError != "rejected" {
		t.Fatalf("stats = %+v, want 3 failures of flaky and 1 of perm", st)
	}
	dead, err := s.DeadLetters(0)
	if err != nil || len(dead) != 2 || string(dead[0].Value) != "flaky" || string(dead[1].Value) != "perm" || dead[0].Seq != 2 {
		t.Fatalf("DeadLetters = %v, %v", dead, err)
	}
	stop()

	// After a restart Append numbers after the dead letters too, and Replay
	// restores the original order.
	s = newStream(db, k, Options{MaxEntries: 10})
	k.mu.Lock()
	down = false
	k.batches = nil
	k.mu.Unlock()
	appendAll(t, db, s, "three")
	// A replay inside an API call's transaction that is dropped (its audit
	// record failed) moves nothing and counts nothing.
	txn := kv.NewTxn(db)
	if n, err := s.Replay(kv.WithTxn(context.Background(), txn), nil); err != nil || n != 2 {
		t.Fatalf("Replay in a transaction = %d, %v", n, err)
	}
	txn.Close()
	if dead, err := s.DeadLetters(0); err != nil || len(dead) != 2 {
		t.Fatalf("after a dropped replay: %v, %v", dead, err)
	}
	// keep selects which dead letters move; each takes its original place.
	if n, err := s.Replay(context.Background(), func(e Entry) bool { return string(e.Value) == "perm" }); err != nil || n != 1 {
		t.Fatalf("Replay(perm) = %d, %v", n, err)
	}
	if dead, err := s.DeadLetters(0); err != nil || len(dead) != 1 || string(dead[0].Value) != "flaky" {
		t.Fatalf("after replaying perm: %v, %v", dead, err)
	}
	if n, err := s.Replay(context.Background(), nil); err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	stop = run(t, s)
	defer stop()
	waitFor(t, "the replayed payloads", func() bool { return fmt.Sprint(k.got()) == "[[flaky perm three]]" })
	waitFor(t, "no dead letters", func() bool { st := s.Stats(); return st.DeadLetters == 0 && st.Pending == 0 })
}

// TestPutKeepsCallerSeq: Put stores under the caller's sequence numbers
// (subscriptions key entries by log sequence number), and a payload Valid
// refuses is skipped, not delivered.
func TestPutKeepsCallerSeq(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	k := &sink{}
	s := newStream(db, k, Options{Valid: func(v []byte) bool { return string(v) != "bad" }})
	b := db.NewBatch()
	for i, v := range []string{"x", "bad", "y"} {
		if err := s.Put(b, uint64(100+i), []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, closer, err := db.Get(kv.SubscriptionKey(kv.OutboxPrefix(false, "test", "s"), 101)); err != nil {
		t.Fatalf("entry 101: %v", err)
	} else {
		closer.Close()
	}
	stop := run(t, s)
	defer stop()
	waitFor(t, "delivery", func() bool { return fmt.Sprint(k.got()) == "[[x] [y]]" || fmt.Sprint(k.got()) == "[[x y]]" })
}

// TestPartial: a Deliver that sends entries one by one reports how far it
// got; what it sent is never sent again, the entry that failed alone is
// retried or dead-lettered, and the entries after it are delivered in order.
func TestPartial(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	errPermanent := errors.New("rejected")
	var mu sync.Mutex
	var sent []string
	flaky := 2 // failures left for "flaky"
	deliver := func(_ context.Context, batch []Entry) error {
		mu.Lock()
		defer mu.Unlock()
		for i, e := range batch {
			switch v := string(e.Value); {
			case v == "bad":
				return &Partial{N: i, Err: errPermanent}
			case v == "flaky" && flaky > 0:
				flaky--
				return &Partial{N: i, Err: errors.New("HTTP 503")}
			}
			sent = append(sent, string(e.Value))
		}
		return nil
	}
	s := New(db, Options{Name: "test", Pending: kv.OutboxPrefix(false, "test", "p"), Dead: kv.OutboxPrefix(true, "test", "p"),
		Deliver: deliver, MaxEntries: 10, MaxAttempts: 5, Backoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond, Idle: 10 * time.Millisecond,
		Permanent: func(err error) bool { return errors.Is(err, errPermanent) }})
	appendAll(t, db, s, "a", "flaky", "b", "bad", "c")
	stop := run(t, s)
	defer stop()
	waitFor(t, "every payload handled", func() bool { st := s.Stats(); return st.Delivered == 4 && st.DeadLetters == 1 })
	mu.Lock()
	got := fmt.Sprint(sent)
	mu.Unlock()
	if got != "[a flaky b c]" {
		t.Errorf("sent %s, want each once, in order", got)
	}
	dead, err := s.DeadLetters(0)
	if err != nil || len(dead) != 1 || string(dead[0].Value) != "bad" {
		t.Errorf("dead letters %v, %v", dead, err)
	}
	if st := s.Stats(); st.Failures != 3 || st.Pending != 0 {
		t.Errorf("stats = %+v, want 3 failures and nothing pending", st)
	}
}
