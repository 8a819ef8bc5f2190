package dest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"slices"
	"strings"
)

// Config says where subscription destinations deliver.
type Config struct {
	// Lambdas: function name (or "name:alias") → handler: an http(s) URL or
	// "exec:<command line>".
	Lambdas map[string]string
	// Topics: SNS topic name → endpoints: "http(s)://...", "slack+https://...",
	// "mailto:addr[,addr...]".
	Topics map[string][]string
	SMTP   SMTPConfig
	// EventLink renders the link to an event in notifications; placeholders
	// {region}, {eventID}, {account}. Empty means DefaultEventLink.
	EventLink  string
	HTTPClient *http.Client // nil = default with 10 s timeout, redirects not followed, no link-local addresses
	// URLPrefixes, when set, are the only plain URL destinations that
	// PutSubscriptionFilter accepts: a destinationArn URL must start with one
	// of them (e.g. "https://hooks.example.com/"). Empty accepts any http(s) URL.
	URLPrefixes []string

	// LambdaStdout receives what an exec handler wrote to stdout (what a real
	// function's print() puts in its own log group), in one Write per
	// invocation, capped at 1 MiB. Nil discards it. It must be safe for
	// concurrent use when Sends run concurrently.
	LambdaStdout io.Writer
}

// SMTPConfig is how mailto: endpoints send mail.
type SMTPConfig struct {
	Addr     string // host:port of the submission server
	From     string // header From, e.g. "OpenTrail <opentrail@example.com>"; its address is the envelope sender
	Username string // with Password: AUTH PLAIN (only over TLS, or to localhost)
	Password string
	StartTLS string // "auto" (default: when offered), "require", "never"
	// HelloName is the EHLO name; empty means the host name.
	HelloName string
	// TLSConfig is used for STARTTLS; nil means the system roots and the host
	// of Addr as server name. The config file's "caFile" sets RootCAs.
	TLSConfig *tls.Config
}

// DefaultEventLink is the CloudTrail console's page for one event.
const DefaultEventLink = "https://{region}.console.aws.amazon.com/cloudtrailv2/home?region={region}#/events/{eventID}"

// ---- Config file format (documented in doc.go). ----

var (
	configKeys = []string{"lambdas", "topics", "smtp", "eventLink", "urlPrefixes"}
	smtpKeys   = []string{"addr", "from", "username", "password", "startTLS", "helloName", "caFile"}
)

type configFile struct {
	Lambdas     map[string]string   `json:"lambdas"`
	Topics      map[string][]string `json:"topics"`
	SMTP        smtpFile            `json:"smtp"`
	EventLink   string              `json:"eventLink"`
	URLPrefixes []string            `json:"urlPrefixes"`
}

type smtpFile struct {
	Addr      string `json:"addr"`
	From      string `json:"from"`
	Username  string `json:"username"`
	Password  string `json:"password"`
	StartTLS  string `json:"startTLS"`
	HelloName string `json:"helloName"`
	CAFile    string `json:"caFile"`
}

// ---- End of config file format. ----

// LoadConfigFile reads a JSON config file (format in the package doc). Keys are
// exact; unknown keys are errors naming them. A string value "env:NAME" is
// replaced by the environment variable NAME, which must be set.
func LoadConfigFile(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("dest config: %w", err)
	}
	c, err := parseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("dest config %s%w", path, err)
	}
	return c, nil
}

