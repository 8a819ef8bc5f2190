// Package app assembles one OpenTrail node from its parts: the database, the
// keyring, the journal and its projections (the event-history index, the Lake,
// trail delivery with digests and SNS notifications, CloudWatch Logs with its
// subscription senders), the CloudTrail service, the Prometheus metrics
// registry and the HTTP server. The serve command, the benchmarks and the
// end-to-end tests all start OpenTrail through it.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/cloudtrail"
	"github.com/opentrail/opentrail/internal/console"
	"github.com/opentrail/opentrail/internal/delivery"
	"github.com/opentrail/opentrail/internal/detect"
	"github.com/opentrail/opentrail/internal/digest"
	"github.com/opentrail/opentrail/internal/history"
	"github.com/opentrail/opentrail/internal/insights"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/lake"
	"github.com/opentrail/opentrail/internal/logs"
	"github.com/opentrail/opentrail/internal/logs/dest"
	"github.com/opentrail/opentrail/internal/objstore"
	"github.com/opentrail/opentrail/internal/server"
)

// Config is a node's configuration.
type Config struct {
	DataDir   string
	Account   string        // the root key's account; default 123456789012
	Region    string        // the home region; default us-east-1
	RootKeyID string        // root access key; both empty = generate once and keep
	RootKey   string        // root secret
	Retention time.Duration // event history; default 90 days
	CacheMiB  int64         // Pebble block cache; default 256
	Version   string

	// Delivery: buckets are folders under DataDir/buckets unless Buckets is set
	// (an S3-compatible store).
	Buckets          objstore.Store
	DeliveryInterval time.Duration     // default 5m
	DigestInterval   time.Duration     // default 1h
	SNSTopics        map[string]string // SNS topic name → URL that receives its notifications; nil: Destinations.Topics, every endpoint

	// Destinations are where subscription filters deliver (Lambda handlers, SNS topics, SMTP).
	Destinations dest.Config
	// SubscriptionAttempts is how often a subscription batch is tried before it is dead-lettered; default 10.
	SubscriptionAttempts int
	// SubscriptionFilters is how many subscription filters one log group may have; default 2, as AWS.
	SubscriptionFilters int
	// AcceptJournalLoss starts even when the newest write-ahead log is corrupt
	// before its end, giving up what follows the corruption (a copy of the log is
	// kept and the loss recorded as an event); without it such a start is refused.
	AcceptJournalLoss bool
	// DiskReserveMiB is the free space the data dir's disk keeps: below it,
	// records from outside are refused with 503 ServiceUnavailableException
	// (retryable) while reads go on; below a quarter of it, every journal write
	// is. Default 512.
	DiskReserveMiB int64
	// DiskBallastMiB, when set, is a file of that size kept under the data dir
	// and deleted when a start finds the disk short of the reserve, so that the
	// database can open; it is made again at a start with room for it.
	DiskBallastMiB int64
	// NoConsole turns off the web console at /console/ (on by default).
	NoConsole bool
	// Regions, when set, are the only regions requests may be signed for.
	Regions []string

	// Insights is the rule of CloudTrail Insights (zero fields: defaults); NoInsights turns detection off.
	Insights   insights.Rule
	NoInsights bool
	// RulePaths are Sigma rule files and folders; with them (or with findings
	// destinations in Destinations.Findings) the detections projection runs.
	RulePaths []string
}

var accountRE = regexp.MustCompile(`^[0-9]{12}$`)

// Validate names the first bad field.
func (c *Config) Validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("config: data dir is empty")
	case !accountRE.MatchString(c.Account):
		return fmt.Errorf("config: account %q is not a 12-digit account ID", c.Account)
	case c.Region == "":
		return errors.New("config: region is empty")
	case (c.RootKeyID == "") != (c.RootKey == ""):
		return errors.New("config: set both OPENTRAIL_ROOT_ACCESS_KEY_ID and OPENTRAIL_ROOT_SECRET_ACCESS_KEY, or neither")
	case c.Retention < 0:
		return fmt.Errorf("config: retention %s is negative", c.Retention)
	}
	return nil
}

