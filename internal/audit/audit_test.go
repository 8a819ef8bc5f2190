package audit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/event"
)

// TestRecordJSON pins the members and their order, as a self-audit record and
// as a record of the audit proxy write them: both are stored as written.
func TestRecordJSON(t *testing.T) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	id := auth.Key{Account: "123456789012", User: "alice", AccessKeyID: "AKIAEXAMPLE"}.Identity()
	tests := []struct {
		name string
		rec  func() *Record
		want string
	}{
		{"self-audit", func() *Record {
			r := New(Call{Time: at, Identity: id, Account: "123456789012", Source: "cloudtrail.amazonaws.com", Name: "CreateTrail",
				Region: "eu-west-1", SourceIP: "10.0.0.1", UserAgent: "aws-cli", RequestID: "req-1", Params: map[string]any{"name": "t"}})
			r.Fail("TrailAlreadyExistsException", "exists")
			return r
		}, `{"eventVersion":"1.11","userIdentity":{"type":"IAMUser","principalId":"AIDAIVSCRQR4VGJSKRQXH","arn":"arn:aws:iam::123456789012:user/alice","accountId":"123456789012","accessKeyId":"AKIAEXAMPLE","userName":"alice"},` +
			`"eventTime":"2024-01-02T03:04:05Z","eventSource":"cloudtrail.amazonaws.com","eventName":"CreateTrail","awsRegion":"eu-west-1","sourceIPAddress":"10.0.0.1","userAgent":"aws-cli",` +
			`"errorCode":"TrailAlreadyExistsException","errorMessage":"exists","requestParameters":{"name":"t"},"responseElements":null,"requestID":"req-1","eventID":"ID","readOnly":false,` +
			`"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management"}`},
		{"proxy data event", func() *Record {
			r := New(Call{Time: at, Identity: id, Account: "123456789012", Source: "s3.amazonaws.com",
				Region: "us-east-1", SourceIP: "10.0.0.2", UserAgent: "sdk", ReadOnly: true, Data: true, Params: json.RawMessage(`{"bucketName":"b"}`)})
			r.ResponseElements = json.RawMessage("null")
			r.AdditionalEventData = map[string]any{"requestParametersTruncated": true}
			r.Resources = []Resource{{AccountID: "123456789012", Type: "AWS::S3::Bucket", ARN: "arn:aws:s3:::b"}}
			r.VPCEndpoint = &VPCEndpoint{ID: "vpce-0123", AccountID: "123456789012"}
			r.TLSDetails = &TLSDetails{TLSVersion: "TLSv1.3", CipherSuite: "TLS_AES_128_GCM_SHA256", ClientProvidedHostHeader: "s3.local"}
			return r
		}, `{"eventVersion":"1.11","userIdentity":{"type":"IAMUser","principalId":"AIDAIVSCRQR4VGJSKRQXH","arn":"arn:aws:iam::123456789012:user/alice","accountId":"123456789012","accessKeyId":"AKIAEXAMPLE","userName":"alice"},` +
			`"eventTime":"2024-01-02T03:04:05Z","eventSource":"s3.amazonaws.com","eventName":"Unknown","awsRegion":"us-east-1","sourceIPAddress":"10.0.0.2","userAgent":"sdk",` +
			`"requestParameters":{"bucketName":"b"},"responseElements":null,"additionalEventData":{"requestParametersTruncated":true},"requestID":"","eventID":"ID","readOnly":true,` +
			`"resources":[{"accountId":"123456789012","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::b"}],"eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"123456789012",` +
			`"vpcEndpointId":"vpce-0123","vpcEndpointAccountId":"123456789012","eventCategory":"Data","tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"s3.local"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := tt.rec()
			if len(rec.EventID) != 36 {
				t.Fatalf("eventID %q is not a UUID", rec.EventID)
			}
			id := rec.EventID
			rec.EventID = "ID"
			b, err := json.Marshal(rec)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("record\n got %s\nwant %s", b, tt.want)
			}
			// What New writes is a valid record as it stands.
			rec.EventID = id
			b, _ = json.Marshal(rec)
			if _, err := event.Normalize(b, event.Defaults{Account: "123456789012", Region: "us-east-1", Now: at}); err != nil {
				t.Errorf("Normalize: %v", err)
			}
		})
	}
}

func TestCaps(t *testing.T) {
	long := strings.Repeat("é", MaxUserAgent) // two bytes a rune
	r := New(Call{UserAgent: long})
	if len(r.UserAgent) != MaxUserAgent || !strings.HasPrefix(long, r.UserAgent) {
		t.Errorf("userAgent of %d bytes kept %d, want the first %d", len(long), len(r.UserAgent), MaxUserAgent)
	}
	r.Fail("X", "a"+strings.Repeat("é", MaxErrorMessage))
	if len(r.ErrorMessage) != MaxErrorMessage-1 || !strings.HasSuffix(r.ErrorMessage, "é") {
		t.Errorf("errorMessage kept %d bytes, want %d cut on a rune boundary", len(r.ErrorMessage), MaxErrorMessage-1)
	}
	for _, tt := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abc", 2, "ab"},
		{"aé", 2, "a"},
		{"é", 1, ""},
		{"日本", 4, "日"},
	} {
		if got := Cap(tt.s, tt.n); got != tt.want {
			t.Errorf("Cap(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}
