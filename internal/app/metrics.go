package app

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/logs"
	"github.com/opentrail/opentrail/internal/logs/dest"
)

// newRegistry is what GET /metrics shows: the Go runtime, the process, and
// OpenTrail's own state (ingest, journal, projection lag, trail delivery,
// notifications, subscriptions, metric filters).
func (a *App) newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	j := newJournalMetrics()
	a.Journal.SetObserver(j.observe)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		j.records, j.bytes, j.errors, j.commit, j.sync, &collector{a: a})
	return reg
}

// journalMetrics are fed by the journal after every group commit.
type journalMetrics struct {
	records, bytes, errors prometheus.Counter
	commit, sync           prometheus.Histogram
}

// latencyBuckets span a fast disk's fsync (tens of µs) to a stalled one (seconds).
var latencyBuckets = prometheus.ExponentialBucketsRange(50e-6, 5, 16)

func newJournalMetrics() *journalMetrics {
	return &journalMetrics{
		records: prometheus.NewCounter(prometheus.CounterOpts{Name: "opentrail_ingest_records_total",
			Help: "Records made durable in the journal since the server started (ingest, self-audit, PutAuditEvents, the proxy); duplicates not counted."}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "opentrail_ingest_bytes_total",
			Help: "Bytes written by journal group commits since the server started (records, event-ID keys, batch framing)."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "opentrail_journal_commit_errors_total",
			Help: "Journal group commits that failed since the server started."}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "opentrail_journal_commit_seconds",
			Help: "Duration of a journal group commit: event-ID lookups, write and sync.", Buckets: latencyBuckets}),
		sync: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "opentrail_journal_sync_seconds",
			Help: "Duration of writing and syncing one journal group commit (Pebble's WAL write and fsync).", Buckets: latencyBuckets}),
	}
}

func (m *journalMetrics) observe(st journal.CommitStats) {
	if st.Err != nil {
		m.errors.Inc()
		return
	}
	if st.Entries == 0 && st.Sync == 0 {
		return // every entry was a duplicate: nothing written
	}
	m.records.Add(float64(st.Entries))
	m.bytes.Add(float64(st.Bytes))
	m.commit.Observe(st.Duration.Seconds())
	m.sync.Observe(st.Sync.Seconds())
}

// MetricsHandler serves GET /metrics for the operator: it shows every
// account's state, so it belongs on its own listener (serve --metrics-listen),
// and with token set it answers only requests with "Authorization: Bearer
// TOKEN" (compared in constant time).
func (a *App) MetricsHandler(token string) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if token != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="opentrail-metrics"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		a.Metrics.ServeHTTP(w, r)
	})
}

// collector reads OpenTrail's state at scrape time. It is unchecked (Describe
// sends nothing) because metric filters define their own series.
type collector struct{ a *App }

func (c *collector) Describe(chan<- *prometheus.Desc) {}

