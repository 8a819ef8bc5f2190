package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	"github.com/opentrail/opentrail/internal/insights"
	"github.com/opentrail/opentrail/internal/logs/dest"
	"github.com/opentrail/opentrail/internal/objstore"
	"github.com/opentrail/opentrail/internal/proxy"
	"github.com/opentrail/opentrail/internal/server"
)

const serveAbout = `Runs the OpenTrail server in the foreground until SIGINT or SIGTERM: the first signal stops
accepting requests, lets those in flight finish and the projections flush, then exits 0; a second
signal aborts at once (exit 1). On its first start it generates a root key and prints it once to
stdout, unless OPENTRAIL_ROOT_ACCESS_KEY_ID and OPENTRAIL_ROOT_SECRET_ACCESS_KEY give one; setting
different ones later replaces the stored root key. Trails deliver to folders under
DATA-DIR/buckets (create a bucket there with mkdir), or to an S3-compatible service.

Environment: OPENTRAIL_ACCOUNT_ID (the root key's account, default 123456789012), OPENTRAIL_REGION
(default us-east-1), OPENTRAIL_ROOT_ACCESS_KEY_ID, OPENTRAIL_ROOT_SECRET_ACCESS_KEY.`

// newLogger is the server's operational log on w.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level: %v", err)
	}
	o := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return slog.New(slog.NewTextHandler(w, o)), nil
}

