package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served only with --pprof, on its own address
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/opentrail/opentrail/internal/app"
	"github.com/opentrail/opentrail/internal/logs/dest"
	"github.com/opentrail/opentrail/internal/objstore"
	"github.com/opentrail/opentrail/internal/proxy"
)

func runServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	listen := fs.String("listen", env("127.0.0.1:4590", "OPENTRAIL_LISTEN"), "address to listen on")
	dataDir := fs.String("data-dir", env("./opentrail-data", "OPENTRAIL_DATA_DIR"), "where OpenTrail keeps its data")
	retention := fs.Duration("retention", 90*24*time.Hour, "how long event history keeps an event after it was recorded")
	cache := fs.Int64("cache-mib", 256, "database block cache in MiB")
	deliveryInterval := fs.Duration("delivery-interval", 5*time.Minute, "how long a trail's log file collects events before it is written")
	digestInterval := fs.Duration("digest-interval", time.Hour, "how often trails with log file validation write a digest file")
	s3Endpoint := fs.String("s3-endpoint", env("", "OPENTRAIL_S3_ENDPOINT"), "deliver to this S3-compatible service instead of folders under DATA-DIR/buckets (credentials: OPENTRAIL_S3_ACCESS_KEY_ID/OPENTRAIL_S3_SECRET_ACCESS_KEY, else the AWS default chain)")
	s3Region := fs.String("s3-region", env("us-east-1", "OPENTRAIL_S3_REGION"), "region of the S3 service")
	s3PathStyle := fs.Bool("s3-path-style", true, "address buckets as ENDPOINT/BUCKET (most S3-compatible services) rather than BUCKET.ENDPOINT")
	bucketOwners := map[string]string{}
	fs.Func("bucket-owner", "BUCKET=ACCOUNT: with --s3-endpoint, account ACCOUNT owns BUCKET (other buckets are the root account's): "+
		"only its trails, or trails its bucket policy grants, deliver there; repeatable",
		func(v string) error { return parseBucketOwner(v, bucketOwners) })
	var dests dest.Config
	fs.Func("sns-topic", "NAME=ENDPOINT: deliver SNS topic NAME (trail file notifications and subscription filters) to ENDPOINT: "+
		"http(s)://... (SNS HTTP messages), slack+https://... (Slack-compatible webhook) or mailto:a@example.com (SMTP); repeatable",
		func(v string) error { return dest.ParseTopicFlag(v, &dests) })
	fs.Func("lambda", "NAME=HANDLER: run Lambda function NAME (subscription destination arn:aws:lambda:...:function:NAME) as "+
		"an http(s):// endpoint that receives the Lambda event, or exec:COMMAND that gets it on stdin; repeatable",
		func(v string) error { return dest.ParseLambdaFlag(v, &dests) })
	fs.Func("subscription-url-prefix", "PREFIX: accept plain URL subscription destinations only under PREFIX (e.g. https://hooks.example.com/); "+
		"repeatable; without it any http(s) URL is accepted (never a link-local address such as a metadata service)",
		func(v string) error { dests.URLPrefixes = append(dests.URLPrefixes, v); return nil })
	destFile := fs.String("destinations", env("", "OPENTRAIL_DESTINATIONS"), "JSON file of Lambda handlers, SNS topics and SMTP settings (see README); flags add to it")
	smtpAddr := fs.String("smtp", env("", "OPENTRAIL_SMTP"), "SMTP submission server host:port for mailto: endpoints")
	smtpFrom := fs.String("smtp-from", env("", "OPENTRAIL_SMTP_FROM"), "From address of notification mail")
	attempts := fs.Int("subscription-attempts", 10, "delivery attempts of a subscription batch before it becomes a dead letter")
	perGroup := fs.Int("subscription-filters-per-group", 2, "subscription filters one log group may have (AWS allows 2)")
	proxyListen := fs.String("proxy-listen", "", "also run the audit proxy on this address (in-process: records go straight to the journal)")
	proxyUpstream := fs.String("proxy-upstream", "", "the service the in-process audit proxy forwards to, e.g. https://dynamodb.us-east-1.amazonaws.com")
	proxyPolicy := fs.String("proxy-policy", "", "endpoint policy file for the in-process audit proxy")
	proxyFailOpen := fs.Bool("proxy-fail-open", false, "in-process audit proxy: forward calls even when their record cannot be guaranteed")
	proxyRedact := fs.String("proxy-redact", proxy.RedactMask, "in-process audit proxy: mask (***) or hmac (hmac-sha256:<hex>) for non-key values")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	consoleOn := fs.Bool("console", true, "serve the web console at /console/ on the API listener")
	pprofAddr := fs.String("pprof", "", "serve Go profiles (net/http/pprof) on this address, e.g. 127.0.0.1:6060")
	fs.Parse(args)

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if *destFile != "" {
		fromFile, err := dest.LoadConfigFile(*destFile)
		if err != nil {
			return fmt.Errorf("--destinations: %w", err)
		}
		dests = mergeDestinations(fromFile, dests)
	}
	if *smtpAddr != "" {
		dests.SMTP.Addr = *smtpAddr
	}
	if *smtpFrom != "" {
		dests.SMTP.From = *smtpFrom
	}
	if err := dests.Validate(); err != nil {
		return err
	}
	topics := map[string]string{}
	for name, eps := range dests.Topics {
		for _, ep := range eps {
			if _, ok := topics[name]; !ok && (strings.HasPrefix(ep, "http://") || strings.HasPrefix(ep, "https://")) {
				topics[name] = ep // trail file notifications go to the topic's first SNS HTTP endpoint
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	account := env("123456789012", "OPENTRAIL_ACCOUNT_ID")
	var buckets objstore.Store
	if *s3Endpoint != "" {
		s3, err := objstore.NewS3(ctx, objstore.S3Config{Endpoint: *s3Endpoint, Region: *s3Region, PathStyle: *s3PathStyle,
			AccessKeyID: os.Getenv("OPENTRAIL_S3_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("OPENTRAIL_S3_SECRET_ACCESS_KEY"),
			Owners: bucketOwners, Owner: account})
		if err != nil {
			return fmt.Errorf("--s3-endpoint: %w", err)
		}
		buckets = s3
	}
	a, err := app.Open(ctx, app.Config{
		Buckets:   buckets,
		DataDir:   *dataDir,
		Account:   account,
		Region:    env("us-east-1", "OPENTRAIL_REGION"),
		RootKeyID: os.Getenv("OPENTRAIL_ROOT_ACCESS_KEY_ID"),
		RootKey:   os.Getenv("OPENTRAIL_ROOT_SECRET_ACCESS_KEY"),
		Retention: *retention,
		CacheMiB:  *cache,
		Version:   version,
		NoConsole: !*consoleOn,

		DeliveryInterval: *deliveryInterval,
		DigestInterval:   *digestInterval,
		SNSTopics:        topics,

		Destinations:         dests,
		SubscriptionAttempts: *attempts,
		SubscriptionFilters:  *perGroup,
	}, log)
	if err != nil {
		return err
	}
	defer a.Close()
	a.PrintGenerated(os.Stdout)

	if *pprofAddr != "" {
		go func() { log.Error("pprof", "err", http.ListenAndServe(*pprofAddr, nil)) }()
	}
	if (*proxyListen == "") != (*proxyUpstream == "") {
		return fmt.Errorf("--proxy-listen and --proxy-upstream go together")
	}
	if *proxyListen != "" {
		stop, err := serveProxy(a, log, *proxyListen, *proxyUpstream, *proxyPolicy, *proxyRedact, *proxyFailOpen, *dataDir)
		if err != nil {
			return err
		}
		defer stop()
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.Handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	srv.RegisterOnShutdown(a.Handler.CloseStreams)
	log.Info("OpenTrail is listening", "addr", "http://"+ln.Addr().String(), "data_dir", *dataDir, "version", version)

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-sigs:
	}
	// Stop accepting, let in-flight requests (and their fsyncs) finish; a second signal aborts.
	log.Info("shutting down")
	go func() {
		<-sigs
		log.Error("second signal: aborting")
		os.Exit(1)
	}()
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// mergeDestinations adds the flags' Lambda handlers and topic endpoints to the file's.
func mergeDestinations(file, flags dest.Config) dest.Config {
	if file.Lambdas == nil {
		file.Lambdas = map[string]string{}
	}
	for k, v := range flags.Lambdas {
		file.Lambdas[k] = v
	}
	if file.Topics == nil {
		file.Topics = map[string][]string{}
	}
	for k, v := range flags.Topics {
		file.Topics[k] = append(file.Topics[k], v...)
	}
	file.URLPrefixes = append(file.URLPrefixes, flags.URLPrefixes...)
	return file
}

// serveProxy runs the audit proxy inside the server: its records are ingested
// in-process with the root key (callers it resolves may belong to any
// account), and spooled under DATA-DIR/proxy-spool when they cannot be.
func serveProxy(a *app.App, log *slog.Logger, listen, upstream, policyFile, redact string, failOpen bool, dataDir string) (stop func(), err error) {
	root, _, ok := a.Keys.Root()
	if !ok {
		return nil, fmt.Errorf("proxy: no root key")
	}
	o := proxy.Options{
		Upstream: upstream, ListenAddr: listen,
		Sink: proxy.NewLocalSink(func(ctx context.Context, raws [][]byte) error {
			_, err := a.Handler.IngestRecords(ctx, root, a.Region, raws)
			return err
		}),
		SpoolDir: filepath.Join(dataDir, "proxy-spool"), SpoolMaxBytes: 1 << 30, FailOpen: failOpen,
		Resolve: proxy.KeyringResolver(a.Keys.Lookup), Redact: redact, HMACKey: a.Keys.DeriveKey("proxy-hmac"),
		Account: a.Account, Region: a.Region, Log: log, Registry: a.Registry,
	}
	if policyFile != "" {
		doc, err := os.ReadFile(policyFile)
		if err != nil {
			return nil, fmt.Errorf("--proxy-policy: %w", err)
		}
		if o.Policy, err = proxy.ParsePolicy(doc); err != nil {
			return nil, fmt.Errorf("--proxy-policy %s: %w", policyFile, err)
		}
	}
	p, err := proxy.New(o)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		p.Close()
		return nil, err
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go srv.Serve(ln)
	log.Info("audit proxy is listening", "addr", "http://"+ln.Addr().String(), "upstream", upstream)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		p.Close()
	}, nil
}

// parseBucketOwner parses a --bucket-owner BUCKET=ACCOUNT flag into owners.
func parseBucketOwner(v string, owners map[string]string) error {
	bucket, acct, ok := strings.Cut(v, "=")
	if !ok || objstore.ValidBucketName(bucket) != nil || len(acct) != 12 || strings.Trim(acct, "0123456789") != "" {
		return fmt.Errorf("want BUCKET=ACCOUNT (a bucket name and a 12-digit account ID), got %q", v)
	}
	owners[bucket] = acct
	return nil
}
