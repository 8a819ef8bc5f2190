package dest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestWebhook(t *testing.T) {
	rc := &recorder{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	c := &Config{}
	d, err := c.Resolve(srv.URL + "/ingest?token=SECRET")
	if err != nil {
		t.Fatal(err)
	}
	if s := d.String(); s != "url "+srv.URL+"/ingest?REDACTED" {
		t.Errorf("String() = %q", s)
	}
	b := twoEventBatch()
	b.LogStream = "stream with spaces/é%"
	b.SubscriptionFilters = []string{"f1", "f2"}
	b.Events = append(b.Events, LogEvent{ID: "3", Message: "plain"})
	if err := d.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	body, r := rc.last(t)
	want := `{"Records":[` + seedRecord + `,` + deleteBucketRecord + `,"plain"]}`
	if string(body) != want {
		t.Errorf("body\n%s\nwant\n%s", body, want)
	}
	if r.URL.RawQuery != "token=SECRET" {
		t.Errorf("query = %q: the URL must be used as given", r.URL.RawQuery)
	}
	stream, err := url.PathUnescape(r.Header.Get("X-Opentrail-Log-Stream"))
	if err != nil || stream != b.LogStream {
		t.Errorf("stream header %q decodes to %q, %v", r.Header.Get("X-Opentrail-Log-Stream"), stream, err)
	}
	for h, want := range map[string]string{
		"Content-Type":          "application/json",
		"X-Opentrail-Log-Group": "/aws/cloudtrail/swx-trail",
		"X-Opentrail-Owner":     "506364634079",
		"X-Opentrail-Region":    "ap-northeast-1",
	} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	if got := r.Header.Values("X-Opentrail-Subscription-Filter"); strings.Join(got, ",") != "f1,f2" {
		t.Errorf("filter headers = %q", got)
	}
}

func TestWebhookStatus(t *testing.T) {
	rc := &recorder{status: http.StatusInternalServerError}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	d, err := (&Config{}).Resolve("http://user:PASSWORD@" + strings.TrimPrefix(srv.URL, "http://") + "/x")
	if err != nil {
		t.Fatal(err)
	}
	err = d.Send(context.Background(), seedBatch())
	if err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("Send = %v, want HTTP 500", err)
	}
	if strings.Contains(err.Error(), "PASSWORD") || strings.Contains(d.String(), "PASSWORD") {
		t.Errorf("password leaked: %q / %q", err, d)
	}
	rc.setStatus(http.StatusBadRequest)
	if err := d.Send(context.Background(), seedBatch()); !errors.Is(err, ErrRejected) {
		t.Errorf("400: err = %v, want ErrRejected", err)
	}
	rc.setStatus(http.StatusNoContent)
	if err := d.Send(context.Background(), seedBatch()); err != nil {
		t.Errorf("204: %v", err)
	}
}

// TestWebhookContext: a destination that never answers does not hold Send
// past its context.
func TestWebhookContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel() // the caller gives up while the request is in flight
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	d, err := (&Config{}).Resolve(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	err = d.Send(ctx, seedBatch())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Send = %v, want context.Canceled", err)
	}

	// And a deadline that has passed fails fast with DeadlineExceeded.
	dctx, dcancel := context.WithDeadline(context.Background(), deadlinePast())
	defer dcancel()
	if err := d.Send(dctx, seedBatch()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send = %v, want context.DeadlineExceeded", err)
	}
}
