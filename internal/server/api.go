package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/opentrail/opentrail/internal/audit"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/event"
)

// Self-audit records keep requestParameters and responseElements up to this
// size; a larger member is replaced by {"omitted":true}, as CloudTrail marks
// what it truncates, so that no call is ever lost for the size of its record.
const maxAuditMemberBytes = 100 << 10

// auditAs appends the management event that records one call of op to source
// (for OpenTrail's own endpoints; AWS-protocol calls are recorded by dispatch).
func (s *Server) auditAs(rq *request, source, op string, readOnly bool, reqBody []byte, out any, callErr error) error {
	return s.record(rq, s.callRecord(rq, source, op, readOnly, reqBody, out, callErr))
}

// callRecord is the management event for one call, with its outcome.
func (s *Server) callRecord(rq *request, source, op string, readOnly bool, reqBody []byte, out any, callErr error) *audit.Record {
	rec := auditRecord(rq, source, op, readOnly, capMember(lowerCamelJSON(reqBody)))
	var ae *awsapi.Error
	switch {
	case callErr == nil && !readOnly:
		if b, err := json.Marshal(out); err == nil {
			rec.ResponseElements = capMember(lowerCamelJSON(b))
		}
	case errors.As(callErr, &ae):
		rec.Fail(ae.Code, ae.Message)
	case callErr != nil:
		rec.Fail("InternalFailure", "An internal error occurred.")
	}
	return rec
}

// capMember replaces a requestParameters or responseElements value larger than
// maxAuditMemberBytes by {"omitted":true}.
func capMember(v any) any {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil || len(b) > maxAuditMemberBytes {
		return map[string]any{"omitted": true}
	}
	return json.RawMessage(b)
}

// auditRecord is the management event for one call rq served.
func auditRecord(rq *request, source, name string, readOnly bool, params any) *audit.Record {
	return audit.New(audit.Call{
		Time: rq.start, Identity: rq.key.Identity(), Account: rq.key.Account,
		Source: source, Name: name, Region: rq.region, SourceIP: rq.ip, UserAgent: rq.agent,
		RequestID: rq.id, ReadOnly: readOnly, Params: params,
	})
}

// record durably appends one self-audit record.
func (s *Server) record(rq *request, rec *audit.Record) error {
	return s.commitRecord(context.Background(), rq, rec, nil, false)
}

// auditEntry normalises a self-audit record.
func (s *Server) auditEntry(rq *request, rec *audit.Record) ([]event.Record, error) {
	raw, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode self-audit record: %w", err)
	}
	ev, err := event.Normalize(raw, event.Defaults{Account: rq.key.Account, Region: rq.region, Now: s.now()})
	if err != nil {
		return nil, fmt.Errorf("self-audit record: %w", err)
	}
	return []event.Record{ev}, nil
}

// lowerCamelJSON re-keys a JSON object the way CloudTrail writes requestParameters
// and responseElements: member names start with a lower-case letter. Empty → null.
func lowerCamelJSON(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	var v any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return nil
	}
	if m, ok := v.(map[string]any); ok && len(m) == 0 {
		return nil
	}
	return lowerCamel(v)
}

func lowerCamel(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[lowerFirst(k)] = lowerCamel(e)
		}
		return out
	case []any:
		for i, e := range x {
			x[i] = lowerCamel(e)
		}
		return x
	}
	return v
}

func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 || unicode.IsLower(r) {
		return s
	}
	return string(unicode.ToLower(r)) + s[n:]
}
