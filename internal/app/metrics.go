package app

import (
	"regexp"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/opentrail/opentrail/internal/logs"
)

// newRegistry is what GET /metrics shows: the Go runtime, the process, and
// OpenTrail's own state (journal, projection lag, subscriptions, metric filters).
func (a *App) newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), &collector{a: a})
	return reg
}

// collector reads OpenTrail's state at scrape time. It is unchecked (Describe
// sends nothing) because metric filters define their own series.
type collector struct{ a *App }

func (c *collector) Describe(chan<- *prometheus.Desc) {}

var (
	descJournalLast = prometheus.NewDesc("opentrail_journal_last_sequence", "Sequence number of the newest durable journal entry.", nil, nil)
	descLag         = prometheus.NewDesc("opentrail_projection_lag_entries", "Journal entries a projection has yet to apply.", []string{"projection"}, nil)
	descSubPending  = prometheus.NewDesc("opentrail_subscription_pending_events", "Events matched by a subscription filter and not yet delivered.", subLabels, nil)
	descSubAge      = prometheus.NewDesc("opentrail_subscription_oldest_pending_seconds", "How long the oldest undelivered batch of a subscription filter has waited.", subLabels, nil)
	descSubSent     = prometheus.NewDesc("opentrail_subscription_delivered_events_total", "Events a subscription filter delivered since the server started.", subLabels, nil)
	descSubFailed   = prometheus.NewDesc("opentrail_subscription_failures_total", "Failed delivery attempts of a subscription filter since the server started.", subLabels, nil)
	descSubDead     = prometheus.NewDesc("opentrail_subscription_dead_letters", "Events a subscription filter gave up on, kept for replay.", subLabels, nil)
	subLabels       = []string{"account", "region", "log_group", "filter", "destination"}
)

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	last := a.Journal.Last()
	ch <- prometheus.MustNewConstMetric(descJournalLast, prometheus.GaugeValue, float64(last))
	if a.Store != nil {
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(last-min(last, a.Store.Applied())), "event_history")
	}
	if a.Logs == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(a.Logs.Lag()), "log_groups")
	for _, s := range a.Logs.SubscriptionStats() {
		l := []string{s.Account, s.Region, s.LogGroup, s.Filter, s.Destination}
		ch <- prometheus.MustNewConstMetric(descSubPending, prometheus.GaugeValue, float64(s.Pending), l...)
		ch <- prometheus.MustNewConstMetric(descSubAge, prometheus.GaugeValue, s.OldestPendingAge.Seconds(), l...)
		ch <- prometheus.MustNewConstMetric(descSubSent, prometheus.CounterValue, float64(s.Delivered), l...)
		ch <- prometheus.MustNewConstMetric(descSubFailed, prometheus.CounterValue, float64(s.Failures), l...)
		ch <- prometheus.MustNewConstMetric(descSubDead, prometheus.GaugeValue, float64(s.DeadLetters), l...)
	}
	collectMetricFilters(ch, a.Logs.MetricSamples())
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
