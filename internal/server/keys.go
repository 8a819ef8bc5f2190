package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
)

// CreateKeyRequest is the body of POST /v1/keys.
type CreateKeyRequest struct {
	Account string `json:"Account"`
	User    string `json:"User"`
	Role    string `json:"Role"`
}

// CreateKeyResponse is its answer; the secret is shown only here.
type CreateKeyResponse struct {
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	Account         string `json:"Account"`
	User            string `json:"User"`
	Role            string `json:"Role"`
}

// createKey serves POST /v1/keys: root for any account, admin for its own.
// The call is recorded as iam:CreateAccessKey, without the secret.
func (s *Server) createKey(w http.ResponseWriter, r *http.Request, rq *request, body []byte) {
	var in CreateKeyRequest
	if err := json.Unmarshal(body, &in); err != nil {
		s.fail(w, rq, awsapi.Errorf("SerializationException", "the body must be {\"Account\":...,\"User\":...,\"Role\":...}: %v", err))
		return
	}
	if in.Account == "" {
		in.Account = rq.key.Account
	}
	var err error
	var key auth.Key
	var secret string
	switch {
	case s.allowed(rq, "iam:CreateAccessKey", false) && (rq.key.Role == auth.RoleRoot || in.Account == rq.key.Account):
		if in.Role == auth.RoleRoot {
			err = awsapi.Errorf("ValidationException", "Role must be admin, reader or writer")
			break
		}
		key, secret, err = s.keys.Create(in.Account, in.User, in.Role)
		if err != nil && !errors.Is(err, auth.ErrExists) {
			err = awsapi.Errorf("ValidationException", "%v", err)
		}
	default:
		err = denied(rq.key, "iam:CreateAccessKey")
	}
	rec := auditRecord(rq, "iam.amazonaws.com", "CreateAccessKey", false,
		map[string]any{"userName": in.User, "account": in.Account, "role": in.Role})
	var ae *awsapi.Error
	if errors.As(err, &ae) {
		rec.ErrorCode, rec.ErrorMessage = ae.Code, ae.Message
	} else if err == nil {
		rec.ResponseElements = map[string]any{"accessKey": map[string]any{
			"accessKeyId": key.AccessKeyID, "status": "Active", "userName": key.User, "createDate": key.Created.Format(time.RFC3339)}}
	}
	if aerr := s.record(rq, rec); aerr != nil {
		s.fail(w, rq, aerr)
		return
	}
	if err != nil {
		s.fail(w, rq, err)
		return
	}
	awsapi.WriteJSON(w, rq.id, http.StatusOK, CreateKeyResponse{
		AccessKeyID: key.AccessKeyID, SecretAccessKey: secret, Account: key.Account, User: key.User, Role: key.Role})
}
