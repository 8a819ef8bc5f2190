package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/smithy-go"

	"github.com/opentrail/opentrail/internal/app"
	"github.com/opentrail/opentrail/internal/fixture"
	"github.com/opentrail/opentrail/internal/server"
)

const (
	rootID     = "AKIATESTROOT00000001"
	rootSecret = "test-root-secret-0123456789abcdefghijkl"
	rootAcct   = "123456789012"
)

type env struct {
	t   testing.TB
	a   *app.App
	url string
}

func start(t testing.TB) *env { return startWithCache(t, 16) }

func startWithCache(t testing.TB, cacheMiB int64) *env {
	t.Helper()
	a, err := app.Open(context.Background(), app.Config{
		DataDir: t.TempDir(), RootKeyID: rootID, RootKey: rootSecret, CacheMiB: cacheMiB,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(a.Handler)
	t.Cleanup(func() { ts.Close(); a.Close() })
	return &env{t: t, a: a, url: ts.URL}
}

// buckets creates buckets in the node's (folder) bucket store.
func (e *env) buckets(names ...string) {
	e.t.Helper()
	for _, n := range names {
		if err := e.a.Buckets.CreateBucket(context.Background(), n); err != nil {
			e.t.Fatal(err)
		}
	}
}

type key struct{ id, secret string }

var root = key{rootID, rootSecret}

// post sends a SigV4-signed POST and returns status and body.
func (e *env) post(k key, region, path string, body []byte) (int, []byte) {
	e.t.Helper()
	return e.signedPost(k, region, path, "", body)
}

// signedPost sends a POST signed for service cloudtrail, with an X-Amz-Target when target is set.
func (e *env) signedPost(k key, region, path, target string, body []byte) (int, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if target != "" {
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", target)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: k.id, SecretAccessKey: k.secret},
		req, hex.EncodeToString(sum[:]), "cloudtrail", region, time.Now()); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (e *env) ingest(k key, region string, records ...[]byte) server.IngestResponse {
	e.t.Helper()
	status, b := e.post(k, region, "/v1/records", records2body(records))
	if status != 200 {
		e.t.Fatalf("ingest: %d %s", status, b)
	}
	var out server.IngestResponse
	if err := json.Unmarshal(b, &out); err != nil {
		e.t.Fatal(err)
	}
	// Wait until history reflects what was acknowledged (normally well under a millisecond).
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := e.a.Store.WaitApplied(ctx, e.a.Journal.Last()); err != nil {
		e.t.Fatalf("not visible within 1s of acknowledgement: %v", err)
	}
	return out
}

func records2body(records [][]byte) []byte {
	return []byte(`{"Records":[` + string(bytes.Join(records, []byte(","))) + `]}`)
}

func (e *env) newKey(account, user, role string) key {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"Account": account, "User": user, "Role": role})
	status, b := e.post(root, "us-east-1", "/v1/keys", body)
	if status != 200 {
		e.t.Fatalf("create key: %d %s", status, b)
	}
	var out server.CreateKeyResponse
	json.Unmarshal(b, &out)
	return key{out.AccessKeyID, out.SecretAccessKey}
}

func (e *env) ct(k key, region string) *cloudtrail.Client {
	return cloudtrail.New(cloudtrail.Options{
		BaseEndpoint: aws.String(e.url), Region: region,
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: k.id, SecretAccessKey: k.secret}, nil
		})),
		RetryMaxAttempts: 1,
	})
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return "non-API error: " + err.Error()
	}
	return ""
}

