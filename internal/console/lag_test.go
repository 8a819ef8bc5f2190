package console

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLag(t *testing.T) {
	lags := []ProjectionLag{
		{Name: "event_history"},
		{Name: "lake", Entries: 3, Behind: 1200 * time.Millisecond}, // applying: caught up for a tenant
		{Name: "trail_delivery", Entries: 123456, Behind: 42 * time.Second},
		{Name: "log_groups", Entries: 9, Behind: 61 * time.Minute},
	}
	c := New(newFake(), slog.New(slog.DiscardHandler), Options{Lag: func() []ProjectionLag { return lags }})
	get := func(id string) (lagAnswer, string) {
		t.Helper()
		ck, _ := signIn(t, c, id, "right")
		w := do(c, "GET", "/console/api/lag", "", nil, ck)
		var out lagAnswer
		if err := json.Unmarshal(w.Body.Bytes(), &out); w.Code != 200 || err != nil || len(out.Projections) != len(lags) {
			t.Fatalf("GET lag as %s: %d %s", id, w.Code, w.Body)
		}
		return out, w.Body.String()
	}

	// A tenant (an admin of one account) learns how fresh its pages are, not how many entries wait.
	out, body := get("AKIAADMIN")
	if !out.Reported || out.Detail {
		t.Errorf("admin: %s", body)
	}
	for i, want := range []struct {
		caughtUp bool
		behind   float64
	}{{true, 0}, {true, 0}, {false, 50}, {false, 7200}} {
		p := out.Projections[i]
		if p.Name != lags[i].Name || p.CaughtUp != want.caughtUp || p.BehindSeconds != want.behind || p.Entries != nil {
			t.Errorf("admin sees %s as %+v, want caught up %t, %v s behind, no entries", lags[i].Name, p, want.caughtUp, want.behind)
		}
	}
	if strings.Contains(body, "123456") || strings.Contains(body, `"entries"`) {
		t.Errorf("a tenant sees node-wide entry counts: %s", body)
	}

	// The operator sees entries and seconds.
	out, body = get("AKIAROOT")
	if !out.Detail {
		t.Errorf("root: %s", body)
	}
	for i, p := range out.Projections {
		if p.Entries == nil || *p.Entries != lags[i].Entries || p.BehindSeconds != float64(lags[i].Behind/(100*time.Millisecond))/10 || p.CaughtUp != (lags[i].Entries == 0) {
			t.Errorf("root sees %s as %+v, want %+v", lags[i].Name, p, lags[i])
		}
	}

	// Without a Lag hook the dashboard says lag is not reported.
	c = New(newFake(), slog.New(slog.DiscardHandler), Options{})
	ck, _ := signIn(t, c, "AKIAADMIN", "right")
	if w := do(c, "GET", "/console/api/lag", "", nil, ck); w.Code != 200 || w.Body.String() != "{\"reported\":false,\"detail\":false,\"projections\":[]}\n" {
		t.Errorf("no hook: %d %s", w.Code, w.Body)
	}
	if w := do(c, "GET", "/console/api/lag", "", nil, nil); w.Code != 401 {
		t.Errorf("signed out: %d %s", w.Code, w.Body)
	}
}

func TestCoarse(t *testing.T) {
	for _, tc := range []struct{ in, want time.Duration }{
		{0, 0}, {4999 * time.Millisecond, 0}, {5 * time.Second, 10 * time.Second}, {10 * time.Second, 10 * time.Second},
		{11 * time.Second, 20 * time.Second}, {59 * time.Second, time.Minute}, {time.Minute, time.Minute},
		{61 * time.Second, 2 * time.Minute}, {59*time.Minute + time.Second, time.Hour}, {61 * time.Minute, 2 * time.Hour},
	} {
		if got := coarse(tc.in); got != tc.want {
			t.Errorf("coarse(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
