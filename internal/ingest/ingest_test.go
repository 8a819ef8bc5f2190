package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/opentrail/opentrail/internal/app"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/ingest"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		body    string
		records int
		code    string
	}{
		{`{"Records":[{"a":1},{"b":2}]}`, 2, ""},
		{` {"Other":[1], "Records":[{"a":1}]} `, 1, ""},
		{`{"Records":[]}`, 0, "ValidationException"},
		{`{"Records":{}}`, 0, "SerializationException"},
		{`[]`, 0, "SerializationException"},
		{`{"Records":[{"a":1}],"Records":[{"a":2}]}`, 0, "SerializationException"},
		{`{"Nothing":1}`, 0, "SerializationException"},
		{`{"Records":[{"a":1}]`, 0, "SerializationException"},
		// Fixed bug (issue 11): text after the body was accepted.
		{`{"Records":[{"a":1}]}garbage`, 0, "SerializationException"},
		{`{"Records":[{"a":1}]} {"Records":[{"a":2}]}`, 0, "SerializationException"},
	}
	for _, tt := range tests {
		raws, err := ingest.Split([]byte(tt.body))
		var ae *awsapi.Error
		switch {
		case tt.code == "" && err != nil:
			t.Errorf("Split(%s): %v", tt.body, err)
		case tt.code == "" && len(raws) != tt.records:
			t.Errorf("Split(%s) = %d records, want %d", tt.body, len(raws), tt.records)
		case tt.code != "" && (!errors.As(err, &ae) || ae.Code != tt.code):
			t.Errorf("Split(%s): err %v, want %s", tt.body, err, tt.code)
		}
	}
	many := ingest.Body(bytes.Split(bytes.Repeat([]byte(`{"a":1}|`), ingest.MaxRecords+1), []byte("|"))[:ingest.MaxRecords+1])
	if _, err := ingest.Split(many); err == nil || !strings.Contains(err.Error(), "at most 500") {
		t.Errorf("501 records: %v", err)
	}
	big := ingest.Body([][]byte{[]byte(`{"a":"` + strings.Repeat("x", ingest.MaxRecordBytes) + `"}`)})
	if _, err := ingest.Split(big); err == nil || !strings.Contains(err.Error(), "the limit is") {
		t.Errorf("oversize record: %v", err)
	}
}

func TestBatches(t *testing.T) {
	var recs [][]byte
	for i := 0; i < 1234; i++ {
		recs = append(recs, []byte(fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, strings.Repeat("p", 2000))))
	}
	total := 0
	for _, b := range ingest.Batches(recs) {
		if len(b) > ingest.MaxRecords || len(ingest.Body(b)) > ingest.MaxRequestBytes {
			t.Fatalf("batch of %d records, %d bytes: over the limits", len(b), len(ingest.Body(b)))
		}
		raws, err := ingest.Split(ingest.Body(b))
		if err != nil || len(raws) != len(b) {
			t.Fatalf("a batch does not split back: %v", err)
		}
		total += len(b)
	}
	if total != len(recs) {
		t.Fatalf("batches hold %d records, want %d", total, len(recs))
	}
}

