package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/opentrail/opentrail/internal/proxy"
)

// runProxy runs the audit proxy: opentrail proxy --listen 127.0.0.1:8000 --upstream URL.
func runProxy(args []string) error {
	fs := newFlags("opentrail proxy", "--upstream URL [flags]",
		`Runs the audit proxy: clients send their AWS-protocol calls (e.g. DynamoDB's) to it, it records each
call as a CloudTrail data event in OpenTrail (through a writer key) and forwards it upstream. A call is
forwarded only once its record is spooled or sent, unless --fail-open.`,
		"OPENTRAIL_ACCESS_KEY_ID=... OPENTRAIL_SECRET_ACCESS_KEY=... \\\n    opentrail proxy --listen 127.0.0.1:8000 --upstream https://dynamodb.us-east-1.amazonaws.com")
	listen := fs.String("listen", "127.0.0.1:8000", "address the proxy listens on")
	upstream := fs.String("upstream", "", "the service to forward to, e.g. https://dynamodb.us-east-1.amazonaws.com (required)")
	server := fs.String("server", "", "OpenTrail server that receives the records (default "+defaultEndpoint+")")
	fs.envVar("server", "OPENTRAIL_ENDPOINT")
	accessKey := fs.String("access-key-id", "", "OpenTrail writer access key ID")
	fs.envVar("access-key-id", "OPENTRAIL_ACCESS_KEY_ID")
	secretKey := fs.String("secret-access-key", "", "OpenTrail writer secret (prefer the environment variable: a flag shows in ps)")
	fs.envVar("secret-access-key", "OPENTRAIL_SECRET_ACCESS_KEY")
	spoolDir := fs.String("spool-dir", "opentrail-proxy-spool", "local spool for records OpenTrail cannot take yet")
	spoolMax := fs.Int64("spool-max-bytes", 1<<30, "spool size limit in bytes; when full, calls fail closed (503) unless --fail-open")
	policyFile := fs.String("policy", "", "endpoint policy (IAM JSON subset); denied calls are recorded as VpceAccessDenied and not forwarded")
	failOpen := fs.Bool("fail-open", false, "forward calls even when their record cannot be guaranteed (spool full)")
	redact := fs.enum("redact", proxy.RedactMask, []string{proxy.RedactMask, proxy.RedactHMAC}, "how non-key values are redacted: mask (***) or hmac (hmac-sha256:<hex>)")
	hmacKeyFile := fs.String("hmac-key-file", "", "file holding the HMAC key for --redact hmac (at least 16 bytes)")
	respElems := fs.Bool("response-elements", false, "record (redacted) response bodies as responseElements")
	account := fs.String("account", "", "account of callers and of the endpoint in records (default 123456789012)")
	fs.envVar("account", "OPENTRAIL_ACCOUNT_ID")
	region := fs.String("region", "", "region of unsigned calls, and of the OpenTrail server's signing scope (default us-east-1)")
	fs.envVar("region", "OPENTRAIL_REGION")
	vpce := fs.String("vpc-endpoint-id", "", "vpcEndpointId in records (default derived from --listen)")
	maxParse := fs.Int64("max-parse-bytes", 1<<20, "request body bytes parsed for requestParameters; bodies are forwarded whole regardless")
	tlsCert := fs.String("tls-cert", "", "serve TLS with this certificate (PEM)")
	tlsKey := fs.String("tls-key", "", "private key for --tls-cert (PEM)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(0, "no arguments"); err != nil {
		return err
	}
	if *upstream == "" {
		return usagef("--upstream is required, e.g. --upstream https://dynamodb.us-east-1.amazonaws.com")
	}
	*server = cmp.Or(*server, defaultEndpoint)
	*account = cmp.Or(*account, "123456789012")
	*region = cmp.Or(*region, "us-east-1")
	if (*tlsCert == "") != (*tlsKey == "") {
		return usagef("give both --tls-cert and --tls-key, or neither")
	}
	if *redact == proxy.RedactHMAC && *hmacKeyFile == "" {
		return usagef("--redact hmac needs --hmac-key-file")
	}
	if *spoolMax < 1<<20 {
		return usagef("--spool-max-bytes %d: at least 1048576", *spoolMax)
	}
	id, secret := *accessKey, *secretKey
	if id == "" || secret == "" {
		return errors.New("set OPENTRAIL_ACCESS_KEY_ID and OPENTRAIL_SECRET_ACCESS_KEY (a writer key of the OpenTrail server), or --access-key-id and --secret-access-key")
	}
	o := proxy.Options{
		Upstream: *upstream, Sink: proxy.NewRemoteSink(*server, *region, id, secret, nil),
		SpoolDir: *spoolDir, SpoolMaxBytes: *spoolMax, FailOpen: *failOpen, Redact: *redact,
		ResponseElements: *respElems, VPCEndpointID: *vpce, ListenAddr: *listen,
		Account: *account, Region: *region, MaxParseBytes: *maxParse,
		Log: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}
	if *policyFile != "" {
		doc, err := os.ReadFile(*policyFile)
		if err != nil {
			return fmt.Errorf("--policy: %w", err)
		}
		if o.Policy, err = proxy.ParsePolicy(doc); err != nil {
			return fmt.Errorf("--policy %s: %w", *policyFile, err)
		}
	}
	if *hmacKeyFile != "" {
		k, err := os.ReadFile(*hmacKeyFile)
		if err != nil {
			return fmt.Errorf("--hmac-key-file: %w", err)
		}
		o.HMACKey = []byte(strings.TrimSpace(string(k)))
	}
	p, err := proxy.New(o)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		p.Close()
		return err
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() {
		if *tlsCert != "" {
			errc <- srv.ServeTLS(l, *tlsCert, *tlsKey)
		} else {
			errc <- srv.Serve(l)
		}
	}()
	fmt.Fprintf(os.Stderr, "opentrail proxy: %s → %s, records to %s\n", l.Addr(), *upstream, *server)
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case err := <-errc:
		p.Close()
		return err
	case <-sig:
	}
	// Stop accepting, let calls in flight finish (a second signal aborts), then flush.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		<-sig
		cancel()
	}()
	srv.Shutdown(ctx)
	return p.Close()
}
