package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/server"
)

// stateSnapshot is every control-plane key and value of the node (trails,
// stores, channels, queries, log groups, filters, keys), and the journal's end.
func (e *env) stateSnapshot() (string, uint64) {
	e.t.Helper()
	db := e.a.Journal.DB()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{'s'}, UpperBound: []byte{'t'}})
	if err != nil {
		e.t.Fatal(err)
	}
	defer it.Close()
	var b strings.Builder
	for ok := it.First(); ok; ok = it.Next() {
		fmt.Fprintf(&b, "%q=%q\n", it.Key(), it.Value())
	}
	return b.String(), e.a.Journal.Last()
}

// Fixed bug (issue 11): a call was carried out first and its record written
// after; when the record failed the change stayed and no record existed. Now
// every mutating CloudTrail, Lake and Logs operation commits its change with
// its record, or neither: with the record failing, nothing changes; then the
// same call goes through and does change something (so the check can fail).
func TestNoChangeWithoutItsRecord(t *testing.T) {
	e := start(t)
	e.buckets("audit")
	ctx := context.Background()
	rk, _, _ := e.a.Keys.Lookup(rootID)
	p := server.Principal{Key: rk, Region: "us-east-1", SourceIP: "127.0.0.1", UserAgent: "failclosed-test"}
	faultErr := errors.New("disk on fire")

	var edsARN, auditStoreARN, channelARN, queryID string
	steps := []struct {
		service, op string
		body        func() string
		after       func(out map[string]any)
	}{
		{"cloudtrail", "CreateTrail", func() string { return `{"Name":"trail-one","S3BucketName":"audit"}` }, nil},
		{"cloudtrail", "UpdateTrail", func() string { return `{"Name":"trail-one","S3KeyPrefix":"p"}` }, nil},
		{"cloudtrail", "PutEventSelectors", func() string {
			return `{"TrailName":"trail-one","EventSelectors":[{"ReadWriteType":"WriteOnly","IncludeManagementEvents":true}]}`
		}, nil},
		{"cloudtrail", "PutInsightSelectors", func() string {
			return `{"TrailName":"trail-one","InsightSelectors":[{"InsightType":"ApiCallRateInsight"}]}`
		}, nil},
		{"cloudtrail", "AddTags", func() string {
			return `{"ResourceId":"arn:aws:cloudtrail:us-east-1:123456789012:trail/trail-one","TagsList":[{"Key":"k","Value":"v"}]}`
		}, nil},
		{"cloudtrail", "RemoveTags", func() string {
			return `{"ResourceId":"arn:aws:cloudtrail:us-east-1:123456789012:trail/trail-one","TagsList":[{"Key":"k"}]}`
		}, nil},
		{"cloudtrail", "StartLogging", func() string { return `{"Name":"trail-one"}` }, nil},
		{"cloudtrail", "StopLogging", func() string { return `{"Name":"trail-one"}` }, nil},
		{"cloudtrail", "CreateEventDataStore", func() string { return `{"Name":"store-one","TerminationProtectionEnabled":false}` },
			func(out map[string]any) { edsARN = out["EventDataStoreArn"].(string) }},
		{"cloudtrail", "UpdateEventDataStore", func() string { return `{"EventDataStore":"` + edsARN + `","RetentionPeriod":30}` }, nil},
		{"cloudtrail", "StopEventDataStoreIngestion", func() string { return `{"EventDataStore":"` + edsARN + `"}` }, nil},
		{"cloudtrail", "StartEventDataStoreIngestion", func() string { return `{"EventDataStore":"` + edsARN + `"}` }, nil},
		{"cloudtrail", "StartQuery", func() string {
			return `{"QueryStatement":"SELECT eventID FROM ` + edsARN[strings.LastIndex(edsARN, "/")+1:] + `"}`
		},
			func(out map[string]any) {
				queryID = out["QueryId"].(string)
				// Let the query finish: its own progress must not count as a later step's change.
				for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
					d, err := e.a.Handler.Invoke(ctx, p, "cloudtrail", "DescribeQuery", []byte(`{"QueryId":"`+queryID+`"}`))
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Contains(d, []byte(`"QUEUED"`)) && !bytes.Contains(d, []byte(`"RUNNING"`)) {
						return
					}
				}
				t.Fatal("the query did not finish")
			}},
		{"cloudtrail", "CreateEventDataStore", func() string {
			return `{"Name":"custom","TerminationProtectionEnabled":false,"AdvancedEventSelectors":[{"FieldSelectors":[{"Field":"eventCategory","Equals":["ActivityAuditLog"]}]}]}`
		}, func(out map[string]any) { auditStoreARN = out["EventDataStoreArn"].(string) }},
		{"cloudtrail", "CreateChannel", func() string {
			return `{"Name":"chan-one","Source":"Custom","Destinations":[{"Type":"EVENT_DATA_STORE","Location":"` + auditStoreARN + `"}]}`
		}, func(out map[string]any) { channelARN = out["ChannelArn"].(string) }},
		{"cloudtrail", "UpdateChannel", func() string { return `{"Channel":"` + channelARN + `","Name":"chan-two"}` }, nil},
		{"cloudtrail", "DeleteChannel", func() string { return `{"Channel":"` + channelARN + `"}` }, nil},
		{"cloudtrail", "DeleteEventDataStore", func() string { return `{"EventDataStore":"` + edsARN + `"}` }, nil},
		{"cloudtrail", "RestoreEventDataStore", func() string { return `{"EventDataStore":"` + edsARN + `"}` }, nil},
		{"cloudtrail", "DeleteTrail", func() string { return `{"Name":"trail-one"}` }, nil},

		{"logs", "CreateLogGroup", func() string { return `{"logGroupName":"g"}` }, nil},
		{"logs", "PutRetentionPolicy", func() string { return `{"logGroupName":"g","retentionInDays":7}` }, nil},
		{"logs", "DeleteRetentionPolicy", func() string { return `{"logGroupName":"g"}` }, nil},
		{"logs", "CreateLogStream", func() string { return `{"logGroupName":"g","logStreamName":"s"}` }, nil},
		{"logs", "PutMetricFilter", func() string {
			return `{"logGroupName":"g","filterName":"m","filterPattern":"ERROR","metricTransformations":[{"metricName":"E","metricNamespace":"N","metricValue":"1"}]}`
		}, nil},
		{"logs", "DeleteMetricFilter", func() string { return `{"logGroupName":"g","filterName":"m"}` }, nil},
		{"logs", "PutSubscriptionFilter", func() string {
			return `{"logGroupName":"g","filterName":"f","filterPattern":"","destinationArn":"http://127.0.0.1:9/hook"}`
		}, nil},
		{"logs", "DeleteSubscriptionFilter", func() string { return `{"logGroupName":"g","filterName":"f"}` }, nil},
		{"logs", "DeleteLogStream", func() string { return `{"logGroupName":"g","logStreamName":"s"}` }, nil},
		{"logs", "DeleteLogGroup", func() string { return `{"logGroupName":"g"}` }, nil},
	}
	for i, st := range steps {
		body := []byte(st.body())
		before, last := e.stateSnapshot()
		e.a.Handler.SetAuditFault(func(string) error { return faultErr })
		if _, err := e.a.Handler.Invoke(ctx, p, st.service, st.op, body); !errors.Is(err, faultErr) {
			t.Fatalf("step %d %s with its record failing: err = %v, want the record's error", i, st.op, err)
		}
		time.Sleep(20 * time.Millisecond) // what the call might have started (a query) has had time to write
		after, lastAfter := e.stateSnapshot()
		if after != before || lastAfter != last {
			t.Fatalf("step %d %s: its record failed but the state changed:\nbefore %s\nafter  %s", i, st.op, before, after)
		}
		e.a.Handler.SetAuditFault(nil)
		out, err := e.a.Handler.Invoke(ctx, p, st.service, st.op, body)
		if err != nil {
			t.Fatalf("step %d %s: %v", i, st.op, err)
		}
		if changed, lastNow := e.stateSnapshot(); changed == before || lastNow == last {
			t.Fatalf("step %d %s changed nothing (state changed: %v, journal grew: %v)", i, st.op, changed != before, lastNow != last)
		}
		if st.after != nil {
			var m map[string]any
			if err := json.Unmarshal(out, &m); err != nil {
				t.Fatal(err)
			}
			st.after(m)
		}
	}
	if queryID == "" {
		t.Fatal("no query was started")
	}
}

