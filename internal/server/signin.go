package server

import (
	"context"
	"crypto/subtle"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
)

// Authenticate checks an access key ID and its secret, in constant time, as
// a sign-in with a password does (the console). The error is the same
// whether the key is unknown or the secret wrong.
func (s *Server) Authenticate(accessKeyID, secret string) (auth.Key, error) {
	key, want, ok := s.keys.Lookup(accessKeyID)
	if !ok {
		want = "\x00" // compare anyway, so that timing does not tell which keys exist
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 || !ok {
		return auth.Key{}, awsapi.Errorf("UnrecognizedClientException", "The access key ID or secret access key is not valid.")
	}
	return key, nil
}

// RecordSignIn durably appends the ConsoleLogin record of one sign-in
// attempt, as AWS writes it (eventSource signin.amazonaws.com, eventType
// AwsConsoleSignIn, responseElements {"ConsoleLogin":"Success"|"Failure"}).
// A failed attempt with an unknown key is recorded in the operator's (root)
// account, the user hidden as AWS hides unknown user names.
func (s *Server) RecordSignIn(ctx context.Context, p Principal, keyID string, ok bool) error {
	if err := s.checkRegion(p.Region); err != nil {
		return err
	}
	rq := &request{id: newRequestID(), start: s.now().UTC(), key: p.Key, region: p.Region, ip: p.SourceIP, agent: p.UserAgent, op: "signin:ConsoleLogin"}
	if rq.key.Account == "" {
		root, _, _ := s.keys.Root()
		rq.key = auth.Key{Account: root.Account, User: "HIDDEN_DUE_TO_SECURITY_REASONS", AccessKeyID: keyID}
	}
	rec := auditRecord(rq, "signin.amazonaws.com", "ConsoleLogin", false, nil)
	rec.EventType = "AwsConsoleSignIn"
	rec.RequestID = ""
	outcome := "Success"
	if !ok {
		outcome = "Failure"
		rec.ErrorMessage = "Failed authentication"
	}
	rec.ResponseElements = map[string]string{"ConsoleLogin": outcome}
	rec.AdditionalEventData = map[string]any{"LoginTo": "opentrail-console", "MobileVersion": "No", "MFAUsed": "No"}
	return s.commitRecord(ctx, rq, rec, nil, false)
}
