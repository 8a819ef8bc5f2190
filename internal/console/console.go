// Package console is OpenTrail's web console: a single-page application served
// at /console/ from assets embedded in the binary, and the small JSON API it
// talks to. The console holds no authority of its own: a sign-in turns an access
// key into a server-side session, and every page's data comes from the server's
// Invoke, the same role table, validation and self-audit as an API call.
package console

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/server"
)

// Backend is what the console needs from the server. *server.Server implements it.
type Backend interface {
	// Invoke runs one AWS-protocol operation for p through the API's authorisation and self-audit.
	Invoke(ctx context.Context, p server.Principal, service, op string, body []byte) ([]byte, error)
	// Authenticate checks an access key ID and its secret.
	Authenticate(accessKeyID, secret string) (auth.Key, error)
	// RecordSignIn durably records a console sign-in attempt.
	RecordSignIn(ctx context.Context, p server.Principal, keyID string, ok bool) error
	// LiveEvents streams the records of p's account and region appended from now on.
	LiveEvents(ctx context.Context, p server.Principal, emit func([]event.Record) error) error
	// TailLogGroup streams a log group's new events that match a filter pattern.
	TailLogGroup(ctx context.Context, p server.Principal, group, pattern string, emit func([]server.TailLine) error) error
	// CheckRegion refuses a region the API would refuse to sign for.
	CheckRegion(region string) error
}

// Options configure a Console.
type Options struct {
	Region      string        // the region sessions start in (the home region); default us-east-1
	IdleTimeout time.Duration // a session unused this long ends; default 30 minutes
	MaxAge      time.Duration // a session ends this long after sign-in; default 8 hours
	Now         func() time.Time

	// Regions, when set, are the only regions the server accepts (serve --regions): the region
	// picker offers exactly these. Otherwise it offers the home region and AccountRegions, and
	// takes any other name the server accepts.
	Regions []string
	// AccountRegions lists the regions an account has events in; nil: none but the home region.
	AccountRegions func(account string) ([]string, error)
	// Lag reports how far behind the journal each projection is, node-wide; nil: not shown.
	Lag func() []ProjectionLag
}

// Console serves /console/.
type Console struct {
	b        Backend
	log      *slog.Logger
	o        Options
	sessions *sessions
	throttle *throttle
	assets   map[string]asset
	closed   context.Context // done once Close is called: live streams end
	close    context.CancelFunc
}

// asset is one embedded file, with its gzip form computed once.
type asset struct {
	body, gz []byte
	ctype    string
	etag     string
}

//go:embed assets
var assetFS embed.FS

// userAgentPrefix names the console in the userAgent of the records its calls leave.
const userAgentPrefix = "opentrail-console/1"

// New returns a Console backed by b.
func New(b Backend, log *slog.Logger, o Options) *Console {
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 30 * time.Minute
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 8 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Console{b: b, log: log.With("component", "console"), o: o,
		sessions: newSessions(o.IdleTimeout, o.MaxAge, o.Now), throttle: newThrottle(o.Now), assets: map[string]asset{}}
	c.closed, c.close = context.WithCancel(context.Background())
	fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := assetFS.ReadFile(p)
		if err != nil {
			return err
		}
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(body)
		zw.Close()
		sum := sha256.Sum256(body)
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		c.assets[strings.TrimPrefix(p, "assets/")] = asset{body: body, gz: gz.Bytes(), ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	return c
}

// Close ends the live streams that are open and refuses none of the other requests; call it
// when the server starts shutting down (http.Server.RegisterOnShutdown).
func (c *Console) Close() { c.close() }

// contentSecurityPolicy allows only the console's own scripts and styles: no inline script, no
// third party, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// ServeHTTP routes /console/...
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	p := strings.TrimPrefix(r.URL.Path, "/console")
	if api, ok := strings.CutPrefix(p, "/api/"); ok {
		h.Set("Cache-Control", "no-store")
		c.api(w, r, api)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(p, "/")
	if name == "" {
		if p == "" {
			http.Redirect(w, r, "/console/", http.StatusFound)
			return
		}
		name = "index.html"
	}
	a, ok := c.assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache")
	h.Add("Vary", "Accept-Encoding")
	if r.Header.Get("If-None-Match") == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.body
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	w.Write(body)
}

// api serves the console's JSON API under /console/api/.
func (c *Console) api(w http.ResponseWriter, r *http.Request, name string) {
	if r.Method == http.MethodPost && !c.sameOrigin(r) {
		c.log.Warn("cross-site request refused", "path", r.URL.Path, "origin", r.Header.Get("Origin"), "ip", clientIP(r))
		writeError(w, http.StatusForbidden, "CrossSiteRequestRefused", "The request did not come from the console's own origin.")
		return
	}
	switch {
	case name == "signin" && r.Method == http.MethodPost:
		c.signIn(w, r)
		return
	}
	s := c.sessions.get(r)
	if s == nil && name == "session" && r.Method == http.MethodGet {
		writeJSON(w, http.StatusOK, map[string]any{}) // not signed in: the page shows the sign-in form
		return
	}
	if s == nil {
		writeError(w, http.StatusUnauthorized, "NotSignedIn", "Sign in to use the console.")
		return
	}
	if r.Method == http.MethodPost && !s.checkCSRF(r.Header.Get("X-CSRF-Token")) {
		c.log.Warn("request without a valid CSRF token refused", "path", r.URL.Path, "ip", clientIP(r))
		writeError(w, http.StatusForbidden, "InvalidCSRFToken", "The request's CSRF token is missing or wrong; reload the console.")
		return
	}
	p := c.principal(r, s)
	switch {
	case name == "session" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.info())
	case name == "signout" && r.Method == http.MethodPost:
		c.sessions.end(s)
		http.SetCookie(w, c.cookie(r, "", -1))
		writeJSON(w, http.StatusOK, map[string]any{})
	case name == "regions" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, c.regionChoices(s))
	case name == "region" && r.Method == http.MethodPost:
		c.setRegion(w, r, s)
	case name == "lag" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, c.lag(s.key.Role))
	case strings.HasPrefix(name, "call/") && r.Method == http.MethodPost:
		c.call(w, r, p, strings.TrimPrefix(name, "call/"))
	case (name == "live" || name == "tail") && r.Method == http.MethodGet:
		// Each stream holds a goroutine reading the journal: a session gets a few, not unbounded.
		if s.streams.Add(1) > maxStreams {
			s.streams.Add(-1)
			writeError(w, http.StatusTooManyRequests, "LimitExceededException", "Too many live streams are open in this session; close a tab.")
			return
		}
		defer s.streams.Add(-1)
		// A stream also ends when the console closes, so that a server shutting down is not held
		// open by browser tabs.
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(c.closed, cancel)()
		r = r.WithContext(ctx)
		if name == "live" {
			c.live(w, r, p)
		} else {
			c.tail(w, r, p)
		}
	default:
		writeError(w, http.StatusNotFound, "UnknownOperationException", "No such console operation.")
	}
}

