package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/opentrail/opentrail/internal/event"
)

// Options configure a Proxy.
type Options struct {
	// Upstream is the service the proxy forwards to, http or https,
	// e.g. https://dynamodb.us-east-1.amazonaws.com.
	Upstream string
	// Transport carries requests upstream; nil: one tuned for many small calls.
	Transport http.RoundTripper
	// Sink takes the records (NewRemoteSink, NewLocalSink).
	Sink Sink
	// SpoolDir holds records OpenTrail could not take yet; SpoolMaxBytes bounds
	// it (default 1 GiB). Required.
	SpoolDir      string
	SpoolMaxBytes int64
	// Policy, when set, is the endpoint policy: denied calls are not forwarded.
	Policy *Policy
	// FailOpen forwards calls that cannot be recorded (spool full); by default
	// they are refused with 503 and not forwarded.
	FailOpen bool
	// Resolve maps a caller's access key ID to its identity; nil or false: unknown.
	Resolve func(accessKeyID string) (Identity, bool)
	// Redact is RedactMask (default) or RedactHMAC; HMACKey is required for HMAC.
	Redact  string
	HMACKey []byte
	// ResponseElements records (redacted) response bodies; off by default.
	ResponseElements bool
	// VPCEndpointID identifies the proxy in records; default derived from
	// ListenAddr: vpce- and 17 hex digits of its SHA-256.
	VPCEndpointID string
	ListenAddr    string
	// Account is the account of callers the resolver does not know, and of
	// the endpoint; default 123456789012. Region is used when a request is unsigned.
	Account string
	Region  string
	// MaxParseBytes is how much of a request body is parsed for
	// requestParameters (default 1 MiB); the body is forwarded whole regardless.
	MaxParseBytes int64
	// SinkTimeout bounds one write to the sink before records go to the spool (default 5s).
	SinkTimeout time.Duration
	Log         *slog.Logger
	// Registry, when set, receives the proxy's metrics.
	Registry *prometheus.Registry
	Now      func() time.Time
}

// Validate names the first bad option.
func (o *Options) Validate() error {
	switch {
	case o.Upstream == "":
		return errors.New("proxy: upstream is empty")
	case o.Sink == nil:
		return errors.New("proxy: no sink")
	case o.SpoolDir == "":
		return errors.New("proxy: spool dir is empty")
	case o.SpoolMaxBytes < 1<<20:
		return fmt.Errorf("proxy: spool max bytes %d is below 1 MiB", o.SpoolMaxBytes)
	case o.Redact != RedactMask && o.Redact != RedactHMAC:
		return fmt.Errorf("proxy: redact %q is not mask or hmac", o.Redact)
	case o.Redact == RedactHMAC && len(o.HMACKey) < 16:
		return errors.New("proxy: redact hmac needs an HMAC key of at least 16 bytes")
	case !strings.HasPrefix(o.VPCEndpointID, "vpce-"):
		return fmt.Errorf("proxy: vpc endpoint id %q does not start with vpce-", o.VPCEndpointID)
	case len(o.Account) != 12 || strings.Trim(o.Account, "0123456789") != "":
		return fmt.Errorf("proxy: account %q is not a 12-digit account ID", o.Account)
	}
	u, err := url.Parse(o.Upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("proxy: upstream %q is not an http or https URL", o.Upstream)
	}
	return nil
}

// EndpointID is the default vpcEndpointId of a proxy listening on addr.
func EndpointID(addr string) string {
	sum := sha256.Sum256([]byte("opentrail-proxy/" + addr))
	return "vpce-" + hex.EncodeToString(sum[:])[:17]
}

// Proxy is the audit proxy, an http.Handler.
type Proxy struct {
	o        Options
	upstream *url.URL
	rp       *httputil.ReverseProxy
	spool    *spool
	red      *redactor
	log      *slog.Logger
	schemas  schemaCache
	specs    sync.Map // service → *compiledSpec

	queue chan *pending
	// coming counts the calls forwarded whose record is not queued yet:
	// the committer waits a little for them (see committer).
	coming  atomic.Int64
	wake    chan struct{}
	healthy atomic.Bool
	ctx     context.Context
	cancel  context.CancelFunc
	workers sync.WaitGroup

	mu       sync.Mutex // guards closing and inflight.Add
	closing  bool
	inflight sync.WaitGroup

	m counters
}