// App is a running node.
type App struct {
	Handler *server.Server
	Journal *journal.Journal
	Store   *history.Store
	Keys    *auth.Keyring
	CT      *cloudtrail.Service
	Buckets objstore.Store
	Deliver *delivery.Worker
	Notify  *delivery.Notifier
	Logs    *logs.Service
	// Insights finds unusual call and error rates; nil with Config.NoInsights.
	Insights *insights.Service
	// Registry is what GET /metrics serves; other parts (the in-process proxy) add to it.
	Registry *prometheus.Registry
	// Metrics serves Registry (Prometheus text), unauthenticated: see MetricsHandler.
	Metrics http.Handler
	// Account and Region are the node's defaults (the root key's account, the home Region).
	Account, Region string
	Lake            *lake.Engine
	Detect          *detect.Service // nil without rules

	db *pebble.DB
	// Generated is set when this start created the root key: show it once.
	Generated  *auth.Key
	RootSecret string
}

// Open opens the data dir and starts the projections. Close stops them.
func Open(ctx context.Context, c Config, log *slog.Logger) (*App, error) {
	if c.Account == "" {
		c.Account = "123456789012"
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	if err := privateDataDir(c.DataDir); err != nil {
		return nil, err
	}
	if err := prepareDisk(c.DataDir, c.DiskReserveMiB, c.DiskBallastMiB, log); err != nil {
		return nil, err
	}
	loss, err := acceptJournalLoss(filepath.Join(c.DataDir, "db"), c.AcceptJournalLoss, log)
	if err != nil {
		return nil, err
	}
	db, err := kv.Open(filepath.Join(c.DataDir, "db"), kv.Options{CacheBytes: c.CacheMiB << 20, Logger: log})
	if err != nil {
		return nil, err
	}
	a := &App{db: db, Account: c.Account, Region: c.Region}
	fail := func(err error) (*App, error) {
		a.Close()
		return nil, err
	}
	if a.Keys, err = auth.Open(db, filepath.Join(c.DataDir, "master.key")); err != nil {
		return fail(err)
	}
	if err := a.bootstrapRoot(c, log); err != nil {
		return fail(err)
	}
	if a.Journal, err = journal.Open(db, log); err != nil {
		return fail(err)
	}
	a.Store = history.New(db, a.Journal, log, history.Options{Retention: c.Retention})
	if err := a.Store.Start(ctx); err != nil {
		return fail(err)
	}
	a.Buckets = c.Buckets
	if a.Buckets == nil {
		folders := objstore.NewFS(filepath.Join(c.DataDir, "buckets"))
		// A folder bucket that names no owner (made with mkdir) is the root key's account's.
		if root, _, ok := a.Keys.Root(); ok {
			folders.Owner = root.Account
		}
		a.Buckets = folders
	}
	ks, err := delivery.NewSealedKeyStore(db, a.Keys.DeriveKey("digest-signing-keys"))
	if err != nil {
		return fail(err)
	}
	ring, err := digest.OpenKeyRing(ks, 0)
	if err != nil {
		return fail(err)
	}
	tokens := history.NewTokens(a.Keys.DeriveKey("lookup-next-token"))
	a.CT = cloudtrail.New(db, a.Store, tokens, log, cloudtrail.Options{Buckets: a.Buckets, PublicKeys: ring.PublicKeys})
	if a.Lake, err = lake.Open(filepath.Join(c.DataDir, "lake"), a.Journal, db, a.CT.StoreDefs, log, lake.Options{}); err != nil {
		return fail(err)
	}
	if err := a.Lake.Start(ctx); err != nil {
		return fail(err)
	}
	if err := a.CT.StartLake(ctx, a.Lake); err != nil {
		return fail(err)
	}
	if c.SNSTopics != nil {
		a.Notify = delivery.NewNotifier(db, a.CT, c.SNSTopics, log)
	} else {
		// Trail file notifications go to every endpoint of the topic, like subscription filters.
		a.Notify = delivery.NewTopicNotifier(db, a.CT, c.Destinations.ResolveTopic, delivery.NotifierOptions{MaxAttempts: c.SubscriptionAttempts}, log)
	}
	a.Notify.Start(ctx)
	a.Deliver = delivery.New(db, a.Journal, a.CT, a.Buckets, log, delivery.Options{
		Interval: c.DeliveryInterval, Notify: a.Notify, Digests: delivery.NewDigester(ring, c.DigestInterval)})
	if err := a.Deliver.Start(ctx); err != nil {
		return fail(err)
	}
	dests := c.Destinations
	a.Logs = logs.New(db, a.Journal, a.CT, log, logs.Options{Resolve: dests.Resolve, MaxAttempts: c.SubscriptionAttempts, SubscriptionFilters: c.SubscriptionFilters})
	if err := a.Logs.Start(ctx); err != nil {
		return fail(err)
	}
	if !c.NoInsights {
		a.Insights = insights.New(db, a.Journal, log, insights.Options{Rule: c.Insights, Enabled: a.CT.InsightsEnabled})
		if err := a.Insights.Start(ctx); err != nil {
			return fail(err)
		}
	}
	if len(c.RulePaths) > 0 || len(dests.Findings) > 0 {
		a.Detect, err = detect.New(db, a.Journal, log, detect.Options{Paths: c.RulePaths, Routes: dests.Findings, Resolve: dests.Resolve,
			MaxAttempts: c.SubscriptionAttempts, Tokens: history.NewTokens(a.Keys.DeriveKey("findings-next-token"))})
		if err != nil {
			return fail(err)
		}
		if err := a.Detect.Start(ctx); err != nil {
			return fail(err)
		}
	}
	a.Registry = a.newRegistry()
	if a.Detect != nil {
		a.Registry.MustRegister(a.Detect)
	}
	// Metrics are served apart from the API (serve --metrics-listen): they show every account.
	a.Metrics = promhttp.HandlerFor(a.Registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)})
	admit, floor := diskGuards(c.DataDir, c.DiskReserveMiB, log)
	a.Journal.SetGuard(floor)
	a.Handler = server.New(a.Journal, a.CT, a.Keys, log, server.Options{Version: c.Version, Logs: a.Logs,
		Regions: c.Regions, Registerer: a.Registry, Admit: admit, Detect: a.Detect, Notify: a.Notify})
	if loss != nil {
		if err := a.recordJournalLoss(ctx, loss); err != nil {
			return fail(err)
		}
	}
	if !c.NoConsole {
		// The region picker offers the regions an account has events in: a trail's home region is
		// among them while its CreateTrail record is in event history.
		a.Handler.SetConsole(console.New(a.Handler, log, console.Options{Region: c.Region, Regions: c.Regions,
			AccountRegions: a.Store.Regions, Lag: a.ProjectionLags}))
	}
	return a, nil
}

