package console

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/server"
)

// fakeBackend is an in-memory Backend for the console's own rules (sessions, CSRF,
// throttling); the browser tests run the real server.
type fakeBackend struct {
	mu        sync.Mutex
	keys      map[string]auth.Key
	secrets   map[string]string
	signIns   []bool
	calls     []server.Principal
	recordErr error
}

func newFake() *fakeBackend {
	return &fakeBackend{
		keys: map[string]auth.Key{"AKIAADMIN": {AccessKeyID: "AKIAADMIN", Account: "111111111111", User: "alice", Role: auth.RoleAdmin}, "AKIAWRITER": {AccessKeyID: "AKIAWRITER", Account: "111111111111", User: "w", Role: auth.RoleWriter},
			"AKIAROOT": {AccessKeyID: "AKIAROOT", Account: "111111111111", Role: auth.RoleRoot}},
		secrets: map[string]string{"AKIAADMIN": "right", "AKIAWRITER": "right", "AKIAROOT": "right"},
	}
}

func (f *fakeBackend) Invoke(ctx context.Context, p server.Principal, service, op string, body []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, p)
	if op == "CreateTrail" && p.Key.Role == auth.RoleReader {
		return nil, awsapi.Errorf("AccessDeniedException", "no")
	}
	return []byte(`{"ok":true}`), nil
}

func (f *fakeBackend) Authenticate(id, secret string) (auth.Key, error) {
	if k, ok := f.keys[id]; ok && f.secrets[id] == secret {
		return k, nil
	}
	return auth.Key{}, errors.New("bad key")
}

func (f *fakeBackend) RecordSignIn(ctx context.Context, p server.Principal, keyID string, ok bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signIns = append(f.signIns, ok)
	return f.recordErr
}

func (f *fakeBackend) LiveEvents(ctx context.Context, p server.Principal, emit func([]event.Record) error) error {
	if err := emit(nil); err != nil {
		return err
	}
	<-ctx.Done() // a live stream lasts until the browser goes away
	return nil
}

func (f *fakeBackend) TailLogGroup(ctx context.Context, p server.Principal, group, pattern string, emit func([]server.TailLine) error) error {
	return emit(nil)
}

var regionSyntax = regexp.MustCompile(`^[a-z]{2}-[a-z]+-[0-9]$`)

func (f *fakeBackend) CheckRegion(region string) error {
	if !regionSyntax.MatchString(region) {
		return awsapi.Errorf("InvalidSignatureException", "Credential should be scoped to a valid region. ")
	}
	return nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTest() (*Console, *fakeBackend, *clock) {
	f, clk := newFake(), &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return New(f, slog.New(slog.DiscardHandler), Options{Now: clk.now, IdleTimeout: 10 * time.Minute, MaxAge: time.Hour}), f, clk
}

func do(c *Console, method, path, body string, hdr map[string]string, cookie *http.Cookie) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://console.test"+path, strings.NewReader(body))
	r.RemoteAddr = "192.0.2.1:1234"
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	if cookie != nil {
		r.AddCookie(cookie)
	}
	w := httptest.NewRecorder()
	c.ServeHTTP(w, r)
	return w
}

var jsonHdr = map[string]string{"Content-Type": "application/json", "Origin": "http://console.test"}

func signIn(t *testing.T, c *Console, id, secret string) (*http.Cookie, string) {
	t.Helper()
	w := do(c, "POST", "/console/api/signin", `{"accessKeyId":"`+id+`","secret":"`+secret+`"}`, jsonHdr, nil)
	if w.Code != 200 {
		t.Fatalf("sign in: %d %s", w.Code, w.Body)
	}
	csrf := regexp.MustCompile(`"csrf":"([^"]+)"`).FindStringSubmatch(w.Body.String())[1]
	return w.Result().Cookies()[0], csrf
}

