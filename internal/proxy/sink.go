package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/opentrail/opentrail/internal/awsapi"
)

// Sink takes records durably: Write returns nil only once every record is
// durable in OpenTrail. Writing a record twice (same eventID) must be harmless.
type Sink interface {
	Write(ctx context.Context, records [][]byte) error
}

// RejectedError is a Sink's answer when OpenTrail refuses records for good
// (a validation or permission error): retrying will not help.
type RejectedError struct{ Err error }

func (e *RejectedError) Error() string { return "proxy: records rejected: " + e.Err.Error() }
func (e *RejectedError) Unwrap() error { return e.Err }

// Batch limits of POST /v1/records.
const (
	maxBatchRecords = 500
	maxBatchBytes   = 1<<20 - 1024 // room for the {"Records":[...]} envelope
)

// LocalSink writes records into an OpenTrail node in the same process.
// ingest is server.IngestRecords bound to a writer key and region, e.g.
//
//	proxy.NewLocalSink(func(ctx context.Context, raws [][]byte) error {
//		_, err := a.Handler.IngestRecords(ctx, key, region, raws)
//		return err
//	})
func NewLocalSink(ingest func(ctx context.Context, raws [][]byte) error) Sink {
	return localSink(ingest)
}

type localSink func(ctx context.Context, raws [][]byte) error

func (f localSink) Write(ctx context.Context, records [][]byte) error {
	err := f(ctx, records)
	var ae *awsapi.Error
	if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 {
		return &RejectedError{Err: err}
	}
	return err
}

// RemoteSink posts SigV4-signed batches to an OpenTrail server's POST /v1/records.
type RemoteSink struct {
	endpoint string
	region   string
	creds    aws.Credentials
	client   *http.Client
	signer   *v4.Signer
}

// NewRemoteSink returns a sink for the server at endpoint (e.g.
// http://127.0.0.1:7000), signing as a writer key. client nil: a default one.
func NewRemoteSink(endpoint, region, accessKeyID, secret string, client *http.Client) *RemoteSink {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	}
	return &RemoteSink{
		endpoint: strings.TrimRight(endpoint, "/"), region: region,
		creds:  aws.Credentials{AccessKeyID: accessKeyID, SecretAccessKey: secret},
		client: client, signer: v4.NewSigner(),
	}
}

// Write posts the records in batches within the server's limits.
func (s *RemoteSink) Write(ctx context.Context, records [][]byte) error {
	for len(records) > 0 {
		n, size := 0, 0
		for n < len(records) && n < maxBatchRecords && (n == 0 || size+len(records[n])+1 <= maxBatchBytes) {
			size += len(records[n]) + 1
			n++
		}
		if err := s.post(ctx, records[:n]); err != nil {
			return err
		}
		records = records[n:]
	}
	return nil
}

func (s *RemoteSink) post(ctx context.Context, records [][]byte) error {
	body := make([]byte, 0, 64)
	body = append(body, `{"Records":[`...)
	for i, r := range records {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, r...)
	}
	body = append(body, "]}"...)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint+"/v1/records", bytes.NewReader(body))
	if err != nil {
		return &RejectedError{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	if err := s.signer.SignHTTP(ctx, s.creds, req, hex.EncodeToString(sum[:]), "cloudtrail", s.region, time.Now()); err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("proxy: post records: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	json.Unmarshal(b, &e)
	err = fmt.Errorf("proxy: post records: %s: %s (HTTP %d)", e.Type, e.Message, resp.StatusCode)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return err
	case e.Type == "ValidationException" || e.Type == "SerializationException" || e.Type == "AccessDeniedException":
		return &RejectedError{Err: err}
	}
	// Authentication errors (a key not yet created, a clock skew) may heal: retry.
	return err
}
