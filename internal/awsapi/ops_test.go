package awsapi

import (
	"context"
	"errors"
	"testing"
)

func TestOpsCall(t *testing.T) {
	type svc struct{ name string }
	ops := Ops[*svc, string]{
		"Echo": func(s *svc, _ context.Context, caller string, body []byte) (any, error) {
			return s.name + "/" + caller + "/" + string(body), nil
		},
	}
	out, err := ops.Call(&svc{"logs"}, context.Background(), "alice", "Echo", []byte("{}"))
	if err != nil || out != "logs/alice/{}" {
		t.Errorf("Call(Echo) = %v, %v", out, err)
	}
	_, err = ops.Call(&svc{"logs"}, context.Background(), "alice", "PutQueryDefinition", nil)
	var ae *Error
	if !errors.As(err, &ae) || ae.Code != "UnsupportedOperationException" || ae.Status != StatusFor("UnsupportedOperationException") ||
		ae.Message != "OpenTrail does not support PutQueryDefinition yet." {
		t.Errorf("Call of an operation not implemented: %v", err)
	}
}