// TestFixturesThroughLookupEvents: every fixture record goes in through native
// ingest and comes back through LookupEvents' CloudTrailEvent with the same meaning.
func TestFixturesThroughLookupEvents(t *testing.T) {
	e := start(t)
	recs := fixture.Records(t)
	for i := 0; i < len(recs); i += 100 {
		var batch [][]byte
		for _, r := range recs[i:min(i+100, len(recs))] {
			batch = append(batch, r)
		}
		out := e.ingest(root, "us-east-1", batch...)
		if out.Accepted != min(100, len(recs)-i) {
			t.Fatalf("accepted %d", out.Accepted)
		}
	}
	keys := map[string]key{}
	seen := map[string]bool{}
	for i, raw := range recs {
		var m struct {
			EventID, AwsRegion, RecipientAccountID, EventCategory string
		}
		json.Unmarshal(raw, &m)
		if seen[m.EventID] {
			continue // the corpus holds exact duplicates; idempotent ingest stores them once
		}
		seen[m.EventID] = true
		acct := m.RecipientAccountID
		if acct == "" {
			acct = rootAcct
		}
		k, ok := keys[acct]
		if !ok {
			k = e.newKey(acct, "fixture-reader", "reader")
			keys[acct] = k
		}
		out, err := e.ct(k, m.AwsRegion).LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{
			LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventId, AttributeValue: aws.String(m.EventID)}}})
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if m.EventCategory == "Data" {
			// Event history holds management and insight events only, as on AWS.
			if len(out.Events) != 0 {
				t.Fatalf("record %d: data event listed in event history", i)
			}
			continue
		}
		if len(out.Events) != 1 {
			t.Fatalf("record %d (%s): got %d events", i, m.EventID, len(out.Events))
		}
		if d := fixture.SameMeaning(raw, []byte(aws.ToString(out.Events[0].CloudTrailEvent))); d != "" {
			t.Fatalf("record %d: %s", i, d)
		}
	}
	if len(seen) < 300 {
		t.Fatalf("only %d distinct records checked", len(seen))
	}
}

func TestIngestValidationAndLimits(t *testing.T) {
	e := start(t)
	good := []byte(`{"eventTime":"2024-01-01T00:00:00Z","eventName":"X"}`)
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
		code   string
		msg    string
	}{
		{"missing eventTime names index and field", records2body([][]byte{good, []byte(`{"eventName":"Y"}`)}), 400, "ValidationException", "Records[1].eventTime: is required"},
		{"wrong type", records2body([][]byte{[]byte(`{"eventTime":"2024-01-01T00:00:00Z","readOnly":"yes"}`)}), 400, "ValidationException", "Records[0].readOnly"},
		{"not JSON", []byte(`{"Records":[{]}`), 400, "SerializationException", "Records[0]"},
		{"no Records", []byte(`{}`), 400, "SerializationException", "no Records"},
		{"Records twice", []byte(`{"Records":[` + string(good) + `],"Records":[` + string(good) + `]}`), 400, "SerializationException", "duplicate member"},
		{"duplicate name in a record", []byte(`{"Records":[{"eventTime":"2024-01-01T00:00:00Z","eventName":"X","eventName":"Y"}]}`), 400, "ValidationException", "Records[0]"},
		{"empty", []byte(`{"Records":[]}`), 400, "ValidationException", "empty"},
		{"501 records", records2body(bytes.Split(bytes.Repeat(append(good, '\n'), 501)[:len(good)*501+500], []byte("\n"))), 400, "ValidationException", "at most 500"},
		{"over 1 MB", []byte(`{"Records":[{"eventTime":"2024-01-01T00:00:00Z","x":"` + strings.Repeat("a", 1<<20) + `"}]}`), 413, "RequestEntityTooLarge", ""},
		{"record over 256 KB", []byte(`{"Records":[{"eventTime":"2024-01-01T00:00:00Z","x":"` + strings.Repeat("a", 300<<10) + `"}]}`), 400, "ValidationException", "Records[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.a.Journal.Last()
			status, b := e.post(root, "us-east-1", "/v1/records", tc.body)
			var ae struct {
				Type    string `json:"__type"`
				Message string `json:"message"`
			}
			json.Unmarshal(b, &ae)
			if status != tc.status || ae.Type != tc.code || !strings.Contains(ae.Message, tc.msg) {
				t.Fatalf("got %d %s", status, b)
			}
			if e.a.Journal.Last() != before {
				t.Fatal("a rejected request stored something")
			}
		})
	}
}

