package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/detect"
	"github.com/opentrail/opentrail/internal/kv"
)

// DeadLettersRequest is the body of POST /v1/deadletters. Kind says whose
// dead letters: a subscription filter's ("subscription", the default; with
// LogGroupName and FilterName), the findings destinations' ("findings";
// Destination narrows to one, named as metrics and the list name it) or the
// trail file notifications' ("trail-notifications"; TopicArn narrows to one
// SNS topic).
type DeadLettersRequest struct {
	Action       string `json:"Action"` // "list" or "replay"
	Kind         string `json:"Kind,omitempty"`
	LogGroupName string `json:"LogGroupName,omitempty"`
	FilterName   string `json:"FilterName,omitempty"`
	Destination  string `json:"Destination,omitempty"`
	TopicArn     string `json:"TopicArn,omitempty"`
	Limit        int    `json:"Limit,omitempty"`
}

// Kinds of dead letters.
const (
	DeadSubscription       = "subscription"
	DeadFindings           = "findings"
	DeadTrailNotifications = "trail-notifications"
)

// DeadFinding is one finding a findings destination gave up on.
type DeadFinding struct {
	Destination string
	Finding
}

// DeadNotification is one trail file notification that was given up on.
type DeadNotification struct {
	TopicArn, AccountId, TrailName, S3BucketName string
	S3ObjectKeys                                 []string
}

// deadLetters lists or replays dead letters. Everyone but root sees and
// replays only the dead letters of its own account; a replay commits with its
// audit record, as any change does.
func (s *Server) deadLetters(w http.ResponseWriter, r *http.Request, rq *request, body []byte) {
	var in DeadLettersRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		s.fail(w, rq, awsapi.Errorf("SerializationException", "could not read the request: %v", err))
		return
	}
	if in.Action != "list" && in.Action != "replay" {
		s.fail(w, rq, awsapi.Errorf("ValidationException", "Action must be list or replay, not %q", in.Action))
		return
	}
	if in.Kind == "" {
		in.Kind = DeadSubscription
	}
	if in.Limit < 0 {
		s.fail(w, rq, awsapi.Errorf("ValidationException", "Limit must not be negative"))
		return
	}
	var misplaced string
	switch {
	case in.Kind != DeadSubscription && in.Kind != DeadFindings && in.Kind != DeadTrailNotifications:
		s.fail(w, rq, awsapi.Errorf("ValidationException", "Kind must be %s, %s or %s, not %q", DeadSubscription, DeadFindings, DeadTrailNotifications, in.Kind))
		return
	case in.Kind != DeadSubscription && (in.LogGroupName != "" || in.FilterName != ""):
		misplaced = "LogGroupName and FilterName are only for Kind " + DeadSubscription
	case in.Kind != DeadFindings && in.Destination != "":
		misplaced = "Destination is only for Kind " + DeadFindings
	case in.Kind != DeadTrailNotifications && in.TopicArn != "":
		misplaced = "TopicArn is only for Kind " + DeadTrailNotifications
	}
	if misplaced != "" {
		s.fail(w, rq, awsapi.Errorf("ValidationException", "%s", misplaced))
		return
	}
	account := rq.key.Account // whose dead letters; "" = every account's (root)
	if rq.key.Role == auth.RoleRoot {
		account = ""
	}
	// What each kind lists and replays, and under which actions and event source.
	listOp, replayOp, source := "opentrail:ListDeadLetters", "opentrail:ReplayDeadLetters", "cloudtrail.amazonaws.com"
	var (
		list   func() (any, error)
		replay func(ctx context.Context) (int, error)
	)
	switch in.Kind {
	case DeadSubscription:
		if s.logs == nil {
			s.fail(w, rq, awsapi.Errorf("ResourceNotFoundException", "The specified log group does not exist."))
			return
		}
		listOp, replayOp, source = "logs:DescribeSubscriptionFilters", "logs:ReplayDeadLetters", "logs.amazonaws.com"
		list = func() (any, error) { return s.logs.DeadLetters(rq.caller(), in.LogGroupName, in.FilterName, in.Limit) }
		replay = func(ctx context.Context) (int, error) {
			return s.logs.Replay(ctx, rq.caller(), in.LogGroupName, in.FilterName)
		}
	case DeadFindings:
		list, replay = s.deadFindings(in, account)
	case DeadTrailNotifications:
		list, replay = s.deadNotifications(in, account)
	}
	rq.op = listOp
	if !s.allowed(rq, rq.op, true) {
		s.fail(w, rq, denied(rq.key, rq.op))
		return
	}
	if in.Action == "list" {
		out, err := list()
		if err != nil {
			s.fail(w, rq, err)
			return
		}
		awsapi.WriteJSON(w, rq.id, http.StatusOK, map[string]any{"DeadLetters": out})
		return
	}
	rq.op = replayOp
	if !s.allowed(rq, rq.op, false) {
		s.fail(w, rq, denied(rq.key, rq.op))
		return
	}
	// No change without its record: the replay commits in one batch with it.
	txn := kv.NewTxn(s.j.DB())
	defer txn.Close()
	ctx := kv.WithTxn(r.Context(), txn)
	n, err := replay(ctx)
	out := map[string]int{"Replayed": n}
	rec := s.callRecord(rq, source, "ReplayDeadLetters", false, body, out, err)
	if cerr := s.commitRecord(ctx, rq, rec, txn, err == nil); cerr != nil {
		s.fail(w, rq, cerr)
		return
	}
	if err != nil {
		s.fail(w, rq, err)
		return
	}
	awsapi.WriteJSON(w, rq.id, http.StatusOK, out)
}

// deadFindings lists and replays the findings destinations' dead letters of account ("" = all).
func (s *Server) deadFindings(in DeadLettersRequest, account string) (func() (any, error), func(context.Context) (int, error)) {
	notFound := func(err error) error {
		if errors.Is(err, detect.ErrNoDestination) {
			return awsapi.Errorf("ResourceNotFoundException", "%s", err.Error())
		}
		return err
	}
	list := func() (any, error) {
		out := []DeadFinding{}
		if s.detect == nil {
			return out, nil
		}
		dead, err := s.detect.DeadLetters(in.Destination, account, in.Limit)
		if err != nil {
			return nil, notFound(err)
		}
		for _, d := range dead {
			out = append(out, DeadFinding{Destination: d.Destination, Finding: findingOf(d.Finding)})
		}
		return out, nil
	}
	replay := func(ctx context.Context) (int, error) {
		if s.detect == nil {
			return 0, nil
		}
		n, err := s.detect.Replay(ctx, in.Destination, account)
		return n, notFound(err)
	}
	return list, replay
}

// deadNotifications lists and replays trail notifications' dead letters of account ("" = all).
func (s *Server) deadNotifications(in DeadLettersRequest, account string) (func() (any, error), func(context.Context) (int, error)) {
	list := func() (any, error) {
		out := []DeadNotification{}
		if s.notify == nil {
			return out, nil
		}
		dead, err := s.notify.DeadLetters(in.TopicArn, account, in.Limit)
		if err != nil {
			return nil, err
		}
		for _, d := range dead {
			out = append(out, DeadNotification{TopicArn: d.TopicARN, AccountId: d.Account, TrailName: d.Trail, S3BucketName: d.Bucket, S3ObjectKeys: d.Keys})
		}
		return out, nil
	}
	replay := func(ctx context.Context) (int, error) {
		if s.notify == nil {
			return 0, nil
		}
		return s.notify.Replay(ctx, in.TopicArn, account)
	}
	return list, replay
}