// counters are the proxy's metrics.
type counters struct {
	calls, denied, spooled, failedClosed, failedOpen, shipErrors, lost, rejected atomic.Int64
}

// Stats is a snapshot of the counters.
type Stats struct {
	Calls, Denied, Spooled, FailedClosed, FailedOpen, ShipErrors, Lost, Rejected int64
	SpoolBytes                                                                   int64
	ShipLag                                                                      time.Duration
}

// New opens the spool (recovering what a previous run left) and starts the
// workers that deliver records. Close stops them.
func New(o Options) (*Proxy, error) {
	if o.SpoolMaxBytes == 0 {
		o.SpoolMaxBytes = 1 << 30
	}
	if o.Redact == "" {
		o.Redact = RedactMask
	}
	if o.VPCEndpointID == "" {
		o.VPCEndpointID = EndpointID(o.ListenAddr)
	}
	if o.Account == "" {
		o.Account = "123456789012"
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.MaxParseBytes <= 0 {
		o.MaxParseBytes = 1 << 20
	}
	if o.SinkTimeout <= 0 {
		o.SinkTimeout = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	u, _ := url.Parse(o.Upstream)
	p := &Proxy{o: o, upstream: u, log: o.Log.With("component", "proxy"),
		red: &redactor{mode: o.Redact, key: o.HMACKey}, queue: make(chan *pending, 4096), wake: make(chan struct{}, 1)}
	var err error
	if p.spool, err = openSpool(o.SpoolDir, o.SpoolMaxBytes, p.log); err != nil {
		return nil, err
	}
	if o.Registry != nil {
		if err := p.register(o.Registry); err != nil {
			p.spool.close()
			return nil, err
		}
	}
	tr := o.Transport
	if tr == nil {
		tr = &http.Transport{
			Proxy: nil, DialContext: (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns: 1024, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second, ExpectContinueTimeout: time.Second,
			// Bodies pass through as they are: no transparent gzip.
			DisableCompression: true, ForceAttemptHTTP2: true,
		}
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      tr,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
		BufferPool:     bufferPool{},
	}
	p.healthy.Store(true)
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.workers.Add(2)
	go p.committer()
	go p.shipper()
	p.kick()
	return p, nil
}

// Stats returns the counters.
func (p *Proxy) Stats() Stats {
	used, reserved := p.spool.size()
	return Stats{
		Calls: p.m.calls.Load(), Denied: p.m.denied.Load(), Spooled: p.m.spooled.Load(),
		FailedClosed: p.m.failedClosed.Load(), FailedOpen: p.m.failedOpen.Load(),
		ShipErrors: p.m.shipErrors.Load(), Lost: p.m.lost.Load(), Rejected: p.m.rejected.Load(),
		SpoolBytes: used + reserved, ShipLag: p.spool.lag(p.o.Now()),
	}
}

// Close stops taking calls, waits for those in flight, tries once more to
// deliver the spool (for at most a few seconds; what is left stays on disk for
// the next start), and stops the workers.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return nil
	}
	p.closing = true
	p.mu.Unlock()
	p.inflight.Wait()
	close(p.queue) // the committer drains it and exits
	done := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		for p.shipOnce(ctx) {
		}
		close(done)
	}()
	<-done
	p.cancel()
	p.workers.Wait()
	p.spool.close()
	return nil
}

func (p *Proxy) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return false
	}
	p.inflight.Add(1)
	return true
}

func (p *Proxy) kick() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Proxy) spec(service string) *compiledSpec {
	if s, ok := p.specs.Load(service); ok {
		return s.(*compiledSpec)
	}
	s, _ := p.specs.LoadOrStore(service, compile(specFor(service)))
	return s.(*compiledSpec)
}

// exchange is one call's state, from request to record.
type exchange struct {
	start     time.Time
	call      call
	spec      *compiledSpec
	identity  Identity
	account   string
	params    json.RawMessage
	truncated bool
	bodyBytes int64
	resources []resource
	reserved  int64 // spool bytes promised to this call's record
	recorded  bool  // the record was committed (successfully or not)
	coming    bool  // counted in Proxy.coming
	auditErr  error
	ip, agent string
	tls       *tlsDetails
}