var (
	descJournalLast  = prometheus.NewDesc("opentrail_journal_last_sequence", "Sequence number of the newest durable journal entry.", nil, nil)
	descWALFsync     = prometheus.NewDesc("opentrail_journal_fsync_seconds", "Latency of the database write-ahead log's fsyncs, which every journal commit waits for.", nil, nil)
	descLag          = prometheus.NewDesc("opentrail_projection_lag_entries", "Journal entries a projection has yet to apply.", []string{"projection"}, nil)
	descLagAge       = prometheus.NewDesc("opentrail_projection_lag_seconds", "How long the oldest journal entry a projection has yet to apply has waited since it was recorded; 0 when none waits.", []string{"projection"}, nil)
	descLakeLag      = prometheus.NewDesc("opentrail_lake_store_lag_entries", "Journal entries an event data store has yet to load (the Lake loads every store from one position).", []string{"account", "store"}, nil)
	descTrailLag     = prometheus.NewDesc("opentrail_trail_delivery_lag_seconds", "How long the oldest event not yet in a delivered log file has waited in a trail's stream (includes the delivery interval); 0 when none waits.", trailLabels, nil)
	descTrailPending = prometheus.NewDesc("opentrail_trail_delivery_pending_events", "Events a trail's stream holds for its next log file.", trailLabels, nil)
	descTrailFailing = prometheus.NewDesc("opentrail_trail_delivery_failing", "1 while a trail's stream fails to deliver its log file, else 0.", trailLabels, nil)
	descTrailError   = prometheus.NewDesc("opentrail_trail_delivery_last_error_info", "The last delivery error of a failing trail stream, as a label (present only while failing).", append(append([]string{}, trailLabels...), "error"), nil)
	descNotePending  = prometheus.NewDesc("opentrail_notification_pending", "Trail file notifications queued for an SNS topic and not yet delivered.", []string{"topic"}, nil)
	descNoteAge      = prometheus.NewDesc("opentrail_notification_oldest_pending_seconds", "How long the notification being tried for an SNS topic has waited.", []string{"topic"}, nil)
	descNoteSent     = prometheus.NewDesc("opentrail_notification_delivered_total", "Trail file notifications delivered to an SNS topic since the server started.", []string{"topic"}, nil)
	descNoteFailed   = prometheus.NewDesc("opentrail_notification_failures_total", "Failed notification attempts to an SNS topic since the server started.", []string{"topic"}, nil)
	descNoteDead     = prometheus.NewDesc("opentrail_notification_dead_letters", "Trail file notifications an SNS topic's outbox gave up on, kept for replay.", []string{"topic"}, nil)
	descSubPending   = prometheus.NewDesc("opentrail_subscription_pending_events", "Events matched by a subscription filter and not yet delivered.", subLabels, nil)
	descSubAge       = prometheus.NewDesc("opentrail_subscription_oldest_pending_seconds", "How long the oldest undelivered batch of a subscription filter has waited.", subLabels, nil)
	descSubSent      = prometheus.NewDesc("opentrail_subscription_delivered_events_total", "Events a subscription filter delivered since the server started.", subLabels, nil)
	descSubFailed    = prometheus.NewDesc("opentrail_subscription_failures_total", "Failed delivery attempts of a subscription filter since the server started.", subLabels, nil)
	descSubDead      = prometheus.NewDesc("opentrail_subscription_dead_letters", "Events a subscription filter gave up on, kept for replay.", subLabels, nil)
	descMFDisabled   = prometheus.NewDesc("opentrail_metric_filter_disabled", "1 for a metric filter disabled because its dimensions yielded more than 1,000 distinct value combinations (see DescribeMetricFilters' disabledReason).", []string{"account", "region", "log_group", "filter"}, nil)
	// destination is dest.Redact's form: no credentials, path or query.
	subLabels   = []string{"account", "region", "log_group", "filter", "destination"}
	trailLabels = []string{"account", "home_region", "trail", "region", "kind"}
)

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	last := a.Journal.Last()
	ch <- prometheus.MustNewConstMetric(descJournalLast, prometheus.GaugeValue, float64(last))
	if a.db != nil {
		if m, err := walFsync(a.db); err == nil {
			ch <- m
		}
	}
	for _, l := range a.ProjectionLags() {
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(l.Entries), l.Name)
		ch <- prometheus.MustNewConstMetric(descLagAge, prometheus.GaugeValue, l.Behind.Seconds(), l.Name)
		if l.Name == "lake" && a.CT != nil {
			for _, d := range a.CT.StoreDefs() {
				ch <- prometheus.MustNewConstMetric(descLakeLag, prometheus.GaugeValue, float64(l.Entries), d.Account, d.ID)
			}
		}
	}
	if a.Deliver != nil {
		for _, s := range a.Deliver.TrailStats() {
			kind := "log"
			if s.Insight {
				kind = "insight"
			}
			l := []string{s.Account, s.HomeRegion, s.Trail, s.Region, kind}
			ch <- prometheus.MustNewConstMetric(descTrailLag, prometheus.GaugeValue, s.Lag.Seconds(), l...)
			ch <- prometheus.MustNewConstMetric(descTrailPending, prometheus.GaugeValue, float64(s.Pending), l...)
			failing := 0.0
			if s.LastError != "" {
				failing = 1
				ch <- prometheus.MustNewConstMetric(descTrailError, prometheus.GaugeValue, 1, append(l, shortError(s.LastError))...)
			}
			ch <- prometheus.MustNewConstMetric(descTrailFailing, prometheus.GaugeValue, failing, l...)
		}
	}
	if a.Notify != nil {
		for _, s := range a.Notify.Stats() {
			ch <- prometheus.MustNewConstMetric(descNotePending, prometheus.GaugeValue, float64(s.Pending), s.TopicARN)
			ch <- prometheus.MustNewConstMetric(descNoteAge, prometheus.GaugeValue, s.OldestPendingAge.Seconds(), s.TopicARN)
			ch <- prometheus.MustNewConstMetric(descNoteSent, prometheus.CounterValue, float64(s.Delivered), s.TopicARN)
			ch <- prometheus.MustNewConstMetric(descNoteFailed, prometheus.CounterValue, float64(s.Failures), s.TopicARN)
			ch <- prometheus.MustNewConstMetric(descNoteDead, prometheus.GaugeValue, float64(s.DeadLetters), s.TopicARN)
		}
	}
	if a.Logs == nil {
		return
	}
	for _, s := range a.Logs.SubscriptionStats() {
		l := []string{s.Account, s.Region, s.LogGroup, s.Filter, dest.Redact(s.Destination)}
		ch <- prometheus.MustNewConstMetric(descSubPending, prometheus.GaugeValue, float64(s.Pending), l...)
		ch <- prometheus.MustNewConstMetric(descSubAge, prometheus.GaugeValue, s.OldestPendingAge.Seconds(), l...)
		ch <- prometheus.MustNewConstMetric(descSubSent, prometheus.CounterValue, float64(s.Delivered), l...)
		ch <- prometheus.MustNewConstMetric(descSubFailed, prometheus.CounterValue, float64(s.Failures), l...)
		ch <- prometheus.MustNewConstMetric(descSubDead, prometheus.GaugeValue, float64(s.DeadLetters), l...)
	}
	collectMetricFilters(ch, a.Logs.MetricSamples())
}

