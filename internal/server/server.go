// Package server is OpenTrail's HTTP front: it authenticates every request with
// SigV4, authorises it by the key's role, and routes it to native ingest
// (POST /v1/records), the CloudTrail JSON 1.1 API including Lake (POST / with
// X-Amz-Target CloudTrail_20131101.*), the CloudWatch Logs API (X-Amz-Target
// Logs_20140328.*), PutAuditEvents for channels (POST /PutAuditEvents, signed
// for cloudtrail-data), key management (POST /v1/keys), live tail (POST
// /v1/tail), findings and rules of the detections (POST /v1/findings,
// /v1/rules) and the dead letters of subscriptions, findings destinations and
// trail notifications (POST /v1/deadletters). GET /healthz needs no
// signature; metrics are served on their own listener (app). Every CloudTrail
// and Logs API call it serves, and every change through the native
// endpoints, is itself recorded in the journal as a management event, as AWS
// does.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/cloudtrail"
	"github.com/opentrail/opentrail/internal/delivery"
	"github.com/opentrail/opentrail/internal/detect"
	"github.com/opentrail/opentrail/internal/ingest"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/logs"
)

// Limits on requests.
const (
	maxAPIBytes = 1 << 20

	// bodyReadTimeout bounds how long a client may take to send a request
	// body once its headers are in (the listener's ReadHeaderTimeout bounds
	// the headers).
	bodyReadTimeout = 30 * time.Second
	// DefaultBodyBudget bounds the request bodies buffered at once, all
	// clients together; a request that finds no room waits briefly, then is
	// answered 429 ThrottlingException, which the SDKs retry.
	DefaultBodyBudget = 256 << 20
	bodyBudgetWait    = 5 * time.Second
)

// Timeouts a listener serving Server should use (serve, tests, benchmarks).
const (
	ReadHeaderTimeout = 10 * time.Second
	IdleTimeout       = 120 * time.Second
)

// Server handles OpenTrail's HTTP API.
type Server struct {
	j       *journal.Journal
	w       *ingest.Writer
	ct      *cloudtrail.Service
	keys    *auth.Keyring
	verify  *awsapi.Verifier
	log     *slog.Logger
	access  *slog.Logger
	now     func() time.Time
	version string
	logs    *logs.Service
	apis    map[string]*api
	regions map[string]bool
	budget  *semaphore.Weighted
	metrics *httpMetrics
	detect  *detect.Service
	notify  *delivery.Notifier
	// auditFault, in tests, makes writing a self-audit record fail.
	auditFault func(op string) error
	admitFn    func() error
	console    http.Handler // the web console at /console/ (SetConsole); nil = not served
}

// Options configure a Server.
type Options struct {
	Now     func() time.Time
	Version string
	// Logs serves the CloudWatch Logs API (X-Amz-Target Logs_20140328.*); nil = not served.
	Logs *logs.Service
	// Regions, when set, are the only regions requests may be signed for;
	// otherwise any name of AWS's region syntax is accepted.
	Regions []string
	// BodyBudget bounds the request bytes buffered at once; 0 = DefaultBodyBudget.
	BodyBudget int64
	// Registerer receives the HTTP request metrics; nil = not collected.
	Registerer prometheus.Registerer
	// Detect serves POST /v1/findings and /v1/rules; nil = no detections (empty answers).
	Detect *detect.Service
	// Notify lists and replays the dead letters of trail file notifications
	// (POST /v1/deadletters); nil = none.
	Notify *delivery.Notifier
	// Admit, when set, is asked before records from outside (ingest,
	// PutAuditEvents, PutLogEvents) are written; its error is the answer
	// (e.g. 503 when the disk is nearly full; reads go on).
	Admit func() error
}

// admit is Options.Admit, or nil.
func (s *Server) admit() error {
	if s.admitFn == nil {
		return nil
	}
	return s.admitFn()
}

// New returns a Server.
func New(j *journal.Journal, ct *cloudtrail.Service, keys *auth.Keyring, log *slog.Logger, o Options) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.BodyBudget <= 0 {
		o.BodyBudget = DefaultBodyBudget
	}
	s := &Server{j: j, ct: ct, keys: keys, log: log.With("component", "server"), access: log.With("component", "access"),
		now: o.Now, version: o.Version, logs: o.Logs, budget: semaphore.NewWeighted(o.BodyBudget), metrics: newHTTPMetrics(o.Registerer), admitFn: o.Admit,
		detect: o.Detect, notify: o.Notify}
	if len(o.Regions) > 0 {
		s.regions = map[string]bool{}
		for _, r := range o.Regions {
			s.regions[r] = true
		}
	}
	s.w = ingest.NewWriter(j, o.Now)
	s.verify = &awsapi.Verifier{
		Lookup: func(id string) (string, bool) {
			_, secret, ok := keys.Lookup(id)
			return secret, ok
		},
		Now: o.Now,
	}
	s.apis = s.newAPIs()
	return s
}