// sameOrigin refuses a state-changing request a browser sent from another site: its Origin
// (or, without one, Sec-Fetch-Site) must name this host, and its body must be JSON, which a
// cross-site form cannot send without a CORS preflight this server never grants.
func (c *Console) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		return o == "http://"+r.Host || o == "https://"+r.Host
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return ct == "application/json"
}

// principal is the caller the server sees for a request made in session s.
func (c *Console) principal(r *http.Request, s *session) server.Principal {
	ua := userAgentPrefix
	if b := r.UserAgent(); b != "" {
		if len(b) > 200 {
			b = b[:200]
		}
		ua += " (" + b + ")"
	}
	return server.Principal{Key: s.key, Region: s.region(), SourceIP: clientIP(r), UserAgent: ua}
}

type signInRequest struct {
	AccessKeyID string `json:"accessKeyId"`
	Secret      string `json:"secret"`
}

// signIn checks a key and its secret once and starts a session; the secret is forgotten.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	var in signInRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&in); err != nil || in.AccessKeyID == "" || in.Secret == "" {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", "Give an access key ID and its secret access key.")
		return
	}
	ip := clientIP(r)
	if wait := c.throttle.blocked(in.AccessKeyID, ip); wait > 0 {
		c.log.Warn("console sign-in throttled", "access_key_id", in.AccessKeyID, "ip", ip)
		w.Header().Set("Retry-After", strings.TrimSuffix(wait.Round(time.Second).String(), "s"))
		writeError(w, http.StatusTooManyRequests, "ThrottlingException", "Too many failed sign-ins; try again in "+wait.Round(time.Second).String()+".")
		return
	}
	key, err := c.b.Authenticate(in.AccessKeyID, in.Secret)
	in.Secret = ""
	ok := err == nil
	p := server.Principal{Key: key, Region: c.o.Region, SourceIP: ip, UserAgent: c.principal(r, &session{}).UserAgent}
	if ok && key.Role == auth.RoleWriter {
		ok = false // writer keys only send events; they have nothing to see
	}
	if !ok {
		c.throttle.fail(in.AccessKeyID, ip)
		c.log.Warn("console sign-in failed", "access_key_id", in.AccessKeyID, "ip", ip)
	}
	if err := c.b.RecordSignIn(r.Context(), p, in.AccessKeyID, ok); err != nil {
		c.log.Error("console sign-in could not be recorded", "access_key_id", in.AccessKeyID, "err", err)
		writeError(w, http.StatusInternalServerError, "InternalFailure", "The sign-in could not be recorded; try again.")
		return
	}
	if !ok {
		writeError(w, http.StatusUnauthorized, "InvalidClientTokenId", "The access key ID or secret is wrong, or the key may not use the console.")
		return
	}
	c.throttle.succeed(in.AccessKeyID, ip)
	s := c.sessions.start(key, c.o.Region)
	http.SetCookie(w, c.cookie(r, s.id, int(c.o.MaxAge/time.Second)))
	writeJSON(w, http.StatusOK, s.info())
}

const cookieName = "opentrail_console"

// maxStreams is how many live streams (event history, dashboard, log tails) one session may hold open.
const maxStreams = 8

func (c *Console) cookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: cookieName, Value: value, Path: "/console/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil}
}

// call runs one operation, "service/Operation", through the server's Invoke.
func (c *Console) call(w http.ResponseWriter, r *http.Request, p server.Principal, name string) {
	service, op, ok := strings.Cut(name, "/")
	if !ok || service == "" || op == "" {
		writeError(w, http.StatusNotFound, "UnknownOperationException", "No such operation.")
		return
	}
	body, err := readAll(w, r, 1<<20)
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The request body is too large.")
		return
	}
	out, err := c.b.Invoke(r.Context(), p, service, op, body)
	if err != nil {
		var ae *awsapi.Error
		if errors.As(err, &ae) && ae != nil {
			writeError(w, ae.Status, ae.Code, ae.Message)
			return
		}
		c.log.Error("console call failed", "op", service+":"+op, "err", err)
		writeError(w, http.StatusInternalServerError, "InternalFailure", "An internal error occurred.")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

func readAll(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	return b.Bytes(), err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	if status == 0 {
		status = http.StatusBadRequest
	}
	writeJSON(w, status, map[string]string{"__type": code, "message": msg})
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