func TestSessionCookie(t *testing.T) {
	c, _, _ := newTest()
	ck, _ := signIn(t, c, "AKIAADMIN", "right")
	if ck.Name != cookieName || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.Path != "/console/" {
		t.Errorf("cookie over plain HTTP = %+v", ck)
	}
	r := httptest.NewRequest("POST", "https://console.test/console/api/signin", strings.NewReader(`{"accessKeyId":"AKIAADMIN","secret":"right"}`))
	r.TLS = &tls.ConnectionState{}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Origin", "https://console.test")
	w := httptest.NewRecorder()
	c.ServeHTTP(w, r)
	if cks := w.Result().Cookies(); w.Code != 200 || len(cks) != 1 || !cks[0].Secure {
		t.Errorf("cookie under TLS: %d %+v", w.Code, cks)
	}
	if strings.Contains(w.Body.String(), "right") {
		t.Error("the sign-in answer repeats the secret")
	}
}

func TestSessionEnds(t *testing.T) {
	c, _, clk := newTest()
	session := func(ck *http.Cookie) bool {
		return strings.Contains(do(c, "GET", "/console/api/session", "", nil, ck).Body.String(), `"csrf"`)
	}
	ck, csrf := signIn(t, c, "AKIAADMIN", "right")
	clk.t = clk.t.Add(9 * time.Minute)
	if !session(ck) {
		t.Fatal("session ended before its idle timeout")
	}
	clk.t = clk.t.Add(11 * time.Minute)
	if session(ck) {
		t.Error("session outlived its idle timeout")
	}
	ck, _ = signIn(t, c, "AKIAADMIN", "right")
	for range 8 { // used every 9 minutes, it still ends an hour after sign-in
		clk.t = clk.t.Add(9 * time.Minute)
		session(ck)
	}
	if session(ck) {
		t.Error("session outlived its maximum age")
	}
	ck, csrf = signIn(t, c, "AKIAADMIN", "right")
	hdr := map[string]string{"Content-Type": "application/json", "Origin": "http://console.test", "X-CSRF-Token": csrf}
	if w := do(c, "POST", "/console/api/signout", "{}", hdr, ck); w.Code != 200 {
		t.Fatalf("sign out: %d %s", w.Code, w.Body)
	}
	if session(ck) {
		t.Error("session survived signing out")
	}
}

func TestCSRFAndOrigin(t *testing.T) {
	c, f, _ := newTest()
	ck, csrf := signIn(t, c, "AKIAADMIN", "right")
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		code int
	}{
		{"right token, own origin", map[string]string{"Content-Type": "application/json", "Origin": "http://console.test", "X-CSRF-Token": csrf}, 200},
		{"right token, no origin, JSON", map[string]string{"Content-Type": "application/json", "X-CSRF-Token": csrf}, 200},
		{"no token", map[string]string{"Content-Type": "application/json", "Origin": "http://console.test"}, 403},
		{"wrong token", map[string]string{"Content-Type": "application/json", "Origin": "http://console.test", "X-CSRF-Token": csrf + "x"}, 403},
		{"other origin", map[string]string{"Content-Type": "application/json", "Origin": "http://evil.test", "X-CSRF-Token": csrf}, 403},
		{"cross-site fetch metadata", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site", "X-CSRF-Token": csrf}, 403},
		{"form body without origin", map[string]string{"Content-Type": "text/plain", "X-CSRF-Token": csrf}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if w := do(c, "POST", "/console/api/call/cloudtrail/CreateTrail", `{"Name":"t"}`, tc.hdr, ck); w.Code != tc.code {
				t.Errorf("%d %s, want %d", w.Code, w.Body, tc.code)
			}
		})
	}
	if len(f.calls) != 2 || !strings.HasPrefix(f.calls[0].UserAgent, userAgentPrefix) || f.calls[0].Key.AccessKeyID != "AKIAADMIN" {
		t.Errorf("calls reaching the server = %+v, want the two allowed, named as the console", f.calls)
	}
	if w := do(c, "POST", "/console/api/signin", `{"accessKeyId":"AKIAADMIN","secret":"right"}`,
		map[string]string{"Content-Type": "application/json", "Origin": "http://evil.test"}, nil); w.Code != 403 {
		t.Errorf("cross-site sign-in: %d", w.Code)
	}
}

