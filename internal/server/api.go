package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/cloudtrail"
	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/kv"
)

const targetPrefix = "CloudTrail_20131101"

// cloudTrail serves one CloudTrail JSON 1.1 API call and records it.
func (s *Server) cloudTrail(w http.ResponseWriter, r *http.Request, rq *request, body []byte) {
	op, ok := awsapi.Operation(r.Header.Get("X-Amz-Target"), targetPrefix)
	if !ok || !awsapi.CloudTrailModel().HasOperation(op) {
		s.fail(w, rq, awsapi.Errorf("UnknownOperationException", "unknown operation %q", r.Header.Get("X-Amz-Target")))
		return
	}
	out, err := s.call(r, rq, op, body)
	if aerr := s.audit(rq, op, body, out, err); aerr != nil {
		// No record, no answer: a call that could not be recorded is reported as failed.
		s.fail(w, rq, aerr)
		return
	}
	if err != nil {
		s.fail(w, rq, err)
		return
	}
	awsapi.WriteJSON(w, rq.id, http.StatusOK, out)
}

func (s *Server) call(r *http.Request, rq *request, op string, body []byte) (any, error) {
	readOnly := cloudtrail.ReadOnly(op)
	switch rq.key.Role {
	case auth.RoleWriter:
		return nil, denied(rq.key, "cloudtrail:"+op)
	case auth.RoleReader:
		if !readOnly && !readerQueries[op] {
			return nil, denied(rq.key, "cloudtrail:"+op)
		}
	}
	if err := awsapi.CloudTrailModel().Validate(op, body); err != nil {
		var ae *awsapi.Error
		if errors.As(err, &ae) && ae.Code == "InvalidParameterException" {
			if code := cloudtrail.ValidationCode(op, ae.Field); code != "" {
				ae = &awsapi.Error{Code: code, Message: ae.Message, Status: awsapi.StatusFor(code), Field: ae.Field}
				return nil, ae
			}
		}
		return nil, err
	}
	return s.ct.Handle(r.Context(), rq.caller(), op, body)
}

// readerQueries are the calls that change nothing but are not named like reads:
// a reader (an auditor) may run and cancel Lake queries.
var readerQueries = map[string]bool{"StartQuery": true, "CancelQuery": true}

// audit appends the management event that records one API call, and waits until it is durable.
func (s *Server) audit(rq *request, op string, reqBody []byte, out any, callErr error) error {
	return s.auditAs(rq, "cloudtrail.amazonaws.com", op, cloudtrail.ReadOnly(op), reqBody, out, callErr)
}

// auditAs appends the management event that records one call of op to source.
func (s *Server) auditAs(rq *request, source, op string, readOnly bool, reqBody []byte, out any, callErr error) error {
	rec := auditRecord(rq, source, op, readOnly, lowerCamelJSON(reqBody))
	var ae *awsapi.Error
	switch {
	case callErr == nil && !readOnly:
		if b, err := json.Marshal(out); err == nil {
			rec.ResponseElements = lowerCamelJSON(b)
		}
	case errors.As(callErr, &ae):
		rec.ErrorCode, rec.ErrorMessage = ae.Code, ae.Message
	case callErr != nil:
		rec.ErrorCode, rec.ErrorMessage = "InternalFailure", "An internal error occurred."
	}
	return s.record(rq, rec)
}

// auditRec is one self-audit record, with its members in the order CloudTrail writes them.
type auditRec struct {
	EventVersion       string       `json:"eventVersion"`
	UserIdentity       userIdentity `json:"userIdentity"`
	EventTime          string       `json:"eventTime"`
	EventSource        string       `json:"eventSource"`
	EventName          string       `json:"eventName"`
	AWSRegion          string       `json:"awsRegion"`
	SourceIPAddress    string       `json:"sourceIPAddress"`
	UserAgent          string       `json:"userAgent"`
	ErrorCode          string       `json:"errorCode,omitempty"`
	ErrorMessage       string       `json:"errorMessage,omitempty"`
	RequestParameters  any          `json:"requestParameters"`
	ResponseElements   any          `json:"responseElements"`
	RequestID          string       `json:"requestID"`
	EventID            string       `json:"eventID"`
	ReadOnly           bool         `json:"readOnly"`
	EventType          string       `json:"eventType"`
	ManagementEvent    bool         `json:"managementEvent"`
	RecipientAccountID string       `json:"recipientAccountId"`
	EventCategory      string       `json:"eventCategory"`
}

// auditRecord is the management event for one call rq served.
func auditRecord(rq *request, source, name string, readOnly bool, params any) *auditRec {
	return &auditRec{
		EventVersion:       event.DefaultEventVersion,
		UserIdentity:       identity(rq.key),
		EventTime:          rq.start.Format(time.RFC3339),
		EventSource:        source,
		EventName:          name,
		AWSRegion:          rq.region,
		SourceIPAddress:    rq.ip,
		UserAgent:          rq.agent,
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

// record normalises and durably appends one self-audit record.
func (s *Server) record(rq *request, rec *auditRec) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	ev, err := event.Normalize(raw, event.Defaults{Account: rq.key.Account, Region: rq.region, Now: s.now()})
	if err != nil {
		return err
	}
	_, err = s.j.Append(context.Background(), []journal.Entry{{
		ID: kv.EventIDKey(ev.Meta.Account, ev.Meta.EventID), Value: event.Encode(nil, &ev)}})
	return err
}

// userIdentity is the identity block of a self-audit record, in CloudTrail's member order.
type userIdentity struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId"`
	ARN         string `json:"arn"`
	AccountID   string `json:"accountId"`
	AccessKeyID string `json:"accessKeyId"`
	UserName    string `json:"userName,omitempty"`
}

// identity is the userIdentity of a key's owner, as AWS writes it.
func identity(k auth.Key) userIdentity {
	id := userIdentity{Type: "IAMUser", PrincipalID: principalID(k), ARN: k.ARN(), AccountID: k.Account, AccessKeyID: k.AccessKeyID, UserName: k.User}
	if k.Role == auth.RoleRoot {
		id.Type, id.UserName = "Root", ""
	}
	return id
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
