package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/opentrail/opentrail/internal/audit"
	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/cloudtrail"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/logs"
)

// api is one AWS-protocol service as the dispatcher sees it. CloudTrail and
// CloudWatch Logs are served this way; a service to come is one more api value.
type api struct {
	name        string // IAM action prefix and SigV4 signing name
	target      string // X-Amz-Target prefix
	eventSource string // eventSource of its self-audit records
	model       *awsapi.Model
	handle      func(ctx context.Context, c auth.Caller, op string, body []byte) (any, error)
	readOnly    func(op string) bool
	audited     func(op string) bool
	// invalid maps a model validation error to the service's own code (nil: keep it).
	invalid func(op string, ae *awsapi.Error) *awsapi.Error
	// reload re-reads in-memory state from the database after a call's
	// changes could not be committed (nil: the service keeps none).
	reload func() error
}

// apis are the services s dispatches to, by name.
func (s *Server) newAPIs() map[string]*api {
	m := map[string]*api{
		"cloudtrail": {
			name: "cloudtrail", target: "CloudTrail_20131101", eventSource: "cloudtrail.amazonaws.com",
			model: awsapi.CloudTrailModel(), handle: s.ct.Handle, readOnly: cloudtrail.ReadOnly,
			audited: func(string) bool { return true },
			invalid: func(op string, ae *awsapi.Error) *awsapi.Error {
				if ae.Code != "InvalidParameterException" {
					return ae
				}
				if code := cloudtrail.ValidationCode(op, ae.Field); code != "" {
					return &awsapi.Error{Code: code, Message: ae.Message, Status: awsapi.StatusFor(code), Field: ae.Field}
				}
				return ae
			},
		},
	}
	if s.logs != nil {
		m["logs"] = &api{
			name: "logs", target: "Logs_20140328", eventSource: "logs.amazonaws.com",
			model: awsapi.LogsModel(), handle: s.logs.Handle, readOnly: logs.ReadOnly, audited: logs.Audited,
			reload: s.logs.Reload,
		}
	}
	return m
}

// Principal is an authenticated caller: an access key, the region it signed
// for, and where the call came from.
type Principal struct {
	Key       auth.Key
	Region    string
	SourceIP  string
	UserAgent string
}

// Invoke runs one AWS-protocol operation (service "cloudtrail" or "logs", op
// such as "LookupEvents") for p through the same role table, model
// validation, dispatch and self-audit as an HTTP request. It returns the JSON
// response body, or an error (an *awsapi.Error for the caller's mistakes).
func (s *Server) Invoke(ctx context.Context, p Principal, service, op string, body []byte) ([]byte, error) {
	rq := &request{id: newRequestID(), start: s.now().UTC(), key: p.Key, region: p.Region, ip: p.SourceIP, agent: p.UserAgent}
	if err := s.checkRegion(rq.region); err != nil {
		return nil, err
	}
	if service == "opentrail" && op == "ListFindings" {
		out, err := s.listFindings(rq, body)
		if err != nil {
			return nil, err
		}
		return json.Marshal(out)
	}
	a := s.apis[service]
	if a == nil {
		return nil, awsapi.Errorf("UnknownOperationException", "OpenTrail does not serve %s", service)
	}
	out, err := s.dispatch(ctx, rq, a, op, body)
	if err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

// dispatch is the one path of every AWS-protocol call: authorise by the role
// table, validate against the service model, run the operation and record it.
//
// A call that changes something runs in a transaction (kv.Txn): its writes,
// and the locks it takes, are held until they commit in one batch with its
// audit record. If the record cannot be written, the change is not made and
// the caller gets the error: no change without its record.
func (s *Server) dispatch(ctx context.Context, rq *request, a *api, op string, body []byte) (any, error) {
	if !a.model.HasOperation(op) {
		return nil, awsapi.Errorf("UnknownOperationException", "unknown operation %s.%s", a.target, op)
	}
	rq.op = a.name + ":" + op
	readOnly, audited := a.readOnly(op), a.audited(op)
	var txn *kv.Txn
	defer func() {
		if txn != nil {
			txn.Close()
		}
	}()
	out, err := func() (any, error) {
		if !auth.Allowed(rq.key.Role, rq.op, readOnly) {
			return nil, denied(rq.key, rq.op)
		}
		if err := a.model.Validate(op, body); err != nil {
			var ae *awsapi.Error
			if errors.As(err, &ae) && a.invalid != nil {
				return nil, a.invalid(op, ae)
			}
			return nil, err
		}
		if rq.op == "logs:PutLogEvents" {
			if err := s.admit(); err != nil {
				return nil, err
			}
		}
		if audited && !readOnly {
			txn = kv.NewTxn(s.j.DB())
			ctx = kv.WithTxn(ctx, txn)
		}
		return a.handle(ctx, rq.caller(), op, body)
	}()
	if !audited {
		return out, err
	}
	rec := s.callRecord(rq, a.eventSource, op, readOnly, body, out, err)
	changed := txn != nil && err == nil
	if cerr := s.commitRecord(ctx, rq, rec, txn, changed); cerr != nil {
		if changed && a.reload != nil {
			txn.Close() // release the call's locks before re-reading
			txn = nil
			if rerr := a.reload(); rerr != nil {
				s.log.Error("reload after a failed commit", "service", a.name, "err", rerr)
			}
		}
		return nil, cerr
	}
	return out, err
}

// commitRecord appends a call's audit record; when changed, with the call's
// transaction in the same batch, and then runs what the call deferred until
// its changes were durable.
func (s *Server) commitRecord(ctx context.Context, rq *request, rec *audit.Record, txn *kv.Txn, changed bool) error {
	entry, err := s.auditEntry(rq, rec)
	if err == nil && s.auditFault != nil {
		err = s.auditFault(rq.op)
	}
	if err == nil {
		var with *pebble.Batch
		if changed {
			with = txn.Batch()
		}
		// Once the call has run, its record is written even if the client has gone.
		_, err = s.w.Append(context.WithoutCancel(ctx), entry, with)
	}
	if err != nil {
		s.log.Error("self-audit record not written; the call was refused", "operation", rq.op, "request_id", rq.id, "err", err)
		return fmt.Errorf("record %s: %w", rq.op, err)
	}
	if changed {
		txn.Committed()
	}
	return nil
}