type ctxKey struct{}

// ServeHTTP records and forwards one call.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.enter() {
		writeAWSError(w, protoJSON, uuid.NewString(), http.StatusServiceUnavailable, "ServiceUnavailable", "the audit proxy is shutting down")
		return
	}
	defer p.inflight.Done()
	p.m.calls.Add(1)
	x := &exchange{start: p.o.Now().UTC(), ip: clientIP(r), agent: capString(r.UserAgent(), maxUserAgent), tls: tlsInfo(r.TLS, r.Host)}

	// Read what is parsed; the rest of the body streams upstream untouched.
	prefix, err := readPrefix(r.Body, p.o.MaxParseBytes)
	if err != nil {
		writeAWSError(w, protoJSON, uuid.NewString(), http.StatusBadRequest, "SerializationException", "could not read the request body")
		return
	}
	x.truncated = int64(len(prefix)) > p.o.MaxParseBytes
	parsed := prefix
	if x.truncated {
		parsed = nil
	}
	x.call = classify(r, parsed)
	if x.call.Region == "" {
		x.call.Region = p.o.Region
	}
	x.spec = p.spec(x.call.Service)
	x.identity, x.account = p.identify(x.call.AccessKeyID)
	x.params, x.resources = p.parameters(r, x, parsed)
	if r.ContentLength > 0 {
		x.bodyBytes = r.ContentLength
	}

	if p.o.Policy != nil {
		if d := p.decide(x); d != allowed {
			p.deny(w, x, d)
			return
		}
	}

	// No record, no call: make sure the record will have a place before forwarding.
	x.reserved = p.reservation(len(parsed))
	if !p.spool.reserve(x.reserved) {
		x.reserved = 0
		if !p.o.FailOpen {
			p.m.failedClosed.Add(1)
			p.log.Warn("spool full: call refused, not forwarded", "service", x.call.Service, "operation", x.call.Op)
			writeAWSError(w, x.call.Protocol, uuid.NewString(), http.StatusServiceUnavailable, "ServiceUnavailable",
				"The audit proxy cannot record this call now; it was not forwarded. Retry later.")
			return
		}
		p.m.failedOpen.Add(1)
	}
	if x.truncated {
		r.Body = &prefixedBody{prefix: prefix, rest: r.Body}
	} else {
		// The body was read to its end. Handing it to the transport as an
		// in-memory reader lets it write headers and body in one write;
		// for a reader it does not know it flushes the headers first
		// (golang/go#22088): one more write and one more read per call.
		r.Body = io.NopCloser(bytes.NewReader(prefix))
	}
	x.coming = true
	p.coming.Add(1)
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, x)))
	if x.coming {
		p.coming.Add(-1)
	}
	if !x.recorded && x.reserved > 0 {
		p.spool.release(x.reserved)
	}
}

// reservation bounds the size of a call's record before it is made; the
// record is cut to fit (requestParameters dropped) if it would not.
func (p *Proxy) reservation(parsed int) int64 {
	n := int64(recordBase + frameHeader + 3*parsed)
	if p.o.ResponseElements {
		n += int64(event.MaxRecordBytes) / 2
	}
	return min(n, int64(event.MaxRecordBytes+frameHeader))
}

func (p *Proxy) identify(akid string) (Identity, string) {
	if akid == "" {
		return Identity{Type: "AWSAccount", PrincipalID: "", AccountID: "ANONYMOUS_PRINCIPAL"}, p.o.Account
	}
	if p.o.Resolve != nil {
		if id, ok := p.o.Resolve(akid); ok {
			acct := id.AccountID
			if acct == "" {
				acct = p.o.Account
			}
			return id, acct
		}
	}
	return Identity{Type: "Unknown", PrincipalID: akid, AccountID: p.o.Account, AccessKeyID: akid}, p.o.Account
}

