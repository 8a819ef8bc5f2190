package insights

import (
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/event"
)

// history is a synthetic account: eight days of steady calls to a few APIs,
// then a burst of CreateUser calls and a burst of AccessDenied errors on
// ListBuckets, then steady calls again.
type history struct {
	start     time.Time // first minute
	burstAt   time.Time // first minute of both bursts
	burstMins int
	end       time.Time // end of the steady calls after the bursts
}

func testHistory() history {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	burst := start.Add(8 * 24 * time.Hour)
	return history{start: start, burstAt: burst, burstMins: 10, end: burst.Add(40 * time.Minute)}
}

const (
	acct     = "111122223333"
	region   = "us-east-1"
	alice    = "arn:aws:iam::111122223333:user/alice"
	mallory  = "arn:aws:iam::111122223333:user/mallory"
	uaSteady = "aws-cli/2.15.0"
	uaBurst  = "Boto3/1.34.0"
)

type call struct {
	source, name, user, ua, errorCode string
	readOnly                          bool
}

// every calls fn for each call of the history, in event-time order; step is
// the spacing of steady minutes (1 = every minute).
func (h history) every(step int, fn func(t time.Time, c call)) {
	i := 0
	for t := h.start; t.Before(h.end); t = t.Add(time.Minute) {
		i++
		burst := !t.Before(h.burstAt) && t.Before(h.burstAt.Add(time.Duration(h.burstMins)*time.Minute))
		if i%step == 0 {
			// Steady: CreateUser 1-2 a minute, RunInstances 0-2, DeleteObject data calls 2, a rare error.
			for range 1 + i%2 {
				fn(t, call{"iam.amazonaws.com", "CreateUser", alice, uaSteady, "", false})
			}
			for range i % 3 {
				fn(t.Add(10*time.Second), call{"ec2.amazonaws.com", "RunInstances", alice, uaSteady, "", false})
			}
			if i%7 == 0 {
				fn(t.Add(20*time.Second), call{"s3.amazonaws.com", "ListBuckets", alice, uaSteady, "AccessDenied", true})
			}
			fn(t.Add(30*time.Second), call{"s3.amazonaws.com", "ListBuckets", alice, uaSteady, "", true})
		}
		if burst {
			for j := range 30 {
				fn(t.Add(time.Duration(j)*time.Second), call{"iam.amazonaws.com", "CreateUser", mallory, uaBurst, "", false})
			}
			for j := range 25 {
				fn(t.Add(time.Duration(j)*time.Second+500*time.Millisecond), call{"s3.amazonaws.com", "ListBuckets", mallory, uaBurst, "AccessDenied", true})
			}
		}
	}
}

func meta(t time.Time, c call, ingest time.Time) *event.Meta {
	m := &event.Meta{EventTime: t.UnixNano(), IngestTime: ingest.UnixNano(), Account: acct, Region: region,
		Category: event.CategoryManagement, Source: c.source, Name: c.name, UserARN: c.user, ErrorCode: c.errorCode, ReadOnly: 0}
	if c.readOnly {
		m.ReadOnly = 1
	}
	return m
}

func TestDetectorBursts(t *testing.T) {
	h := testHistory()
	d := NewDetector(Rule{}, func(SeriesKey, int64) (Counts, error) { return Counts{}, nil })
	wall := h.end.Add(time.Hour)
	var found []Insight
	// Live calls of the same API in the same account: the imported history still counts.
	live := call{"iam.amazonaws.com", "CreateUser", alice, uaSteady, "", false}
	if err := d.Observe(meta(wall, live, wall), live.ua); err != nil {
		t.Fatal(err)
	}
	n := 0
	h.every(1, func(ts time.Time, c call) {
		if err := d.Observe(meta(ts, c, wall), c.ua); err != nil {
			t.Fatal(err)
		}
		if n++; n%500 == 0 {
			found = append(found, d.Advance(wall)...)
		}
	})
	found = append(found, d.Advance(wall)...)
	checkBursts(t, h, found)
	// Nothing more once everything is closed.
	if more := d.Advance(wall.Add(time.Hour)); len(more) != 0 {
		t.Errorf("after the end: %d more insights", len(more))
	}
}

