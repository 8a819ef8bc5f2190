package proxy

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// writeAWSError answers in the error shape of the call's protocol: JSON with
// __type for the JSON protocols, the XML ErrorResponse for query protocols,
// and S3's XML Error for REST.
func writeAWSError(w http.ResponseWriter, proto int, requestID string, status int, code, msg string) {
	h := w.Header()
	switch proto {
	case protoQuery:
		type errT struct {
			Type    string `xml:"Type"`
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		}
		b, _ := xml.Marshal(struct {
			XMLName   xml.Name `xml:"ErrorResponse"`
			Error     errT     `xml:"Error"`
			RequestID string   `xml:"RequestId"`
		}{Error: errT{Type: "Sender", Code: code, Message: msg}, RequestID: requestID})
		h.Set("Content-Type", "text/xml")
		h.Set("x-amzn-RequestId", requestID)
		w.WriteHeader(status)
		w.Write(b)
	case protoREST:
		b, _ := xml.Marshal(struct {
			XMLName   xml.Name `xml:"Error"`
			Code      string   `xml:"Code"`
			Message   string   `xml:"Message"`
			RequestID string   `xml:"RequestId"`
		}{Code: code, Message: msg, RequestID: requestID})
		h.Set("Content-Type", "application/xml")
		h.Set("x-amz-request-id", requestID)
		w.WriteHeader(status)
		w.Write(append([]byte(xml.Header), b...))
	default:
		b, _ := json.Marshal(map[string]string{"__type": "com.amazon.coral.service#" + code, "message": msg})
		h.Set("Content-Type", "application/x-amz-json-1.0")
		h.Set("x-amzn-RequestId", requestID)
		h.Set("X-Amzn-ErrorType", code)
		w.WriteHeader(status)
		w.Write(b)
	}
}

var (
	xmlCode    = regexp.MustCompile(`<Code>([^<]{1,256})</Code>`)
	xmlMessage = regexp.MustCompile(`(?s)<Message>([^<]{0,1000})</Message>`)
)

// parseError extracts an error code and message from an upstream's error
// answer: JSON __type (or code) and message/Message, the X-Amzn-ErrorType
// header, or XML <Code>/<Message>; else a code from the HTTP status.
func parseError(status int, h http.Header, body []byte) (code, msg string) {
	var j struct {
		Type     string `json:"__type"`
		Code     string `json:"code"`
		Message  string `json:"message"`
		Message2 string `json:"Message"`
	}
	if len(body) > 0 && body[0] == '{' && json.Unmarshal(body, &j) == nil {
		code, msg = j.Type, j.Message
		if code == "" {
			code = j.Code
		}
		if msg == "" {
			msg = j.Message2
		}
	} else if len(body) > 0 {
		if m := xmlCode.FindSubmatch(body); m != nil {
			code = string(m[1])
		}
		if m := xmlMessage.FindSubmatch(body); m != nil {
			msg = xmlUnescape(string(m[1]))
		}
	}
	if code == "" {
		code = h.Get("X-Amzn-ErrorType")
	}
	code = shortCode(code)
	if code == "" {
		code = statusCode(status)
	}
	return code, msg
}

// shortCode strips a namespace (com.amazonaws.dynamodb.v20120810#X → X) and
// the details X-Amzn-ErrorType may carry (X:http://... → X).
func shortCode(code string) string {
	if i := strings.LastIndexByte(code, '#'); i >= 0 {
		code = code[i+1:]
	}
	if i := strings.IndexByte(code, ':'); i >= 0 {
		code = code[:i]
	}
	return strings.TrimSpace(code)
}

func statusCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "BadRequest"
	case http.StatusForbidden:
		return "AccessDenied"
	case http.StatusNotFound:
		return "NotFound"
	case http.StatusMovedPermanently:
		return "PermanentRedirect"
	case http.StatusPreconditionFailed:
		return "PreconditionFailed"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable"
	}
	return "HTTP" + strconv.Itoa(status)
}

func xmlUnescape(s string) string {
	r := strings.NewReplacer("&lt;", "<", "&gt;", ">", "&quot;", `"`, "&apos;", "'", "&amp;", "&")
	return r.Replace(s)
}

// schemaCache keeps the key attribute names of tables, learnt from the
// responses that describe them, so that item keys can be kept in records.
type schemaCache struct {
	m sync.Map // region + "/" + table → []string
}

func (c *schemaCache) get(region, table string) []string {
	if table == "" {
		return nil
	}
	v, ok := c.m.Load(region + "/" + table)
	if !ok {
		return nil
	}
	return v.([]string)
}

func (c *schemaCache) learn(region string, rule *schemaRule, resp *node) {
	for _, under := range rule.Under {
		d := resp.get(under)
		name, ok := d.get("TableName").str()
		ks := d.get("KeySchema")
		if !ok || ks == nil || ks.kind != '[' {
			continue
		}
		var keys []string
		for _, k := range ks.vals {
			if a, ok := k.get("AttributeName").str(); ok {
				keys = append(keys, a)
			}
		}
		if len(keys) > 0 {
			c.m.Store(region+"/"+name, keys)
		}
	}
}

// register exports the counters to a Prometheus registry.
func (p *Proxy) register(reg *prometheus.Registry) error {
	counter := func(name, help string, v func() int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "opentrail", Subsystem: "proxy", Name: name, Help: help},
			func() float64 { return float64(v()) })
	}
	gauge := func(name, help string, v func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "opentrail", Subsystem: "proxy", Name: name, Help: help}, v)
	}
	cs := []prometheus.Collector{
		counter("calls_total", "Calls received.", p.m.calls.Load),
		counter("denied_total", "Calls denied by the endpoint policy.", p.m.denied.Load),
		counter("spooled_records_total", "Records written to the local spool.", p.m.spooled.Load),
		counter("failed_closed_total", "Calls refused (not forwarded) because they could not be recorded.", p.m.failedClosed.Load),
		counter("failed_open_total", "Calls forwarded although their record had no guaranteed place (--fail-open).", p.m.failedOpen.Load),
		counter("ship_errors_total", "Failed deliveries to OpenTrail.", p.m.shipErrors.Load),
		counter("lost_records_total", "Records of fail-open calls dropped because the spool was full.", p.m.lost.Load),
		counter("rejected_records_total", "Spooled records OpenTrail refused; kept in the spool's rejected folder.", p.m.rejected.Load),
		gauge("spool_bytes", "Bytes in the spool, including space reserved for calls in flight.", func() float64 {
			u, r := p.spool.size()
			return float64(u + r)
		}),
		gauge("ship_lag_seconds", "Age of the oldest record waiting in the spool.", func() float64 {
			return p.spool.lag(p.o.Now()).Seconds()
		}),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