// shortError keeps an error label to one bounded line.
func shortError(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}

// walFsync converts Pebble's WAL fsync histogram (nanoseconds, 100 buckets)
// into seconds, keeping every fifth bucket: cumulative counts stay exact.
func walFsync(db *pebble.DB) (prometheus.Metric, error) {
	h := db.Metrics().LogWriter.FsyncLatency
	if h == nil {
		return nil, errors.New("no fsync histogram")
	}
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		return nil, err
	}
	hist := m.GetHistogram()
	if hist == nil {
		return nil, errors.New("no fsync histogram")
	}
	buckets := map[float64]uint64{}
	for i, b := range hist.GetBucket() {
		if i%5 == 4 {
			buckets[b.GetUpperBound()/1e9] = b.GetCumulativeCount()
		}
	}
	return prometheus.NewConstHistogram(descWALFsync, hist.GetSampleCount(), hist.GetSampleSum()/1e9, buckets)
}

var nonMetricChars = regexp.MustCompile(`[^a-zA-Z0-9_]+`)

// promName turns a CloudWatch namespace and metric name into a Prometheus name part.
func promName(s string) string {
	return strings.Trim(nonMetricChars.ReplaceAllString(s, "_"), "_")
}

// collectMetricFilters exports each CloudWatch metric (namespace, name) as the
// counter family cloudwatch_<namespace>_<name>_total, one series per
// account, Region, log group, filter and dimension values: the CIS
// "CloudTrailMetrics/RootAccountUsageCount" alarm becomes
// increase(cloudwatch_CloudTrailMetrics_RootAccountUsageCount_total[5m]) >= 1.
// Series of one family share one label set, dimensions the filters lack
// carry an empty value.
func collectMetricFilters(ch chan<- prometheus.Metric, samples []logs.MetricSample) {
	families := map[string][]logs.MetricSample{}
	for _, s := range samples {
		name := "cloudwatch_" + promName(s.Namespace) + "_" + promName(s.Name) + "_total"
		families[name] = append(families[name], s)
	}
	for name, list := range families {
		dimSet := map[string]bool{}
		for _, s := range list {
			for d := range s.Dims {
				dimSet[d] = true
			}
		}
		dims := make([]string, 0, len(dimSet))
		for d := range dimSet {
			dims = append(dims, d)
		}
		sort.Strings(dims)
		labels := []string{"account", "region", "log_group", "filter"}
		for _, d := range dims {
			labels = append(labels, "dim_"+promName(d))
		}
		desc := prometheus.NewDesc(name, "Sum of the values CloudWatch Logs metric filters published to "+list[0].Namespace+"/"+list[0].Name+".", labels, nil)
		for _, s := range list {
			vals := []string{s.Account, s.Region, s.LogGroup, s.Filter}
			for _, d := range dims {
				vals = append(vals, s.Dims[d])
			}
			m, err := prometheus.NewConstMetric(desc, prometheus.CounterValue, s.Sum, vals...)
			if err == nil {
				ch <- m
			}
		}
	}
}