func checkBursts(t *testing.T, h history, found []Insight) {
	t.Helper()
	type want struct {
		kind        byte
		name, code  string
		baselineMax float64
		avg         float64
		user, ua    string
	}
	wants := []want{
		{KindCalls, "CreateUser", "", 2, 30, mallory, uaBurst},
		{KindErrors, "ListBuckets", "AccessDenied", 0.2, 25, mallory, uaBurst},
	}
	if len(found) != 2*len(wants) {
		for _, in := range found {
			t.Logf("%s %s %s %s at %s: %v/min (baseline %v)", in.State, in.Series.InsightType(), in.Series.Name, in.Series.ErrorCode, in.Time, in.Average, in.Baseline)
		}
		t.Fatalf("found %d insights, want a Start and an End for each of %d bursts", len(found), len(wants))
	}
	for _, w := range wants {
		var start, end *Insight
		for i := range found {
			in := &found[i]
			if in.Series.Kind != w.kind || in.Series.Name != w.name || in.Series.ErrorCode != w.code {
				continue
			}
			switch in.State {
			case "Start":
				start = in
			case "End":
				end = in
			}
		}
		if start == nil || end == nil {
			t.Fatalf("%s %s: start %v, end %v", w.name, w.code, start, end)
		}
		if start.SharedID != end.SharedID || start.EventID() == end.EventID() {
			t.Errorf("%s: shared IDs %s/%s, event IDs %s/%s", w.name, start.SharedID, end.SharedID, start.EventID(), end.EventID())
		}
		if !start.Time.Equal(h.burstAt) {
			t.Errorf("%s: Start at %s, want %s", w.name, start.Time, h.burstAt)
		}
		if want := h.burstAt.Add(time.Duration(h.burstMins) * time.Minute); !end.Time.Equal(want) {
			t.Errorf("%s: End at %s, want %s", w.name, end.Time, want)
		}
		if end.InsightDuration != int64(h.burstMins) || start.InsightDuration != 1 {
			t.Errorf("%s: durations %d/%d, want 1/%d", w.name, start.InsightDuration, end.InsightDuration, h.burstMins)
		}
		if start.BaselineDuration != 7*24*60 {
			t.Errorf("%s: baselineDuration %d, want %d", w.name, start.BaselineDuration, 7*24*60)
		}
		if start.Baseline <= 0 || start.Baseline > w.baselineMax {
			t.Errorf("%s: baseline %v, want in (0, %v]", w.name, start.Baseline, w.baselineMax)
		}
		// The burst's calls plus at most two steady ones a minute.
		if end.Average < w.avg || end.Average > w.avg+2 || start.Average < w.avg || start.Average > w.avg+2 {
			t.Errorf("%s: insight averages %v/%v, want %v to %v", w.name, start.Average, end.Average, w.avg, w.avg+2)
		}
		for _, in := range []*Insight{start, end} {
			users, agents := in.Attributions[0].Insight, in.Attributions[1].Insight
			if len(users) == 0 || users[0].Value != w.user || len(agents) == 0 || agents[0].Value != w.ua {
				t.Errorf("%s %s: insight attributions %+v %+v, want %s and %s first", w.name, in.State, users, agents, w.user, w.ua)
			}
			base := in.Attributions[0].Baseline
			if len(base) == 0 || base[0].Value != alice {
				t.Errorf("%s %s: baseline users %+v, want %s first", w.name, in.State, base, alice)
			}
		}
		codes := start.Attributions[2].Insight
		wantCode := "null"
		if w.code != "" {
			wantCode = w.code
		}
		if len(codes) == 0 || codes[0].Value != wantCode {
			t.Errorf("%s: errorCode attribution %+v, want %s", w.name, codes, wantCode)
		}
	}
}

// A minute at the floor's edge: 0 → 1 call is no insight, however quiet the baseline.
func TestDetectorFloor(t *testing.T) {
	d := NewDetector(Rule{}, nil)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	wall := start.Add(30 * 24 * time.Hour)
	c := call{"iam.amazonaws.com", "DeleteRole", alice, uaSteady, "", false}
	d.Observe(meta(start, call{"sts.amazonaws.com", "AssumeRole", alice, uaSteady, "", false}, wall), "")
	for day := 1; day <= 9; day++ {
		ts := start.Add(time.Duration(day) * 24 * time.Hour)
		for range 9 { // just under the floor of 10
			d.Observe(meta(ts, c, wall), c.ua)
		}
	}
	if found := d.Advance(wall); len(found) != 0 {
		t.Fatalf("found %d insights under the floor", len(found))
	}
}