// Fixed bug (issue 11): a 386 KB PutEventSelectors made a record over the
// record limit; the call answered 500 and kept its change. Now the record
// keeps the call and marks the oversize member omitted.
func TestOversizeRequestIsRecordedOmitted(t *testing.T) {
	e := start(t)
	e.buckets("audit")
	ctx := context.Background()
	ct := e.ct(root, "us-east-1")
	if _, err := ct.CreateTrail(ctx, trailInput("big", "audit")); err != nil {
		t.Fatal(err)
	}
	var sels []string
	for i := 0; len(strings.Join(sels, ",")) < 386<<10; i++ {
		sels = append(sels, fmt.Sprintf(`{"Name":"s%d","FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},{"Field":"resources.ARN","StartsWith":["arn:aws:s3:::bucket-%06d-%s/"]}]}`, i, i, strings.Repeat("x", 200)))
	}
	body := []byte(`{"TrailName":"big","AdvancedEventSelectors":[` + strings.Join(sels, ",") + `]}`)
	code, resp := e.postTarget(root, "us-east-1", "CloudTrail_20131101.PutEventSelectors", body)
	// The model or AWS's selector limits may refuse it; either way the call is recorded and answered 400, never 500.
	if code >= 500 {
		t.Fatalf("PutEventSelectors of %d bytes: %d %s", len(body), code, resp)
	}
	rec := e.lastRecord("PutEventSelectors")
	if !bytes.Contains(rec, []byte(`"requestParameters":{"omitted":true}`)) {
		t.Fatalf("the record does not mark requestParameters omitted: %.300s", rec)
	}
}