func TestIngestFillsAndDedups(t *testing.T) {
	e := start(t)
	w := e.newKey("210987654321", "producer", "writer")
	out := e.ingest(w, "eu-west-1", []byte(`{"eventTime":"2024-01-01T00:00:00Z","eventName":"Ping","eventSource":"app.example.com"}`))
	if len(out.EventIds) != 1 || out.EventIds[0] == "" {
		t.Fatalf("%+v", out)
	}
	again := e.ingest(w, "eu-west-1", []byte(fmt.Sprintf(`{"eventID":%q,"eventTime":"2024-01-01T00:00:00Z","eventName":"Ping"}`, out.EventIds[0])))
	if again.Duplicates != 1 {
		t.Fatalf("re-sent record not reported as duplicate: %+v", again)
	}
	r := e.newKey("210987654321", "auditor", "reader")
	got, err := e.ct(r, "eu-west-1").LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{
		LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String("Ping")}}})
	if err != nil || len(got.Events) != 1 {
		t.Fatalf("lookup: %v %d", err, len(got.Events))
	}
	var rec map[string]any
	json.Unmarshal([]byte(aws.ToString(got.Events[0].CloudTrailEvent)), &rec)
	for k, v := range map[string]any{"recipientAccountId": "210987654321", "awsRegion": "eu-west-1", "eventType": "AwsApiCall",
		"eventCategory": "Management", "managementEvent": true, "eventID": out.EventIds[0]} {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v", k, rec[k], v)
		}
	}
	// A writer may not send records for another account; root may.
	status, b := e.post(w, "eu-west-1", "/v1/records", records2body([][]byte{[]byte(`{"eventTime":"2024-01-01T00:00:00Z","recipientAccountId":"123456789012"}`)}))
	if status != 403 || !strings.Contains(string(b), "AccessDeniedException") {
		t.Fatalf("other-account record: %d %s", status, b)
	}
	// A reader may not ingest at all; a writer may not call the API.
	if status, _ := e.post(r, "eu-west-1", "/v1/records", records2body([][]byte{[]byte(`{"eventTime":"2024-01-01T00:00:00Z"}`)})); status != 403 {
		t.Fatalf("reader ingest: %d", status)
	}
	if _, err := e.ct(w, "eu-west-1").LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{}); apiCode(err) != "AccessDeniedException" {
		t.Fatalf("writer lookup: %v", err)
	}
	if _, err := e.ct(r, "eu-west-1").CreateTrail(context.Background(), &cloudtrail.CreateTrailInput{Name: aws.String("t1"), S3BucketName: aws.String("b")}); apiCode(err) != "AccessDeniedException" {
		t.Fatalf("reader CreateTrail: %v", err)
	}
}

func TestAuthFailures(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	if _, err := e.ct(key{rootID, "wrong-secret-wrong-secret"}, "us-east-1").DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{}); apiCode(err) != "InvalidSignatureException" {
		t.Errorf("wrong secret: %v", err)
	}
	if _, err := e.ct(key{"AKIAUNKNOWN000000000", "whatever-secret-123"}, "us-east-1").DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{}); apiCode(err) != "UnrecognizedClientException" {
		t.Errorf("unknown key: %v", err)
	}
	req, _ := http.NewRequest(http.MethodPost, e.url+"/", strings.NewReader("{}"))
	req.Header.Set("X-Amz-Target", "CloudTrail_20131101.DescribeTrails")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "MissingAuthenticationTokenException") {
		t.Errorf("unsigned: %d %s", resp.StatusCode, b)
	}
	// A request signed 20 minutes ago is refused as AWS refuses it.
	req, _ = http.NewRequest(http.MethodPost, e.url+"/", strings.NewReader("{}"))
	req.Header.Set("X-Amz-Target", "CloudTrail_20131101.DescribeTrails")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	sum := sha256.Sum256([]byte("{}"))
	v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: rootID, SecretAccessKey: rootSecret}, req, hex.EncodeToString(sum[:]), "cloudtrail", "us-east-1", time.Now().Add(-20*time.Minute))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "InvalidSignatureException") || !strings.Contains(string(b), "Signature expired") {
		t.Errorf("skewed: %d %s", resp.StatusCode, b)
	}
}

