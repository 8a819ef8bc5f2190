package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
)

// auditChannel creates an ActivityAuditLog event data store and a Custom channel into it.
func auditChannel(t *testing.T, ct *cloudtrail.Client, name string) (storeARN, channelARN string) {
	t.Helper()
	ctx := context.Background()
	st, err := ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String(name + "-store"),
		AdvancedEventSelectors: []types.AdvancedEventSelector{{Name: aws.String("apps"),
			FieldSelectors: []types.AdvancedFieldSelector{{Field: aws.String("eventCategory"), Equals: []string{"ActivityAuditLog"}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := ct.CreateChannel(ctx, &cloudtrail.CreateChannelInput{Name: aws.String(name), Source: aws.String("Custom"),
		Destinations: []types.Destination{{Type: types.DestinationTypeEventDataStore, Location: st.EventDataStoreArn}}})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(st.EventDataStoreArn), aws.ToString(ch.ChannelArn)
}

// putAuditEvents signs a PutAuditEvents request for service cloudtrail-data with
// aws-sdk-go-v2's SigV4 signer, as the cloudtraildata client would.
func (e *env) putAuditEvents(k key, region, channel string, body []byte) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url+"/PutAuditEvents?channelArn="+url.QueryEscape(channel), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: k.id, SecretAccessKey: k.secret},
		req, hex.EncodeToString(sum[:]), "cloudtrail-data", region, time.Now()); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		e.t.Fatalf("PutAuditEvents answered %d %s", resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

func auditEventData(uid, name string) string {
	return fmt.Sprintf(`{"version":"1.0","userIdentity":{"type":"employee","principalId":"alice","details":{"team":"payments"}},`+
		`"userAgent":"app/1.0","eventSource":"payments.example.com","eventName":%q,"eventTime":"2025-01-02T03:04:05Z","UID":%q,`+
		`"requestParameters":{"amount":42},"sourceIPAddress":"10.0.0.7"}`, name, uid)
}

func auditBody(events ...map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"auditEvents": events})
	return b
}

// TestPutAuditEvents: events sent to a channel are checked one by one, stored
// once (a retry does not duplicate them), and errors use cloudtrail-data's codes.
func TestPutAuditEvents(t *testing.T) {
	e := start(t)
	ct := e.ct(root, "us-east-1")
	_, chARN := auditChannel(t, ct, "payments")

	good := auditEventData("u-1", "Refund")
	sum := sha256.Sum256([]byte(good))
	body := auditBody(
		map[string]any{"id": "ev-1", "eventData": good, "eventDataChecksum": base64.StdEncoding.EncodeToString(sum[:])},
		map[string]any{"id": "ev-2", "eventData": auditEventData("u-2", "Charge")},
		map[string]any{"id": "ev-3", "eventData": good, "eventDataChecksum": "bm90IHRoZSBzdW0="},
		map[string]any{"id": "ev-4", "eventData": `{"version":"1.0"}`},
		map[string]any{"id": "ev-5", "eventData": `not json`},
	)
	writer := e.newKey(rootAcct, "app", "writer")
	status, out := e.putAuditEvents(writer, "us-east-1", chARN, body)
	if status != 200 {
		t.Fatalf("PutAuditEvents: %d %v", status, out)
	}
	okList, _ := out["successful"].([]any)
	failed, _ := out["failed"].([]any)
	if len(okList) != 2 || len(failed) != 3 {
		t.Fatalf("PutAuditEvents: %v", out)
	}
	codes := map[string]string{}
	for _, f := range failed {
		m := f.(map[string]any)
		codes[m["id"].(string)] = m["errorCode"].(string)
	}
	if codes["ev-3"] != "InvalidChecksum" || codes["ev-4"] != "FieldNotFound" || codes["ev-5"] != "InvalidData" {
		t.Fatalf("failed: %v", failed)
	}
	first := okList[0].(map[string]any)

	// A retry gives the same eventIDs and stores nothing new.
	last := e.a.Journal.Last()
	_, again := e.putAuditEvents(writer, "us-east-1", chARN, body)
	if again["successful"].([]any)[0].(map[string]any)["eventID"] != first["eventID"] || e.a.Journal.Last() != last {
		t.Fatalf("retry: %v (journal %d -> %d)", again, last, e.a.Journal.Last())
	}

	// The stored record has the integrations schema.
	raw, found, err := e.a.Journal.Get(last - 1)
	if err != nil || !found {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(`"eventCategory":"ActivityAuditLog"`)) || !bytes.Contains(raw, []byte(`"channelARN":"`+chARN+`"`)) ||
		!bytes.Contains(raw, []byte(`"eventData":{"version":"1.0"`)) {
		t.Fatalf("stored record: %s", raw)
	}

	// Request-level errors.
	status, out = e.putAuditEvents(writer, "us-east-1", chARN, auditBody(
		map[string]any{"id": "same", "eventData": good}, map[string]any{"id": "same", "eventData": good}))
	if status != 400 || out["__type"] != "DuplicatedAuditEventId" {
		t.Fatalf("duplicate ids: %d %v", status, out)
	}
	for _, tc := range []struct{ channel, code string }{
		{"arn:aws:cloudtrail:us-east-1:123456789012:channel/00000000-0000-4000-8000-000000000000", "ChannelNotFound"},
		{"arn:aws:cloudtrail:us-east-1:999999999999:channel/00000000-0000-4000-8000-000000000000", "ChannelInsufficientPermission"},
		{"arn:aws:cloudtrail:us-east-1:123456789012:trail/x", "InvalidChannelARN"},
	} {
		if _, out := e.putAuditEvents(writer, "us-east-1", tc.channel, body); out["__type"] != tc.code {
			t.Errorf("channel %s: %v, want %s", tc.channel, out, tc.code)
		}
	}
	other := e.newKey("222222222222", "intruder", "admin")
	if _, out := e.putAuditEvents(other, "us-east-1", chARN, body); out["__type"] != "ChannelInsufficientPermission" {
		t.Errorf("other account: %v", out)
	}
	reader := e.newKey(rootAcct, "auditor", "reader")
	if status, out := e.putAuditEvents(reader, "us-east-1", chARN, body); status != 403 || out["__type"] != "AccessDeniedException" {
		t.Errorf("reader: %d %v", status, out)
	}
	var many []map[string]any
	for i := range 101 {
		many = append(many, map[string]any{"id": fmt.Sprint("e", i), "eventData": good})
	}
	if status, out := e.putAuditEvents(writer, "us-east-1", chARN, auditBody(many...)); status != 400 {
		t.Errorf("101 events: %d %v", status, out)
	}
	// A cloudtrail-scoped signature is refused here, and a cloudtrail-data one elsewhere.
	if status, b := e.post(writer, "us-east-1", "/PutAuditEvents?channelArn="+url.QueryEscape(chARN), body); status != 400 || !strings.Contains(string(b), "InvalidSignatureException") {
		t.Errorf("cloudtrail scope: %d %s", status, b)
	}

	// GetChannel reports the ingestion.
	got, err := ct.GetChannel(context.Background(), &cloudtrail.GetChannelInput{Channel: aws.String(chARN)})
	if err != nil || got.IngestionStatus == nil || got.IngestionStatus.LatestIngestionAttemptTime == nil {
		t.Fatalf("GetChannel: %v %+v", err, got)
	}
}

// TestPutAuditEventsBoto3 sends events with boto3's cloudtrail-data client
// (aws-sdk-go-v2's cloudtraildata module is not available to this build).
func TestPutAuditEventsBoto3(t *testing.T) {
	if err := exec.Command("python3", "-c", "import boto3").Run(); err != nil {
		t.Skip("boto3 is not installed")
	}
	e := start(t)
	_, chARN := auditChannel(t, e.ct(root, "us-east-1"), "boto")
	script := `
import boto3, json, sys, hashlib, base64
c = boto3.client("cloudtrail-data", endpoint_url=sys.argv[1], region_name="us-east-1")
data = sys.argv[3]
r = c.put_audit_events(channelArn=sys.argv[2], auditEvents=[
    {"id": "b-1", "eventData": data, "eventDataChecksum": base64.b64encode(hashlib.sha256(data.encode()).digest()).decode()},
    {"id": "b-2", "eventData": "{}"}])
print(json.dumps({"successful": r["successful"], "failed": r["failed"]}))
try:
    c.put_audit_events(channelArn=sys.argv[2].rsplit("/", 1)[0] + "/00000000-0000-4000-8000-000000000000", auditEvents=[{"id": "x", "eventData": data}])
except c.exceptions.ChannelNotFound as e:
    print("ChannelNotFound")
`
	cmd := exec.Command("python3", "-c", script, e.url, chARN, auditEventData("b-uid", "Login"))
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+rootID, "AWS_SECRET_ACCESS_KEY="+rootSecret,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	outb, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("boto3: %v\n%s", err, outb)
	}
	lines := strings.Split(strings.TrimSpace(string(outb)), "\n")
	var res struct {
		Successful []struct{ ID, EventID string }   `json:"successful"`
		Failed     []struct{ ID, ErrorCode string } `json:"failed"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &res); err != nil || len(res.Successful) != 1 || res.Successful[0].ID != "b-1" ||
		len(res.Failed) != 1 || res.Failed[0].ErrorCode != "FieldNotFound" || len(lines) != 2 || lines[1] != "ChannelNotFound" {
		t.Fatalf("boto3 output: %s", outb)
	}
}
