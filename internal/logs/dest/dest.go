package dest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

// LogEvent is one CloudWatch Logs event.
type LogEvent struct {
	ID        string // CloudWatch-style event id (decimal digits string)
	Timestamp int64  // ms since epoch (the event's time)
	Message   string // for CloudTrail-fed groups: one CloudTrail record JSON
}

// Batch is what one delivery carries: events of one log stream matched by one
// subscription filter.
type Batch struct {
	Owner               string // account ID
	Region              string
	LogGroup, LogStream string
	SubscriptionFilters []string // the filter name(s)
	Events              []LogEvent

	// PolicyLevel is empty for a log group's own subscription filters, which is
	// what CloudWatch Logs sends then (no "policyLevel" key). For an
	// account-level subscription filter policy set it to "ACCOUNT_LEVEL_POLICY":
	// the DATA_MESSAGE then ends with "policyLevel", as CloudWatch Logs does.
	PolicyLevel string
}

// Destination is where a subscription filter's batches go.
type Destination interface {
	// Send delivers b; nil only once the destination accepted it (2xx, exit 0,
	// SMTP 250...). Errors say what failed, never include secrets.
	Send(ctx context.Context, b *Batch) error
	String() string // for logs and metrics: kind + target without credentials
}

// ErrRejected marks a failure that retrying the same batch cannot fix: the
// destination answered and refused it (HTTP 4xx other than 408 and 429, SMTP
// 5xx), or the configuration cannot work (mailto without SMTP). A sender may
// dead-letter such a batch at once instead of backing off.
var ErrRejected = errors.New("dest: destination rejected the batch")

// ErrInvalidDestination is wrapped by Resolve's errors: the destination ARN is
// malformed, unsupported, or names a function or topic that is not configured.
// The error's text is written to be returned as the message of an AWS
// InvalidParameterException.
var ErrInvalidDestination = errors.New("dest: invalid destination")

// invalidDest is a Resolve error: msg reads like AWS's, and it is ErrInvalidDestination.
type invalidDest struct{ msg string }

func (e *invalidDest) Error() string        { return e.msg }
func (e *invalidDest) Is(target error) bool { return target == ErrInvalidDestination }

func invalidf(format string, args ...any) error {
	return &invalidDest{msg: fmt.Sprintf(format, args...)}
}

// rejected wraps err so that errors.Is(err, ErrRejected) holds.
type rejected struct{ err error }

func (e *rejected) Error() string        { return e.err.Error() }
func (e *rejected) Unwrap() error        { return e.err }
func (e *rejected) Is(target error) bool { return target == ErrRejected }

// ---- Wire format: the CloudWatch Logs DATA_MESSAGE, never to change. ----
//
// Field order and compact encoding are those of the payloads CloudWatch Logs
// sends (checked against a captured payload): messageType, owner, logGroup,
// logStream, subscriptionFilters, logEvents[{id, timestamp, message}], then
// policyLevel for account-level policies only. HTML characters are not
// escaped, as AWS's encoder does not. The gzip header has mtime 0 and OS 0
// (bytes 1f8b 0800 0000 0000 0000), byte-for-byte what AWS sends.

type dataMessage struct {
	MessageType         string         `json:"messageType"`
	Owner               string         `json:"owner"`
	LogGroup            string         `json:"logGroup"`
	LogStream           string         `json:"logStream"`
	SubscriptionFilters []string       `json:"subscriptionFilters"`
	LogEvents           []dataLogEvent `json:"logEvents"`
	PolicyLevel         string         `json:"policyLevel,omitempty"`
}

type dataLogEvent struct {
	ID        string `json:"id"`
	Timestamp int64  `json:"timestamp"`
	Message   string `json:"message"`
}

type lambdaEvent struct {
	AWSLogs struct {
		Data string `json:"data"`
	} `json:"awslogs"`
}

// ---- End of wire format. ----

// DataMessage returns the DATA_MESSAGE JSON for b, before compression: what a
// Lambda function sees once it has decoded the awslogs data.
func DataMessage(b *Batch) ([]byte, error) {
	if b == nil {
		return nil, errors.New("dest: nil batch")
	}
	m := dataMessage{
		MessageType:         "DATA_MESSAGE",
		Owner:               b.Owner,
		LogGroup:            b.LogGroup,
		LogStream:           b.LogStream,
		SubscriptionFilters: b.SubscriptionFilters,
		LogEvents:           make([]dataLogEvent, len(b.Events)),
		PolicyLevel:         b.PolicyLevel,
	}
	if m.SubscriptionFilters == nil {
		m.SubscriptionFilters = []string{}
	}
	for i, e := range b.Events {
		m.LogEvents[i] = dataLogEvent{ID: e.ID, Timestamp: e.Timestamp, Message: e.Message}
	}
	return marshalNoHTML(m)
}

