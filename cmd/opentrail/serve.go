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
	"strings"
	"syscall"
	"time"

	"github.com/opentrail/opentrail/internal/app"
	"github.com/opentrail/opentrail/internal/objstore"
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
	topics := map[string]string{}
	fs.Func("sns-topic", "NAME=URL: POST SNS notifications for topic NAME to URL (repeatable)", func(v string) error {
		name, url, ok := strings.Cut(v, "=")
		if !ok || name == "" || !(strings.HasPrefix(url, "http://") || strings.HasPrefix(url, "https://")) {
			return fmt.Errorf("want NAME=http(s)://..., got %q", v)
		}
		topics[name] = url
		return nil
	})
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	pprofAddr := fs.String("pprof", "", "serve Go profiles (net/http/pprof) on this address, e.g. 127.0.0.1:6060")
	fs.Parse(args)

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var buckets objstore.Store
	if *s3Endpoint != "" {
		s3, err := objstore.NewS3(ctx, objstore.S3Config{Endpoint: *s3Endpoint, Region: *s3Region, PathStyle: *s3PathStyle,
			AccessKeyID: os.Getenv("OPENTRAIL_S3_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("OPENTRAIL_S3_SECRET_ACCESS_KEY")})
		if err != nil {
			return fmt.Errorf("--s3-endpoint: %w", err)
		}
		buckets = s3
	}
	a, err := app.Open(ctx, app.Config{
		Buckets:   buckets,
		DataDir:   *dataDir,
		Account:   env("123456789012", "OPENTRAIL_ACCOUNT_ID"),
		Region:    env("us-east-1", "OPENTRAIL_REGION"),
		RootKeyID: os.Getenv("OPENTRAIL_ROOT_ACCESS_KEY_ID"),
		RootKey:   os.Getenv("OPENTRAIL_ROOT_SECRET_ACCESS_KEY"),
		Retention: *retention,
		CacheMiB:  *cache,
		Version:   version,

		DeliveryInterval: *deliveryInterval,
		DigestInterval:   *digestInterval,
		SNSTopics:        topics,
	}, log)
	if err != nil {
		return err
	}
	defer a.Close()
	a.PrintGenerated(os.Stdout)

	if *pprofAddr != "" {
		go func() { log.Error("pprof", "err", http.ListenAndServe(*pprofAddr, nil)) }()
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.Handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
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