// parameters builds requestParameters and the resources of a call.
func (p *Proxy) parameters(r *http.Request, x *exchange, body []byte) (json.RawMessage, []resource) {
	c := &x.call
	var tree *node
	switch c.Protocol {
	case protoJSON:
		if len(bytes.TrimSpace(body)) > 0 && !x.spec.NoBody {
			if t, err := parseJSON(body); err == nil && t.kind == '{' {
				tree = t
			}
		}
	case protoQuery:
		tree = formTree(c.Query)
	case protoREST:
		tree = formTree(c.Query)
		if c.Bucket != "" {
			tree.keys = append([]string{"bucketName", "Host"}, tree.keys...)
			tree.vals = append([]*node{strNode(c.Bucket), strNode(r.Host)}, tree.vals...)
			if c.Key != "" {
				tree.keys, tree.vals = append(tree.keys, "key"), append(tree.vals, strNode(c.Key))
			}
		} else if x.spec.REST == "" {
			tree.keys, tree.vals = append(tree.keys, "path"), append(tree.vals, strNode(r.URL.Path))
		}
		if !x.spec.NoBody && len(body) > 0 {
			if t, err := parseJSON(body); err == nil && t.kind == '{' {
				tree.keys, tree.vals = append(tree.keys, t.keys...), append(tree.vals, t.vals...)
			}
		}
	}
	if tree == nil {
		return jsonNull, resourceARNs(x.spec.serviceSpec, c, nil, x.account)
	}
	res := resourceARNs(x.spec.serviceSpec, c, tree, x.account)
	region := c.Region
	pc := paramContext{spec: x.spec, red: p.red, schema: func(table string) []string { return p.schemas.get(region, table) }}
	out := pc.transform(tree)
	if c.Protocol == protoREST && c.Bucket != "" {
		// S3 writes its members as sent (bucketName, Host, key, query names).
		return out.appendJSON(nil, false), res
	}
	if len(out.keys) == 0 {
		return jsonNull, res
	}
	return out.appendJSON(nil, false), res
}

func (p *Proxy) decide(x *exchange) decision {
	principals := []string{x.call.AccessKeyID}
	if x.identity.ARN != "" {
		principals = append(principals, x.identity.ARN)
	}
	if x.call.AccessKeyID == "" {
		principals = []string{"anonymous"}
	}
	arns := make([]string, len(x.resources))
	for i, r := range x.resources {
		arns[i] = r.ARN
	}
	return p.o.Policy.Evaluate(principals, x.call.Service+":"+x.call.Op, arns)
}

// deny answers a call the endpoint policy refuses, after recording it.
func (p *Proxy) deny(w http.ResponseWriter, x *exchange, d decision) {
	p.m.denied.Add(1)
	action := x.call.Service + ":" + x.call.Op
	who := x.identity.ARN
	if who == "" {
		who = x.call.AccessKeyID
	}
	msg := "User: " + who + " is not authorized to perform: " + action
	if len(x.resources) > 0 {
		msg += " on resource: " + x.resources[0].ARN
	}
	if d == explicitDeny {
		msg += " with an explicit deny in a VPC endpoint policy"
	} else {
		msg += " because no VPC endpoint policy allows the " + action + " action"
	}
	reqID := uuid.NewString()
	rec := p.newRecord(x)
	rec.EventType, rec.EventCategory, rec.ManagementEvent = "AwsVpceEvent", event.CategoryNetworkActivity, false
	rec.ErrorCode, rec.ErrorMessage = "VpceAccessDenied", "The request was denied due to a VPC endpoint policy"
	rec.RequestID = reqID
	x.reserved = p.reservation(len(x.params))
	if !p.spool.reserve(x.reserved) {
		x.reserved = 0
		if !p.o.FailOpen {
			p.m.failedClosed.Add(1)
			writeAWSError(w, x.call.Protocol, reqID, http.StatusServiceUnavailable, "ServiceUnavailable",
				"The audit proxy cannot record this call now; it was not forwarded. Retry later.")
			return
		}
		p.m.failedOpen.Add(1)
	}
	if err := p.commit(x, rec); err != nil {
		writeAWSError(w, x.call.Protocol, reqID, http.StatusInternalServerError, "InternalFailure",
			"The audit record of this call could not be written.")
		return
	}
	code, status := "AccessDeniedException", http.StatusBadRequest
	switch x.call.Protocol {
	case protoQuery, protoREST:
		code, status = "AccessDenied", http.StatusForbidden
	}
	writeAWSError(w, x.call.Protocol, reqID, status, code, msg)
}

