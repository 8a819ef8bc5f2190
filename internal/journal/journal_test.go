package journal

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/kv"
)

func open(t testing.TB, dir string) (*pebble.DB, *Journal) {
	t.Helper()
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	j, err := Open(db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return db, j
}

func TestAppendConcurrentDedupReopen(t *testing.T) {
	dir := t.TempDir()
	db, j := open(t, dir)
	ctx := context.Background()
	const producers, perProducer = 8, 200
	var wg sync.WaitGroup
	seqs := make(chan uint64, producers*perProducer*2)
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perProducer {
				// Every record is sent twice; the second must be a duplicate of the first.
				id := kv.EventIDKey("123456789012", fmt.Sprintf("p%d-%d", p, i))
				e := []Entry{{ID: id, Value: []byte(fmt.Sprintf("v%d-%d", p, i))}, {ID: id, Value: []byte("again")}}
				res, err := j.Append(ctx, e)
				if err != nil {
					t.Error(err)
					return
				}
				if res[0].Duplicate || !res[1].Duplicate || res[0].Seq != res[1].Seq {
					t.Errorf("results %+v", res)
				}
				seqs <- res[0].Seq
				res2, err := j.Append(ctx, e[:1])
				if err != nil || !res2[0].Duplicate || res2[0].Seq != res[0].Seq {
					t.Errorf("re-sent append: %+v %v", res2, err)
				}
			}
		}()
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for s := range seqs {
		if seen[s] {
			t.Fatalf("seq %d assigned twice", s)
		}
		seen[s] = true
	}
	if got := j.Last(); got != producers*perProducer {
		t.Fatalf("Last = %d, want %d", got, producers*perProducer)
	}
	var prev uint64
	n := 0
	next, err := j.Scan(1, 0, func(seq uint64, v []byte) error {
		if seq != prev+1 {
			return fmt.Errorf("gap: %d after %d", seq, prev)
		}
		prev, n = seq, n+1
		return nil
	})
	if err != nil || n != producers*perProducer || next != uint64(n)+1 {
		t.Fatalf("scan: n=%d next=%d err=%v", n, next, err)
	}

	b := db.NewBatch()
	if err := SetCursor(b, "store", 42); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	j.Close()
	db.Close()

	db, j = open(t, dir)
	defer db.Close()
	defer j.Close()
	if got := j.Last(); got != producers*perProducer {
		t.Fatalf("after reopen Last = %d", got)
	}
	if c, _ := j.Cursor("store"); c != 42 {
		t.Fatalf("cursor = %d", c)
	}
	if c, _ := j.Cursor("new"); c != 1 {
		t.Fatalf("new cursor = %d", c)
	}
	res, err := j.Append(ctx, []Entry{{ID: kv.EventIDKey("123456789012", "p0-0"), Value: []byte("x")}})
	if err != nil || !res[0].Duplicate {
		t.Fatalf("dedup lost across reopen: %+v %v", res, err)
	}
	v, ok, err := j.Get(res[0].Seq)
	if err != nil || !ok || string(v) != "v0-0" {
		t.Fatalf("Get = %q %v %v", v, ok, err)
	}
}

func TestWaitAndClose(t *testing.T) {
	db, j := open(t, t.TempDir())
	defer db.Close()
	ctx := context.Background()
	got := make(chan error, 1)
	go func() { got <- j.Wait(ctx, 0) }()
	if _, err := j.Append(ctx, []Entry{{Value: []byte("a")}}); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	j.Close()
	if _, err := j.Append(ctx, []Entry{{Value: []byte("b")}}); err != ErrClosed {
		t.Fatalf("append after close: %v", err)
	}
}

func BenchmarkAppend(b *testing.B) {
	db, j := open(b, b.TempDir())
	defer db.Close()
	defer j.Close()
	val := make([]byte, 1500)
	b.SetBytes(int64(len(val)) * 100)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			batch := make([]Entry, 100)
			for k := range batch {
				i++
				batch[k] = Entry{ID: kv.EventIDKey("123456789012", fmt.Sprintf("%p-%d", pb, i)), Value: val}
			}
			if _, err := j.Append(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
		}
	})
}
