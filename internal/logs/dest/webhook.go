package dest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// webhook POSTs the batch's records, CloudTrail-log-file shaped, to a URL
// given directly as the destinationArn.
type webhook struct {
	url    *url.URL
	client *http.Client
}

func (w *webhook) String() string { return "url " + redactURL(w.url) }

// ---- Wire format: the plain URL destination's body and headers. ----

const (
	headerOwner     = "X-Opentrail-Owner"
	headerRegion    = "X-Opentrail-Region"
	headerLogGroup  = "X-Opentrail-Log-Group"
	headerLogStream = "X-Opentrail-Log-Stream"
	headerFilter    = "X-Opentrail-Subscription-Filter" // one header line per filter name
)

// Records returns the plain URL destination's body: {"Records":[...]} with
// each message as parsed JSON when it is valid JSON, else as a JSON string.
func Records(b *Batch) ([]byte, error) {
	recs := make([]json.RawMessage, len(b.Events))
	for i, e := range b.Events {
		if json.Valid([]byte(e.Message)) {
			recs[i] = json.RawMessage(e.Message)
			continue
		}
		s, err := marshalNoHTML(e.Message)
		if err != nil {
			return nil, err
		}
		recs[i] = s
	}
	return marshalNoHTML(struct {
		Records []json.RawMessage `json:"Records"`
	}{recs})
}

// ---- End of wire format. ----

func (w *webhook) Send(ctx context.Context, b *Batch) error {
	body, err := Records(b)
	if err != nil {
		return fmt.Errorf("url %s: %w", redactURL(w.url), err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(headerOwner, headerValue(b.Owner))
	h.Set(headerRegion, headerValue(b.Region))
	h.Set(headerLogGroup, headerValue(b.LogGroup))
	h.Set(headerLogStream, headerValue(b.LogStream))
	for _, f := range b.SubscriptionFilters {
		h.Add(headerFilter, headerValue(f))
	}
	return post(ctx, w.client, w.url, safeURL(w.url), body, h, nil)
}

// headerValue percent-encodes '%' and every byte outside printable ASCII
// (space, controls, UTF-8), so any log stream name makes a valid header and
// decodes with url.PathUnescape.
func headerValue(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c > ' ' && c < 0x7f && c != '%' {
			sb.WriteByte(c)
			continue
		}
		fmt.Fprintf(&sb, "%%%02X", c)
	}
	return sb.String()
}