func TestLookupEventsAPI(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	var recs [][]byte
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range 120 {
		recs = append(recs, []byte(fmt.Sprintf(`{"eventID":"ev-%03d","eventTime":%q,"eventName":"Op%d","eventSource":"svc.amazonaws.com","readOnly":%t,"userIdentity":{"type":"IAMUser","userName":"u%d","accessKeyId":"AKIDU%d"}}`,
			i, base.Add(time.Duration(i)*time.Minute).Format(time.RFC3339), i%4, i%2 == 0, i%3, i%3)))
	}
	e.ingest(root, "us-east-1", recs...)
	c := e.ct(root, "us-east-1")
	attr := func(k types.LookupAttributeKey, v string) []types.LookupAttribute {
		return []types.LookupAttribute{{AttributeKey: k, AttributeValue: aws.String(v)}}
	}

	// Pagination with the SDK paginator: 30 events of Op1, newest first, over pages of 7.
	p := cloudtrail.NewLookupEventsPaginator(c, &cloudtrail.LookupEventsInput{LookupAttributes: attr(types.LookupAttributeKeyEventName, "Op1"), MaxResults: aws.Int32(7)})
	var ids []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.Events {
			ids = append(ids, aws.ToString(ev.EventId))
		}
	}
	if len(ids) != 30 || ids[0] != "ev-117" || ids[29] != "ev-001" {
		t.Fatalf("paged ids: %d %v", len(ids), ids)
	}

	// Time range is inclusive at both ends; response members are typed as AWS types them.
	out, err := c.LookupEvents(ctx, &cloudtrail.LookupEventsInput{LookupAttributes: attr(types.LookupAttributeKeyUsername, "u0"),
		StartTime: aws.Time(base.Add(3 * time.Minute)), EndTime: aws.Time(base.Add(9 * time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Events) != 3 || aws.ToString(out.Events[0].EventId) != "ev-009" || aws.ToString(out.Events[2].EventId) != "ev-003" {
		t.Fatalf("range: %d", len(out.Events))
	}
	ev := out.Events[0]
	if aws.ToString(ev.ReadOnly) != "false" || aws.ToString(ev.AccessKeyId) != "AKIDU0" || !aws.ToTime(ev.EventTime).Equal(base.Add(9*time.Minute)) ||
		aws.ToString(ev.EventSource) != "svc.amazonaws.com" || aws.ToString(ev.Username) != "u0" {
		t.Fatalf("event fields: %+v", ev)
	}

	for _, tc := range []struct {
		name string
		in   *cloudtrail.LookupEventsInput
		code string
	}{
		{"two attributes", &cloudtrail.LookupEventsInput{LookupAttributes: append(attr(types.LookupAttributeKeyEventName, "a"), attr(types.LookupAttributeKeyUsername, "b")...)}, "InvalidLookupAttributesException"},
		{"unknown attribute", &cloudtrail.LookupEventsInput{LookupAttributes: attr("Color", "red")}, "InvalidLookupAttributesException"},
		{"MaxResults 51", &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(51)}, "InvalidMaxResultsException"},
		{"MaxResults 0", &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(0)}, "InvalidMaxResultsException"},
		{"start after end", &cloudtrail.LookupEventsInput{StartTime: aws.Time(base.Add(time.Hour)), EndTime: aws.Time(base)}, "InvalidTimeRangeException"},
		{"garbage token", &cloudtrail.LookupEventsInput{NextToken: aws.String("not-a-token")}, "InvalidNextTokenException"},
		{"bad category", &cloudtrail.LookupEventsInput{EventCategory: "management"}, "InvalidEventCategoryException"},
		{"insight by user", &cloudtrail.LookupEventsInput{EventCategory: types.EventCategoryInsight, LookupAttributes: attr(types.LookupAttributeKeyUsername, "u0")}, "InvalidLookupAttributesException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.LookupEvents(ctx, tc.in); apiCode(err) != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
		})
	}

	// A token is valid only with the parameters it was issued for.
	first, err := c.LookupEvents(ctx, &cloudtrail.LookupEventsInput{LookupAttributes: attr(types.LookupAttributeKeyEventName, "Op2"), MaxResults: aws.Int32(5)})
	if err != nil || first.NextToken == nil {
		t.Fatalf("first page: %v", err)
	}
	_, err = c.LookupEvents(ctx, &cloudtrail.LookupEventsInput{LookupAttributes: attr(types.LookupAttributeKeyEventName, "Op3"), NextToken: first.NextToken})
	if apiCode(err) != "InvalidNextTokenException" {
		t.Fatalf("token reused with other parameters: %v", err)
	}
	// Another region sees none of these events.
	if out, err := e.ct(root, "eu-central-1").LookupEvents(ctx, &cloudtrail.LookupEventsInput{LookupAttributes: attr(types.LookupAttributeKeyEventName, "Op1")}); err != nil || len(out.Events) != 0 {
		t.Fatalf("other region: %v %d", err, len(out.Events))
	}
}

