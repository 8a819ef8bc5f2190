package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/opentrail/opentrail/internal/fixture"
)

// seedRecords are the records of testdata/fixtures/seed-records.json.
func seedRecords(t *testing.T) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixture.Dir(), "seed-records.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Records []json.RawMessage }
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, len(f.Records))
	for i, r := range f.Records {
		out[i] = r
	}
	return out
}

// runQuery starts sql and waits until it is done.
func runQuery(t *testing.T, ct *cloudtrail.Client, sql string) *cloudtrail.DescribeQueryOutput {
	t.Helper()
	ctx := context.Background()
	q, err := ct.StartQuery(ctx, &cloudtrail.StartQueryInput{QueryStatement: aws.String(sql)})
	if err != nil {
		t.Fatalf("StartQuery %s: %v", sql, err)
	}
	for range 1000 {
		d, err := ct.DescribeQuery(ctx, &cloudtrail.DescribeQueryInput{QueryId: q.QueryId})
		if err != nil {
			t.Fatal(err)
		}
		if d.QueryStatus != types.QueryStatusQueued && d.QueryStatus != types.QueryStatusRunning {
			return d
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("query %s did not finish", aws.ToString(q.QueryId))
	return nil
}

// allRows pages through a query's results, pageSize rows at a time.
func allRows(t *testing.T, ct *cloudtrail.Client, id string, pageSize int32) [][]map[string]string {
	t.Helper()
	var out [][]map[string]string
	var next *string
	for {
		in := &cloudtrail.GetQueryResultsInput{QueryId: aws.String(id), NextToken: next}
		if pageSize > 0 {
			in.MaxQueryResults = aws.Int32(pageSize)
		}
		r, err := ct.GetQueryResults(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if r.QueryStatus != types.QueryStatusFinished || int(aws.ToInt32(r.QueryStatistics.ResultsCount)) != len(r.QueryResultRows) {
			t.Fatalf("GetQueryResults: %s %+v", r.QueryStatus, r.QueryStatistics)
		}
		out = append(out, r.QueryResultRows...)
		if next = r.NextToken; next == nil {
			return out
		}
	}
}

func (e *env) waitLake() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.a.Lake.WaitApplied(ctx, e.a.Journal.Last()); err != nil {
		e.t.Fatalf("lake did not catch up: %v", err)
	}
}

// TestLakeSDK drives the event data store and query operations through
// aws-sdk-go-v2 and the real engine: the seed records go in through ingest and
// the Athena query of seed 000 runs unchanged, with the store ID as table name.
func TestLakeSDK(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	ct := e.ct(root, "us-east-1")
	mustCode := func(want string, err error) {
		t.Helper()
		if got := apiCode(err); got != want {
			t.Fatalf("got %q (%v), want %s", got, err, want)
		}
	}

	created, err := ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("lambda-data"),
		RetentionPeriod: aws.Int32(3653),
		AdvancedEventSelectors: []types.AdvancedEventSelector{{Name: aws.String("lambda"), FieldSelectors: []types.AdvancedFieldSelector{
			{Field: aws.String("eventCategory"), Equals: []string{"Data"}},
			{Field: aws.String("resources.type"), Equals: []string{"AWS::Lambda::Function"}}}}},
		TagsList: []types.Tag{{Key: aws.String("team"), Value: aws.String("sec")}}})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(created.EventDataStoreArn)
	id := arn[strings.LastIndex(arn, "/")+1:]
	if created.Status != types.EventDataStoreStatusEnabled || !aws.ToBool(created.MultiRegionEnabled) || !aws.ToBool(created.TerminationProtectionEnabled) ||
		created.CreatedTimestamp == nil || len(created.TagsList) != 1 {
		t.Fatalf("CreateEventDataStore: %+v", created)
	}
	mgmt, err := ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("management"), TerminationProtectionEnabled: aws.Bool(false)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("lambda-data")})
	mustCode("EventDataStoreAlreadyExistsException", err)
	_, err = ct.CreateEventDataStore(ctx, &cloudtrail.CreateEventDataStoreInput{Name: aws.String("x"), RetentionPeriod: aws.Int32(3)})
	mustCode("InvalidParameterException", err)

	got, err := ct.GetEventDataStore(ctx, &cloudtrail.GetEventDataStoreInput{EventDataStore: aws.String(id)})
	if err != nil || aws.ToString(got.Name) != "lambda-data" || aws.ToInt32(got.RetentionPeriod) != 3653 || len(got.AdvancedEventSelectors) != 1 {
		t.Fatalf("GetEventDataStore: %v %+v", err, got)
	}
	list, err := ct.ListEventDataStores(ctx, &cloudtrail.ListEventDataStoresInput{MaxResults: aws.Int32(1)})
	if err != nil || len(list.EventDataStores) != 1 || list.NextToken == nil {
		t.Fatalf("ListEventDataStores: %v %+v", err, list)
	}
	if _, err := ct.StopEventDataStoreIngestion(ctx, &cloudtrail.StopEventDataStoreIngestionInput{EventDataStore: mgmt.EventDataStoreArn}); err != nil {
		t.Fatal(err)
	}
	_, err = ct.StopEventDataStoreIngestion(ctx, &cloudtrail.StopEventDataStoreIngestionInput{EventDataStore: mgmt.EventDataStoreArn})
	mustCode("InvalidEventDataStoreStatusException", err)
	if _, err := ct.StartEventDataStoreIngestion(ctx, &cloudtrail.StartEventDataStoreIngestionInput{EventDataStore: mgmt.EventDataStoreArn}); err != nil {
		t.Fatal(err)
	}
	up, err := ct.UpdateEventDataStore(ctx, &cloudtrail.UpdateEventDataStoreInput{EventDataStore: aws.String(arn), MultiRegionEnabled: aws.Bool(true)})
	if err != nil || aws.ToString(up.Name) != "lambda-data" {
		t.Fatalf("UpdateEventDataStore: %v", err)
	}
	_, err = ct.DeleteEventDataStore(ctx, &cloudtrail.DeleteEventDataStoreInput{EventDataStore: aws.String(arn)})
	mustCode("EventDataStoreTerminationProtectedException", err)
	tags, err := ct.ListTags(ctx, &cloudtrail.ListTagsInput{ResourceIdList: []string{arn}})
	if err != nil || len(tags.ResourceTagList) != 1 || len(tags.ResourceTagList[0].TagsList) != 1 {
		t.Fatalf("ListTags: %v %+v", err, tags)
	}

	// Ingest the seed records; the Lambda Invoke data event lands in lambda-data.
	e.ingest(root, "us-east-1", seedRecords(t)...)
	e.waitLake()

	seed := `SELECT
  json_extract(additionaleventdata, '$.customerEniId') eniId,
	json_extract(requestParameters, '$.functionName') functionName,
	COUNT(*) cnt
FROM
  ` + id + `
WHERE
  json_extract(additionaleventdata, '$.customerEniId') IS NOT NULL
GROUP BY
  json_extract(requestParameters, '$.functionName'),
	json_extract(additionaleventdata, '$.customerEniId')`
	d := runQuery(t, ct, seed)
	if d.QueryStatus != types.QueryStatusFinished || aws.ToString(d.QueryString) != seed || d.QueryStatistics.CreationTime == nil {
		t.Fatalf("seed query: %s %s", d.QueryStatus, aws.ToString(d.ErrorMessage))
	}
	rows := allRows(t, ct, aws.ToString(d.QueryId), 0)
	if len(rows) != 1 || len(rows[0]) != 3 || !strings.Contains(rows[0][0]["eniId"], "eni-045d450a2100243b1") ||
		!strings.Contains(rows[0][1]["functionName"], "vpc-lambda-1") || rows[0][2]["cnt"] != "1" {
		t.Fatalf("seed query rows: %v", rows)
	}

	// Paging, one row at a time, by the store's ARN.
	d = runQuery(t, ct, fmt.Sprintf("SELECT eventID, eventName FROM %s UNION ALL SELECT eventID, eventName FROM %s", arn, arn))
	if d.QueryStatus != types.QueryStatusFinished {
		t.Fatalf("union: %s %s", d.QueryStatus, aws.ToString(d.ErrorMessage))
	}
	if st := d.QueryStatistics; aws.ToInt64(st.EventsScanned) != 1 || aws.ToInt64(st.BytesScanned) == 0 || aws.ToInt64(st.EventsMatched) != 2 {
		t.Fatalf("union statistics: scanned %d events, %d bytes; matched %d", aws.ToInt64(st.EventsScanned), aws.ToInt64(st.BytesScanned), aws.ToInt64(st.EventsMatched))
	}
	if rows := allRows(t, ct, aws.ToString(d.QueryId), 1); len(rows) != 2 || rows[0][1]["eventName"] != "Invoke" {
		t.Fatalf("paged rows: %v", rows)
	}
	_, err = ct.CancelQuery(ctx, &cloudtrail.CancelQueryInput{QueryId: d.QueryId})
	mustCode("InactiveQueryException", err)
	lq, err := ct.ListQueries(ctx, &cloudtrail.ListQueriesInput{EventDataStore: aws.String(id), QueryStatus: types.QueryStatusFinished})
	if err != nil || len(lq.Queries) != 2 || aws.ToString(lq.Queries[0].QueryId) != aws.ToString(d.QueryId) {
		t.Fatalf("ListQueries: %v %+v", err, lq)
	}

	// Statements that do not parse or are not allowed: InvalidQueryStatementException
	// at StartQuery with line and column, also when the mistake hides the store
	// (issue 12: "FRM eds" said "names no event data store").
	for sql, pos := range map[string]string{
		"SELECT FROM WHERE " + id:                      "line 1:",
		"SELECT count(*)\nFRM " + id:                   "line 2:",
		"SELECT count(*) FRM eds":                      "line 1:",
		"SELECT count(* FROM " + id:                    "line 1:",
		"SELECT current_setting('threads') FROM " + id: "line 1:",
		"SELECT eventname FROM " + id + "; SELECT 1":   "line 1:",
	} {
		_, err = ct.StartQuery(ctx, &cloudtrail.StartQueryInput{QueryStatement: aws.String(sql)})
		mustCode("InvalidQueryStatementException", err)
		if !strings.Contains(err.Error(), pos) || strings.Contains(err.Error(), "names no event data store") {
			t.Errorf("StartQuery %q: %v, want a message with %q", sql, err, pos)
		}
	}
	_, err = ct.StartQuery(ctx, &cloudtrail.StartQueryInput{QueryStatement: aws.String("SELECT 1")})
	mustCode("InvalidQueryStatementException", err)
	_, err = ct.GetQueryResults(ctx, &cloudtrail.GetQueryResultsInput{QueryId: aws.String("00000000-0000-4000-8000-000000000000")})
	mustCode("QueryIdNotFoundException", err)

	// A reader key (an auditor) may run queries, but not change stores.
	reader := e.ct(e.newKey(rootAcct, "auditor", "reader"), "us-east-1")
	if d := runQuery(t, reader, "SELECT count(*) FROM "+id); d.QueryStatus != types.QueryStatusFinished {
		t.Fatalf("reader's query: %s %s", d.QueryStatus, aws.ToString(d.ErrorMessage))
	}
	_, err = reader.UpdateEventDataStore(ctx, &cloudtrail.UpdateEventDataStoreInput{EventDataStore: aws.String(id), RetentionPeriod: aws.Int32(30)})
	mustCode("AccessDeniedException", err)

	// Account isolation: another account sees neither the store nor its queries.
	other := e.ct(e.newKey("222222222222", "bob", "admin"), "us-east-1")
	_, err = other.GetEventDataStore(ctx, &cloudtrail.GetEventDataStoreInput{EventDataStore: aws.String(arn)})
	mustCode("EventDataStoreNotFoundException", err)
	_, err = other.StartQuery(ctx, &cloudtrail.StartQueryInput{QueryStatement: aws.String("SELECT * FROM " + id)})
	mustCode("EventDataStoreNotFoundException", err)
	_, err = other.DescribeQuery(ctx, &cloudtrail.DescribeQueryInput{QueryId: d.QueryId})
	mustCode("QueryIdNotFoundException", err)
	if l, err := other.ListEventDataStores(ctx, &cloudtrail.ListEventDataStoresInput{}); err != nil || len(l.EventDataStores) != 0 {
		t.Fatalf("other account's list: %v %+v", err, l)
	}

	// Channel events are queryable.
	storeARN, chARN := auditChannel(t, ct, "apps")
	writer := e.newKey(rootAcct, "app", "writer")
	if status, out := e.putAuditEvents(writer, "us-east-1", chARN, auditBody(
		map[string]any{"id": "a", "eventData": auditEventData("u-a", "Login")},
		map[string]any{"id": "b", "eventData": auditEventData("u-b", "Logout")})); status != 200 || len(out["successful"].([]any)) != 2 {
		t.Fatalf("PutAuditEvents: %d %v", status, out)
	}
	e.waitLake()
	d = runQuery(t, ct, "SELECT eventCategory, count(*) AS n FROM "+storeARN+" GROUP BY eventCategory")
	if rows := allRows(t, ct, aws.ToString(d.QueryId), 0); d.QueryStatus != types.QueryStatusFinished || len(rows) != 1 ||
		rows[0][0]["eventCategory"] != "ActivityAuditLog" || rows[0][1]["n"] != "2" {
		t.Fatalf("channel events: %s %s %v", d.QueryStatus, aws.ToString(d.ErrorMessage), rows)
	}

	// Deleting a store: pending deletion, no queries, restorable.
	if _, err := ct.DeleteEventDataStore(ctx, &cloudtrail.DeleteEventDataStoreInput{EventDataStore: mgmt.EventDataStoreArn}); err != nil {
		t.Fatal(err)
	}
	_, err = ct.StartQuery(ctx, &cloudtrail.StartQueryInput{QueryStatement: aws.String("SELECT * FROM " + aws.ToString(mgmt.EventDataStoreArn))})
	mustCode("InactiveEventDataStoreException", err)
	rs, err := ct.RestoreEventDataStore(ctx, &cloudtrail.RestoreEventDataStoreInput{EventDataStore: mgmt.EventDataStoreArn})
	if err != nil || rs.Status != types.EventDataStoreStatusEnabled {
		t.Fatalf("RestoreEventDataStore: %v %+v", err, rs)
	}
	// Our Lake calls are management events, as on AWS.
	e.a.Store.WaitApplied(ctx, e.a.Journal.Last())
	ev, err := ct.LookupEvents(ctx, &cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{
		{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String("StartQuery")}}})
	if err != nil || len(ev.Events) == 0 || !bytes.Contains([]byte(aws.ToString(ev.Events[0].CloudTrailEvent)), []byte(`"queryStatement"`)) {
		t.Fatalf("StartQuery not recorded: %v", err)
	}
}

// TestLakeAWSCLI: create-event-data-store, start-query and get-query-results
// through the real AWS CLI.
func TestLakeAWSCLI(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("the AWS CLI is not installed")
	}
	e := start(t)
	_, run := e.awsCLI(t)
	st := run("cloudtrail", "create-event-data-store", "--name", "cli-store", "--retention-period", "3653")
	arn, _ := st["EventDataStoreArn"].(string)
	id := arn[strings.LastIndex(arn, "/")+1:]
	e.ingest(root, "us-east-1", []byte(`{"eventTime":"2024-02-03T04:05:06Z","eventName":"RotateKey","eventSource":"vault.example.com"}`))
	e.waitLake()
	q := run("cloudtrail", "start-query", "--query-statement", "SELECT eventName FROM "+id+" WHERE eventSource = 'vault.example.com'")
	qid, _ := q["QueryId"].(string)
	for range 500 {
		r := run("cloudtrail", "get-query-results", "--query-id", qid)
		if r["QueryStatus"] == "FINISHED" {
			rows, _ := r["QueryResultRows"].([]any)
			if len(rows) != 1 || fmt.Sprint(rows[0]) != "[map[eventName:RotateKey]]" {
				t.Fatalf("get-query-results: %v", r)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("query did not finish")
}
