package history

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/kv"
)

const acct = "123456789012"

func setup(t testing.TB) (*Store, *journal.Journal) {
	t.Helper()
	db, err := kv.Open(t.TempDir(), kv.Options{CacheBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	j, err := journal.Open(db, log)
	if err != nil {
		t.Fatal(err)
	}
	s := New(db, j, log, Options{})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); j.Close(); db.Close() })
	return s, j
}

func ingest(t testing.TB, j *journal.Journal, raws ...string) uint64 {
	t.Helper()
	var entries []journal.Entry
	for _, raw := range raws {
		r, err := event.Normalize([]byte(raw), event.Defaults{Account: acct, Region: "us-east-1", Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, journal.Entry{ID: kv.EventIDKey(r.Meta.Account, r.Meta.EventID), Value: event.Encode(nil, &r)})
	}
	res, err := j.Append(context.Background(), entries)
	if err != nil {
		t.Fatal(err)
	}
	return res[len(res)-1].Seq
}

func all(q Query) Query {
	q.Account, q.Region, q.Start, q.End = acct, "us-east-1", math.MinInt64, math.MaxInt64
	if q.Max == 0 {
		q.Max = 50
	}
	return q
}

func names(p Page) []string {
	var out []string
	for _, e := range p.Events {
		out = append(out, e.Record.Meta.EventID)
	}
	return out
}

func TestLookup(t *testing.T) {
	s, j := setup(t)
	var raws []string
	for i := range 30 {
		raws = append(raws, fmt.Sprintf(`{"eventID":"e%02d","eventTime":"2024-01-01T00:00:%02dZ","eventName":"N%d","eventSource":"s.amazonaws.com","readOnly":%t,
			"userIdentity":{"type":"IAMUser","userName":"u%d","accessKeyId":"AK%d"},"resources":[{"ARN":"arn:r%d","type":"T%d"}]}`,
			i, i, i%3, i%2 == 0, i%5, i%5, i, i%2))
	}
	raws = append(raws,
		`{"eventID":"data1","eventTime":"2024-01-01T00:00:30Z","eventCategory":"Data","managementEvent":false,"eventName":"N0"}`,
		`{"eventID":"west","eventTime":"2024-01-01T00:00:30Z","awsRegion":"us-west-2","eventName":"N0"}`,
		`{"eventID":"other","eventTime":"2024-01-01T00:00:30Z","recipientAccountId":"210987654321","eventName":"N0"}`,
		`{"eventID":"ins","eventTime":"2024-01-01T00:00:30Z","eventType":"AwsCloudTrailInsight","insightDetails":{"eventName":"N0","eventSource":"s.amazonaws.com"}}`)
	last := ingest(t, j, raws...)
	if err := s.WaitApplied(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(sec int) int64 { return t0.Add(time.Duration(sec) * time.Second).UnixNano() }
	for _, tc := range []struct {
		name string
		q    Query
		want []string
	}{
		{"EventName newest first", Query{Attr: AttrEventName, Value: "N0"}, []string{"e27", "e24", "e21", "e18", "e15", "e12", "e09", "e06", "e03", "e00"}},
		{"time range inclusive", Query{Attr: AttrEventName, Value: "N0", Start: at(6), End: at(12)}, []string{"e12", "e09", "e06"}},
		{"Username", Query{Attr: AttrUsername, Value: "u4"}, []string{"e29", "e24", "e19", "e14", "e09", "e04"}},
		{"ReadOnly", Query{Attr: AttrReadOnly, Value: "true", End: at(5)}, []string{"e04", "e02", "e00"}},
		{"AccessKeyId", Query{Attr: AttrAccessKeyID, Value: "AK1", Start: at(10)}, []string{"e26", "e21", "e16", "e11"}},
		{"ResourceName", Query{Attr: AttrResourceName, Value: "arn:r7"}, []string{"e07"}},
		{"ResourceType", Query{Attr: AttrResourceType, Value: "T1", End: at(7)}, []string{"e07", "e05", "e03", "e01"}},
		{"EventSource", Query{Attr: AttrEventSource, Value: "s.amazonaws.com", Start: at(28)}, []string{"e29", "e28"}},
		{"EventId", Query{Attr: AttrEventID, Value: "e13"}, []string{"e13"}},
		{"EventId of a data event", Query{Attr: AttrEventID, Value: "data1"}, nil},
		{"EventId of another region", Query{Attr: AttrEventID, Value: "west"}, nil},
		{"EventId of another account", Query{Attr: AttrEventID, Value: "other"}, nil},
		{"insight", Query{Insight: true}, []string{"ins"}},
		{"insight by name", Query{Insight: true, Attr: AttrEventName, Value: "N0"}, []string{"ins"}},
		{"no match", Query{Attr: AttrEventName, Value: "Nope"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := all(tc.q)
			if tc.q.Start != 0 {
				q.Start = tc.q.Start
			}
			if tc.q.End != 0 {
				q.End = tc.q.End
			}
			p, err := s.Lookup(q)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(names(p)) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, want %v", names(p), tc.want)
			}
		})
	}
}

func TestRegions(t *testing.T) {
	s, j := setup(t)
	if got, err := s.Regions(acct); err != nil || len(got) != 0 {
		t.Fatalf("regions of an empty index = %v, %v", got, err)
	}
	var raws []string
	for i, region := range []string{"us-east-1", "eu-west-1", "us-east-1", "ap-southeast-2", "eu-west-1", "us-west-2"} {
		raws = append(raws, fmt.Sprintf(`{"eventID":"r%d","eventTime":"2024-01-01T00:00:%02dZ","awsRegion":%q,"eventName":"N"}`, i, i, region))
	}
	raws = append(raws,
		`{"eventID":"data","eventTime":"2024-01-01T00:00:30Z","awsRegion":"ca-central-1","eventCategory":"Data","managementEvent":false,"eventName":"N"}`,
		`{"eventID":"other","eventTime":"2024-01-01T00:00:30Z","awsRegion":"sa-east-1","recipientAccountId":"210987654321","eventName":"N"}`,
		`{"eventID":"ins","eventTime":"2024-01-01T00:00:30Z","awsRegion":"me-south-1","eventType":"AwsCloudTrailInsight","insightDetails":{"eventName":"N","eventSource":"s.amazonaws.com"}}`)
	if err := s.WaitApplied(context.Background(), ingest(t, j, raws...)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		account string
		want    []string
	}{
		// Data events are not in event history, so their region is not either.
		{acct, []string{"ap-southeast-2", "eu-west-1", "me-south-1", "us-east-1", "us-west-2"}},
		{"210987654321", []string{"sa-east-1"}},
		{"999999999999", nil},
		{"21098765432", nil}, // a prefix of another account's ID
	} {
		got, err := s.Regions(tc.account)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Regions(%s) = %v, %v; want %v", tc.account, got, err, tc.want)
		}
	}
}