// parseConfig parses a config file's content; its errors start with
// ":line:col: " or ": " so that the caller can put the path in front.
func parseConfig(data []byte) (Config, error) {
	var c Config
	// First pass: syntax (with absolute offsets) and exact key names, all
	// unknown ones at once. encoding/json alone would fold case and stop at
	// the first unknown key.
	var top map[string]json.RawMessage
	if err := strictUnmarshal(data, &top); err != nil {
		return c, jsonError(data, err)
	}
	if top == nil {
		return c, errors.New(": the file must hold a JSON object")
	}
	var unknown []string
	for k := range top {
		if !slices.Contains(configKeys, k) {
			unknown = append(unknown, k)
		}
	}
	var smtpRaw map[string]json.RawMessage
	if json.Unmarshal(top["smtp"], &smtpRaw) == nil { // not an object: the second pass says where
		for k := range smtpRaw {
			if !slices.Contains(smtpKeys, k) {
				unknown = append(unknown, "smtp."+k)
			}
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return c, fmt.Errorf(": unknown keys %s (accepted: %s, smtp.%s)", strings.Join(unknown, ", "),
			strings.Join(configKeys, ", "), strings.Join(smtpKeys, ", smtp."))
	}
	// Second pass: types, with offsets into the whole file.
	var f configFile
	if err := strictUnmarshal(data, &f); err != nil {
		return c, jsonError(data, err)
	}
	c.Lambdas, c.Topics, c.EventLink, c.URLPrefixes = f.Lambdas, f.Topics, f.EventLink, f.URLPrefixes
	sf := f.SMTP
	// env: substitution, field by field so that errors can name the field.
	var err error
	sub := func(field string, v *string) {
		if err == nil {
			*v, err = expandEnv(field, *v)
		}
	}
	for _, name := range sortedKeys(c.Lambdas) {
		t := c.Lambdas[name]
		sub("lambdas."+name, &t)
		c.Lambdas[name] = t
	}
	for _, name := range sortedKeys(c.Topics) {
		eps := c.Topics[name]
		for i := range eps {
			sub(fmt.Sprintf("topics.%s[%d]", name, i), &eps[i])
		}
	}
	sub("eventLink", &c.EventLink)
	sub("smtp.addr", &sf.Addr)
	sub("smtp.from", &sf.From)
	sub("smtp.username", &sf.Username)
	sub("smtp.password", &sf.Password)
	sub("smtp.startTLS", &sf.StartTLS)
	sub("smtp.helloName", &sf.HelloName)
	sub("smtp.caFile", &sf.CAFile)
	if err != nil {
		return c, fmt.Errorf(": %w", err)
	}
	c.SMTP = SMTPConfig{Addr: sf.Addr, From: sf.From, Username: sf.Username, Password: sf.Password,
		StartTLS: sf.StartTLS, HelloName: sf.HelloName}
	if sf.CAFile != "" {
		pem, err := os.ReadFile(sf.CAFile)
		if err != nil {
			return c, fmt.Errorf(": smtp.caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return c, fmt.Errorf(": smtp.caFile %s: no PEM certificate in it", sf.CAFile)
		}
		c.SMTP.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf(": %w", err)
	}
	return c, nil
}

// strictUnmarshal is json.Unmarshal that also rejects data after the value.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	off := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		return &trailingData{off: off}
	}
	return nil
}

type trailingData struct{ off int64 }

func (e *trailingData) Error() string { return "unexpected data after the top-level value" }

// jsonError turns a decoding error into ":line:col: what".
func jsonError(data []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var td *trailingData
	switch {
	case errors.As(err, &td):
		line, col := lineCol(data, valueStartAfterSpace(data, td.off))
		return fmt.Errorf(":%d:%d: %s", line, col, td.Error())
	case errors.As(err, &se):
		line, col := lineCol(data, se.Offset-1) // Offset is just past the bad byte
		return fmt.Errorf(":%d:%d: %s", line, col, strings.TrimPrefix(se.Error(), "json: "))
	case errors.As(err, &te):
		// Offset is just past the offending value; point at its start.
		off := te.Offset
		if off > 0 && off <= int64(len(data)) {
			off = valueStart(data, off)
		}
		line, col := lineCol(data, off)
		where := te.Field
		if where == "" {
			where = "the file"
		}
		return fmt.Errorf(":%d:%d: %s: expected %s, found JSON %s", line, col, where, jsonKind(te.Type.String()), te.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		line, col := lineCol(data, int64(len(data)))
		return fmt.Errorf(":%d:%d: unexpected end of JSON input", line, col)
	}
	return fmt.Errorf(": %s", strings.TrimPrefix(err.Error(), "json: "))
}

// valueStart walks back from end (just past a scalar or the first token of a
// compound value) to where that value starts.
func valueStart(data []byte, end int64) int64 {
	i := end - 1
	if data[i] == '"' {
		for i--; i > 0; i-- {
			if data[i] == '"' && !escaped(data, i) {
				return i
			}
		}
		return i
	}
	if data[i] == '{' || data[i] == '[' {
		return i
	}
	for i > 0 && !strings.ContainsRune(" \t\r\n,:[{", rune(data[i-1])) {
		i--
	}
	return i
}

func valueStartAfterSpace(data []byte, off int64) int64 {
	for off < int64(len(data)) && strings.IndexByte(" \t\r\n", data[off]) >= 0 {
		off++
	}
	return off
}

func escaped(data []byte, i int64) bool {
	n := 0
	for j := i - 1; j >= 0 && data[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}

func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "dest."), strings.HasPrefix(goType, "struct"):
		return "an object"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case goType == "string":
		return "a string"
	}
	return goType
}

