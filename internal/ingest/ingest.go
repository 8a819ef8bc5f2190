// Package ingest is the one write path for records: the limits and body
// format of POST /v1/records, the Writer every producer on the server appends
// through (native ingest, self-audit records, PutAuditEvents, the in-process
// audit proxy, insight events), and the Client every remote producer sends
// with (import, bench, the standalone audit proxy).
//
// A record is validated and normalised by package event, keyed by its
// account and eventID (so that sending it twice stores it once), and appended
// to the journal, which acknowledges only once it is synced.
package ingest

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/kv"
)

// Limits of one POST /v1/records request, as CloudTrail's log files and
// PutAuditEvents bound theirs.
const (
	MaxRecords      = 500
	MaxRequestBytes = 1 << 20
	MaxRecordBytes  = event.MaxRecordBytes
)

// Response answers POST /v1/records once every record is durable.
type Response struct {
	Accepted   int      `json:"Accepted"`
	Duplicates int      `json:"Duplicates"`
	EventIds   []string `json:"EventIds"`
}

// Writer appends records to the journal.
type Writer struct {
	j   *journal.Journal
	now func() time.Time
}

// NewWriter returns the write path into j; now stamps records (nil: time.Now).
func NewWriter(j *journal.Journal, now func() time.Time) *Writer {
	if now == nil {
		now = time.Now
	}
	return &Writer{j: j, now: now}
}

// Records validates, normalises and durably appends raws as key sends them
// signed for region, all or nothing, and answers once every record is
// durable. A record's fault is an *awsapi.Error naming its index and field.
func (w *Writer) Records(ctx context.Context, key auth.Key, region string, raws [][]byte) (Response, error) {
	if !auth.Allowed(key.Role, "cloudtrail:PutRecords", false) {
		return Response{}, awsapi.Errorf("AccessDeniedException", "User: %s is not authorized to perform: cloudtrail:PutRecords", key.ARN())
	}
	if len(raws) > MaxRecords {
		return Response{}, awsapi.Errorf("ValidationException", "a request carries at most %d records", MaxRecords)
	}
	now := w.now()
	recs := make([]event.Record, len(raws))
	for i, raw := range raws {
		rec, err := event.Normalize(raw, event.Defaults{Account: key.Account, Region: region, Now: now})
		if err != nil {
			var fe *event.FieldError
			if errors.As(err, &fe) && fe.Field != "" {
				return Response{}, awsapi.Errorf("ValidationException", "Records[%d].%s: %s", i, fe.Field, fe.Msg)
			}
			return Response{}, awsapi.Errorf("ValidationException", "Records[%d]: %v", i, err)
		}
		if rec.Meta.Account != key.Account && key.Role != auth.RoleRoot {
			return Response{}, awsapi.Errorf("AccessDeniedException",
				"Records[%d].recipientAccountId: %s may only send records for account %s, not %s", i, key.ARN(), key.Account, rec.Meta.Account)
		}
		recs[i] = rec
	}
	res, err := w.Append(ctx, recs, nil)
	if err != nil {
		return Response{}, err
	}
	out := Response{Accepted: len(res), EventIds: make([]string, len(recs))}
	for i, x := range res {
		out.EventIds[i] = recs[i].Meta.EventID
		if x.Duplicate {
			out.Duplicates++
		}
	}
	return out, nil
}

// Append durably appends normalised records, each stored once by its
// account and eventID; with, when not nil, commits in the same batch (an API
// call's changes with its audit record).
func (w *Writer) Append(ctx context.Context, recs []event.Record, with *pebble.Batch) ([]journal.Result, error) {
	size := 0
	for i := range recs {
		size += len(recs[i].Raw) + 256
	}
	buf := make([]byte, 0, size)
	entries := make([]journal.Entry, len(recs))
	for i := range recs {
		start := len(buf)
		buf = event.Encode(buf, &recs[i])
		entries[i] = journal.Entry{ID: kv.EventIDKey(recs[i].Meta.Account, recs[i].Meta.EventID), Value: buf[start:len(buf):len(buf)]}
	}
	if with != nil {
		return w.j.AppendWith(ctx, entries, with)
	}
	return w.j.Append(ctx, entries)
}

// Split returns the raw records of a {"Records":[...]} body, each checked
// against the limits; nothing may follow the object.
func Split(body []byte) ([][]byte, error) {
	bad := func(format string, args ...any) error {
		return awsapi.Errorf("SerializationException", format, args...)
	}
	// Records' member names are checked by event.Normalize; here only their bounds matter.
	dec := jsontext.NewDecoder(bytes.NewBuffer(body), jsontext.AllowDuplicateNames(true))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil, bad("the body must be a JSON object {\"Records\":[...]}")
	}
	var raws [][]byte
	found := false
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, bad("malformed JSON: %v", err)
		}
		if tok.String() != "Records" {
			if _, err := dec.ReadValue(); err != nil {
				return nil, bad("malformed JSON: %v", err)
			}
			continue
		}
		if found {
			return nil, bad("duplicate member \"Records\"")
		}
		found = true
		if dec.PeekKind() != '[' {
			return nil, bad("Records must be a JSON array")
		}
		dec.ReadToken()
		for dec.PeekKind() != ']' {
			v, err := dec.ReadValue()
			if err != nil {
				return nil, bad("Records[%d]: malformed JSON: %v", len(raws), err)
			}
			// The record's bytes are exactly body[end-len(v):end]; keep them without a copy.
			end := int(dec.InputOffset())
			if len(raws) == MaxRecords {
				return nil, awsapi.Errorf("ValidationException", "a request carries at most %d records", MaxRecords)
			}
			if len(v) > MaxRecordBytes {
				return nil, awsapi.Errorf("ValidationException", "Records[%d]: record is %d bytes; the limit is %d", len(raws), len(v), MaxRecordBytes)
			}
			raws = append(raws, body[end-len(v):end:end])
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, bad("malformed JSON: %v", err)
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, bad("malformed JSON: %v", err)
	}
	// Fixed bug (issue 11): text after the object was accepted, where the API endpoint refuses it.
	if rest := bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return nil, bad("unexpected text after the JSON object at offset %d", len(body)-len(rest))
	}
	if !found {
		return nil, bad("the body has no Records array")
	}
	if len(raws) == 0 {
		return nil, awsapi.Errorf("ValidationException", "Records is empty")
	}
	return raws, nil
}

// Body is the {"Records":[...]} request body of records.
func Body(records [][]byte) []byte {
	n := len(`{"Records":[]}`)
	for _, r := range records {
		n += len(r) + 1
	}
	body := make([]byte, 0, n)
	body = append(body, `{"Records":[`...)
	for i, r := range records {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, r...)
	}
	return append(body, "]}"...)
}

// Batches cuts records into request-sized runs (at most MaxRecords, and a
// body within MaxRequestBytes). A single record larger than a request is
// returned alone, for the server to refuse with its reason.
func Batches(records [][]byte) [][][]byte {
	var out [][][]byte
	for len(records) > 0 {
		n, size := 0, len(`{"Records":[]}`)
		for n < len(records) && n < MaxRecords && (n == 0 || size+len(records[n])+1 <= MaxRequestBytes) {
			size += len(records[n]) + 1
			n++
		}
		out = append(out, records[:n])
		records = records[n:]
	}
	return out
}
