package kv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// writeJournal opens a database in dir, writes n synced journal entries and closes it.
func writeJournal(t *testing.T, dir string, from, n int) {
	t.Helper()
	db, err := Open(dir, Options{CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i := from; i < from+n; i++ {
		if err := db.Set(JournalKey(uint64(i)), fmt.Appendf(nil, "record %d %0200d", i, i), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func countJournal(t *testing.T, db *pebble.DB) int {
	t.Helper()
	lo, hi := JournalBounds()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	return n
}

// TestWALCorruptionIsLoud: 64 bytes overwritten in the middle of the newest
// write-ahead log refuse the open, naming the file and what would be lost
// (issue 11 §6: Pebble replayed it as a torn tail and 900 acknowledged records
// were gone); a torn tail still opens; Accept keeps a copy and goes on.
func TestWALCorruptionIsLoud(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	writeJournal(t, dir, 0, 10)   // flushed to a table at the next open
	writeJournal(t, dir, 10, 400) // these live only in the newest log
	wal, _, err := newestWAL(dir)
	if err != nil || wal == "" {
		t.Fatalf("newest WAL: %q %v", wal, err)
	}
	data, err := os.ReadFile(wal)
	if err != nil {
		t.Fatal(err)
	}
	// A torn tail (a crash in the middle of the last write) is not loss.
	torn := append([]byte(nil), data...)
	end := (&walScan{data: data}).prefixLen(t, wal)
	copy(torn[end-40:end], make([]byte, 40))
	if err := os.WriteFile(wal, torn, 0o600); err != nil {
		t.Fatal(err)
	}
	if loss, err := CheckWAL(dir); loss != nil || err != nil {
		t.Fatalf("torn tail: %v %v", loss, err)
	}

	corrupt := append([]byte(nil), data...)
	mid := len(corrupt) / 2
	copy(corrupt[mid:mid+64], make([]byte, 64))
	for i := mid; i < mid+64; i += 2 {
		corrupt[i] = 0xA5
	}
	if err := os.WriteFile(wal, corrupt, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, Options{CacheBytes: 1 << 20})
	var loss *WALLoss
	if !errors.As(err, &loss) || loss.File != wal || loss.Journal < 100 || loss.Journal > 300 {
		t.Fatalf("open with a corrupt log: %v, want a WALLoss naming %s and about 200 journal records", err, wal)
	}
	if err := loss.Accept(); err != nil {
		t.Fatal(err)
	}
	if kept, err := os.ReadFile(loss.Preserved); err != nil || len(kept) != len(corrupt) {
		t.Fatalf("preserved copy: %d bytes, %v", len(kept), err)
	}
	db, err := Open(dir, Options{CacheBytes: 1 << 20})
	if err != nil {
		t.Fatalf("open after accepting the loss: %v", err)
	}
	defer db.Close()
	if got, want := countJournal(t, db), 410-loss.Journal; got < want-2 || got > want {
		t.Fatalf("%d journal entries after the loss of %d, want about %d", got, loss.Journal, want)
	}
}

// prefixLen is where the log's intact records end (the whole file, unless preallocated).
func (s *walScan) prefixLen(t *testing.T, wal string) int {
	t.Helper()
	_, num, _ := newestWAL(filepath.Dir(wal))
	s.logNum = uint32(num)
	return s.prefix()
}

// TestWALTornLastBatch: a crash that leaves pieces of the last batch after a
// bad chunk, and no whole batch, loses nothing that was acknowledged (a kill
// -9 test once left such a log, refused with "0 intact write batches
// follow"): the database opens.
func TestWALTornLastBatch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	writeJournal(t, dir, 0, 10)
	db, err := Open(dir, Options{CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 100<<10) // a batch in four chunks of the log
	if err := db.Set(JournalKey(10), big, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	wal, num, err := newestWAL(dir)
	if err != nil || wal == "" {
		t.Fatalf("newest WAL: %q %v", wal, err)
	}
	data, err := os.ReadFile(wal)
	if err != nil {
		t.Fatal(err)
	}
	s := walScan{data: data, logNum: uint32(num)}
	first, ok := s.chunkAt(0)
	if !ok || first.pos != 2 {
		t.Fatalf("the log does not start with the first chunk of the big batch: %+v %v", first, ok)
	}
	copy(data[0:4], []byte{0xde, 0xad, 0xbe, 0xef}) // its checksum
	if err := os.WriteFile(wal, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if loss, err := CheckWAL(dir); loss != nil || err != nil {
		t.Fatalf("pieces of the last batch: %v %v", loss, err)
	}
	db, err = Open(dir, Options{CacheBytes: 1 << 20})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer db.Close()
	if n := countJournal(t, db); n != 10 {
		t.Fatalf("%d journal entries, want the 10 before the torn batch", n)
	}
}
