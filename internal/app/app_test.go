package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/kv"
)

const (
	rootID     = "AKIAOPENTRAILTEST001"
	rootSecret = "opentrail-test-secret-0000000000000000000"
)

func openApp(t *testing.T, dir string, accept bool) (*App, error) {
	t.Helper()
	return Open(context.Background(), Config{DataDir: dir, RootKeyID: rootID, RootKey: rootSecret, CacheMiB: 8,
		AcceptJournalLoss: accept}, slog.New(slog.DiscardHandler))
}

// TestDataDirPrivate: whatever modes a pre-created data dir had, everything
// under it is 0700/0600 after a start (issue 11 §6).
func TestDataDirPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(filepath.Join(dir, "buckets", "audit"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "buckets", "audit", "old.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "buckets"), filepath.Join(dir, "buckets", "audit")} {
		os.Chmod(d, 0o777)
	}
	a, err := openApp(t, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	n := 0
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		info, _ := d.Info()
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, info.Mode().Perm(), want)
		}
		n++
		return nil
	})
	if n < 10 {
		t.Fatalf("only %d paths under the data dir", n)
	}
}

// TestJournalLoss: a data dir whose newest write-ahead log has 64 bytes
// overwritten mid-file does not start (issue 11 §6: it started silently
// without 900 acknowledged records); with AcceptJournalLoss it starts and the
// loss is an event in the journal.
func TestJournalLoss(t *testing.T) {
	dir := t.TempDir()
	a, err := openApp(t, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	root, _, _ := a.Keys.Root()
	for i := range 20 {
		var raws [][]byte
		for j := range 50 {
			raws = append(raws, fmt.Appendf(nil, `{"eventTime":%q,"eventName":"Put%d","eventSource":"s3.amazonaws.com","requestParameters":{"pad":"%0200d"}}`,
				time.Now().UTC().Format(time.RFC3339), i*50+j, j))
		}
		if _, err := a.Handler.IngestRecords(context.Background(), root, "us-east-1", raws); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()

	dbDir := filepath.Join(dir, "db")
	wal := newestLog(t, dbDir)
	data, err := os.ReadFile(wal)
	if err != nil {
		t.Fatal(err)
	}
	mid := len(data) / 2
	copy(data[mid:mid+64], bytes.Repeat([]byte{0x5A}, 64))
	if err := os.WriteFile(wal, data, 0o600); err != nil {
		t.Fatal(err)
	}

	_, err = openApp(t, dir, false)
	var loss *kv.WALLoss
	if !errors.Is(err, ErrJournalLoss) || !errors.As(err, &loss) || !strings.Contains(err.Error(), wal) ||
		!strings.Contains(err.Error(), "--accept-journal-loss") || loss.Journal == 0 {
		t.Fatalf("start with a corrupt log: %v", err)
	}
	a, err = openApp(t, dir, true)
	if err != nil {
		t.Fatalf("start accepting the loss: %v", err)
	}
	defer a.Close()
	found := false
	a.Journal.Scan(1, 1<<20, func(seq uint64, v []byte) error {
		found = found || (bytes.Contains(v, []byte("AcceptJournalLoss")) && bytes.Contains(v, []byte(filepath.Base(wal))))
		return nil
	})
	if !found {
		t.Fatal("no AcceptJournalLoss event in the journal")
	}
}

func newestLog(t *testing.T, dir string) string {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(logs) == 0 {
		t.Fatal("no write-ahead log")
	}
	return logs[len(logs)-1] // zero-padded numbers sort
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