func runServe(args []string) error {
	fs := newFlags("opentrail serve", "[flags]", serveAbout, "OPENTRAIL_DATA_DIR=/var/lib/opentrail opentrail serve --listen 0.0.0.0:4590 --log-format json")
	listen := fs.String("listen", "127.0.0.1:4590", "address to listen on")
	fs.envVar("listen", "OPENTRAIL_LISTEN")
	dataDir := fs.String("data-dir", "./opentrail-data", "where OpenTrail keeps its data")
	fs.envVar("data-dir", "OPENTRAIL_DATA_DIR")
	retention := fs.Duration("retention", 90*24*time.Hour, "how long event history keeps an event after it was recorded")
	cache := fs.Int64("cache-mib", 256, "database block cache in MiB")
	deliveryInterval := fs.Duration("delivery-interval", 5*time.Minute, "how long a trail's log file collects events before it is written")
	digestInterval := fs.Duration("digest-interval", time.Hour, "how often trails with log file validation write a digest file")
	s3f := addS3Flags(fs, "deliver to this S3-compatible service instead of folders under DATA-DIR/buckets; ")
	bucketOwners := map[string]string{}
	fs.Func("bucket-owner", "BUCKET=ACCOUNT: with --s3-endpoint, account ACCOUNT owns BUCKET (other buckets are the root account's): "+
		"only its trails, or trails its bucket policy grants, deliver there; repeatable",
		func(v string) error { return parseBucketOwner(v, bucketOwners) })
	var dests dest.Config
	fs.Func("sns-topic", "NAME=ENDPOINT: deliver SNS topic NAME (trail file notifications and subscription filters) to ENDPOINT: "+
		"http(s)://... (SNS HTTP messages), slack+https://... (Slack-compatible webhook), mailto:a@example.com (SMTP) or lambda:FUNCTION (a --lambda handler, SNS event); repeatable",
		func(v string) error { return dest.ParseTopicFlag(v, &dests) })
	fs.Func("lambda", "NAME=HANDLER: run Lambda function NAME (subscription destination arn:aws:lambda:...:function:NAME) as "+
		"an http(s):// endpoint that receives the Lambda event, or exec:COMMAND that gets it on stdin; repeatable",
		func(v string) error { return dest.ParseLambdaFlag(v, &dests) })
	fs.Func("subscription-url-prefix", "PREFIX: accept plain URL subscription destinations only under PREFIX (e.g. https://hooks.example.com/); "+
		"repeatable; without it any http(s) URL is accepted (never a link-local address such as a metadata service)",
		func(v string) error { dests.URLPrefixes = append(dests.URLPrefixes, v); return nil })
	destFile := fs.String("destinations", "", "JSON file of Lambda handlers, SNS topics and SMTP settings (see README); flags add to it")
	fs.envVar("destinations", "OPENTRAIL_DESTINATIONS")
	smtpAddr := fs.String("smtp", "", "SMTP submission server host:port for mailto: endpoints")
	fs.envVar("smtp", "OPENTRAIL_SMTP")
	smtpFrom := fs.String("smtp-from", "", "From address of notification mail")
	fs.envVar("smtp-from", "OPENTRAIL_SMTP_FROM")
	attempts := fs.Int("subscription-attempts", 10, "delivery attempts of a subscription batch before it becomes a dead letter")
	perGroup := fs.Int("subscription-filters-per-group", 2, "subscription filters one log group may have (AWS allows 2)")
	proxyListen := fs.String("proxy-listen", "", "also run the audit proxy on this address (in-process: records go straight to the journal)")
	proxyUpstream := fs.String("proxy-upstream", "", "the service the in-process audit proxy forwards to, e.g. https://dynamodb.us-east-1.amazonaws.com")
	proxyPolicy := fs.String("proxy-policy", "", "endpoint policy file for the in-process audit proxy")
	proxyFailOpen := fs.Bool("proxy-fail-open", false, "in-process audit proxy: forward calls even when their record cannot be guaranteed")
	proxyRedact := fs.enum("proxy-redact", proxy.RedactMask, []string{proxy.RedactMask, proxy.RedactHMAC}, "in-process audit proxy: mask (***) or hmac (hmac-sha256:<hex>) for non-key values")
	logLevel := fs.enum("log-level", "info", []string{"debug", "info", "warn", "error"}, "least severe log lines written")
	fs.envVar("log-level", "OPENTRAIL_LOG_LEVEL")
	logFormat := fs.enum("log-format", "text", []string{"text", "json"}, "log lines as logfmt text or one JSON object per line (for a log shipper)")
	fs.envVar("log-format", "OPENTRAIL_LOG_FORMAT")
	var rulePaths []string
	if v := os.Getenv("OPENTRAIL_RULES"); v != "" {
		rulePaths = filepath.SplitList(v)
	}
	fs.Func("rules", "PATH: Sigma detection rules, a file or a folder read recursively for *.yml/*.yaml; repeatable "+
		"(default $OPENTRAIL_RULES, colon-separated); reloaded on SIGHUP and when the files change",
		func(v string) error { rulePaths = append(rulePaths, v); return nil })
	var findingDests []dest.FindingRoute
	fs.Func("findings-destination", "ARN_OR_URL[,MIN_LEVEL]: send detection findings (of at least MIN_LEVEL: low, medium, high, critical) "+
		"to a Lambda function ARN, an SNS topic ARN or a URL, as subscription filters do; repeatable",
		func(v string) error {
			r := dest.FindingRoute{Destination: v}
			if i := strings.LastIndexByte(v, ','); i >= 0 && dest.LevelRank(v[i+1:]) >= 0 {
				r = dest.FindingRoute{Destination: v[:i], MinLevel: v[i+1:]}
			}
			findingDests = append(findingDests, r)
			return nil
		})
	metricsListen := fs.String("metrics-listen", "127.0.0.1:9590", "serve Prometheus metrics (GET /metrics, every account's state: for the operator) on this address, apart from the API; \"\" turns them off")
	fs.envVar("metrics-listen", "OPENTRAIL_METRICS_LISTEN")
	metricsToken := fs.String("metrics-token", "", "require \"Authorization: Bearer TOKEN\" on GET /metrics (prefer the environment variable: flags show in ps)")
	fs.envVar("metrics-token", "OPENTRAIL_METRICS_TOKEN")
	var rule insights.Rule
	noInsights := fs.Bool("insights-off", false, "do not detect CloudTrail Insights (unusual call and error rates)")
	fs.IntVar(&rule.MinCount, "insights-min-count", 10, "Insights: calls a minute needs at least to be unusual (the floor)")
	fs.Float64Var(&rule.Sigma, "insights-sigma", 6, "Insights: standard deviations above the baseline mean that make a minute unusual")
	fs.IntVar(&rule.StartMinutes, "insights-start-minutes", 1, "Insights: unusual minutes in a row that start an insight")
	fs.IntVar(&rule.EndMinutes, "insights-end-minutes", 5, "Insights: normal minutes in a row that end an insight")
	fs.DurationVar(&rule.Baseline, "insights-baseline", 7*24*time.Hour, "Insights: how far back the baseline reaches")
	fs.DurationVar(&rule.MinHistory, "insights-min-history", 24*time.Hour, "Insights: baseline an account and Region need before their first insight")
	fs.DurationVar(&rule.Grace, "insights-grace", 30*time.Second, "Insights: how long after its end a minute of live events is closed")
	fs.DurationVar(&rule.BackfillGrace, "insights-backfill-grace", 10*time.Minute, "Insights: extra wait, in event time, for minutes of imported or late events")
	consoleOn := fs.Bool("console", true, "serve the web console at /console/ on the API listener")
	regions := fs.String("regions", "", "comma-separated regions requests may be signed for (e.g. us-east-1,eu-west-1); empty: any name of AWS's region syntax")
	fs.envVar("regions", "OPENTRAIL_REGIONS")
	pprofAddr := fs.String("pprof", "", "serve Go profiles (net/http/pprof) on this address, e.g. 127.0.0.1:6060")
	diskReserve := fs.Int64("disk-reserve-mib", 512, "free disk space (MiB) to keep under the data dir: below it ingest answers 503 ServiceUnavailableException (retryable) while reads go on; half of it is held in DATA-DIR/disk-ballast, deleted when a start finds the disk full")
	acceptLoss := fs.Bool("accept-journal-loss", false, "start even though the newest write-ahead log is corrupt before its end: "+
		"truncate it there (a copy is kept beside the database), give up what followed, and record that as an event")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(0, "no arguments"); err != nil {
		return err
	}

	log, err := newLogger(os.Stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	if *destFile != "" {
		fromFile, err := dest.LoadConfigFile(*destFile)
		if err != nil {
			return fmt.Errorf("--destinations: %w", err)
		}
		dests = mergeDestinations(fromFile, dests)
	}
	dests.Findings = append(dests.Findings, findingDests...)
	if *smtpAddr != "" {
		dests.SMTP.Addr = *smtpAddr
	}
	if *smtpFrom != "" {
		dests.SMTP.From = *smtpFrom
	}
	if err := dests.Validate(); err != nil {
		return err
	}
	if err := rule.Validate(); err != nil {
		return fmt.Errorf("--insights-*: %w", err)
	}
	// Signals are caught from here on: one arriving during startup shuts down once serving.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	account := env("123456789012", "OPENTRAIL_ACCOUNT_ID")
	var buckets objstore.Store
	if *s3f.endpoint != "" {
		c := s3f.config()
		c.Owners, c.Owner = bucketOwners, account
		s3, err := openS3(ctx, c)
		if err != nil {
			return err
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
		Version:   readBuildVersion().short(),
		NoConsole: !*consoleOn,

		DeliveryInterval: *deliveryInterval,
		DigestInterval:   *digestInterval,

		Destinations:         dests,
		SubscriptionAttempts: *attempts,
		SubscriptionFilters:  *perGroup,

		Insights:          rule,
		NoInsights:        *noInsights,
		AcceptJournalLoss: *acceptLoss,
		DiskReserveMiB:    *diskReserve,
		Regions:           splitList(*regions),
		DiskBallastMiB:    *diskReserve / 2,
		RulePaths:         rulePaths,
	}, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := a.Close(); err != nil {
			log.Error("close", "err", err)
			return
		}
		log.Info("stopped")
	}()
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
	if *metricsListen != "" {
		stop, err := serveMetrics(a, log, *metricsListen, *metricsToken)
		switch {
		case err == nil:
			defer stop()
		case fs.given["metrics-listen"] || os.Getenv("OPENTRAIL_METRICS_LISTEN") != "":
			return err
		default:
			// The default address may be taken (another server on this host): the API still runs.
			log.Warn("metrics are not served; choose a free address with --metrics-listen, or \"\" to turn them off", "err", err)
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	// Requests run under reqCtx, so that streams (tail --follow), which never end on their own,
	// can be ended when a shutdown has given them a grace period.
	reqCtx, cancelRequests := context.WithCancel(context.Background())
	defer cancelRequests()
	srv := &http.Server{Handler: a.Handler, ReadHeaderTimeout: server.ReadHeaderTimeout, IdleTimeout: server.IdleTimeout,
		BaseContext: func(net.Listener) context.Context { return reqCtx }}
	srv.RegisterOnShutdown(a.Handler.CloseStreams) // console streams end at once
	log.Info("OpenTrail is listening", "addr", "http://"+ln.Addr().String(), "data_dir", *dataDir, "version", readBuildVersion().short())

	if a.Detect != nil {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for range hup {
				a.Detect.Reload()
			}
		}()
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case sig := <-sigs:
		log.Info("shutting down: no new requests; finishing those in flight", "signal", sig.String())
	}
	// A second signal aborts; the first stops accepting, lets in-flight requests (and their
	// fsyncs) finish, and then (deferred) stops the projections and closes the database.
	go func() {
		<-sigs
		log.Error("second signal: aborting")
		os.Exit(1)
	}()
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	grace := time.AfterFunc(5*time.Second, cancelRequests)
	defer grace.Stop()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
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

// serveMetrics serves GET /metrics on its own listener.
func serveMetrics(a *app.App, log *slog.Logger, addr, token string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	srv := &http.Server{Handler: a.MetricsHandler(token), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	go srv.Serve(ln)
	log.Info("metrics are served", "addr", "http://"+ln.Addr().String()+"/metrics", "token", token != "")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
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

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, x := range strings.Split(v, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