func TestSignInThrottled(t *testing.T) {
	c, f, clk := newTest()
	try := func(id, secret, ip string) int {
		r := httptest.NewRequest("POST", "http://console.test/console/api/signin", strings.NewReader(`{"accessKeyId":"`+id+`","secret":"`+secret+`"}`))
		r.RemoteAddr = ip + ":1"
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		c.ServeHTTP(w, r)
		return w.Code
	}
	for i := range freeFailures + 1 {
		if code := try("AKIAADMIN", "wrong", "192.0.2.1"); code != 401 {
			t.Fatalf("failure %d: %d, want 401", i+1, code)
		}
	}
	if code := try("AKIAADMIN", "right", "192.0.2.9"); code != 429 {
		t.Errorf("right secret for a throttled key from another address: %d, want 429", code)
	}
	if code := try("AKIAOTHER", "x", "192.0.2.1"); code != 429 {
		t.Errorf("another key from a throttled address: %d, want 429", code)
	}
	clk.t = clk.t.Add(firstBlock + time.Second)
	if code := try("AKIAADMIN", "right", "192.0.2.9"); code != 200 {
		t.Errorf("after the wait: %d, want 200", code)
	}
	if code := try("AKIAWRITER", "right", "192.0.2.10"); code != 401 {
		t.Errorf("writer key: %d, want 401 (writer keys only send events)", code)
	}
	want := []bool{false, false, false, false, true, false}
	if len(f.signIns) != len(want) {
		t.Fatalf("recorded sign-ins %v, want %v (throttled attempts are refused before the secret is checked)", f.signIns, want)
	}
	for i := range want {
		if f.signIns[i] != want[i] {
			t.Errorf("recorded sign-ins %v, want %v", f.signIns, want)
		}
	}
	f.recordErr = errors.New("journal full")
	if code := try("AKIAADMIN", "right", "192.0.2.11"); code != 500 {
		t.Errorf("sign-in that could not be recorded: %d, want 500", code)
	}
}

func TestAssets(t *testing.T) {
	c, _, _ := newTest()
	total := 0
	for _, name := range []string{"index.html", "app.js", "app.css", "favicon.svg"} {
		a, ok := c.assets[name]
		if !ok {
			t.Fatalf("%s is not embedded", name)
		}
		total += len(a.gz)
	}
	if total > 300<<10 {
		t.Errorf("first view is %d bytes compressed, over 300 KB", total)
	}
	t.Logf("first view: %d bytes compressed", total)
	w := do(c, "GET", "/console/", "", map[string]string{"Accept-Encoding": "gzip"}, nil)
	if w.Code != 200 || w.Header().Get("Content-Encoding") != "gzip" || !strings.Contains(w.Header().Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("GET /console/: %d %v", w.Code, w.Header())
	}
	index := string(c.assets["index.html"].body)
	if regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`).MatchString(index) || regexp.MustCompile(`\son[a-z]+=`).MatchString(index) {
		t.Error("index.html has inline script, which the Content-Security-Policy forbids")
	}
	if w := do(c, "GET", "/console/nothing.js", "", nil, nil); w.Code != 404 {
		t.Errorf("unknown asset: %d", w.Code)
	}
}

func TestStreamsPerSession(t *testing.T) {
	c, _, _ := newTest()
	ck, _ := signIn(t, c, "AKIAADMIN", "right")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range maxStreams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := httptest.NewRequest("GET", "http://console.test/console/api/live", nil).WithContext(ctx)
			r.AddCookie(ck)
			c.ServeHTTP(httptest.NewRecorder(), r)
		}()
	}
	var s *session
	for s == nil || s.streams.Load() < maxStreams {
		time.Sleep(time.Millisecond)
		r := httptest.NewRequest("GET", "http://console.test/", nil)
		r.AddCookie(ck)
		s = c.sessions.get(r)
	}
	if w := do(c, "GET", "/console/api/live", "", nil, ck); w.Code != http.StatusTooManyRequests {
		t.Errorf("stream %d: %d, want 429", maxStreams+1, w.Code)
	}
	c.Close() // as a server shutting down does: every stream ends
	wg.Wait()
	cancel()
	if n := s.streams.Load(); n != 0 {
		t.Errorf("%d streams still counted after they closed", n)
	}
}