// lineCol is the 1-based position of the byte at index off.
func lineCol(data []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = len(before) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// expandEnv resolves "env:NAME" values; the error names the field and the
// variable, never a value.
func expandEnv(field, v string) (string, error) {
	name, ok := strings.CutPrefix(v, "env:")
	if !ok {
		return v, nil
	}
	if name == "" {
		return "", fmt.Errorf("%s: env: needs a variable name", field)
	}
	val, ok := os.LookupEnv(name)
	if !ok || val == "" {
		return "", fmt.Errorf("%s: environment variable %s is not set", field, name)
	}
	return val, nil
}

// ParseLambdaFlag adds one "name=target" to c.Lambdas (serve --lambda); name
// is a function name or "name:alias", target an http(s) URL, "exec:COMMAND",
// or "env:VAR" holding one of those.
func ParseLambdaFlag(s string, c *Config) error {
	name, target, ok := strings.Cut(s, "=")
	if !ok || name == "" || target == "" {
		return fmt.Errorf("--lambda %q: expected NAME=URL or NAME=exec:COMMAND", trimForError(s))
	}
	if err := validLambdaName(name); err != nil {
		return fmt.Errorf("--lambda: %w", err)
	}
	target, err := expandEnv("--lambda "+name, target)
	if err != nil {
		return err
	}
	if err := validLambdaTarget(target); err != nil {
		return fmt.Errorf("--lambda %s: %w", name, err)
	}
	if c.Lambdas == nil {
		c.Lambdas = make(map[string]string)
	}
	c.Lambdas[name] = target
	return nil
}

// ParseTopicFlag appends one "name=endpoint" to c.Topics (serve --sns-topic,
// repeatable).
func ParseTopicFlag(s string, c *Config) error {
	name, ep, ok := strings.Cut(s, "=")
	if !ok || name == "" || ep == "" {
		return fmt.Errorf("--sns-topic %q: expected NAME=ENDPOINT (http(s)://..., slack+https://..., mailto:...)", trimForError(s))
	}
	if !topicNameRE.MatchString(name) {
		return fmt.Errorf("--sns-topic: bad topic name %q (letters, digits, - and _, up to 256, optional .fifo)", trimForError(name))
	}
	ep, err := expandEnv("--sns-topic "+name, ep)
	if err != nil {
		return err
	}
	if _, err := validEndpoint(ep); err != nil {
		return fmt.Errorf("--sns-topic %s: %w", name, err)
	}
	if c.Topics == nil {
		c.Topics = make(map[string][]string)
	}
	c.Topics[name] = append(c.Topics[name], ep)
	return nil
}

// Validate checks every handler, endpoint and setting; errors name the field
// and show values without credentials.
func (c *Config) Validate() error {
	var errs []error
	for i, p := range c.URLPrefixes {
		if u, err := parseHTTPURL(p); err != nil {
			errs = append(errs, fmt.Errorf("urlPrefixes[%d] (--subscription-url-prefix): %w", i, err))
		} else if u.Path == "" {
			errs = append(errs, fmt.Errorf("urlPrefixes[%d] (--subscription-url-prefix): %s must end its host with a path, at least \"/\" (else https://a.example matches https://a.example.evil)", i, redactURL(u)))
		}
	}
	for _, name := range sortedKeys(c.Lambdas) {
		if err := validLambdaName(name); err != nil {
			errs = append(errs, fmt.Errorf("lambdas: %w", err))
			continue
		}
		if err := validLambdaTarget(c.Lambdas[name]); err != nil {
			errs = append(errs, fmt.Errorf("lambdas.%s: %w", name, err))
		}
	}
	needSMTP := false
	for _, name := range sortedKeys(c.Topics) {
		if !topicNameRE.MatchString(name) {
			errs = append(errs, fmt.Errorf("topics: bad topic name %q", trimForError(name)))
			continue
		}
		if len(c.Topics[name]) == 0 {
			errs = append(errs, fmt.Errorf("topics.%s: no endpoints", name))
		}
		for i, ep := range c.Topics[name] {
			kind, err := validEndpoint(ep)
			if err != nil {
				errs = append(errs, fmt.Errorf("topics.%s[%d]: %w", name, i, err))
			} else if fn := ep[len("lambda:"):]; kind == "lambda" && c.Lambdas[fn] == "" {
				errs = append(errs, fmt.Errorf("topics.%s[%d]: no handler is configured for function %s (--lambda %s=URL|exec:COMMAND)", name, i, fn, fn))
			}
			needSMTP = needSMTP || kind == "mailto"
		}
	}
	if needSMTP || c.SMTP.Addr != "" {
		if err := c.SMTP.validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.EventLink != "" {
		l := strings.NewReplacer("{region}", "r", "{eventID}", "e", "{account}", "a").Replace(c.EventLink)
		if _, err := parseHTTPURL(l); err != nil {
			errs = append(errs, fmt.Errorf("eventLink: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (s *SMTPConfig) validate() error {
	if s.Addr == "" {
		return errors.New("smtp.addr: mailto endpoints need an SMTP server (host:port)")
	}
	if _, _, err := net.SplitHostPort(s.Addr); err != nil {
		return fmt.Errorf("smtp.addr %q: expected host:port", trimForError(s.Addr))
	}
	if s.From == "" {
		return errors.New("smtp.from: mailto endpoints need a From address")
	}
	if _, err := mail.ParseAddress(s.From); err != nil {
		return fmt.Errorf("smtp.from %q: %v", trimForError(s.From), err)
	}
	switch s.StartTLS {
	case "", "auto", "require", "never":
	default:
		return fmt.Errorf("smtp.startTLS %q: expected auto, require or never", trimForError(s.StartTLS))
	}
	if (s.Username == "") != (s.Password == "") {
		return errors.New("smtp.username and smtp.password go together")
	}
	return nil
}

func validLambdaName(name string) error {
	fn, q, hasQ := strings.Cut(name, ":")
	if !functionNameRE.MatchString(fn) || (hasQ && !qualifierRE.MatchString(q)) {
		return fmt.Errorf("bad function name %q (letters, digits, - and _, up to 64; optional :alias)", trimForError(name))
	}
	return nil
}

func validLambdaTarget(t string) error {
	switch {
	case hasPrefixFold(t, "http://"), hasPrefixFold(t, "https://"):
		_, err := parseHTTPURL(t)
		return err
	case strings.HasPrefix(t, "exec:"):
		argv, err := splitCommand(strings.TrimPrefix(t, "exec:"))
		if err != nil {
			return fmt.Errorf("exec: %w", err)
		}
		if len(argv) == 0 {
			return errors.New("exec: no command")
		}
		return nil
	}
	return errors.New("expected an http(s) URL or exec:COMMAND")
}

// validEndpoint checks a topic endpoint and returns its kind.
func validEndpoint(ep string) (string, error) {
	switch {
	case hasPrefixFold(ep, "slack+"):
		u, err := parseHTTPURL(ep[len("slack+"):])
		if err == nil && u.Scheme != "https" {
			err = errors.New("Slack webhooks need https")
		}
		return "slack", err
	case hasPrefixFold(ep, "http://"), hasPrefixFold(ep, "https://"):
		_, err := parseHTTPURL(ep)
		return "http", err
	case hasPrefixFold(ep, "mailto:"):
		_, err := parseMailto(ep)
		return "mailto", err
	case strings.HasPrefix(ep, "lambda:"):
		return "lambda", validLambdaName(ep[len("lambda:"):])
	}
	return "", errors.New("expected http(s)://..., slack+https://... or mailto:... (or lambda:FUNCTION, a --lambda handler)")
}

// parseMailto returns the addresses of "mailto:a@example.com[,b@example.com]".
func parseMailto(ep string) ([]string, error) {
	rest := ep[len("mailto:"):]
	if strings.ContainsAny(rest, "?#") {
		return nil, errors.New("mailto: headers (?subject=...) are not supported")
	}
	rest, err := url.PathUnescape(rest)
	if err != nil {
		return nil, fmt.Errorf("mailto: %v", err)
	}
	var out []string
	for _, a := range strings.Split(rest, ",") {
		addr, err := mail.ParseAddress(strings.TrimSpace(a))
		if err != nil {
			return nil, fmt.Errorf("mailto: %q: %v", trimForError(a), err)
		}
		out = append(out, addr.Address)
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
