package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestServeMetricsListener: the built server serves GET /metrics only on
// --metrics-listen, and with --metrics-token only to a bearer of the token
// (issue 11 §2: the API listener showed every account's metrics to anyone).
func TestServeMetricsListener(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	bin := buildBinary(t)
	srv := startServerBinary(t, bin, t.TempDir(), "--metrics-token", "scrape-token")
	get := func(url, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(srv.endpoint+"/metrics", ""); code == http.StatusOK || strings.Contains(body, "opentrail_") {
		t.Fatalf("API listener: %d %.200s", code, body)
	}
	if code, _ := get(srv.metrics, ""); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
	code, body := get(srv.metrics, "scrape-token")
	if code != http.StatusOK || !strings.Contains(body, "opentrail_ingest_records_total") || !strings.Contains(body, "opentrail_journal_fsync_seconds_bucket") {
		t.Fatalf("with the token: %d %.300s", code, body)
	}
}
