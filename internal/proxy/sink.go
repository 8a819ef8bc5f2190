package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/ingest"
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
type RemoteSink struct{ c *ingest.Client }

// NewRemoteSink returns a sink for the server at endpoint (e.g.
// http://127.0.0.1:7000), signing as a writer key. client nil: a default one.
func NewRemoteSink(endpoint, region, accessKeyID, secret string, client *http.Client) *RemoteSink {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	}
	return &RemoteSink{c: &ingest.Client{Endpoint: endpoint, Region: region, HTTP: client,
		Credentials: credentials.NewStaticCredentialsProvider(accessKeyID, secret, "")}}
}

// Write posts the records in batches within the server's limits.
func (s *RemoteSink) Write(ctx context.Context, records [][]byte) error {
	_, err := s.c.Send(ctx, records)
	if err != nil && !ingest.Retryable(err) {
		return &RejectedError{Err: fmt.Errorf("proxy: post records: %w", err)}
	}
	if err != nil {
		return fmt.Errorf("proxy: post records: %w", err)
	}
	return nil
}
