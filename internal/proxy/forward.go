package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/opentrail/opentrail/internal/audit"
	"github.com/opentrail/opentrail/internal/event"
)

// Forwarding: one call from the client through policy to the upstream and
// back, and the record it leaves (committed by the pipeline in pipeline.go).

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
	resources []audit.Resource
	reserved  int64 // spool bytes promised to this call's record
	recorded  bool  // the record was committed (successfully or not)
	coming    bool  // counted in Proxy.coming
	auditErr  error
	ip, agent string
	tls       *audit.TLSDetails
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
	x := &exchange{start: p.o.Now().UTC(), ip: clientIP(r), agent: r.UserAgent(), tls: tlsInfo(r.TLS, r.Host)}

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
func (p *Proxy) parameters(r *http.Request, x *exchange, body []byte) (json.RawMessage, []audit.Resource) {
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
	rec.Fail("VpceAccessDenied", "The request was denied due to a VPC endpoint policy")
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

func (p *Proxy) newRecord(x *exchange) *audit.Record {
	c := &x.call
	rec := audit.New(audit.Call{
		Time: x.start, Identity: x.identity, Account: x.account,
		Source: x.spec.source(c.Service), Name: c.Op, Region: c.Region,
		SourceIP: x.ip, UserAgent: x.agent,
		ReadOnly: x.spec.readOnly(c.Op), Data: x.spec.isData(c.Op), Params: x.params,
	})
	rec.ResponseElements = jsonNull
	rec.Resources = x.resources
	rec.VPCEndpoint = &audit.VPCEndpoint{ID: p.o.VPCEndpointID, AccountID: p.o.Account}
	rec.TLSDetails = x.tls
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
		rec.Fail(parseError(resp.StatusCode, resp.Header, body))
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