// request is what every handler knows about the call it serves.
type request struct {
	id     string
	start  time.Time
	key    auth.Key
	region string
	ip     string
	agent  string
	op     string // the IAM action, "service:Operation", once known
}

// route is where a request goes: an AWS-protocol service, or one of
// OpenTrail's own endpoints (api nil), and the SigV4 service it is signed for.
type route struct {
	api     *api
	op      string
	native  func(s *Server, w http.ResponseWriter, r *http.Request, rq *request, body []byte)
	signing string
	limit   int64
}

var natives = map[string]route{
	"/v1/records":     {native: (*Server).ingest, signing: "cloudtrail", limit: ingest.MaxRequestBytes},
	"/v1/keys":        {native: (*Server).createKey, signing: "cloudtrail", limit: maxAPIBytes},
	"/v1/tail":        {native: (*Server).tail, signing: "cloudtrail", limit: maxAPIBytes},
	"/v1/deadletters": {native: (*Server).deadLetters, signing: "cloudtrail", limit: maxAPIBytes},
	"/v1/findings":    {native: (*Server).findingsAPI, signing: "cloudtrail", limit: maxAPIBytes},
	"/v1/rules":       {native: (*Server).rulesAPI, signing: "cloudtrail", limit: maxAPIBytes},
	"/PutAuditEvents": {native: (*Server).putAuditEvents, signing: "cloudtrail-data", limit: maxAPIBytes},
}

// routeOf finds where a POST goes, before its body is read.
func (s *Server) routeOf(r *http.Request) (route, error) {
	if r.URL.Path != "/" {
		if rt, ok := natives[r.URL.Path]; ok {
			return rt, nil
		}
		return route{}, awsapi.Errorf("UnknownOperationException", "POST %s is not an OpenTrail operation", r.URL.Path)
	}
	target := r.Header.Get("X-Amz-Target")
	for _, a := range s.apis {
		if op, ok := awsapi.Operation(target, a.target); ok {
			return route{api: a, op: op, signing: a.name, limit: maxAPIBytes}, nil
		}
	}
	return route{}, awsapi.Errorf("UnknownOperationException", "unknown operation %q", target)
}

// ServeHTTP routes one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rq := &request{id: newRequestID(), start: s.now().UTC(), ip: clientIP(r), agent: r.UserAgent()}
	sw := &statusWriter{ResponseWriter: w}
	defer s.logAccess(sw, r, rq)
	w = sw
	switch {
	case r.URL.Path == "/healthz" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
		return
	case s.serveConsole(w, r):
		return
	case r.Method != http.MethodPost:
		s.fail(w, rq, awsapi.Errorf("UnknownOperationException", "%s %s is not an OpenTrail operation", r.Method, r.URL.Path))
		return
	}
	rt, err := s.routeOf(r)
	if err != nil {
		s.fail(w, rq, err)
		return
	}
	// Who is calling is settled from the headers alone, before a byte of the
	// body is read: an unauthenticated client can make the server buffer nothing.
	if err := s.precheck(r, rq, rt.signing); err != nil {
		s.authFailed(r, rq, err)
		s.fail(w, rq, err)
		return
	}
	body, err := s.readBody(w, r, rt.limit)
	if err != nil {
		s.fail(w, rq, err)
		return
	}
	if err := s.authenticate(r, body, rq, rt.signing); err != nil {
		s.authFailed(r, rq, err)
		s.fail(w, rq, err)
		return
	}
	if rt.native != nil {
		rt.native(s, w, r, rq, body)
		return
	}
	out, err := s.dispatch(r.Context(), rq, rt.api, rt.op, body)
	if err != nil {
		s.fail(w, rq, err)
		return
	}
	awsapi.WriteJSON(w, rq.id, http.StatusOK, out)
}

// regionRE is AWS's region syntax: us-east-1, eu-central-2, us-gov-west-1,
// cn-north-1, eusc-de-east-1; the isolated partitions' names (us-isob-east-1)
// and the anonymised ones of published records (euiso-westwest-1r) fit too.
var regionRE = regexp.MustCompile(`^[a-z]{2,8}(-[a-z]+){1,3}-[0-9]{1,2}[a-z]?$`)

// checkRegion refuses a signing region that is not a region: every record of
// the call would carry it, and trails would deliver to its folders.
func (s *Server) checkRegion(region string) error {
	if !regionRE.MatchString(region) || (s.regions != nil && !s.regions[region]) {
		return awsapi.Errorf("InvalidSignatureException", "Credential should be scoped to a valid region. ")
	}
	return nil
}