func (p *Proxy) newRecord(x *exchange) *record {
	c := &x.call
	rec := &record{
		EventVersion: event.DefaultEventVersion, UserIdentity: x.identity,
		EventTime: x.start.Format(time.RFC3339), EventSource: x.spec.source(c.Service), EventName: c.Op,
		AWSRegion: c.Region, SourceIPAddress: x.ip, UserAgent: x.agent,
		RequestParameters: x.params, ResponseElements: jsonNull,
		EventID: uuid.NewString(), ReadOnly: x.spec.readOnly(c.Op), Resources: x.resources,
		EventType: "AwsApiCall", ManagementEvent: !x.spec.isData(c.Op), RecipientAccountID: x.account,
		VPCEndpointID: p.o.VPCEndpointID, VPCEndpointAccountID: p.o.Account,
		EventCategory: event.CategoryManagement, TLSDetails: x.tls,
	}
	if rec.EventName == "" {
		rec.EventName = "Unknown"
	}
	if !rec.ManagementEvent {
		rec.EventCategory = event.CategoryData
	}
	if x.truncated {
		rec.RequestParameters = jsonNull
		rec.AdditionalEventData = map[string]any{"requestParametersTruncated": true, "requestBodyBytes": x.bodyBytes}
	}
	return rec
}

// rewrite points the outbound request at the upstream. Everything else is
// the client's: path, query, headers and the Host header, which SigV4 signs.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = p.upstream.Scheme
	pr.Out.URL.Host = p.upstream.Host
	pr.Out.Host = pr.In.Host
	// ReverseProxy sets no X-Forwarded-* in Rewrite mode unless asked; see the package doc.
}

// modifyResponse records the call once the upstream's answer is known and
// before any of it reaches the client.
func (p *Proxy) modifyResponse(resp *http.Response) error {
	x, _ := resp.Request.Context().Value(ctxKey{}).(*exchange)
	if x == nil {
		return nil
	}
	rec := p.newRecord(x)
	rec.RequestID = firstHeader(resp.Header, "X-Amzn-Requestid", "X-Amz-Request-Id", "X-Amzn-Request-Id")
	isErr := resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotModified
	learn := resp.StatusCode/100 == 2 && x.spec.Schema != nil && matchAny(x.spec.Schema.Ops, x.call.Op)
	wantBody := isErr || learn || (p.o.ResponseElements && resp.StatusCode/100 == 2 && x.call.Protocol == protoJSON)
	var body []byte
	if wantBody && resp.Request.Method != http.MethodHead {
		limit := int64(64 << 10)
		if !isErr {
			limit = p.o.MaxParseBytes
		}
		b, err := readPrefix(resp.Body, limit)
		if err != nil {
			return fmt.Errorf("proxy: read upstream response: %w", err)
		}
		resp.Body = &prefixedBody{prefix: b, rest: resp.Body}
		if int64(len(b)) <= limit {
			body = b
		}
	}
	if isErr {
		rec.ErrorCode, rec.ErrorMessage = parseError(resp.StatusCode, resp.Header, body)
		rec.ErrorMessage = capString(rec.ErrorMessage, maxErrorMessage)
	}
	if body != nil && !isErr {
		if t, err := parseJSON(body); err == nil {
			if learn {
				p.schemas.learn(x.call.Region, x.spec.Schema, t)
			}
			if p.o.ResponseElements {
				pc := paramContext{spec: x.spec, red: p.red, schema: func(table string) []string { return p.schemas.get(x.call.Region, table) }}
				rec.ResponseElements = pc.transform(t).appendJSON(nil, false)
			}
		}
	}
	if err := p.commit(x, rec); err != nil {
		return err
	}
	return nil
}

