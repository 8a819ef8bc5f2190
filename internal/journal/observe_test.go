package journal

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/opentrail/opentrail/internal/kv"
)

// TestObserver: every group commit is reported with the new entries it made
// durable (duplicates not counted) and its timings, for the metrics.
func TestObserver(t *testing.T) {
	db, err := kv.Open(t.TempDir(), kv.Options{CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	j, err := Open(db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var mu sync.Mutex
	var got []CommitStats
	j.SetObserver(func(st CommitStats) { mu.Lock(); got = append(got, st); mu.Unlock() })
	id := kv.EventIDKey("123456789012", "e1")
	for _, entries := range [][]Entry{{{ID: id, Value: []byte("a")}, {Value: []byte("b")}}, {{ID: id, Value: []byte("a")}}} {
		if _, err := j.Append(context.Background(), entries); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Entries != 2 || got[1].Entries != 0 || got[0].Err != nil {
		t.Fatalf("observed %+v", got)
	}
	if got[0].Sync <= 0 || got[0].Duration < got[0].Sync || got[0].Bytes == 0 {
		t.Fatalf("timings and size not observed: %+v", got[0])
	}
}
