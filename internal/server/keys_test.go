package server_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/opentrail/opentrail/internal/server"
)

// TestKeyActions: List, Disable, Enable and Delete on POST /v1/keys, with the role and account
// rules (root: any key; admin: its account's; others: none), the root key kept, and a disabled
// key failing SigV4 as AWS fails an inactive key.
func TestKeyActions(t *testing.T) {
	e := start(t)
	admin := e.newKey("444455556666", "ops", "admin")
	writer := e.newKey("444455556666", "ci", "writer")
	reader := e.newKey("444455556666", "auditor", "reader")
	other := e.newKey("777788889999", "them", "writer")
	call := func(k key, in server.CreateKeyRequest) (int, string) {
		t.Helper()
		body, _ := json.Marshal(in)
		status, b := e.post(k, "us-east-1", "/v1/keys", body)
		return status, string(b)
	}
	for _, tc := range []struct {
		name   string
		k      key
		in     server.CreateKeyRequest
		status int
		want   string
	}{
		{"root lists every account", root, server.CreateKeyRequest{Action: server.KeysList}, 200, other.id},
		{"admin lists its account", admin, server.CreateKeyRequest{Action: server.KeysList}, 200, writer.id},
		{"admin may not list another account", admin, server.CreateKeyRequest{Action: server.KeysList, Account: "777788889999"}, 403, "AccessDeniedException"},
		{"reader may not list", reader, server.CreateKeyRequest{Action: server.KeysList}, 403, "AccessDeniedException"},
		{"writer may not disable", writer, server.CreateKeyRequest{Action: server.KeysDisable, AccessKeyID: reader.id}, 403, "AccessDeniedException"},
		{"admin may not disable another account's key", admin, server.CreateKeyRequest{Action: server.KeysDisable, AccessKeyID: other.id}, 404, "NoSuchEntity"},
		{"no such key", root, server.CreateKeyRequest{Action: server.KeysDelete, AccessKeyID: "AKIANOSUCHKEYNOSUCH0"}, 404, "NoSuchEntity"},
		{"the root key stays", root, server.CreateKeyRequest{Action: server.KeysDelete, AccessKeyID: rootID}, 400, "the root key cannot be disabled or deleted"},
		{"the root key stays enabled", root, server.CreateKeyRequest{Action: server.KeysDisable, AccessKeyID: rootID}, 400, "the root key cannot be disabled or deleted"},
		{"an action that does not exist", root, server.CreateKeyRequest{Action: "Rotate"}, 400, "ValidationException"},
		{"no key named", admin, server.CreateKeyRequest{Action: server.KeysEnable}, 400, "AccessKeyId is required"},
		{"admin disables its writer", admin, server.CreateKeyRequest{Action: server.KeysDisable, AccessKeyID: writer.id}, 200, `"Status":"Inactive"`},
	} {
		status, body := call(tc.k, tc.in)
		if status != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s; want %d with %q", tc.name, status, body, tc.status, tc.want)
		}
	}
	status, body := e.post(writer, "us-east-1", "/v1/records", records2body([][]byte{[]byte(`{"eventTime":"2024-01-01T00:00:00Z","eventName":"X","eventSource":"x.example.com"}`)}))
	if status != 400 || !strings.Contains(string(body), "UnrecognizedClientException") {
		t.Fatalf("a disabled key: %d %s", status, body)
	}
	if status, body := call(admin, server.CreateKeyRequest{Action: server.KeysEnable, AccessKeyID: writer.id}); status != 200 || !strings.Contains(body, `"Status":"Active"`) {
		t.Fatalf("enable: %d %s", status, body)
	}
	e.ingest(writer, "us-east-1", []byte(`{"eventTime":"2024-01-01T00:00:00Z","eventName":"X","eventSource":"x.example.com"}`))
	if status, body := call(root, server.CreateKeyRequest{Action: server.KeysDelete, AccessKeyID: writer.id}); status != 200 {
		t.Fatalf("delete: %d %s", status, body)
	}
	if _, body := call(root, server.CreateKeyRequest{Action: server.KeysList}); strings.Contains(body, writer.id) {
		t.Fatalf("a deleted key is listed: %s", body)
	}
	// The account's key calls, allowed or not, are in its history as the IAM calls they are.
	out, err := e.ct(admin, "us-east-1").LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{
		LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventSource, AttributeValue: aws.String("iam.amazonaws.com")}}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, ev := range out.Events {
		got[aws.ToString(ev.EventName)]++
	}
	// ListAccessKeys: the admin's two and the reader's refused one; UpdateAccessKey: the
	// admin's four and the writer's refused one; no CreateAccessKey (root made the keys).
	if got["ListAccessKeys"] != 3 || got["UpdateAccessKey"] != 5 || got["CreateAccessKey"] != 0 {
		t.Errorf("the admin's IAM records: %v", got)
	}
}
