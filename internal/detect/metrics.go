package detect

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// stats are the per-rule counters since the server started.
type stats struct {
	mu        sync.Mutex
	match     map[[2]string]int64 // account, rule
	sent      map[[2]string]int64 // rule, destination
	fail      map[[2]string]int64
	ruleError int
}

func (st *stats) init() {
	st.match = map[[2]string]int64{}
	st.sent = map[[2]string]int64{}
	st.fail = map[[2]string]int64{}
}

func (st *stats) matched(account, rule string) {
	st.mu.Lock()
	st.match[[2]string{account, rule}]++
	st.mu.Unlock()
}

func (st *stats) matches(account, rule string) int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.match[[2]string{account, rule}]
}

func (st *stats) delivered(rule, dest string) {
	st.mu.Lock()
	st.sent[[2]string{rule, dest}]++
	st.mu.Unlock()
}

func (st *stats) failed(rule, dest string) {
	st.mu.Lock()
	st.fail[[2]string{rule, dest}]++
	st.mu.Unlock()
}

func (st *stats) setErrors(n int) {
	st.mu.Lock()
	st.ruleError = n
	st.mu.Unlock()
}

var (
	descRuleErrors = prometheus.NewDesc("opentrail_rule_errors", "Detection rules (or rule files) that failed to load at the last (re)load.", nil, nil)
	descMatches    = prometheus.NewDesc("opentrail_detection_matches_total", "Findings a detection rule produced since the server started.", []string{"rule"}, nil)
	descSent       = prometheus.NewDesc("opentrail_detection_findings_delivered_total", "Findings of a rule delivered to a findings destination since the server started.", []string{"rule", "destination"}, nil)
	descFailed     = prometheus.NewDesc("opentrail_detection_delivery_failures_total", "Failed delivery attempts of a rule's findings to a findings destination since the server started.", []string{"rule", "destination"}, nil)
	descPending    = prometheus.NewDesc("opentrail_detection_pending_findings", "Findings waiting for delivery to a findings destination.", []string{"destination"}, nil)
	descDead       = prometheus.NewDesc("opentrail_detection_dead_letters", "Findings a findings destination gave up on.", []string{"destination"}, nil)
	descLag        = prometheus.NewDesc("opentrail_detection_lag_entries", "Journal entries the detections projection has yet to evaluate.", nil, nil)
)

// Describe implements prometheus.Collector.
func (s *Service) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRuleErrors, descMatches, descSent, descFailed, descPending, descDead, descLag} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (s *Service) Collect(ch chan<- prometheus.Metric) {
	st := &s.stats
	st.mu.Lock()
	ch <- prometheus.MustNewConstMetric(descRuleErrors, prometheus.GaugeValue, float64(st.ruleError))
	perRule := map[string]int64{}
	for k, n := range st.match {
		perRule[k[1]] += n
	}
	for rule, n := range perRule {
		ch <- prometheus.MustNewConstMetric(descMatches, prometheus.CounterValue, float64(n), rule)
	}
	for k, n := range st.sent {
		ch <- prometheus.MustNewConstMetric(descSent, prometheus.CounterValue, float64(n), k[0], k[1])
	}
	for k, n := range st.fail {
		ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(n), k[0], k[1])
	}
	st.mu.Unlock()
	for _, sd := range s.senders {
		st := sd.stream.Stats()
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(st.Pending), sd.name)
		ch <- prometheus.MustNewConstMetric(descDead, prometheus.GaugeValue, float64(st.DeadLetters), sd.name)
	}
	ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(s.Lag()))
}
