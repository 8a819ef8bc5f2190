package kv

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/keys.golden")

// goldenKeys encodes one of every key the database holds, and every state
// kind and cursor name. Its output is the on-disk format: a change to it is a
// change to every existing data dir, so keys.golden changes only with a
// migration, and every change to it is read in review.
func goldenKeys() []struct {
	name string
	key  []byte
} {
	type entry = struct {
		name string
		key  []byte
	}
	out := []entry{
		{"JournalKey(0)", JournalKey(0)},
		{"JournalKey(0x0102030405060708)", JournalKey(0x0102030405060708)},
		{"EventIDKey(111122223333, ev-1)", EventIDKey("111122223333", "ev-1")},
		{"LookupPrefix(111122223333, us-east-1, management, all, \"\")", LookupPrefix("111122223333", "us-east-1", CatManagement, AttrAll, "")},
		{"LookupPrefix(111122223333, eu-west-1, insight, EventName, CreateTrail)", LookupPrefix("111122223333", "eu-west-1", CatInsight, AttrEventName, "CreateTrail")},
		{"LookupKey(prefix, 1700000000000000000, 42)", LookupKey(LookupPrefix("111122223333", "us-east-1", CatManagement, AttrReadOnly, "true"), 1700000000000000000, 42)},
		{"LookupKey(prefix, -1, 1)", LookupKey(LookupPrefix("111122223333", "us-east-1", CatManagement, AttrUsername, "alice"), -1, 1)},
		{"StatePrefix(trail, \"\")", StatePrefix(StateTrail, "")},
		{"StatePrefix(trail, 111122223333)", StatePrefix(StateTrail, "111122223333")},
		{"LogStreamPrefix", LogStreamPrefix("111122223333", "us-east-1", "/aws/group", "stream-1")},
		{"LogGroupPrefix", LogGroupPrefix("111122223333", "us-east-1", "/aws/group")},
		{"LogEventKey(stream, 1700000000000, 7)", LogEventKey(LogStreamPrefix("111122223333", "us-east-1", "g", "s"), 1700000000000, 7)},
		{"LogEventKey(stream, -5, 1)", LogEventKey(LogStreamPrefix("111122223333", "us-east-1", "g", "s"), -5, 1)},
		{"SubscriptionKey(outbox, 9)", SubscriptionKey(SubscriptionPrefix(false, "111122223333", "us-east-1", "g", "f"), 9)},
		{"SubscriptionKey(dead, 9)", SubscriptionKey(SubscriptionPrefix(true, "111122223333", "us-east-1", "g", "f"), 9)},
		{"EncodeSeq(258)", EncodeSeq(258)},
		{"OutboxKey(trail-notify, 9)", OutboxKey(OutboxPrefix(false, OutboxTrailNotify, "arn:aws:sns:us-east-1:111122223333:t"), 9)},
		{"OutboxKey(trail-notify dead, 9)", OutboxKey(OutboxPrefix(true, OutboxTrailNotify, "arn:aws:sns:us-east-1:111122223333:t"), 9)},
	}
	for _, kind := range []string{
		StateAccessKey, StateRootKey, StateDigestKeys, StateDeliveryStream, StateNotify,
		StateTrail, StateEDS, StateChannel, StateIngestion, StateQuery, StateQueryRows,
		StateLogGroup, StateLogStream, StateSubscription, StateMetricFilter, StateMetricValues, StateLogSeq,
	} {
		out = append(out, entry{"StateKey(" + kind + ", 111122223333, name)", StateKey(kind, "111122223333", "name")})
	}
	for _, c := range []string{CursorHistory, CursorDelivery, CursorLake, CursorLogs} {
		out = append(out, entry{"CursorKey(" + c + ")", CursorKey(c)})
	}
	return out
}

func TestKeyEncodingGolden(t *testing.T) {
	var b strings.Builder
	for _, e := range goldenKeys() {
		fmt.Fprintf(&b, "%s\n\t%s\n", e.name, hex.EncodeToString(e.key))
	}
	got := b.String()
	path := filepath.Join("testdata", "keys.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update once to create it)", err)
	}
	if got != string(want) {
		t.Errorf("the key encoding changed: every existing data dir would be misread.\n"+
			"If this is a deliberate format change with a migration, run go test -update and review the diff.\ngot:\n%s\nwant:\n%s", got, want)
	}
}

// Every state kind and cursor name is distinct: two owners sharing one would
// read each other's objects.
func TestNamesDistinct(t *testing.T) {
	kinds := map[string]bool{}
	for _, e := range goldenKeys() {
		name, ok := strings.CutPrefix(e.name, "StateKey(")
		if !ok {
			continue
		}
		kind, _, _ := strings.Cut(name, ",")
		if kinds[kind] {
			t.Errorf("state kind %q declared twice", kind)
		}
		kinds[kind] = true
		// A kind never holds the separator, so no kind is a prefix of another's range.
		if strings.IndexByte(kind, 0) >= 0 {
			t.Errorf("state kind %q contains 0", kind)
		}
	}
	cursors := []string{CursorHistory, CursorDelivery, CursorLake, CursorLogs}
	if len(slices.Compact(slices.Sorted(slices.Values(cursors)))) != len(cursors) {
		t.Errorf("cursor names repeat: %q", cursors)
	}
}