func (a *App) bootstrapRoot(c Config, log *slog.Logger) error {
	if c.RootKeyID != "" {
		// A root key given by the operator replaces the one stored before, if it differs.
		old, err := a.Keys.SetRoot(auth.Key{AccessKeyID: c.RootKeyID, Account: c.Account}, c.RootKey)
		if old != nil {
			log.Warn("the root key given by OPENTRAIL_ROOT_ACCESS_KEY_ID/OPENTRAIL_ROOT_SECRET_ACCESS_KEY replaced the stored one",
				"old_access_key_id", old.AccessKeyID, "access_key_id", c.RootKeyID)
		}
		return err
	}
	if _, _, ok := a.Keys.Root(); ok {
		return nil
	}
	key := auth.Key{AccessKeyID: auth.NewAccessKeyID(), Account: c.Account}
	secret := auth.NewSecret()
	if _, err := a.Keys.SetRoot(key, secret); err != nil {
		return err
	}
	a.Generated, a.RootSecret = &key, secret
	return nil
}

// PrintGenerated writes the generated root credentials, if this start made them.
func (a *App) PrintGenerated(w io.Writer) {
	if a.Generated == nil {
		return
	}
	fmt.Fprintf(w, "OpenTrail generated root credentials; they are shown only this once:\n"+
		"  export OPENTRAIL_ROOT_ACCESS_KEY_ID=%s\n  export OPENTRAIL_ROOT_SECRET_ACCESS_KEY=%s\n",
		a.Generated.AccessKeyID, a.RootSecret)
}

// Close stops the projections and closes the database. Acknowledged records are
// already durable; Close only releases resources.
func (a *App) Close() error {
	if a.Deliver != nil {
		a.Deliver.Close()
	}
	if a.Notify != nil {
		a.Notify.Close()
	}
	if a.Logs != nil {
		a.Logs.Close()
	}
	if a.Insights != nil {
		a.Insights.Close()
	}
	if a.Detect != nil {
		a.Detect.Close()
	}
	if a.CT != nil {
		a.CT.Close() // stops the queries before their engine
	}
	if a.Lake != nil {
		a.Lake.Close()
	}
	if a.Store != nil {
		a.Store.Close()
	}
	if a.Journal != nil {
		a.Journal.Close()
	}
	if a.db != nil {
		return a.db.Close()
	}
	return nil
}
