package lake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A crash between writing a batch's blocks and committing its rows leaves
// blocks no row points at; opening the engine cuts them off, and the batch,
// loaded again, reads back byte for byte.
func TestBlockFileTailCutOnOpen(t *testing.T) {
	v := newEnv(t, allEvents(acct, edsID))
	var recs [][]byte
	for i := range 30 {
		recs = append(recs, lambdaInvoke("f", "eni-1", fmt.Sprintf("55555555-0000-0000-0000-%012d", i), v.now.Add(-time.Hour)))
	}
	v.ingest(acct, recs...)
	v.e.Close()
	path := filepath.Join(v.dir, "lake", "blocks", "s_1.ejz")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte(strings.Repeat("uncommitted block", 100)))
	f.Close()
	v.open()
	if st2, _ := os.Stat(path); st2.Size() != st.Size() {
		t.Fatalf("block file %d bytes after open, want %d", st2.Size(), st.Size())
	}
	v.ingest(acct, lambdaInvoke("f", "eni-1", "55555555-0000-0000-0000-999999999999", v.now))
	res := v.query(acct, "SELECT eventID, eventJson FROM "+edsID)
	if len(res.Rows) != 31 {
		t.Fatalf("%d rows, want 31", len(res.Rows))
	}
	byID := map[string]string{}
	for _, r := range v.added {
		byID[r.Meta.EventID] = string(r.Raw)
	}
	for _, row := range res.Rows {
		if str(row[1]) != byID[str(row[0])] {
			t.Fatalf("eventJson of %s:\n got %s\nwant %s", str(row[0]), str(row[1]), byID[str(row[0])])
		}
	}
}

// The function that reads block files takes a store number: user SQL must not
// reach it, or it could read another account's store.
func TestBlockFunctionNotCallable(t *testing.T) {
	v := newEnv(t, allEvents(acct, edsID))
	v.ingest(acct, lambdaInvoke("f", "eni-1", "66666666-0000-0000-0000-000000000001", v.now))
	for _, q := range []string{
		"SELECT lake_event_json(1, 0, 100, 0)",
		"SELECT LAKE_EVENT_JSON(1, 0, 100, 0) FROM " + edsID,
	} {
		_, err := v.e.Query(context.Background(), acct, q)
		var qe *QueryError
		if !errors.As(err, &qe) {
			t.Errorf("%s: err %v, want a QueryError", q, err)
		}
	}
}

// A database of another storage format is refused, not misread.
func TestFormatVersionChecked(t *testing.T) {
	v := newEnv(t, allEvents(acct, edsID))
	v.ingest(acct, lambdaInvoke("f", "eni-1", "77777777-0000-0000-0000-000000000001", v.now))
	if _, err := v.e.w.ExecContext(context.Background(), `UPDATE lake.state SET v = 1 WHERE k = 'format'`); err != nil {
		t.Fatal(err)
	}
	v.e.Close()
	v.e = nil
	_, err := Open(filepath.Join(v.dir, "lake"), v.j, v.db, v.stores, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	if !errors.Is(err, ErrFormat) {
		t.Fatalf("open: %v, want ErrFormat", err)
	}
}