func TestDecode(t *testing.T) {
	for _, seq := range []uint64{0, 1, math.MaxUint64} {
		if got, ok := JournalSeq(JournalKey(seq)); !ok || got != seq {
			t.Errorf("JournalSeq(JournalKey(%d)) = %d, %v", seq, got, ok)
		}
		if got, err := DecodeSeq(EncodeSeq(seq)); err != nil || got != seq {
			t.Errorf("DecodeSeq(EncodeSeq(%d)) = %d, %v", seq, got, err)
		}
	}
	if _, ok := JournalSeq(CursorKey("journal!")); ok {
		t.Error("JournalSeq decoded a cursor key")
	}
	if _, err := DecodeSeq([]byte{1, 2, 3}); err == nil {
		t.Error("DecodeSeq accepted 3 bytes")
	}

	p := LookupPrefix("111122223333", "us-east-1", CatManagement, AttrAll, "")
	for _, nanos := range []int64{math.MinInt64, -1, 0, 1, 1700000000000000000, math.MaxInt64} {
		gotN, gotS, ok := LookupEntry(LookupKey(p, nanos, 99))
		if !ok || gotN != nanos || gotS != 99 {
			t.Errorf("LookupEntry(LookupKey(%d, 99)) = %d, %d, %v", nanos, gotN, gotS, ok)
		}
	}
	sp := LogStreamPrefix("111122223333", "us-east-1", "g", "s")
	for _, ms := range []int64{math.MinInt64, -1, 0, 1700000000000} {
		gotMs, gotS, ok := LogEventPos(LogEventKey(sp, ms, 5))
		if !ok || gotMs != ms || gotS != 5 {
			t.Errorf("LogEventPos(LogEventKey(%d, 5)) = %d, %d, %v", ms, gotMs, gotS, ok)
		}
	}
}

// Lookup keys sort newest first (then by seq, highest first); log events
// oldest first, negative times before positive ones.
func TestOrder(t *testing.T) {
	p := LookupPrefix("111122223333", "us-east-1", CatManagement, AttrAll, "")
	lookup := [][]byte{
		LookupKey(p, math.MaxInt64, 1),
		LookupKey(p, 1700000000000000000, 2),
		LookupKey(p, 1700000000000000000, 1),
		LookupKey(p, 0, 5),
		LookupKey(p, -1, 5),
		LookupKey(p, math.MinInt64, 5),
	}
	if !slices.IsSortedFunc(lookup, bytes.Compare) {
		t.Error("lookup keys do not sort newest first")
	}
	sp := LogStreamPrefix("111122223333", "us-east-1", "g", "s")
	events := [][]byte{
		LogEventKey(sp, math.MinInt64, 1),
		LogEventKey(sp, -1, 1),
		LogEventKey(sp, 0, 1),
		LogEventKey(sp, 0, 2),
		LogEventKey(sp, 1700000000000, 1),
	}
	if !slices.IsSortedFunc(events, bytes.Compare) {
		t.Error("log event keys do not sort oldest first")
	}
	// Length-prefixed strings: an account cannot run into the region.
	if bytes.HasPrefix(StatePrefix(StateTrail, "11112222333"), StatePrefix(StateTrail, "1111222233")) {
		t.Error("one account's state prefix is a prefix of another's")
	}
}

func TestPrefixUpper(t *testing.T) {
	tests := []struct{ in, want []byte }{
		{[]byte("ab"), []byte("ac")},
		{[]byte{'a', 0xff}, []byte{'b'}},
		{[]byte{0xff, 0xff}, nil},
	}
	for _, tt := range tests {
		if got := PrefixUpper(tt.in); !bytes.Equal(got, tt.want) {
			t.Errorf("PrefixUpper(%x) = %x, want %x", tt.in, got, tt.want)
		}
	}
	// Every key with the prefix sorts below the bound.
	p := StatePrefix(StateTrail, "111122223333")
	if k := StateKey(StateTrail, "111122223333", "\xff\xff"); bytes.Compare(k, PrefixUpper(p)) >= 0 {
		t.Error("a key with the prefix is not below PrefixUpper")
	}
}

// TestOutboxStreamName: a notifier finds its streams again after a restart by
// decoding their names from the keys under a kind.
func TestOutboxStreamName(t *testing.T) {
	kind := OutboxKindPrefix(false, OutboxTrailNotify)
	name := "arn:aws:sns:us-east-1:111122223333:topic"
	if got, ok := OutboxStreamName(kind, OutboxKey(OutboxPrefix(false, OutboxTrailNotify, name), 7)); !ok || got != name {
		t.Fatalf("OutboxStreamName = %q, %v", got, ok)
	}
	if _, ok := OutboxStreamName(kind, OutboxKey(OutboxPrefix(true, OutboxTrailNotify, name), 7)); ok {
		t.Fatal("a dead letter's key decoded under the pending kind")
	}
	if _, ok := OutboxStreamName(kind, append(append([]byte{}, kind...), 0x7f)); ok {
		t.Fatal("a truncated name decoded")
	}
}
