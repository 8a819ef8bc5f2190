// Package server is OpenTrail's HTTP front: it authenticates every request with
// SigV4, authorises it by the key's role, and routes it to native ingest
// (POST /v1/records), the CloudTrail JSON 1.1 API (POST / with X-Amz-Target),
// or key management (POST /v1/keys). Every CloudTrail API call it serves is
// itself recorded in the journal as a management event, as AWS does.
package server

import (
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/cloudtrail"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/logs"
)

// Limits on requests.
const (
	MaxIngestBytes   = 1 << 20
	MaxIngestRecords = 500
	maxAPIBytes      = 1 << 20
)

// Server handles OpenTrail's HTTP API.
type Server struct {
	j       *journal.Journal
	ct      *cloudtrail.Service
	keys    *auth.Keyring
	verify  *awsapi.Verifier
	log     *slog.Logger
	now     func() time.Time
	version string
	logs    *logs.Service
	metrics http.Handler
	console http.Handler // the web console at /console/ (SetConsole); nil = not served
}

// Options configure a Server.
type Options struct {
	Now     func() time.Time
	Version string
	// Logs serves the CloudWatch Logs API (X-Amz-Target Logs_20140328.*); nil = not served.
	Logs *logs.Service
	// Metrics serves GET /metrics (Prometheus text format, unauthenticated); nil = not served.
	Metrics http.Handler
}

// New returns a Server.
func New(j *journal.Journal, ct *cloudtrail.Service, keys *auth.Keyring, log *slog.Logger, o Options) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{j: j, ct: ct, keys: keys, log: log.With("component", "server"), now: o.Now, version: o.Version,
		logs: o.Logs, metrics: o.Metrics}
	s.verify = &awsapi.Verifier{
		Lookup: func(id string) (string, bool) {
			_, secret, ok := keys.Lookup(id)
			return secret, ok
		},
		Now: o.Now,
	}
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
}

// ServeHTTP routes one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rq := &request{id: newRequestID(), start: s.now().UTC(), ip: clientIP(r), agent: r.UserAgent()}
	switch {
	case r.URL.Path == "/healthz" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
		return
	case r.URL.Path == "/metrics" && r.Method == http.MethodGet && s.metrics != nil:
		s.metrics.ServeHTTP(w, r)
		return
	case s.serveConsole(w, r):
		return
	case r.Method != http.MethodPost:
		s.fail(w, rq, awsapi.Errorf("UnknownOperationException", "%s %s is not an OpenTrail operation", r.Method, r.URL.Path))
		return
	}
	limit := int64(maxAPIBytes)
	if r.URL.Path == "/v1/records" {
		limit = MaxIngestBytes
	}
	body, err := readBody(w, r, limit)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.fail(w, rq, &awsapi.Error{Code: "RequestEntityTooLarge", Status: http.StatusRequestEntityTooLarge,
				Message: fmt.Sprintf("request body exceeds %d bytes", limit)})
			return
		}
		s.fail(w, rq, awsapi.Errorf("SerializationException", "could not read the request body: %v", err))
		return
	}
	if err := s.authenticate(r, body, rq, signingService(r)); err != nil {
		s.fail(w, rq, err)
		return
	}
	switch r.URL.Path {
	case "/v1/records":
		s.ingest(w, r, rq, body)
	case "/v1/keys":
		s.createKey(w, r, rq, body)
	case "/v1/tail":
		s.tail(w, r, rq, body)
	case "/v1/deadletters":
		s.deadLetters(w, r, rq, body)
	case "/PutAuditEvents":
		s.putAuditEvents(w, r, rq, body)
	case "/":
		if isLogsTarget(r) {
			s.logsAPI(w, r, rq, body)
			return
		}
		s.cloudTrail(w, r, rq, body)
	default:
		s.fail(w, rq, awsapi.Errorf("UnknownOperationException", "POST %s is not an OpenTrail operation", r.URL.Path))
	}
}

// signingService is the SigV4 service a request must be signed for.
func signingService(r *http.Request) string {
	if r.URL.Path == "/" && isLogsTarget(r) {
		return "logs"
	}
	if r.URL.Path == "/PutAuditEvents" {
		return "cloudtrail-data"
	}
	return "cloudtrail"
}

func (s *Server) authenticate(r *http.Request, body []byte, rq *request, service string) error {
	scope, err := s.verify.Verify(r, body)
	if err != nil {
		return err
	}
	if scope.Service != service {
		return awsapi.Errorf("InvalidSignatureException", "Credential should be scoped to correct service: '%s'. ", service)
	}
	key, _, ok := s.keys.Lookup(scope.AccessKeyID)
	if !ok {
		return awsapi.Errorf("UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	rq.key, rq.region = key, scope.Region
	return nil
}

func (s *Server) fail(w http.ResponseWriter, rq *request, err error) {
	awsapi.WriteError(w, rq.id, err, s.log)
}

// denied is the AccessDeniedException AWS gives an unauthorised call.
func denied(k auth.Key, action string) error {
	return awsapi.Errorf("AccessDeniedException", "User: %s is not authorized to perform: %s", k.ARN(), action)
}

// caller is the cloudtrail view of the authenticated key.
func (rq *request) caller() cloudtrail.Caller {
	return cloudtrail.Caller{
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

// principalID is a stable unique ID for a key's user, shaped like AWS's (AIDA…).
func principalID(k auth.Key) string {
	if k.Role == auth.RoleRoot {
		return k.Account
	}
	sum := sha256.Sum256([]byte(k.Account + "/" + k.User))
	return "AIDA" + strings.ToUpper(base32.StdEncoding.EncodeToString(sum[:])[:17])
}

// readBody reads the whole body, at most limit bytes, in one allocation when the length is known.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
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