// CheckRegion is the rule every request's signing region meets, for callers
// that pick a region another way (the console's region picker).
func (s *Server) CheckRegion(region string) error { return s.checkRegion(region) }

// precheck checks the Authorization header (form, time, known key) and its
// scope (service and region) without reading the body.
func (s *Server) precheck(r *http.Request, rq *request, service string) error {
	scope, err := s.verify.Precheck(r)
	if err != nil {
		return err
	}
	rq.key.AccessKeyID = scope.AccessKeyID
	if scope.Service != service {
		return awsapi.Errorf("InvalidSignatureException", "Credential should be scoped to correct service: '%s'. ", service)
	}
	return s.checkRegion(scope.Region)
}

func (s *Server) authenticate(r *http.Request, body []byte, rq *request, service string) error {
	scope, err := s.verify.Verify(r, body)
	if err != nil {
		return err
	}
	if scope.Service != service {
		return awsapi.Errorf("InvalidSignatureException", "Credential should be scoped to correct service: '%s'. ", service)
	}
	if err := s.checkRegion(scope.Region); err != nil {
		return err
	}
	key, _, ok := s.keys.Lookup(scope.AccessKeyID)
	if !ok {
		return awsapi.Errorf("UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	rq.key, rq.region = key, scope.Region
	return nil
}

// authFailed logs a refused sign-in: who claimed to call (the key ID, never a
// secret or signature), from where, and why.
func (s *Server) authFailed(r *http.Request, rq *request, err error) {
	code := "InternalFailure"
	var ae *awsapi.Error
	if errors.As(err, &ae) {
		code = ae.Code
	}
	s.log.Warn("authentication failed", "request_id", rq.id, "access_key_id", rq.key.AccessKeyID, "source_ip", rq.ip,
		"path", r.URL.Path, "code", code)
}

// allowed reports whether rq's key may call action, and names it in rq.
func (s *Server) allowed(rq *request, action string, readOnly bool) bool {
	rq.op = action
	return auth.Allowed(rq.key.Role, action, readOnly)
}

func (s *Server) fail(w http.ResponseWriter, rq *request, err error) {
	awsapi.WriteError(w, rq.id, err, s.log)
}

// denied is the AccessDeniedException AWS gives an unauthorised call.
func denied(k auth.Key, action string) error {
	return awsapi.Errorf("AccessDeniedException", "User: %s is not authorized to perform: %s", k.ARN(), action)
}

// caller is the cloudtrail view of the authenticated key.
func (rq *request) caller() auth.Caller {
	return auth.Caller{
		Account: rq.key.Account, Region: rq.region, AccessKeyID: rq.key.AccessKeyID,
		ARN: rq.key.ARN(), UserName: rq.key.User, Root: rq.key.Role == auth.RoleRoot,
	}
}

// newRequestID returns an ID shaped like AWS's request IDs (a random UUID).
func newRequestID() string { return uuid.NewString() }

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// readBody reads the whole body, at most limit bytes, within bodyReadTimeout,
// out of the server-wide budget of buffered bodies.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	want := limit
	if r.ContentLength >= 0 && r.ContentLength < limit {
		want = r.ContentLength
	}
	ctx, cancel := context.WithTimeout(r.Context(), bodyBudgetWait)
	err := s.budget.Acquire(ctx, want)
	cancel()
	if err != nil {
		return nil, &awsapi.Error{Code: "ThrottlingException", Status: http.StatusTooManyRequests, Message: "Rate exceeded: too many request bodies in flight; retry."}
	}
	defer s.budget.Release(want)
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(bodyReadTimeout))
	defer rc.SetReadDeadline(time.Time{})
	body, err := readLimited(w, r, limit)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &awsapi.Error{Code: "RequestEntityTooLarge", Status: http.StatusRequestEntityTooLarge,
				Message: fmt.Sprintf("request body exceeds %d bytes", limit)}
		}
		return nil, awsapi.Errorf("SerializationException", "could not read the request body: %v", err)
	}
	return body, nil
}

// readLimited reads the whole body, at most limit bytes, in one allocation when the length is known.
func readLimited(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, limit)
	if r.ContentLength < 0 || r.ContentLength > limit {
		return io.ReadAll(body)
	}
	buf := make([]byte, r.ContentLength, r.ContentLength+1)
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, err
	}
	// A body longer than announced is an error, as net/http would report it.
	if n, _ := body.Read(buf[len(buf):cap(buf)]); n > 0 {
		return nil, errors.New("body longer than its Content-Length")
	}
	return buf, nil
}
