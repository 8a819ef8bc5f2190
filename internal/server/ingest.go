package server

import (
	"bytes"
	"context"
	"errors"
	"net/http"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/kv"
)

// IngestResponse answers POST /v1/records once every record is durable.
type IngestResponse struct {
	Accepted   int      `json:"Accepted"`
	Duplicates int      `json:"Duplicates"`
	EventIds   []string `json:"EventIds"`
}

// ingest serves POST /v1/records: {"Records":[...]}, all or nothing.
func (s *Server) ingest(w http.ResponseWriter, r *http.Request, rq *request, body []byte) {
	if !s.allowed(rq, "cloudtrail:PutRecords", false) {
		s.fail(w, rq, denied(rq.key, rq.op))
		return
	}
	raws, err := splitRecords(body)
	if err != nil {
		s.fail(w, rq, err)
		return
	}
	out, err := s.IngestRecords(r.Context(), rq.key, rq.region, raws)
	if err != nil {
		s.fail(w, rq, err)
		return
	}
	awsapi.WriteJSON(w, rq.id, http.StatusOK, out)
}

// IngestRecords validates, normalises and durably appends raws as key would
// through POST /v1/records, all or nothing, and answers once every record is
// durable. Errors are *awsapi.Error for a record's fault. The in-process audit
// proxy calls it directly.
func (s *Server) IngestRecords(ctx context.Context, key auth.Key, region string, raws [][]byte) (IngestResponse, error) {
	if !auth.Allowed(key.Role, "cloudtrail:PutRecords", false) {
		return IngestResponse{}, denied(key, "cloudtrail:PutRecords")
	}
	now := s.now()
	entries := make([]journal.Entry, len(raws))
	ids := make([]string, len(raws))
	size := 0
	for _, raw := range raws {
		size += len(raw) + 256
	}
	buf := make([]byte, 0, size)
	for i, raw := range raws {
		rec, err := event.Normalize(raw, event.Defaults{Account: key.Account, Region: region, Now: now})
		if err != nil {
			var fe *event.FieldError
			if errors.As(err, &fe) && fe.Field != "" {
				return IngestResponse{}, awsapi.Errorf("ValidationException", "Records[%d].%s: %s", i, fe.Field, fe.Msg)
			}
			return IngestResponse{}, awsapi.Errorf("ValidationException", "Records[%d]: %v", i, err)
		}
		if rec.Meta.Account != key.Account && key.Role != auth.RoleRoot {
			return IngestResponse{}, awsapi.Errorf("AccessDeniedException",
				"Records[%d].recipientAccountId: %s may only send records for account %s, not %s", i, key.ARN(), key.Account, rec.Meta.Account)
		}
		start := len(buf)
		buf = event.Encode(buf, &rec)
		entries[i] = journal.Entry{ID: kv.EventIDKey(rec.Meta.Account, rec.Meta.EventID), Value: buf[start:len(buf):len(buf)]}
		ids[i] = rec.Meta.EventID
	}
	res, err := s.j.Append(ctx, entries)
	if err != nil {
		return IngestResponse{}, err
	}
	out := IngestResponse{Accepted: len(res), EventIds: ids}
	for _, x := range res {
		if x.Duplicate {
			out.Duplicates++
		}
	}
	return out, nil
}

// splitRecords returns the raw records of a {"Records":[...]} body.
func splitRecords(body []byte) ([][]byte, error) {
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
			if len(raws) == MaxIngestRecords {
				return nil, awsapi.Errorf("ValidationException", "a request carries at most %d records", MaxIngestRecords)
			}
			if len(v) > event.MaxRecordBytes {
				return nil, awsapi.Errorf("ValidationException", "Records[%d]: record is %d bytes; the limit is %d", len(raws), len(v), event.MaxRecordBytes)
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
	if !found {
		return nil, bad("the body has no Records array")
	}
	if len(raws) == 0 {
		return nil, awsapi.Errorf("ValidationException", "Records is empty")
	}
	return raws, nil
}
