package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/opentrail/opentrail/internal/audit"
	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
)

// Actions of POST /v1/keys.
const (
	KeysCreate  = "Create" // the default
	KeysList    = "List"
	KeysDisable = "Disable"
	KeysEnable  = "Enable"
	KeysDelete  = "Delete"
)

// CreateKeyRequest is the body of POST /v1/keys: Action (default Create) and its arguments.
type CreateKeyRequest struct {
	Action      string `json:"Action,omitempty"`
	Account     string `json:"Account"`
	User        string `json:"User"`
	Role        string `json:"Role"`
	AccessKeyID string `json:"AccessKeyId,omitempty"` // Disable, Enable, Delete
}

// KeyInfo is one key in a List answer, and the key an Enable, Disable or Delete acted on.
type KeyInfo struct {
	AccessKeyID string    `json:"AccessKeyId"`
	Account     string    `json:"Account"`
	User        string    `json:"User"`
	Role        string    `json:"Role"`
	Status      string    `json:"Status"` // Active or Inactive, as IAM says
	Created     time.Time `json:"CreateDate"`
}

// ListKeysResponse answers Action List.
type ListKeysResponse struct {
	AccessKeys []KeyInfo `json:"AccessKeys"`
}

func keyInfo(k auth.Key) KeyInfo {
	st := "Active"
	if k.Disabled {
		st = "Inactive"
	}
	return KeyInfo{AccessKeyID: k.AccessKeyID, Account: k.Account, User: k.User, Role: k.Role, Status: st, Created: k.Created}
}

// CreateKeyResponse is its answer; the secret is shown only here.
type CreateKeyResponse struct {
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	Account         string `json:"Account"`
	User            string `json:"User"`
	Role            string `json:"Role"`
}

// createKey serves POST /v1/keys, every key action (Create unless Action says otherwise): root
// for any account, admin for its own. Each call is recorded as the IAM call it stands for
// (CreateAccessKey, ListAccessKeys, UpdateAccessKey, DeleteAccessKey), without any secret.
func (s *Server) createKey(w http.ResponseWriter, r *http.Request, rq *request, body []byte) {
	var in CreateKeyRequest
	if err := json.Unmarshal(body, &in); err != nil {
		s.fail(w, rq, awsapi.Errorf("SerializationException", "the body must be {\"Account\":...,\"User\":...,\"Role\":...}: %v", err))
		return
	}
	switch in.Action {
	case "", KeysCreate:
	case KeysList:
		s.listKeys(w, rq, in)
		return
	case KeysDisable, KeysEnable, KeysDelete:
		s.changeKey(w, rq, in)
		return
	default:
		s.fail(w, rq, awsapi.Errorf("ValidationException", "Action %q is not one of Create, List, Disable, Enable, Delete", in.Action))
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
		rec.Fail(ae.Code, ae.Message)
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

// listKeys lists the keys of an account (root: any account, or all with Account "";
// admin: its own), recorded as iam:ListAccessKeys.
func (s *Server) listKeys(w http.ResponseWriter, rq *request, in CreateKeyRequest) {
	var err error
	var keys []auth.Key
	switch {
	case !s.allowed(rq, "iam:ListAccessKeys", true):
		err = denied(rq.key, "iam:ListAccessKeys")
	case rq.key.Role == auth.RoleRoot:
	case in.Account == "" || in.Account == rq.key.Account:
		in.Account = rq.key.Account
	default:
		err = denied(rq.key, "iam:ListAccessKeys")
	}
	if err == nil {
		keys, err = s.keys.List(in.Account)
	}
	rec := auditRecord(rq, "iam.amazonaws.com", "ListAccessKeys", true, map[string]any{"account": in.Account})
	if !s.audited(w, rq, rec, err) {
		return
	}
	out := ListKeysResponse{AccessKeys: []KeyInfo{}}
	for _, k := range keys {
		out.AccessKeys = append(out.AccessKeys, keyInfo(k))
	}
	awsapi.WriteJSON(w, rq.id, http.StatusOK, out)
}

// changeKey disables, enables or deletes a key (root: any; admin: its account's), recorded as
// iam:UpdateAccessKey (status Inactive or Active) or iam:DeleteAccessKey. The root key can be
// neither disabled nor deleted.
func (s *Server) changeKey(w http.ResponseWriter, rq *request, in CreateKeyRequest) {
	name, params := "UpdateAccessKey", map[string]any{"accessKeyId": in.AccessKeyID}
	action := "iam:UpdateAccessKey"
	switch in.Action {
	case KeysDisable:
		params["status"] = "Inactive"
	case KeysEnable:
		params["status"] = "Active"
	case KeysDelete:
		name, action = "DeleteAccessKey", "iam:DeleteAccessKey"
	}
	var err error
	target, found := s.keys.Get(in.AccessKeyID)
	switch {
	case in.AccessKeyID == "":
		err = awsapi.Errorf("ValidationException", "AccessKeyId is required")
	case !s.allowed(rq, action, false):
		err = denied(rq.key, action)
	case !found, rq.key.Role != auth.RoleRoot && target.Account != rq.key.Account:
		// An admin learns nothing about other accounts' keys.
		err = &awsapi.Error{Code: "NoSuchEntity", Status: http.StatusNotFound,
			Message: fmt.Sprintf("The Access Key with id %s cannot be found.", in.AccessKeyID)}
	}
	if found && err == nil {
		params["userName"] = target.User
		switch in.Action {
		case KeysDelete:
			target, err = s.keys.Delete(in.AccessKeyID)
		default:
			target, err = s.keys.SetDisabled(in.AccessKeyID, in.Action == KeysDisable)
		}
		if errors.Is(err, auth.ErrRootKey) {
			err = awsapi.Errorf("ValidationException", "the root key cannot be disabled or deleted; "+
				"to replace it, restart the server with a new OPENTRAIL_ROOT_ACCESS_KEY_ID and OPENTRAIL_ROOT_SECRET_ACCESS_KEY")
		}
	}
	rec := auditRecord(rq, "iam.amazonaws.com", name, false, params)
	if !s.audited(w, rq, rec, err) {
		return
	}
	awsapi.WriteJSON(w, rq.id, http.StatusOK, keyInfo(target))
}

// audited records rec with err's code and message, and answers err (or a failure to record).
// It returns true when the caller should write its success answer.
func (s *Server) audited(w http.ResponseWriter, rq *request, rec *audit.Record, err error) bool {
	var ae *awsapi.Error
	if errors.As(err, &ae) {
		rec.Fail(ae.Code, ae.Message)
	}
	if aerr := s.record(rq, rec); aerr != nil {
		s.fail(w, rq, aerr)
		return false
	}
	if err != nil {
		s.fail(w, rq, err)
		return false
	}
	return true
}