// Events of a minute that was already evaluated count in the stored minute, not twice.
func TestDetectorLate(t *testing.T) {
	stored := map[int64]Counts{}
	d := NewDetector(Rule{}, func(_ SeriesKey, m int64) (Counts, error) { return stored[m], nil })
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	c := call{"iam.amazonaws.com", "CreateUser", alice, uaSteady, "", false}
	d.Observe(meta(t0, c, t0), c.ua)
	d.Observe(meta(t0.Add(5*time.Minute), c, t0.Add(5*time.Minute)), c.ua)
	d.Advance(t0.Add(5 * time.Minute))
	var w mapWriter = map[string][]byte{}
	if err := d.Flush(w); err != nil {
		t.Fatal(err)
	}
	m0 := t0.Unix() / 60
	stored[m0] = Counts{N: 1}
	d.Observe(meta(t0.Add(time.Second), c, t0.Add(5*time.Minute)), c.ua)
	if got := d.dirtyBuckets[bucketRef{SeriesKey{acct, region, KindCalls, c.source, c.name, "", false}, m0}]; got == nil || got.N != 2 {
		t.Fatalf("late minute = %+v, want 2 calls", got)
	}
}

type mapWriter map[string][]byte

func (w mapWriter) Set(k, v []byte, _ *pebble.WriteOptions) error {
	w[string(k)] = append([]byte(nil), v...)
	return nil
}

func (w mapWriter) Delete(k []byte, _ *pebble.WriteOptions) error { delete(w, string(k)); return nil }

func TestCountsRoundTrip(t *testing.T) {
	var c Counts
	c.add([3]string{alice, uaSteady, "null"}, 3)
	c.add([3]string{mallory, "", "AccessDenied"}, 2)
	got, err := DecodeCounts(EncodeCounts(nil, &c), true)
	if err != nil || got.N != 5 || len(got.Attrs[0]) != 2 || got.Attrs[2][1].Value != "AccessDenied" {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if _, err := DecodeCounts([]byte{1, 5, 9}, true); err == nil {
		t.Fatal("truncated value decoded")
	}
}

func TestUserAgent(t *testing.T) {
	for raw, want := range map[string]string{
		`{"a":1,"userAgent":"aws-cli/2.1","b":2}`: "aws-cli/2.1",
		`{"userAgent":"say \"hi\"\\","x":1}`:      `say "hi"\`,
		`{"eventName":"X"}`:                       "",
		`{"userAgent":"unterminated`:              "",
	} {
		if got := UserAgent([]byte(raw)); got != want {
			t.Errorf("UserAgent(%s) = %q, want %q", raw, got, want)
		}
	}
}

// Data events count in data series, and their Insights events say so.
func TestDataSeries(t *testing.T) {
	m := &event.Meta{Account: acct, Region: region, Category: event.CategoryData, Source: "s3.amazonaws.com", Name: "GetObject", ReadOnly: 1, ErrorCode: "NoSuchKey"}
	calls, errs, ok := Keys(m)
	if !ok[0] || !ok[1] || calls.Kind != KindDataCalls || errs.Kind != KindDataErrors || errs.ErrorCode != "NoSuchKey" || !calls.Data() {
		t.Fatalf("Keys(data event) = %+v %+v %v", calls, errs, ok)
	}
	m.Category = event.CategoryManagement
	if calls, _, ok := Keys(m); ok[0] {
		t.Fatalf("a read-only management call counts in %+v", calls)
	}
	first := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, k := range []SeriesKey{calls, {Account: acct, Region: region, Kind: KindCalls, Source: "s3.amazonaws.com", Name: "GetObject"}} {
		for _, in := range []Insight{
			{Series: k, State: "Start", SharedID: sharedID(k, first.Unix()/60), Time: first, InsightDuration: 1},
			{Series: k, State: "End", SharedID: sharedID(k, first.Unix()/60), Time: first.Add(4 * time.Minute), InsightDuration: 4},
		} {
			got, err := ParseRecord(in.Record())
			if err != nil {
				t.Fatal(err)
			}
			if IsData(got) != k.Data() {
				t.Errorf("%s of %c: IsData = %v", in.State, k.Kind, IsData(got))
			}
		}
	}
}