// openNode starts a real node and returns its handler.
func openNode(t *testing.T) http.Handler {
	t.Helper()
	a, err := app.Open(context.Background(), app.Config{DataDir: t.TempDir(), RootKeyID: "AKIATESTROOT00000001",
		RootKey: "test-root-secret-0123456789abcdefghijkl", CacheMiB: 16}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a.Handler
}

// The client against a real node: batches, duplicates, and a refusal it reports as final.
func TestClient(t *testing.T) {
	ts := httptest.NewServer(openNode(t))
	defer ts.Close()
	c := &ingest.Client{Endpoint: ts.URL, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIATESTROOT00000001", "test-root-secret-0123456789abcdefghijkl", "")}
	var recs [][]byte
	for i := 0; i < 1200; i++ {
		recs = append(recs, []byte(fmt.Sprintf(`{"eventID":"00000000-0000-4000-8000-%012d","eventTime":"2024-01-02T03:04:05Z","eventSource":"s3.amazonaws.com","eventName":"GetObject"}`, i)))
	}
	out, err := c.Send(context.Background(), recs)
	if err != nil || out.Accepted != 1200 || out.Duplicates != 0 {
		t.Fatalf("Send: %+v %v", out, err)
	}
	out, err = c.Send(context.Background(), recs[:10])
	if err != nil || out.Duplicates != 10 {
		t.Fatalf("resend: %+v %v", out, err)
	}
	_, err = c.Send(context.Background(), [][]byte{[]byte(`{"eventSource":"x"}`)})
	var ae *awsapi.Error
	if !errors.As(err, &ae) || ae.Code != "ValidationException" || ingest.Retryable(err) {
		t.Fatalf("a record without eventTime: %v (retryable %v)", err, ingest.Retryable(err))
	}
	bad := &ingest.Client{Endpoint: ts.URL, Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIATESTROOT00000001", "wrong", "")}
	if _, err := bad.Send(context.Background(), recs[:1]); err == nil || !ingest.Retryable(err) {
		t.Fatalf("a bad signature: %v", err)
	}
}

// Post retries what may heal (a 503 in front of a real node) as Retries says,
// and never a refusal of the records.
func TestClientRetries(t *testing.T) {
	node := openNode(t)
	var attempts, failures atomic.Int64 // failures: how many of the next requests answer 503
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		if failures.Add(-1) >= 0 {
			awsapi.WriteError(w, "req", &awsapi.Error{Code: "ServiceUnavailable", Message: "busy", Status: http.StatusServiceUnavailable}, nil)
			return
		}
		node.ServeHTTP(w, r)
	}))
	defer ts.Close()
	client := func(retries int) *ingest.Client {
		return &ingest.Client{Endpoint: ts.URL, Region: "us-east-1", Retries: retries,
			Credentials: credentials.NewStaticCredentialsProvider("AKIATESTROOT00000001", "test-root-secret-0123456789abcdefghijkl", "")}
	}
	good := ingest.Body([][]byte{[]byte(`{"eventID":"00000000-0000-4000-8000-000000000001","eventTime":"2024-01-02T03:04:05Z","eventSource":"s3.amazonaws.com","eventName":"GetObject"}`)})
	bad := ingest.Body([][]byte{[]byte(`{"eventSource":"x"}`)})
	tests := []struct {
		name              string
		retries, failures int
		body              []byte
		attempts          int64
		code              string // the error's, "" for success
	}{
		{"heals within the retries", 2, 2, good, 3, ""},
		{"fails past the retries", 2, 3, good, 3, "ServiceUnavailable"},
		{"no retries", 0, 1, good, 1, "ServiceUnavailable"},
		{"a refusal is final", 5, 0, bad, 1, "ValidationException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attempts.Store(0)
			failures.Store(int64(tt.failures))
			out, err := client(tt.retries).Post(context.Background(), tt.body)
			var ae *awsapi.Error
			switch {
			case tt.code == "" && (err != nil || out.Accepted != 1):
				t.Errorf("Post: %+v %v", out, err)
			case tt.code != "" && (!errors.As(err, &ae) || ae.Code != tt.code):
				t.Errorf("Post: %v, want %s", err, tt.code)
			}
			if n := attempts.Load(); n != tt.attempts {
				t.Errorf("%d attempts, want %d", n, tt.attempts)
			}
		})
	}
	// A wrong secret: Retryable tries again (the key may be on its way),
	// Transient does not (a person is waiting on a command).
	for _, c := range []struct {
		retry    func(error) bool
		attempts int64
	}{{nil, 2}, {ingest.Transient, 1}} {
		attempts.Store(0)
		failures.Store(0)
		wrong := client(1)
		wrong.Retry = c.retry
		wrong.Credentials = credentials.NewStaticCredentialsProvider("AKIATESTROOT00000001", "not-the-secret", "")
		if _, err := wrong.Post(context.Background(), good); err == nil || attempts.Load() != c.attempts {
			t.Errorf("wrong secret: %v after %d attempts, want %d", err, attempts.Load(), c.attempts)
		}
	}
	// A cancelled context ends the pauses: the call returns with the last error.
	attempts.Store(0)
	failures.Store(100)
	ctx, cancel := context.WithCancel(context.Background())
	c := client(100)
	c.HTTP = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		if attempts.Load() == 2 {
			cancel()
		}
		return resp, err
	})}
	if _, err := c.Post(ctx, good); !errors.As(err, new(*awsapi.Error)) || attempts.Load() != 2 {
		t.Errorf("cancelled after the second attempt: %v, %d attempts", err, attempts.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