// Fixed bug (issue 11): records signed for region ".." were accepted and made
// every multi-region trail retry region ".." forever; "Z_Z" created a folder.
func TestSigningRegionValidated(t *testing.T) {
	e := start(t)
	for _, region := range []string{"..", "Z_Z", "useast1", "us-east-1.", "US-EAST-1"} {
		code, body := e.post(root, region, "/v1/records", []byte(`{"Records":[{"eventTime":"2024-01-02T03:04:05Z","eventSource":"x.amazonaws.com","eventName":"X"}]}`))
		if code != 400 || !bytes.Contains(body, []byte("valid region")) {
			t.Errorf("region %q: %d %s", region, code, body)
		}
	}
	if code, body := e.post(root, "eu-central-2", "/v1/records", []byte(`{"Records":[{"eventTime":"2024-01-02T03:04:05Z","eventSource":"x.amazonaws.com","eventName":"X"}]}`)); code != 200 {
		t.Errorf("eu-central-2: %d %s", code, body)
	}
}

func trailInput(name, bucket string) *cloudtrail.CreateTrailInput {
	return &cloudtrail.CreateTrailInput{Name: aws.String(name), S3BucketName: aws.String(bucket)}
}

// postTarget sends a SigV4-signed CloudTrail JSON 1.1 call.
func (e *env) postTarget(k key, region, target string, body []byte) (int, []byte) {
	e.t.Helper()
	return e.signedPost(k, region, "/", target, body)
}

// lastRecord is the newest self-audit record of eventName, as LookupEvents returns it.
func (e *env) lastRecord(eventName string) []byte {
	e.t.Helper()
	ctx := context.Background()
	if err := e.a.Store.WaitApplied(ctx, e.a.Journal.Last()); err != nil {
		e.t.Fatal(err)
	}
	out, err := e.ct(root, "us-east-1").LookupEvents(ctx, &cloudtrail.LookupEventsInput{
		LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String(eventName)}},
		MaxResults:       aws.Int32(1)})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(out.Events) == 0 {
		e.t.Fatalf("no %s record", eventName)
	}
	return []byte(aws.ToString(out.Events[0].CloudTrailEvent))
}

func TestSignInRecorded(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	if _, err := e.a.Handler.Authenticate(rootID, "wrong"); err == nil {
		t.Fatal("a wrong secret authenticated")
	}
	if _, err := e.a.Handler.Authenticate("AKIANOSUCHKEY0000000", rootSecret); err == nil {
		t.Fatal("an unknown key authenticated")
	}
	k, err := e.a.Handler.Authenticate(rootID, rootSecret)
	if err != nil {
		t.Fatal(err)
	}
	p := server.Principal{Key: k, Region: "us-east-1", SourceIP: "192.0.2.1", UserAgent: "opentrail-console/1"}
	if err := e.a.Handler.RecordSignIn(ctx, p, rootID, true); err != nil {
		t.Fatal(err)
	}
	rec := e.lastRecord("ConsoleLogin")
	for _, want := range []string{`"eventSource":"signin.amazonaws.com"`, `"eventType":"AwsConsoleSignIn"`, `"ConsoleLogin":"Success"`, `"sourceIPAddress":"192.0.2.1"`} {
		if !bytes.Contains(rec, []byte(want)) {
			t.Errorf("sign-in record lacks %s: %s", want, rec)
		}
	}
	if err := e.a.Handler.RecordSignIn(ctx, server.Principal{Region: "us-east-1", SourceIP: "192.0.2.2"}, "AKIANOSUCHKEY0000000", false); err != nil {
		t.Fatal(err)
	}
	rec = e.lastRecord("ConsoleLogin")
	for _, want := range []string{`"ConsoleLogin":"Failure"`, `"errorMessage":"Failed authentication"`, `HIDDEN_DUE_TO_SECURITY_REASONS`} {
		if !bytes.Contains(rec, []byte(want)) {
			t.Errorf("failed sign-in record lacks %s: %s", want, rec)
		}
	}
}

// The console reads findings through Invoke, under the same role table as POST /v1/findings.
func TestInvokeListFindings(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	rk, _, _ := e.a.Keys.Lookup(rootID)
	out, err := e.a.Handler.Invoke(ctx, server.Principal{Key: rk, Region: "us-east-1"}, "opentrail", "ListFindings", []byte(`{}`))
	if err != nil || !bytes.Contains(out, []byte(`"Findings":[]`)) {
		t.Fatalf("ListFindings: %s %v", out, err)
	}
	w := e.newKey(rootAcct, "sender", "writer")
	wk, _, _ := e.a.Keys.Lookup(w.id)
	if _, err := e.a.Handler.Invoke(ctx, server.Principal{Key: wk, Region: "us-east-1"}, "opentrail", "ListFindings", []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("a writer listed findings: %v", err)
	}
}
