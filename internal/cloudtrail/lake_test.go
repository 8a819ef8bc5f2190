package cloudtrail

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/lakemodel"
	"github.com/opentrail/opentrail/internal/objstore"
)

// fakeEngine answers every query with rows "n" = 0..rows-1, after release is
// closed (or at once when it is nil); SQL selecting "bad" fails with a
// QueryError.
type fakeEngine struct {
	mu      sync.Mutex
	rows    int
	release chan struct{}
	dropped []string
	started chan string // receives each statement as it starts, if set
	hold    string      // with release set, only statements containing hold wait for it
}

func (f *fakeEngine) Query(ctx context.Context, account, sql string) (*lakemodel.Result, error) {
	f.mu.Lock()
	rel, rows, started := f.release, f.rows, f.started
	if f.hold != "" && !strings.Contains(sql, f.hold) {
		rel = nil
	}
	f.mu.Unlock()
	if started != nil {
		started <- sql
	}
	if rel != nil {
		select {
		case <-rel:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	// Fixed bug: a random store ID such as …cbad70 contains "bad" too; only the word fails.
	if strings.Contains(sql, "SELECT bad ") {
		return nil, &lakemodel.QueryError{Message: "mismatched input 'bad'", Line: 1, Column: 8}
	}
	res := &lakemodel.Result{Columns: []string{"n", "account"}, BytesScanned: 4096}
	for i := range rows {
		v := fmt.Sprint(i)
		acct := account
		res.Rows = append(res.Rows, []*string{&v, &acct})
	}
	return res, nil
}

func (f *fakeEngine) DropStore(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropped = append(f.dropped, id)
	return nil
}

func newLakeService(t *testing.T, dir string, eng Engine, o LakeOptions) (*Service, *testClock) {
	t.Helper()
	db, err := kv.Open(dir, kv.Options{CacheBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{t: t0}
	s := New(db, nil, nil, slog.New(slog.DiscardHandler), Options{Now: clock.Now, Lake: o, Buckets: objstore.NewFS(t.TempDir())})
	if eng != nil {
		if err := s.StartLake(context.Background(), eng); err != nil {
			t.Fatal(err)
		}
	}
	stop := sync.OnceFunc(func() { s.Close(); db.Close() })
	closers.Store(s, stop)
	t.Cleanup(stop)
	return s, clock
}

// closers stops a service made by newLakeService, once.
var closers sync.Map

func stopService(s *Service) {
	f, _ := closers.Load(s)
	f.(func())()
}

func createStore(t *testing.T, s *Service, c auth.Caller, name, extra string) (arn, id string) {
	t.Helper()
	out := ok(t, s, c, "CreateEventDataStore", fmt.Sprintf(`{"Name":%q%s}`, name, extra))
	arn = out["EventDataStoreArn"].(string)
	return arn, arn[strings.LastIndex(arn, "/")+1:]
}

// waitQuery polls DescribeQuery until the query is done.
func waitQuery(t *testing.T, s *Service, c auth.Caller, id string) map[string]any {
	t.Helper()
	for range 500 {
		out := ok(t, s, c, "DescribeQuery", fmt.Sprintf(`{"QueryId":%q}`, id))
		if st := out["QueryStatus"]; st != "QUEUED" && st != "RUNNING" {
			return out
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("query %s did not finish", id)
	return nil
}

func TestEventDataStoreLifecycle(t *testing.T) {
	s, clock := newLakeService(t, t.TempDir(), nil, LakeOptions{MaxEventDataStores: 3})
	out := ok(t, s, eastA, "CreateEventDataStore", `{"Name":"my-store","TagsList":[{"Key":"team","Value":"sec"}]}`)
	arn := out["EventDataStoreArn"].(string)
	if !strings.HasPrefix(arn, "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/") || len(arn) != len("arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/")+36 {
		t.Fatalf("ARN %s", arn)
	}
	sameJSON(t, "defaults", map[string]any{"Status": out["Status"], "Sel": out["AdvancedEventSelectors"], "MR": out["MultiRegionEnabled"],
		"RP": out["RetentionPeriod"], "TP": out["TerminationProtectionEnabled"], "BM": out["BillingMode"], "Tags": out["TagsList"]},
		`{"Status":"ENABLED","Sel":[{"Name":"Default management events","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]}],
		  "MR":true,"RP":366,"TP":true,"BM":"EXTENDABLE_RETENTION_PRICING","Tags":[{"Key":"team","Value":"sec"}]}`)
	id := arn[strings.LastIndex(arn, "/")+1:]

	fails(t, s, eastA, "CreateEventDataStore", `{"Name":"my-store"}`, "EventDataStoreAlreadyExistsException", "my-store")
	fails(t, s, eastA, "CreateEventDataStore", `{"Name":"x1","OrganizationEnabled":true}`, "OrganizationsNotInUseException", "")
	fails(t, s, eastA, "CreateEventDataStore", `{"Name":"x1","KmsKeyId":"alias/k"}`, "UnsupportedOperationException", "KMS")
	fails(t, s, eastA, "CreateEventDataStore", `{"Name":"x1","BillingMode":"FIXED_RETENTION_PRICING","RetentionPeriod":3000}`, "InvalidParameterException", "2557")
	fails(t, s, eastA, "CreateEventDataStore", `{"Name":"x1","AdvancedEventSelectors":[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Nope"]}]}]}`, "InvalidEventSelectorsException", "Nope")

	// Get by ARN and by ID; not from another Region or account.
	for _, ref := range []string{arn, id} {
		got := ok(t, s, eastA, "GetEventDataStore", fmt.Sprintf(`{"EventDataStore":%q}`, ref))
		if got["Name"] != "my-store" || got["FederationStatus"] != "DISABLED" {
			t.Fatalf("GetEventDataStore: %v", got)
		}
	}
	fails(t, s, westA, "GetEventDataStore", fmt.Sprintf(`{"EventDataStore":%q}`, id), "EventDataStoreNotFoundException", "")
	fails(t, s, eastB, "GetEventDataStore", fmt.Sprintf(`{"EventDataStore":%q}`, arn), "EventDataStoreNotFoundException", "")
	fails(t, s, eastA, "GetEventDataStore", `{"EventDataStore":"arn:aws:cloudtrail:us-east-1:123456789012:trail/x"}`, "EventDataStoreARNInvalidException", "")

	// Update.
	clock.Set(t0.Add(time.Hour))
	up := ok(t, s, eastA, "UpdateEventDataStore", fmt.Sprintf(`{"EventDataStore":%q,"Name":"renamed","RetentionPeriod":90,"MultiRegionEnabled":false}`, id))
	if up["Name"] != "renamed" || up["RetentionPeriod"] != 90.0 || up["MultiRegionEnabled"] != false || up["UpdatedTimestamp"] == up["CreatedTimestamp"] {
		t.Fatalf("UpdateEventDataStore: %v", up)
	}

	// Quota, list and paging.
	createStore(t, s, eastA, "second", "")
	createStore(t, s, eastA, "third", `,"StartIngestion":false`)
	fails(t, s, eastA, "CreateEventDataStore", `{"Name":"fourth"}`, "EventDataStoreMaxLimitExceededException", "")
	createStore(t, s, westA, "west", "") // other Region: own quota
	s.lake.edsPage = 2
	l1 := ok(t, s, eastA, "ListEventDataStores", `{}`)
	if len(l1["EventDataStores"].([]any)) != 2 || l1["NextToken"] == nil {
		t.Fatalf("page 1: %v", l1)
	}
	l2 := ok(t, s, eastA, "ListEventDataStores", fmt.Sprintf(`{"NextToken":%q}`, l1["NextToken"]))
	if len(l2["EventDataStores"].([]any)) != 1 || l2["NextToken"] != nil {
		t.Fatalf("page 2: %v", l2)
	}
	fails(t, s, eastA, "ListEventDataStores", `{"NextToken":"garbage-token"}`, "InvalidNextTokenException", "")

	// Ingestion.
	fails(t, s, eastA, "StartEventDataStoreIngestion", fmt.Sprintf(`{"EventDataStore":%q}`, id), "InvalidEventDataStoreStatusException", "ENABLED")
	ok(t, s, eastA, "StopEventDataStoreIngestion", fmt.Sprintf(`{"EventDataStore":%q}`, id))
	if st := ok(t, s, eastA, "GetEventDataStore", fmt.Sprintf(`{"EventDataStore":%q}`, id))["Status"]; st != "STOPPED_INGESTION" {
		t.Fatalf("status %v", st)
	}
	ok(t, s, eastA, "StartEventDataStoreIngestion", fmt.Sprintf(`{"EventDataStore":%q}`, id))

	// Delete: protected, then pending deletion, restore, delete again.
	fails(t, s, eastA, "DeleteEventDataStore", fmt.Sprintf(`{"EventDataStore":%q}`, id), "EventDataStoreTerminationProtectedException", "")
	ok(t, s, eastA, "UpdateEventDataStore", fmt.Sprintf(`{"EventDataStore":%q,"TerminationProtectionEnabled":false}`, id))
	fails(t, s, eastA, "RestoreEventDataStore", fmt.Sprintf(`{"EventDataStore":%q}`, id), "InvalidEventDataStoreStatusException", "")
	ok(t, s, eastA, "DeleteEventDataStore", fmt.Sprintf(`{"EventDataStore":%q}`, id))
	if st := ok(t, s, eastA, "GetEventDataStore", fmt.Sprintf(`{"EventDataStore":%q}`, id))["Status"]; st != "PENDING_DELETION" {
		t.Fatalf("status %v", st)
	}
	fails(t, s, eastA, "DeleteEventDataStore", fmt.Sprintf(`{"EventDataStore":%q}`, id), "InactiveEventDataStoreException", "")
	fails(t, s, eastA, "UpdateEventDataStore", fmt.Sprintf(`{"EventDataStore":%q,"RetentionPeriod":30}`, id), "InactiveEventDataStoreException", "")
	createStore(t, s, eastA, "fourth", "") // the deleted one no longer counts
	fails(t, s, eastA, "RestoreEventDataStore", fmt.Sprintf(`{"EventDataStore":%q}`, id), "EventDataStoreMaxLimitExceededException", "")

	defs := s.StoreDefs()
	if len(defs) != 5 {
		t.Fatalf("StoreDefs: %d", len(defs))
	}
	for _, d := range defs {
		if d.ID == id && (d.Ingesting || d.RetentionDays != 90 || d.MultiRegion) {
			t.Fatalf("StoreDef of the deleted store: %+v", d)
		}
	}
}

func TestEventDataStoreTags(t *testing.T) {
	s, _ := newLakeService(t, t.TempDir(), nil, LakeOptions{})
	arn, _ := createStore(t, s, eastA, "tagged", `,"TagsList":[{"Key":"a","Value":"1"}]`)
	ok(t, s, eastA, "AddTags", fmt.Sprintf(`{"ResourceId":%q,"TagsList":[{"Key":"b","Value":"2"}]}`, arn))
	ok(t, s, eastA, "RemoveTags", fmt.Sprintf(`{"ResourceId":%q,"TagsList":[{"Key":"a"}]}`, arn))
	got := ok(t, s, eastA, "ListTags", fmt.Sprintf(`{"ResourceIdList":[%q]}`, arn))
	sameJSON(t, "ListTags", got["ResourceTagList"], fmt.Sprintf(`[{"ResourceId":%q,"TagsList":[{"Key":"b","Value":"2"}]}]`, arn))
	fails(t, s, eastB, "ListTags", fmt.Sprintf(`{"ResourceIdList":[%q]}`, arn), "EventDataStoreNotFoundException", "")
}

func TestQueries(t *testing.T) {
	dir := t.TempDir()
	eng := &fakeEngine{rows: 2500}
	s, _ := newLakeService(t, dir, eng, LakeOptions{MaxConcurrentQueries: 2, QueryWorkers: 1})
	_, id := createStore(t, s, eastA, "q-store", "")

	start := func(c auth.Caller, sql string) string {
		t.Helper()
		return ok(t, s, c, "StartQuery", fmt.Sprintf(`{"QueryStatement":%q}`, sql))["QueryId"].(string)
	}
	qid := start(eastA, "SELECT eventName FROM "+id+" WHERE eventID = '00000000-0000-4000-8000-000000000000'")
	d := waitQuery(t, s, eastA, qid)
	if d["QueryStatus"] != "FINISHED" || d["QueryStatistics"].(map[string]any)["EventsMatched"] != 2500.0 {
		t.Fatalf("DescribeQuery: %v", d)
	}
	// Paging through the results: 2500 rows in pages of 1000 cross chunk boundaries.
	var all []any
	tok := ""
	for page := 0; ; page++ {
		body := fmt.Sprintf(`{"QueryId":%q,"MaxQueryResults":700}`, qid)
		if tok != "" {
			body = fmt.Sprintf(`{"QueryId":%q,"MaxQueryResults":700,"NextToken":%q}`, qid, tok)
		}
		r := ok(t, s, eastA, "GetQueryResults", body)
		rows := r["QueryResultRows"].([]any)
		st := r["QueryStatistics"].(map[string]any)
		if st["ResultsCount"] != float64(len(rows)) || st["TotalResultsCount"] != 2500.0 || st["BytesScanned"] != 4096.0 {
			t.Fatalf("stats %v", st)
		}
		all = append(all, rows...)
		if r["NextToken"] == nil {
			break
		}
		tok = r["NextToken"].(string)
	}
	if len(all) != 2500 {
		t.Fatalf("%d rows", len(all))
	}
	sameJSON(t, "row 1234", all[1234], `[{"n":"1234"},{"account":"123456789012"}]`)
	fails(t, s, eastA, "GetQueryResults", fmt.Sprintf(`{"QueryId":%q,"NextToken":%q}`, qid, "bm90LWEtdG9rZW4"), "InvalidNextTokenException", "")

	// Errors at StartQuery.
	fails(t, s, eastA, "StartQuery", `{"QueryStatement":"SELECT 1"}`, "InvalidQueryStatementException", "no event data store")
	fails(t, s, eastA, "StartQuery", `{"QueryStatement":"SELECT * FROM 11111111-2222-4333-8444-555555555555"}`, "EventDataStoreNotFoundException", "")
	fails(t, s, eastB, "StartQuery", fmt.Sprintf(`{"QueryStatement":"SELECT * FROM %s"}`, id), "EventDataStoreNotFoundException", "")
	fails(t, s, eastA, "StartQuery", `{"QueryAlias":"dash"}`, "UnsupportedOperationException", "")
	fails(t, s, eastA, "StartQuery", fmt.Sprintf(`{"QueryStatement":"SELECT * FROM %s","DeliveryS3Uri":"s3://no-such-bucket/x"}`, id), "S3BucketDoesNotExistException", "")

	// Bad SQL fails with the engine's message and position.
	bad := start(eastA, "SELECT bad FROM "+id)
	if d := waitQuery(t, s, eastA, bad); d["QueryStatus"] != "FAILED" || d["ErrorMessage"] != "line 1:8: mismatched input 'bad'" {
		t.Fatalf("bad query: %v", d)
	}
	fails(t, s, eastA, "CancelQuery", fmt.Sprintf(`{"QueryId":%q}`, bad), "InactiveQueryException", "FAILED")
	fails(t, s, eastB, "DescribeQuery", fmt.Sprintf(`{"QueryId":%q}`, bad), "QueryIdNotFoundException", "")

	// Concurrency: one worker, at most two queries in progress per account.
	eng.mu.Lock()
	eng.release = make(chan struct{})
	eng.mu.Unlock()
	running := start(eastA, "SELECT 1 FROM "+id)
	queued := start(eastA, "SELECT 2 FROM "+id)
	fails(t, s, eastA, "StartQuery", fmt.Sprintf(`{"QueryStatement":"SELECT 3 FROM %s"}`, id), "MaxConcurrentQueriesException", "2")
	if st := ok(t, s, eastA, "DescribeQuery", fmt.Sprintf(`{"QueryId":%q}`, queued))["QueryStatus"]; st != "QUEUED" {
		t.Fatalf("second query: %v", st)
	}
	r := ok(t, s, eastA, "GetQueryResults", fmt.Sprintf(`{"QueryId":%q}`, queued))
	if r["QueryStatus"] != "QUEUED" || len(r["QueryResultRows"].([]any)) != 0 {
		t.Fatalf("results of a queued query: %v", r)
	}
	c := ok(t, s, eastA, "CancelQuery", fmt.Sprintf(`{"QueryId":%q}`, queued))
	if c["QueryStatus"] != "CANCELLED" {
		t.Fatalf("CancelQuery: %v", c)
	}
	ok(t, s, eastA, "CancelQuery", fmt.Sprintf(`{"QueryId":%q}`, running))
	if d := waitQuery(t, s, eastA, running); d["QueryStatus"] != "CANCELLED" {
		t.Fatalf("cancelled running query: %v", d)
	}
	close(eng.release)

	// ListQueries: newest first, filtered by status, paged.
	s.lake.queryPage = 2
	l := ok(t, s, eastA, "ListQueries", fmt.Sprintf(`{"EventDataStore":%q}`, id))
	if len(l["Queries"].([]any)) != 2 || l["NextToken"] == nil {
		t.Fatalf("ListQueries: %v", l)
	}
	l = ok(t, s, eastA, "ListQueries", fmt.Sprintf(`{"EventDataStore":%q,"QueryStatus":"CANCELLED"}`, id))
	if len(l["Queries"].([]any)) != 2 {
		t.Fatalf("ListQueries CANCELLED: %v", l)
	}
	fails(t, s, eastA, "ListQueries", fmt.Sprintf(`{"EventDataStore":%q,"StartTime":20,"EndTime":10}`, id), "InvalidDateRangeException", "")

	// Restart: results survive; a query left RUNNING becomes FAILED.
	eng.mu.Lock()
	eng.release = make(chan struct{})
	eng.started = make(chan string, 1)
	eng.mu.Unlock()
	stuck := start(eastA, "SELECT 4 FROM "+id)
	<-eng.started
	stopService(s)
	s2, _ := newLakeService(t, dir, &fakeEngine{}, LakeOptions{})
	if d := ok(t, s2, eastA, "DescribeQuery", fmt.Sprintf(`{"QueryId":%q}`, stuck)); d["QueryStatus"] != "FAILED" {
		t.Fatalf("after restart: %v", d)
	}
	r = ok(t, s2, eastA, "GetQueryResults", fmt.Sprintf(`{"QueryId":%q,"MaxQueryResults":1}`, qid))
	sameJSON(t, "first row after restart", r["QueryResultRows"], `[[{"n":"0"},{"account":"123456789012"}]]`)
}

// TestQueriesFairAcrossAccounts: one account's heavy queries hold at most
// AccountWorkers of the workers, so another account's query is not queued
// behind them (issue 11 §4).
func TestQueriesFairAcrossAccounts(t *testing.T) {
	eng := &fakeEngine{rows: 1, release: make(chan struct{}), hold: "heavy"}
	s, _ := newLakeService(t, t.TempDir(), eng, LakeOptions{QueryWorkers: 2})
	_, idA := createStore(t, s, eastA, "store-a", "")
	_, idB := createStore(t, s, eastB, "store-b", "")
	start := func(c auth.Caller, sql string) string {
		t.Helper()
		return ok(t, s, c, "StartQuery", fmt.Sprintf(`{"QueryStatement":%q}`, sql))["QueryId"].(string)
	}
	status := func(c auth.Caller, id string) any {
		return ok(t, s, c, "DescribeQuery", fmt.Sprintf(`{"QueryId":%q}`, id))["QueryStatus"]
	}
	heavy1 := start(eastA, "SELECT heavy FROM "+idA)
	heavy2 := start(eastA, "SELECT heavy FROM "+idA)
	small := start(eastB, "SELECT count(*) FROM "+idB)
	if d := waitQuery(t, s, eastB, small); d["QueryStatus"] != "FINISHED" {
		t.Fatalf("B's query: %v", d)
	}
	got := []any{status(eastA, heavy1), status(eastA, heavy2)}
	if !(got[0] == "RUNNING" && got[1] == "QUEUED") {
		t.Fatalf("A's queries while B's ran: %v, want RUNNING and QUEUED (A holds one of the two workers)", got)
	}
	close(eng.release)
	for _, id := range []string{heavy1, heavy2} {
		if d := waitQuery(t, s, eastA, id); d["QueryStatus"] != "FINISHED" {
			t.Fatalf("A's query: %v", d)
		}
	}
}

func TestQueryRetention(t *testing.T) {
	eng := &fakeEngine{rows: 3}
	s, clock := newLakeService(t, t.TempDir(), eng, LakeOptions{})
	arn, id := createStore(t, s, eastA, "old", `,"TerminationProtectionEnabled":false`)
	qid := ok(t, s, eastA, "StartQuery", fmt.Sprintf(`{"QueryStatement":"SELECT * FROM %s"}`, arn))["QueryId"].(string)
	waitQuery(t, s, eastA, qid)
	ok(t, s, eastA, "DeleteEventDataStore", fmt.Sprintf(`{"EventDataStore":%q}`, id))
	fails(t, s, eastA, "GetQueryResults", fmt.Sprintf(`{"QueryId":%q}`, qid), "InactiveEventDataStoreException", "")
	fails(t, s, eastA, "StartQuery", fmt.Sprintf(`{"QueryStatement":"SELECT * FROM %s"}`, id), "InactiveEventDataStoreException", "")
	clock.Set(t0.Add(8 * 24 * time.Hour))
	s.lake.q.sweep()
	fails(t, s, eastA, "GetEventDataStore", fmt.Sprintf(`{"EventDataStore":%q}`, id), "EventDataStoreNotFoundException", "")
	if len(eng.dropped) != 1 || eng.dropped[0] != id {
		t.Fatalf("dropped %v", eng.dropped)
	}
	if _, closer, err := s.db.Get(kv.StateKey(kv.StateQuery, acctA, qid)); err != pebble.ErrNotFound {
		if closer != nil {
			closer.Close()
		}
		t.Fatalf("query %s not expired: %v", qid, err)
	}
}

func TestChannels(t *testing.T) {
	s, _ := newLakeService(t, t.TempDir(), nil, LakeOptions{})
	auditSel := `,"AdvancedEventSelectors":[{"Name":"audit","FieldSelectors":[{"Field":"eventCategory","Equals":["ActivityAuditLog"]}]}]`
	storeARN, storeID := createStore(t, s, eastA, "apps", auditSel)
	mgmtARN, _ := createStore(t, s, eastA, "mgmt", "")
	dest := func(arn string) string { return fmt.Sprintf(`[{"Type":"EVENT_DATA_STORE","Location":%q}]`, arn) }

	fails(t, s, eastA, "CreateChannel", fmt.Sprintf(`{"Name":"c","Source":"Okta","Destinations":%s}`, dest(storeARN)), "InvalidSourceException", "Custom")
	fails(t, s, eastA, "CreateChannel", fmt.Sprintf(`{"Name":"ch","Source":"Custom","Destinations":%s}`, dest(mgmtARN)), "InvalidEventDataStoreCategoryException", "ActivityAuditLog")
	fails(t, s, eastA, "CreateChannel", `{"Name":"ch","Source":"Custom","Destinations":[{"Type":"AWS_SERVICE","Location":"config"}]}`, "InvalidParameterException", "EVENT_DATA_STORE")
	fails(t, s, eastB, "CreateChannel", fmt.Sprintf(`{"Name":"ch","Source":"Custom","Destinations":%s}`, dest(storeARN)), "EventDataStoreNotFoundException", "")
	out := ok(t, s, eastA, "CreateChannel", fmt.Sprintf(`{"Name":"my-app","Source":"Custom","Destinations":%s,"Tags":[{"Key":"k","Value":"v"}]}`, dest(storeID)))
	chARN := out["ChannelArn"].(string)
	if !strings.HasPrefix(chARN, "arn:aws:cloudtrail:us-east-1:123456789012:channel/") {
		t.Fatalf("ChannelArn %s", chARN)
	}
	sameJSON(t, "destinations are ARNs", out["Destinations"], dest(storeARN))
	fails(t, s, eastA, "CreateChannel", fmt.Sprintf(`{"Name":"my-app","Source":"Custom","Destinations":%s}`, dest(storeARN)), "ChannelAlreadyExistsException", "")

	got := ok(t, s, eastA, "GetChannel", fmt.Sprintf(`{"Channel":%q}`, chARN))
	if got["Name"] != "my-app" || got["Source"] != "Custom" {
		t.Fatalf("GetChannel: %v", got)
	}
	fails(t, s, eastB, "GetChannel", fmt.Sprintf(`{"Channel":%q}`, chARN), "ChannelNotFoundException", "")
	fails(t, s, eastA, "GetChannel", `{"Channel":"arn:aws:cloudtrail:us-east-1:123456789012:trail/x"}`, "ChannelARNInvalidException", "")
	l := ok(t, s, eastA, "ListChannels", `{}`)
	sameJSON(t, "ListChannels", l["Channels"], fmt.Sprintf(`[{"ChannelArn":%q,"Name":"my-app"}]`, chARN))

	// The store knows its channel; it cannot be deleted while the channel feeds it.
	for _, d := range s.StoreDefs() {
		if d.ARN == storeARN && (len(d.ChannelARNs) != 1 || d.ChannelARNs[0] != chARN) {
			t.Fatalf("StoreDef %+v", d)
		}
	}
	ok(t, s, eastA, "UpdateEventDataStore", fmt.Sprintf(`{"EventDataStore":%q,"TerminationProtectionEnabled":false}`, storeARN))
	fails(t, s, eastA, "DeleteEventDataStore", fmt.Sprintf(`{"EventDataStore":%q}`, storeARN), "ChannelExistsForEDSException", chARN)
	fails(t, s, eastA, "StopEventDataStoreIngestion", fmt.Sprintf(`{"EventDataStore":%q}`, storeARN), "InvalidEventDataStoreCategoryException", "")

	up := ok(t, s, eastA, "UpdateChannel", fmt.Sprintf(`{"Channel":%q,"Name":"renamed"}`, chARN))
	if up["Name"] != "renamed" {
		t.Fatalf("UpdateChannel: %v", up)
	}
	if _, err := s.AuditChannel(eastB, chARN); err == nil || !strings.Contains(err.Error(), "ChannelInsufficientPermission") {
		t.Fatalf("AuditChannel from another account: %v", err)
	}
	if ch, err := s.AuditChannel(eastA, chARN[strings.LastIndex(chARN, "/")+1:]); err != nil || ch.ARN != chARN {
		t.Fatalf("AuditChannel by ID: %v %v", ch, err)
	}
	ok(t, s, eastA, "DeleteChannel", fmt.Sprintf(`{"Channel":%q}`, chARN))
	fails(t, s, eastA, "GetChannel", fmt.Sprintf(`{"Channel":%q}`, chARN), "ChannelNotFoundException", "")
	ok(t, s, eastA, "DeleteEventDataStore", fmt.Sprintf(`{"EventDataStore":%q}`, storeARN))
	if _, err := s.AuditChannel(eastA, chARN); err == nil || !strings.Contains(err.Error(), "ChannelNotFound") {
		t.Fatalf("AuditChannel of a deleted channel: %v", err)
	}
}

func TestLakeOpsRegistered(t *testing.T) {
	for op := range lakeOps {
		if !s0().Handles(op) {
			t.Errorf("%s is not registered", op)
		}
	}
}

func s0() *Service { return New(nil, nil, nil, slog.New(slog.DiscardHandler), Options{}) }

// TestChannelIngestionStatusPersists: GetChannel's IngestionStatus survives a
// restart and goes with the channel.
func TestChannelIngestionStatusPersists(t *testing.T) {
	dir := t.TempDir()
	s, _ := newLakeService(t, dir, nil, LakeOptions{})
	auditSel := `,"AdvancedEventSelectors":[{"Name":"audit","FieldSelectors":[{"Field":"eventCategory","Equals":["ActivityAuditLog"]}]}]`
	storeARN, _ := createStore(t, s, eastA, "apps", auditSel)
	out := ok(t, s, eastA, "CreateChannel", fmt.Sprintf(`{"Name":"app","Source":"Custom","Destinations":[{"Type":"EVENT_DATA_STORE","Location":%q}]}`, storeARN))
	chARN := out["ChannelArn"].(string)
	ch, err := s.AuditChannel(eastA, chARN)
	if err != nil {
		t.Fatal(err)
	}
	s.RecordIngestion(ch, t0, "e-1", "")
	s.RecordIngestion(ch, t0.Add(time.Minute), "", "InvalidChecksum")
	stopService(s)

	s, _ = newLakeService(t, dir, nil, LakeOptions{})
	got := ok(t, s, eastA, "GetChannel", fmt.Sprintf(`{"Channel":%q}`, chARN))
	st, _ := got["IngestionStatus"].(map[string]any)
	if st["LatestIngestionSuccessEventID"] != "e-1" || st["LatestIngestionErrorCode"] != "InvalidChecksum" ||
		st["LatestIngestionSuccessTime"] == nil || st["LatestIngestionAttemptTime"] == st["LatestIngestionSuccessTime"] {
		t.Fatalf("IngestionStatus after restart: %v", st)
	}
	ok(t, s, eastA, "DeleteChannel", fmt.Sprintf(`{"Channel":%q}`, chARN))
	var left ingestionStatus
	if found, _ := s.getState(kv.StateIngestion, ch.Account, chARN[strings.LastIndex(chARN, "/")+1:], &left); found {
		t.Fatal("the status outlived its channel")
	}
}
