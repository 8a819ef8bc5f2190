package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The Proxy, its options and its lifecycle; forwarding is in forward.go, the
// commit/spool/ship pipeline in pipeline.go.

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
