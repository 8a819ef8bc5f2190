package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/opentrail/opentrail/internal/auth"
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
func (s *Server) callRecord(rq *request, source, op string, readOnly bool, reqBody []byte, out any, callErr error) *auditRec {
	rec := auditRecord(rq, source, op, readOnly, capMember(lowerCamelJSON(reqBody)))
	var ae *awsapi.Error
	switch {
	case callErr == nil && !readOnly:
		if b, err := json.Marshal(out); err == nil {
			rec.ResponseElements = capMember(lowerCamelJSON(b))
		}
	case errors.As(callErr, &ae):
		rec.ErrorCode, rec.ErrorMessage = ae.Code, capString(ae.Message, maxErrorMessage)
	case callErr != nil:
		rec.ErrorCode, rec.ErrorMessage = "InternalFailure", "An internal error occurred."
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

// Caps on what a self-audit record carries from the client.
const (
	maxUserAgent    = 1024
	maxErrorMessage = 2048
)

// capString cuts s to at most n bytes, on a rune boundary.
func capString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// auditRec is one self-audit record, with its members in the order CloudTrail writes them.
type auditRec struct {
	EventVersion        string        `json:"eventVersion"`
	UserIdentity        auth.Identity `json:"userIdentity"`
	EventTime           string        `json:"eventTime"`
	EventSource         string        `json:"eventSource"`
	EventName           string        `json:"eventName"`
	AWSRegion           string        `json:"awsRegion"`
	SourceIPAddress     string        `json:"sourceIPAddress"`
	UserAgent           string        `json:"userAgent"`
	ErrorCode           string        `json:"errorCode,omitempty"`
	ErrorMessage        string        `json:"errorMessage,omitempty"`
	RequestParameters   any           `json:"requestParameters"`
	ResponseElements    any           `json:"responseElements"`
	AdditionalEventData any           `json:"additionalEventData,omitempty"`
	RequestID           string        `json:"requestID"`
	EventID             string        `json:"eventID"`
	ReadOnly            bool          `json:"readOnly"`
	EventType           string        `json:"eventType"`
	ManagementEvent     bool          `json:"managementEvent"`
	RecipientAccountID  string        `json:"recipientAccountId"`
	EventCategory       string        `json:"eventCategory"`
}

// auditRecord is the management event for one call rq served.
func auditRecord(rq *request, source, name string, readOnly bool, params any) *auditRec {
	return &auditRec{
		EventVersion:       event.DefaultEventVersion,
		UserIdentity:       rq.key.Identity(),
		EventTime:          rq.start.Format(time.RFC3339),
		EventSource:        source,
		EventName:          name,
		AWSRegion:          rq.region,
		SourceIPAddress:    rq.ip,
		UserAgent:          capString(rq.agent, maxUserAgent),
		RequestParameters:  params,
		RequestID:          rq.id,
		EventID:            newRequestID(),
		ReadOnly:           readOnly,
		EventType:          "AwsApiCall",
		ManagementEvent:    true,
		RecipientAccountID: rq.key.Account,
		EventCategory:      event.CategoryManagement,
	}
}

// record durably appends one self-audit record.
func (s *Server) record(rq *request, rec *auditRec) error {
	return s.commitRecord(context.Background(), rq, rec, nil, false)
}

// auditEntry normalises a self-audit record.
func (s *Server) auditEntry(rq *request, rec *auditRec) ([]event.Record, error) {
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
