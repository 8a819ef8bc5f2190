package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/opentrail/opentrail/internal/awsapi"
)

// Client sends records to a server's POST /v1/records, SigV4-signed for
// service cloudtrail, in request-sized batches.
type Client struct {
	Endpoint    string // e.g. http://127.0.0.1:4590
	Region      string
	Credentials aws.CredentialsProvider
	HTTP        *http.Client // nil: http.DefaultClient
	// Retries is how many times a request is sent again after an error that
	// may heal by itself (Retryable), pausing 200 ms, then twice as long each
	// time up to 5 s. 0: never.
	Retries int
	// Retry says which errors are worth another attempt; nil: Retryable.
	Retry func(error) bool
}

// The pauses between the attempts of one request.
const (
	firstBackoff = 200 * time.Millisecond
	maxBackoff   = 5 * time.Second
)

// Send posts records in batches within the limits and adds up the answers.
// A batch the server refuses ends the call with an *awsapi.Error carrying the
// server's code, message and HTTP status, so the caller can tell a refusal
// for good (4xx but 429) from one worth retrying; records of earlier batches
// are durable by then.
func (c *Client) Send(ctx context.Context, records [][]byte) (Response, error) {
	var total Response
	for _, batch := range Batches(records) {
		out, err := c.Post(ctx, Body(batch))
		if err != nil {
			return total, err
		}
		total.Accepted += out.Accepted
		total.Duplicates += out.Duplicates
		total.EventIds = append(total.EventIds, out.EventIds...)
	}
	return total, nil
}

// Post sends one request body, {"Records":[...]} within the limits (see Body
// and Batches), and returns the server's answer. An error that may heal by
// itself is retried as c.Retries says; the last error is returned.
func (c *Client) Post(ctx context.Context, body []byte) (Response, error) {
	backoff := firstBackoff
	for attempt := 0; ; attempt++ {
		out, err := c.post(ctx, body)
		retry := c.Retry
		if retry == nil {
			retry = Retryable
		}
		if err == nil || attempt >= c.Retries || !retry(err) || ctx.Err() != nil {
			return out, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return Response{}, err
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (c *Client) post(ctx context.Context, body []byte) (Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.Endpoint, "/")+"/v1/records", bytes.NewReader(body))
	if err != nil {
		return Response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	creds, err := c.Credentials.Retrieve(ctx)
	if err != nil {
		return Response{}, fmt.Errorf("ingest: credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "cloudtrail", c.Region, time.Now()); err != nil {
		return Response{}, err
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("ingest: post records to %s: %w", c.Endpoint, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return Response{}, fmt.Errorf("ingest: read the answer of %s: %w", c.Endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		json.Unmarshal(b, &e)
		if e.Type == "" {
			e.Type, e.Message = "HTTP"+resp.Status, strings.TrimSpace(string(b))
		}
		return Response{}, &awsapi.Error{Code: e.Type, Message: e.Message, Status: resp.StatusCode}
	}
	var out Response
	if err := json.Unmarshal(b, &out); err != nil {
		return Response{}, fmt.Errorf("ingest: decode the answer of %s: %w", c.Endpoint, err)
	}
	return out, nil
}

// Retryable reports whether a Send error may heal by itself: the server or
// the network failed, it throttled, or authentication failed (a key not yet
// created, a clock skew); not when it refused the records themselves.
func Retryable(err error) bool {
	ae, ok := err.(*awsapi.Error)
	if !ok {
		return true
	}
	switch {
	case ae.Status == http.StatusTooManyRequests || ae.Status >= 500:
		return true
	case ae.Code == "ValidationException" || ae.Code == "SerializationException" || ae.Code == "AccessDeniedException" ||
		ae.Code == "RequestEntityTooLarge":
		return false
	}
	return true
}

// Transient reports whether err is one the server or the network may heal
// within seconds: no answer, a 5xx or a throttle (429). Unlike Retryable it
// gives up at once on a failed authentication, for a person waiting on a
// command with a wrong key.
func Transient(err error) bool {
	ae, ok := err.(*awsapi.Error)
	return !ok || ae.Status == http.StatusTooManyRequests || ae.Status >= 500
}