// errorHandler answers when the upstream could not be reached, or when the
// call's record could not be written.
func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	x, _ := r.Context().Value(ctxKey{}).(*exchange)
	reqID := uuid.NewString()
	proto := protoJSON
	if x != nil {
		proto = x.call.Protocol
	}
	if x != nil && x.recorded {
		p.log.Error("audit record not written; the call's answer is withheld", "service", x.call.Service,
			"operation", x.call.Op, "err", err)
		writeAWSError(w, proto, reqID, http.StatusInternalServerError, "InternalFailure",
			"The audit record of this call could not be written; the call may have been carried out.")
		return
	}
	if x != nil {
		p.log.Warn("upstream unreachable", "service", x.call.Service, "operation", x.call.Op, "err", err)
		rec := p.newRecord(x)
		rec.RequestID = reqID
		rec.ErrorCode, rec.ErrorMessage = "ServiceUnavailable", "The audit proxy could not reach the upstream service."
		if err := p.commit(x, rec); err != nil {
			writeAWSError(w, proto, reqID, http.StatusInternalServerError, "InternalFailure",
				"The audit record of this call could not be written.")
			return
		}
	}
	writeAWSError(w, proto, reqID, http.StatusBadGateway, "ServiceUnavailable", "The audit proxy could not reach the upstream service.")
}

// pending is one record waiting for a committer.
type pending struct {
	raw      []byte
	reserved int64
	done     chan error
}

var errAudit = errors.New("proxy: the call's record could not be written")

// commit makes the record durable, in OpenTrail or in the spool, and returns
// only then. It is not cancelled with the client's request: a forwarded call
// is recorded even if its client has gone.
func (p *Proxy) commit(x *exchange, rec *record) error {
	x.recorded = true
	raw, err := json.Marshal(rec)
	if err == nil && int64(len(raw)+frameHeader) > x.reserved && x.reserved > 0 {
		// Too big for what was promised: keep the record, drop the parameters.
		rec.RequestParameters, rec.ResponseElements = jsonNull, jsonNull
		if rec.AdditionalEventData == nil {
			rec.AdditionalEventData = map[string]any{}
		}
		rec.AdditionalEventData["requestParametersTruncated"] = true
		raw, err = json.Marshal(rec)
	}
	if err != nil {
		p.spool.release(x.reserved)
		x.auditErr = err
		return errAudit
	}
	pd := &pending{raw: raw, reserved: x.reserved, done: make(chan error, 1)}
	if x.coming {
		// Before the send: a committer that takes this record must not
		// count it as still to come, and wait for it.
		x.coming = false
		p.coming.Add(-1)
	}
	p.queue <- pd
	if err := <-pd.done; err != nil {
		x.auditErr = err
		return errAudit
	}
	return nil
}

// committer takes records off the queue in batches (group commit): one sink
// write or one spool fsync covers every call that arrived meanwhile.
//
// There is one committer, and it forms a batch only when its previous write
// is done: everything that queued up during that write goes into the next
// one. Several committers would each take a few records as soon as they
// arrive and then wait for one another at the sink (the journal's single
// writer, or the spool's lock), so that the more calls there are, the more
// and the smaller the writes: the opposite of what group commit is for.
//
// And when other forwarded calls are about to queue their records, the
// committer waits for them, at most commitDelay (PostgreSQL's commit_delay
// and commit_siblings): an fsync costs about 100 µs of CPU, twice the
// proxy's own work for a call, and in OpenTrail every journal commit also
// wakes its projections, so under load batches of two or three records would
// be the most expensive thing the proxy does. A lone call never waits.
func (p *Proxy) committer() {
	defer p.workers.Done()
	batch := make([]*pending, 0, maxBatchRecords)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for first := range p.queue {
		batch = append(batch[:0], first)
		size := len(first.raw)
		waiting := false
	fill:
		for len(batch) < maxBatchRecords && size < maxBatchBytes/2 {
			var pd *pending
			var ok bool
			select {
			case pd, ok = <-p.queue:
			default:
				if p.coming.Load() == 0 {
					break fill
				}
				if !waiting {
					waiting = true
					timer.Reset(commitDelay)
				}
				select {
				case pd, ok = <-p.queue:
				case <-timer.C:
					waiting = false
					break fill
				}
			}
			if !ok {
				break fill
			}
			batch = append(batch, pd)
			size += len(pd.raw)
		}
		if waiting {
			timer.Stop()
		}
		p.commitBatch(batch)
	}
}

// commitDelay bounds how long the committer waits for the records of calls
// in flight before it writes a batch.
const commitDelay = 500 * time.Microsecond

