package server

// TEMPORARY: a stand-in for the lead's Invoke/Authenticate/RecordSignIn so the console can be
// built and tested before they land on main. Deleted at the merge that brings them.

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/logs"
)

// Principal is an authenticated caller: an access key plus where the call came from.
type Principal struct {
	Key                         auth.Key
	Region, SourceIP, UserAgent string
}

func (s *Server) principalRequest(p Principal) *request {
	return &request{id: newRequestID(), start: s.now().UTC(), key: p.Key, region: p.Region, ip: p.SourceIP, agent: p.UserAgent}
}

// Invoke runs one operation for p through the role table, validation, dispatch and self-audit.
func (s *Server) Invoke(ctx context.Context, p Principal, service, op string, body []byte) ([]byte, error) {
	rq := s.principalRequest(p)
	r := (&http.Request{}).WithContext(ctx)
	var out any
	var err error
	switch service {
	case "cloudtrail":
		if !awsapi.CloudTrailModel().HasOperation(op) {
			return nil, awsapi.Errorf("UnknownOperationException", "unknown operation %q", op)
		}
		out, err = s.call(r, rq, op, body)
		if aerr := s.audit(rq, op, body, out, err); aerr != nil {
			return nil, aerr
		}
	case "logs":
		if s.logs == nil || !awsapi.LogsModel().HasOperation(op) {
			return nil, awsapi.Errorf("UnknownOperationException", "unknown operation %q", op)
		}
		readOnly := logs.ReadOnly(op)
		switch {
		case rq.key.Role == auth.RoleWriter && !writerLogsOps[op]:
			err = denied(rq.key, "logs:"+op)
		case rq.key.Role == auth.RoleReader && !readOnly:
			err = denied(rq.key, "logs:"+op)
		default:
			if err = awsapi.LogsModel().Validate(op, body); err == nil {
				out, err = s.logs.Handle(ctx, rq.caller(), op, body)
			}
		}
		if logs.Audited(op) {
			if aerr := s.auditAs(rq, "logs.amazonaws.com", op, readOnly, body, out, err); aerr != nil {
				return nil, aerr
			}
		}
	default:
		return nil, awsapi.Errorf("UnknownOperationException", "unknown service %q", service)
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

// Authenticate checks an access key ID and secret.
func (s *Server) Authenticate(accessKeyID, secret string) (auth.Key, error) {
	key, want, ok := s.keys.Lookup(accessKeyID)
	if !ok || subtle.ConstantTimeCompare([]byte(want), []byte(secret)) != 1 {
		return auth.Key{}, errors.New("server: bad access key ID or secret")
	}
	return key, nil
}

// RecordSignIn appends the ConsoleLogin self-audit record.
func (s *Server) RecordSignIn(ctx context.Context, p Principal, keyID string, ok bool) error {
	rq := s.principalRequest(p)
	result := "Failure"
	if ok {
		result = "Success"
	}
	rec := auditRecord(rq, "signin.amazonaws.com", "ConsoleLogin", false, nil)
	rec.EventType = "AwsConsoleSignIn"
	rec.ResponseElements = map[string]string{"ConsoleLogin": result}
	if !ok {
		rec.ErrorMessage = "Failed authentication"
	}
	if rq.key.Account == "" {
		return nil // an unknown key has no account to record it in
	}
	return s.record(rq, rec)
}
