package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// statusWriter remembers what a handler answered, for the access log and the metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (flushes, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logAccess writes the access log line of one request and counts it: the
// operation, the account and key ID, status, latency and bytes; never a
// secret, a signature or a body.
func (s *Server) logAccess(w *statusWriter, r *http.Request, rq *request) {
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	op := rq.op
	if op == "" {
		op = r.Method + " " + r.URL.Path
	}
	elapsed := time.Since(rq.start)
	s.access.Info("request", "request_id", rq.id, "operation", op, "account", rq.key.Account, "access_key_id", rq.key.AccessKeyID,
		"source_ip", rq.ip, "status", status, "latency_ms", float64(elapsed.Microseconds())/1000, "bytes_in", max(r.ContentLength, 0), "bytes_out", w.bytes)
	if s.metrics != nil {
		// The operation label is bounded: unknown operations are folded into "other".
		if rq.op == "" {
			op = "other"
		}
		s.metrics.requests.WithLabelValues(op, strconv.Itoa(status)).Inc()
		s.metrics.latency.WithLabelValues(op).Observe(elapsed.Seconds())
	}
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	if reg == nil {
		return nil
	}
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "opentrail_http_requests_total",
			Help: "HTTP requests served, by operation (service:Operation) and status code."}, []string{"operation", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "opentrail_http_request_duration_seconds",
			Help: "Time from a request's arrival to its answer, by operation.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"operation"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}