// TestSelfAudit: OpenTrail records the CloudTrail API calls it serves, and an
// account sees only its own.
func TestSelfAudit(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	admin := e.newKey("222222222222", "alice", "admin")
	e.buckets("audit-bucket")
	e.ownBucket("audit-bucket", "222222222222") // a trail delivers only into its account's bucket (issue 11 §7)
	_, err := e.ct(admin, "us-east-1").CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("audit-trail"), S3BucketName: aws.String("audit-bucket")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.ct(admin, "us-east-1").GetTrail(ctx, &cloudtrail.GetTrailInput{Name: aws.String("missing-trail")})
	if apiCode(err) != "TrailNotFoundException" {
		t.Fatalf("GetTrail missing: %v", err)
	}
	e.a.Store.WaitApplied(ctx, e.a.Journal.Last())
	out, err := e.ct(admin, "us-east-1").LookupEvents(ctx, &cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{
		{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String("CreateTrail")}}})
	if err != nil || len(out.Events) != 1 {
		t.Fatalf("CreateTrail not recorded: %v %d", err, len(out.Events))
	}
	var rec struct {
		UserIdentity struct {
			Type, Arn, UserName string
			AccessKeyID         string `json:"accessKeyId"`
		}
		EventSource, EventName, UserAgent, SourceIPAddress, RecipientAccountID string
		ReadOnly                                                               bool
		RequestParameters                                                      map[string]any
		ResponseElements                                                       map[string]any
	}
	json.Unmarshal([]byte(aws.ToString(out.Events[0].CloudTrailEvent)), &rec)
	if rec.EventSource != "cloudtrail.amazonaws.com" || rec.UserIdentity.UserName != "alice" || rec.UserIdentity.Arn != "arn:aws:iam::222222222222:user/alice" ||
		rec.ReadOnly || rec.RequestParameters["name"] != "audit-trail" || rec.ResponseElements["trailARN"] == nil || rec.SourceIPAddress != "127.0.0.1" ||
		!strings.Contains(rec.UserAgent, "aws-sdk-go-v2") || rec.RecipientAccountID != "222222222222" {
		t.Fatalf("self-audit record: %s", aws.ToString(out.Events[0].CloudTrailEvent))
	}
	// The failed call is recorded with its error.
	out, _ = e.ct(admin, "us-east-1").LookupEvents(ctx, &cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{
		{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String("GetTrail")}}})
	if len(out.Events) != 1 || !strings.Contains(aws.ToString(out.Events[0].CloudTrailEvent), `"errorCode":"TrailNotFoundException"`) {
		t.Fatalf("failed call not recorded with its error: %d", len(out.Events))
	}
	// Key creation is recorded as iam:CreateAccessKey in root's account, without the secret.
	out, err = e.ct(root, "us-east-1").LookupEvents(ctx, &cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{
		{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String("CreateAccessKey")}}})
	if err != nil || len(out.Events) != 1 {
		t.Fatalf("CreateAccessKey not recorded: %v %d", err, len(out.Events))
	}
	if ev := aws.ToString(out.Events[0].CloudTrailEvent); !strings.Contains(ev, `"userName":"alice"`) || !strings.Contains(ev, admin.id) || strings.Contains(ev, admin.secret) {
		t.Fatalf("CreateAccessKey record: %s", ev)
	}
	// Another account sees neither the trail nor the events.
	other := e.newKey("333333333333", "bob", "admin")
	trails, err := e.ct(other, "us-east-1").DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{})
	if err != nil || len(trails.TrailList) != 0 {
		t.Fatalf("other account sees trails: %v %d", err, len(trails.TrailList))
	}
	out, err = e.ct(other, "us-east-1").LookupEvents(ctx, &cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{
		{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String("CreateTrail")}}})
	if err != nil || len(out.Events) != 0 {
		t.Fatalf("other account sees events: %v %d", err, len(out.Events))
	}
}