func TestLookupPagesSurviveWrites(t *testing.T) {
	s, j := setup(t)
	var raws []string
	for i := range 25 {
		raws = append(raws, fmt.Sprintf(`{"eventID":"e%02d","eventTime":"2024-01-01T00:00:%02dZ"}`, i, i))
	}
	s.WaitApplied(context.Background(), ingest(t, j, raws...))
	tokens := NewTokens([]byte("0123456789abcdef0123456789abcdef"))
	q := all(Query{Max: 10})
	var got []string
	for page := 0; ; page++ {
		p, err := s.Lookup(q)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, names(p)...)
		if page == 0 {
			// Newer events arriving between pages must not shift later pages.
			s.WaitApplied(context.Background(), ingest(t, j, `{"eventID":"new","eventTime":"2024-01-01T00:01:00Z"}`))
		}
		if p.Next == nil {
			break
		}
		tok := tokens.Encode(q, p.Next)
		if q.After, err = tokens.Decode(q, tok); err != nil {
			t.Fatal(err)
		}
		other := q
		other.Value = "x"
		if _, err := tokens.Decode(other, tok); err != ErrBadToken {
			t.Fatalf("token accepted for another query: %v", err)
		}
	}
	if len(got) != 25 || got[0] != "e24" || got[24] != "e00" {
		t.Fatalf("pages = %v", got)
	}
}

func TestExpire(t *testing.T) {
	s, j := setup(t)
	s.WaitApplied(context.Background(), ingest(t, j, `{"eventID":"old","eventTime":"2024-01-01T00:00:00Z"}`))
	s.now = func() time.Time { return time.Now().Add(91 * 24 * time.Hour) }
	if err := s.Expire(); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Lookup(all(Query{})); len(p.Events) != 0 {
		t.Fatalf("expired event still listed: %v", names(p))
	}
	if _, ok, _ := j.Lookup(kv.EventIDKey(acct, "old")); ok {
		t.Fatal("expired event ID still indexed")
	}
	if _, ok, _ := j.Get(1); ok {
		t.Fatal("expired journal entry still present")
	}
}

func FuzzTokenDecode(f *testing.F) {
	tokens := NewTokens([]byte("0123456789abcdef0123456789abcdef"))
	q := all(Query{})
	f.Add(tokens.Encode(q, make([]byte, 16)))
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		pos, err := tokens.Decode(q, tok)
		if err == nil && len(pos) != 16 {
			t.Fatalf("accepted token with %d-byte position", len(pos))
		}
	})
}