func (p *Proxy) commitBatch(batch []*pending) {
	raws := make([][]byte, len(batch))
	for i, pd := range batch {
		raws[i] = pd.raw
	}
	if p.healthy.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), p.o.SinkTimeout)
		err := p.o.Sink.Write(ctx, raws)
		cancel()
		if err == nil {
			for _, pd := range batch {
				p.spool.release(pd.reserved)
				pd.done <- nil
			}
			return
		}
		p.m.shipErrors.Add(1)
		p.log.Warn("OpenTrail did not take records; spooling them", "records", len(raws), "err", err)
		p.healthy.Store(false)
	}
	// Records with a reservation always fit; the others (fail-open) only if there is room.
	var held, extra []*pending
	for _, pd := range batch {
		if pd.reserved > 0 {
			held = append(held, pd)
		} else {
			extra = append(extra, pd)
		}
	}
	p.spoolBatch(held)
	p.spoolBatch(extra)
	p.kick()
}

func (p *Proxy) spoolBatch(batch []*pending) {
	if len(batch) == 0 {
		return
	}
	raws := make([][]byte, len(batch))
	var reserved int64
	for i, pd := range batch {
		raws[i] = pd.raw
		reserved += pd.reserved
	}
	err := p.spool.append(raws, reserved)
	if err == nil {
		p.m.spooled.Add(int64(len(batch)))
	} else if errors.Is(err, ErrSpoolFull) && p.o.FailOpen {
		p.m.lost.Add(int64(len(batch)))
		p.log.Error("spool full: records of fail-open calls are lost", "records", len(batch))
		err = nil
	} else {
		p.log.Error("spool write failed", "err", err)
	}
	for _, pd := range batch {
		pd.done <- err
	}
}

// shipper delivers the spool to the sink, oldest first, with capped
// exponential backoff while OpenTrail is away.
func (p *Proxy) shipper() {
	defer p.workers.Done()
	backoff := 50 * time.Millisecond
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.wake:
		case <-time.After(time.Second):
		}
		for {
			ctx, cancel := context.WithTimeout(p.ctx, p.o.SinkTimeout)
			more, err := p.shipSegment(ctx)
			cancel()
			if err != nil {
				select {
				case <-p.ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, 5*time.Second)
				continue
			}
			backoff = 50 * time.Millisecond
			if !more {
				break
			}
		}
	}
}

// shipOnce ships one segment; false when there is nothing left or it failed.
func (p *Proxy) shipOnce(ctx context.Context) bool {
	more, err := p.shipSegment(ctx)
	return more && err == nil
}

func (p *Proxy) shipSegment(ctx context.Context) (more bool, err error) {
	seg, ok := p.spool.oldest()
	if !ok {
		p.healthy.Store(true)
		return false, nil
	}
	recs, err := p.spool.read(seg)
	if err != nil {
		p.log.Error("spool read failed", "err", err)
		return false, err
	}
	if len(recs) > 0 {
		if err := p.o.Sink.Write(ctx, recs); err != nil {
			var rej *RejectedError
			if errors.As(err, &rej) {
				p.m.rejected.Add(int64(len(recs)))
				p.log.Error("OpenTrail rejected spooled records; segment moved to the rejected folder", "err", err)
				if err := p.spool.reject(seg); err != nil {
					return false, err
				}
				return true, nil
			}
			p.m.shipErrors.Add(1)
			p.healthy.Store(false)
			return false, err
		}
	}
	if err := p.spool.remove(seg); err != nil {
		p.log.Error("spool remove failed", "err", err)
		return false, err
	}
	return true, nil
}

// readPrefix reads at most limit+1 bytes (limit+1 bytes read means "more").
func readPrefix(r io.Reader, limit int64) ([]byte, error) {
	if r == nil || r == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	return b, err
}

// prefixedBody replays bytes already read, then the rest of a body.
type prefixedBody struct {
	prefix []byte
	rest   io.ReadCloser
}

func (b *prefixedBody) Read(q []byte) (int, error) {
	if len(b.prefix) > 0 {
		n := copy(q, b.prefix)
		b.prefix = b.prefix[n:]
		return n, nil
	}
	if b.rest == nil {
		return 0, io.EOF
	}
	return b.rest.Read(q)
}

func (b *prefixedBody) Close() error {
	if b.rest == nil {
		return nil
	}
	return b.rest.Close()
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func firstHeader(h http.Header, names ...string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}

type bufferPool struct{}

var bufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(bufs.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { bufs.Put(&b) }
