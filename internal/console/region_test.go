package console

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"
)

func TestRegionPicker(t *testing.T) {
	f, clk := newFake(), &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	accountRegions := map[string][]string{"111111111111": {"us-east-1", "eu-west-1"}}
	c := New(f, slog.New(slog.DiscardHandler), Options{Now: clk.now, AccountRegions: func(account string) ([]string, error) {
		return accountRegions[account], nil
	}})
	ck, csrf := signIn(t, c, "AKIAADMIN", "right")
	hdr := map[string]string{"Content-Type": "application/json", "Origin": "http://console.test", "X-CSRF-Token": csrf}
	choices := func() regionChoices {
		t.Helper()
		w := do(c, "GET", "/console/api/regions", "", nil, ck)
		var out regionChoices
		if err := json.Unmarshal(w.Body.Bytes(), &out); w.Code != 200 || err != nil {
			t.Fatalf("GET regions: %d %s", w.Code, w.Body)
		}
		return out
	}
	// called is the region of the last call that reached the server.
	called := func() string {
		t.Helper()
		if w := do(c, "POST", "/console/api/call/cloudtrail/LookupEvents", "{}", hdr, ck); w.Code != 200 {
			t.Fatalf("call: %d %s", w.Code, w.Body)
		}
		return f.calls[len(f.calls)-1].Region
	}
	if got := choices(); got.Region != "us-east-1" || !got.Other || len(got.Regions) != 2 || got.Regions[0] != "eu-west-1" || got.Regions[1] != "us-east-1" {
		t.Errorf("choices at sign-in = %+v, want the home region and the account's, us-east-1 chosen", got)
	}
	if r := called(); r != "us-east-1" {
		t.Errorf("a call at sign-in acts in %s, want the home region", r)
	}
	for _, tc := range []struct {
		name, body string
		hdr        map[string]string
		code       int
		want       string // the session's region afterwards
	}{
		{"one of the account's", `{"region":"eu-west-1"}`, hdr, 200, "eu-west-1"},
		{"typed, valid", `{"region":" ap-south-1 "}`, hdr, 200, "ap-south-1"},
		{"not a region", `{"region":"Mars"}`, hdr, 400, "ap-south-1"},
		{"empty", `{"region":""}`, hdr, 400, "ap-south-1"},
		{"not JSON", `region=eu-west-1`, hdr, 400, "ap-south-1"},
		{"no CSRF token", `{"region":"eu-west-1"}`, jsonHdr, 403, "ap-south-1"},
		{"back home", `{"region":"us-east-1"}`, hdr, 200, "us-east-1"},
		{"again", `{"region":"eu-west-1"}`, hdr, 200, "eu-west-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if w := do(c, "POST", "/console/api/region", tc.body, tc.hdr, ck); w.Code != tc.code {
				t.Errorf("%d %s, want %d", w.Code, w.Body, tc.code)
			}
			if got := choices().Region; got != tc.want {
				t.Errorf("session region %s, want %s", got, tc.want)
			}
			if got := called(); got != tc.want {
				t.Errorf("calls act in %s, want %s", got, tc.want)
			}
		})
	}
	// The choice is the session's, on the server: the page reloaded (GET session) shows it.
	var info sessionInfo
	json.Unmarshal(do(c, "GET", "/console/api/session", "", nil, ck).Body.Bytes(), &info)
	if info.Region != "eu-west-1" {
		t.Errorf("session after a reload: %+v", info)
	}
	// Another session of the same key starts at home.
	ck2, _ := signIn(t, c, "AKIAADMIN", "right")
	json.Unmarshal(do(c, "GET", "/console/api/session", "", nil, ck2).Body.Bytes(), &info)
	if info.Region != "us-east-1" {
		t.Errorf("a new session starts in %s", info.Region)
	}
}

func TestRegionPickerServerRegions(t *testing.T) {
	f := newFake()
	c := New(f, slog.New(slog.DiscardHandler), Options{Regions: []string{"us-east-1", "eu-central-1"},
		AccountRegions: func(string) ([]string, error) { return []string{"ap-south-1"}, nil }})
	ck, csrf := signIn(t, c, "AKIAADMIN", "right")
	hdr := map[string]string{"Content-Type": "application/json", "Origin": "http://console.test", "X-CSRF-Token": csrf}
	var got regionChoices
	json.Unmarshal(do(c, "GET", "/console/api/regions", "", nil, ck).Body.Bytes(), &got)
	if got.Other || len(got.Regions) != 2 || got.Regions[0] != "eu-central-1" || got.Regions[1] != "us-east-1" {
		t.Errorf("choices = %+v, want exactly the server's regions, nothing typed", got)
	}
	if w := do(c, "POST", "/console/api/region", `{"region":"ap-south-1"}`, hdr, ck); w.Code != 400 {
		t.Errorf("a region the server does not accept: %d %s", w.Code, w.Body)
	}
	if w := do(c, "POST", "/console/api/region", `{"region":"eu-central-1"}`, hdr, ck); w.Code != 200 {
		t.Errorf("a region the server accepts: %d %s", w.Code, w.Body)
	}
}