// Payload returns the exact Lambda event body for b (what CloudWatch Logs
// sends a subscribed Lambda): {"awslogs":{"data":"<base64(gzip(DATA_MESSAGE))>"}}.
func Payload(b *Batch) ([]byte, error) {
	msg, err := DataMessage(b)
	if err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	zw.Header.OS = 0 // as AWS's Java encoder writes it
	if _, err := zw.Write(msg); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	var ev lambdaEvent
	ev.AWSLogs.Data = base64.StdEncoding.EncodeToString(gz.Bytes())
	return json.Marshal(ev)
}

// DecodePayload is Payload's inverse: it returns the DATA_MESSAGE JSON inside
// a Lambda event body, as a subscribed function would decode it.
func DecodePayload(body []byte) ([]byte, error) {
	var ev lambdaEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, fmt.Errorf("dest: decode awslogs event: %w", err)
	}
	z, err := base64.StdEncoding.DecodeString(ev.AWSLogs.Data)
	if err != nil {
		return nil, fmt.Errorf("dest: decode awslogs data: %w", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, fmt.Errorf("dest: decode awslogs data: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("dest: decode awslogs data: %w", err)
	}
	return out, nil
}

// marshalNoHTML is json.Marshal without escaping <, > and &, and without the
// encoder's trailing newline.
func marshalNoHTML(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

var (
	// Lambda function names, aliases and versions; SNS topic names (AWS's rules).
	functionNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	qualifierRE    = regexp.MustCompile(`^(\$LATEST|[A-Za-z0-9_-]{1,128})$`)
	topicNameRE    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,251}(\.fifo)?$`)
	partitionRE    = regexp.MustCompile(`^aws(-[a-z]+)*$`)
	regionRE       = regexp.MustCompile(`^[a-z]{2}(-[a-z0-9]+)+-[0-9]+$`)
	accountRE      = regexp.MustCompile(`^[0-9]{12}$`)
)

const acceptedForms = "arn:aws:lambda:<region>:<account>:function:<name>[:<alias>], arn:aws:sns:<region>:<account>:<topic>, or an http(s) URL"

// Resolve maps a subscription filter's destinationArn to a Destination. Resolve
// once per subscription filter and reuse the result: an SNS topic destination
// remembers which endpoints already accepted a batch, so that a retry after a
// partial failure does not notify those again.
func (c *Config) Resolve(destinationArn string) (Destination, error) {
	s := destinationArn
	switch {
	case strings.HasPrefix(s, "arn:"):
		return c.resolveARN(s)
	case hasPrefixFold(s, "http://"), hasPrefixFold(s, "https://"):
		u, err := parseHTTPURL(s)
		if err != nil {
			return nil, invalidf("Invalid destinationArn: %v", err)
		}
		norm := *u
		if norm.Path == "" {
			norm.Path = "/" // http://host is http://host/
		}
		if len(c.URLPrefixes) > 0 && !slices.ContainsFunc(c.URLPrefixes, func(p string) bool { return strings.HasPrefix(norm.String(), p) }) {
			return nil, invalidf("Invalid destinationArn: this server delivers to URLs under %s only, not to %s (serve --subscription-url-prefix)",
				strings.Join(c.URLPrefixes, ", "), redactURL(u))
		}
		return &webhook{url: u, client: c.httpClient()}, nil
	case s == "":
		return nil, invalidf("Invalid destinationArn: it is empty; expected %s", acceptedForms)
	}
	return nil, invalidf("Invalid destinationArn %q: expected %s", trimForError(s), acceptedForms)
}

func (c *Config) resolveARN(s string) (Destination, error) {
	p := strings.SplitN(s, ":", 6)
	if len(p) < 6 {
		return nil, invalidf("Invalid destinationArn %q: an ARN has six colon-separated parts (arn:partition:service:region:account:resource)", trimForError(s))
	}
	partition, service, region, account, resource := p[1], p[2], p[3], p[4], p[5]
	if !partitionRE.MatchString(partition) {
		return nil, invalidf("Invalid destinationArn %q: unknown partition %q", trimForError(s), trimForError(partition))
	}
	switch service {
	case "lambda", "sns":
	case "kinesis", "firehose", "logs":
		return nil, invalidf("Invalid destinationArn %q: %s destinations are not supported by OpenTrail; use %s", trimForError(s), service, acceptedForms)
	default:
		return nil, invalidf("Invalid destinationArn %q: expected %s", trimForError(s), acceptedForms)
	}
	if !regionRE.MatchString(region) {
		return nil, invalidf("Invalid destinationArn %q: bad region %q", trimForError(s), trimForError(region))
	}
	if !accountRE.MatchString(account) {
		return nil, invalidf("Invalid destinationArn %q: the account must be 12 digits", trimForError(s))
	}
	if service == "sns" {
		if !topicNameRE.MatchString(resource) {
			return nil, invalidf("Invalid destinationArn %q: bad SNS topic name", trimForError(s))
		}
		eps, ok := c.Topics[resource]
		if !ok || len(eps) == 0 {
			return nil, invalidf("Could not deliver test message to specified SNS topic %s: no endpoints are configured for it (serve --sns-topic %s=ENDPOINT)", resource, resource)
		}
		return c.newTopic(s, resource, eps)
	}
	// lambda
	name, qualifier, hasQualifier := strings.Cut(strings.TrimPrefix(resource, "function:"), ":")
	if !strings.HasPrefix(resource, "function:") || !functionNameRE.MatchString(name) || (hasQualifier && !qualifierRE.MatchString(qualifier)) {
		return nil, invalidf("Invalid destinationArn %q: expected arn:aws:lambda:<region>:<account>:function:<name>[:<alias>]", trimForError(s))
	}
	// A handler configured for "name:alias" wins over one for "name".
	target, ok := c.Lambdas[name+":"+qualifier]
	if !ok || !hasQualifier {
		target, ok = c.Lambdas[name]
	}
	if !ok {
		// AWS's PutSubscriptionFilter answers this for a function it cannot invoke.
		return nil, invalidf("Could not execute the lambda function. Make sure you have given CloudWatch Logs permission to execute your function. (OpenTrail: no handler is configured for function %s; serve --lambda %s=URL|exec:COMMAND)", name, name)
	}
	return c.newLambda(name, region, target)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// trimForError keeps user input in error messages short.
func trimForError(s string) string {
	const max = 256
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

func parseHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		// url.Error repeats the URL, which may hold credentials.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("bad URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("bad URL %s: expected http or https", redactURL(u))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("bad URL %s: no host", redactURL(u))
	}
	return u, nil
}

// redactURL shows a URL without what may be a credential: the user info and
// the query's values.
func redactURL(u *url.URL) string {
	r := *u
	r.User = nil
	r.Fragment, r.RawFragment = "", ""
	if r.RawQuery != "" {
		r.RawQuery = "REDACTED"
	}
	return r.String()
}

// Redact returns a destination (an ARN, an http(s) or slack+https URL, a
// mailto: or an endpoint as configured) in a form fit for logs and metric
// labels: ARNs as they are, URLs as scheme://host only, followed by a stable
// hash of the whole URL when anything was left out (user info, path, query),
// so that two destinations on one host stay apart without showing a secret.
func Redact(destination string) string {
	if strings.HasPrefix(destination, "arn:") || strings.HasPrefix(destination, "exec:") {
		if i := strings.IndexByte(destination, ' '); strings.HasPrefix(destination, "exec:") && i > 0 {
			return destination[:i] // the command, not its arguments
		}
		return destination
	}
	if strings.HasPrefix(destination, "mailto:") {
		return "mailto:" + hashOf(destination)
	}
	u, err := url.Parse(destination)
	if err != nil || u.Host == "" {
		return "unparsable " + hashOf(destination)
	}
	return safeURL(u)
}

// safeURL is u as scheme://host, plus a hash of u when u has more than that.
func safeURL(u *url.URL) string {
	s := u.Scheme + "://" + u.Host
	if u.User == nil && (u.Path == "" || u.Path == "/") && u.RawQuery == "" && u.Fragment == "" {
		return s
	}
	return s + " " + hashOf(u.String())
}

// hashOf is a short stable digest of s: enough to tell two values apart in
// logs and labels, too short to confirm a guessed secret with confidence.
func hashOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return "#" + hex.EncodeToString(h[:4])
}

// DefaultHTTPTimeout bounds one HTTP delivery when Config.HTTPClient is nil.
const DefaultHTTPTimeout = 10 * time.Second

func (c *Config) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return &http.Client{
		Timeout: DefaultHTTPTimeout,
		// A redirected POST would become a GET and "succeed" without delivering.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     defaultTransport,
	}
}

// defaultTransport dials no link-local, unspecified or metadata address: a
// destination URL must not make the server post to a cloud metadata service
// (169.254.169.254, fd00:ec2::254) or to this host through 0.0.0.0 or ::. The
// check is on the address actually dialled, after DNS, so a name that
// resolves there is refused too, in every spelling (refusedAddr).
var defaultTransport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // a proxy would dial for us, unchecked
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: refuseLinkLocal}
	t.DialContext = d.DialContext
	return t
}()

// GuardedTransport is the transport every HTTP delivery uses unless
// Config.HTTPClient is set: it refuses to dial the addresses ErrAddressRefused
// describes. Use it (with redirects not followed) for any request whose URL a
// user chose.
func GuardedTransport() http.RoundTripper { return defaultTransport }

// ErrAddressRefused is returned for a destination at a link-local, unspecified or metadata address.
var ErrAddressRefused = errors.New("link-local, unspecified and metadata addresses are not delivered to")

func refuseLinkLocal(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if refusedAddr(host) {
		return fmt.Errorf("%w: %s", ErrAddressRefused, host)
	}
	return nil
}

var (
	ec2MetadataV6 = netip.MustParseAddr("fd00:ec2::254")
	thisNetwork   = netip.MustParsePrefix("0.0.0.0/8")      // "this host on this network": 0.x.y.z reaches the local host
	nat64         = netip.MustParsePrefix("64:ff9b::/96")   // RFC 6052 well-known prefix: IPv4 in the last 32 bits
	nat64Local    = netip.MustParsePrefix("64:ff9b:1::/48") // RFC 8215 local-use NAT64
)

// refusedAddr reports whether host, an IP literal as dialled, is link-local
// (with or without a zone), unspecified, in 0.0.0.0/8, EC2's IPv6 metadata
// address, or any of those IPv4 addresses carried inside IPv6 (IPv4-mapped
// ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::/96 and
// 64:ff9b:1::/48). A host that is no IP literal is refused too: by now DNS
// has resolved it.
func refusedAddr(host string) bool {
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return true
	}
	ip = ip.WithZone("")
	cands := []netip.Addr{ip, ip.Unmap()}
	if ip.Is6() && !ip.Is4In6() {
		b := ip.As16()
		v4 := netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		allZero := true
		for _, x := range b[:12] {
			allZero = allZero && x == 0
		}
		if nat64.Contains(ip) || nat64Local.Contains(ip) || (allZero && !ip.IsLoopback() && !ip.IsUnspecified()) {
			cands = append(cands, v4)
		}
	}
	for _, a := range cands {
		if a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || a.IsUnspecified() ||
			a == ec2MetadataV6 || (a.Is4() && thisNetwork.Contains(a)) {
			return true
		}
	}
	return false
}

// post sends body to u and succeeds on a 2xx answer. what names the target in
// errors (without credentials). check, if set, may reject a 2xx response.
func post(ctx context.Context, client *http.Client, u *url.URL, what string, body []byte, header http.Header, check func(*http.Response) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("POST %s: %v", what, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		// *url.Error repeats the full URL; keep the cause only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("POST %s: %w", what, err)
	}
	defer resp.Body.Close()
	tail, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode/100 != 2 {
		err := fmt.Errorf("POST %s: HTTP %d%s", what, resp.StatusCode, bodyTail(tail))
		if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
			return &rejected{err}
		}
		return err
	}
	if check != nil {
		if err := check(resp); err != nil {
			return fmt.Errorf("POST %s: %w%s", what, err, bodyTail(tail))
		}
	}
	return nil
}

func bodyTail(b []byte) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
	if s == "" {
		return ""
	}
	if len(s) > 512 {
		s = strings.ToValidUTF8(s[:512], "") + "…"
	}
	return ": " + s
}
