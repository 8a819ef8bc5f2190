package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/opentrail/opentrail/internal/app"
	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/proxy"
	"github.com/opentrail/opentrail/internal/proxy/dynalitetest"
)

const (
	rootID     = "AKIATESTROOT00000001"
	rootSecret = "test-root-secret-0123456789abcdefghijkl"
	account    = "123456789012"
	region     = "us-east-1"
)

// trail is an OpenTrail node served over HTTP on a fixed address, so that it
// can be stopped and started again at the same URL.
type trail struct {
	t    testing.TB
	dir  string
	addr string
	mu   sync.Mutex // guards a against the proxy's resolver while stopping and starting
	a    *app.App
	srv  *http.Server
	done chan struct{}
}

func startTrail(t testing.TB) *trail {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := &trail{t: t, dir: t.TempDir(), addr: l.Addr().String()}
	tr.start(l)
	t.Cleanup(tr.stop)
	return tr
}

func (tr *trail) url() string { return "http://" + tr.addr }

func (tr *trail) start(l net.Listener) {
	tr.t.Helper()
	a, err := app.Open(context.Background(), app.Config{DataDir: tr.dir, RootKeyID: rootID, RootKey: rootSecret, CacheMiB: 8},
		slog.New(slog.DiscardHandler))
	if err != nil {
		tr.t.Fatal(err)
	}
	if l == nil {
		for i := 0; ; i++ {
			if l, err = net.Listen("tcp", tr.addr); err == nil {
				break
			}
			if i == 200 {
				tr.t.Fatalf("listen again on %s: %v", tr.addr, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	tr.mu.Lock()
	tr.a = a
	tr.mu.Unlock()
	tr.srv = &http.Server{Handler: a.Handler}
	tr.done = make(chan struct{})
	go func() { tr.srv.Serve(l); close(tr.done) }()
}

// stop takes the node down abruptly: connections are cut, nothing is drained.
func (tr *trail) stop() {
	if tr.srv == nil {
		return
	}
	tr.srv.Close()
	<-tr.done
	tr.mu.Lock()
	tr.a.Close()
	tr.srv, tr.a = nil, nil
	tr.mu.Unlock()
}

// lookup resolves a key while the node is up.
func (tr *trail) lookup(id string) (auth.Key, string, bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.a == nil {
		return auth.Key{}, "", false
	}
	return tr.a.Keys.Lookup(id)
}

// writerKey creates a writer key (for the proxy's sink) and a caller key.
func (tr *trail) key(user, role string) (string, string) {
	tr.t.Helper()
	k, s, err := tr.a.Keys.Create(account, user, role)
	if err != nil {
		tr.t.Fatal(err)
	}
	return k.AccessKeyID, s
}

// records returns the journal's records from eventSource source.
func (tr *trail) records(source string) []map[string]any {
	tr.t.Helper()
	var out []map[string]any
	_, err := tr.a.Journal.Scan(1, 0, func(_ uint64, v []byte) error {
		rec, err := event.Decode(v)
		if err != nil {
			return err
		}
		if rec.Meta.Source != source {
			return nil
		}
		var m map[string]any
		if err := json.Unmarshal(rec.Raw, &m); err != nil {
			return err
		}
		m["_raw"] = string(rec.Raw)
		out = append(out, m)
		return nil
	})
	if err != nil {
		tr.t.Fatal(err)
	}
	return out
}

// countingTransport counts the requests that reach the upstream.
type countingTransport struct {
	n  atomic.Int64
	rt http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

type rig struct {
	trail    *trail
	upstream *countingTransport
	proxy    *proxy.Proxy
	url      string
	ddb      *dynamodb.Client
	callerID string
}

type rigOpts struct {
	policy   string
	mutate   func(*proxy.Options)
	spoolDir string
}

func newRig(t *testing.T, ro rigOpts) *rig {
	t.Helper()
	dyn := dynalitetest.Start(t)
	tr := startTrail(t)
	wid, wsecret := tr.key("proxy-writer", "writer")
	cid, csecret := tr.key("alice", "writer")
	ct := &countingTransport{rt: http.DefaultTransport}
	o := proxy.Options{
		Upstream: dyn, Transport: ct,
		Sink:     proxy.NewRemoteSink(tr.url(), region, wid, wsecret, nil),
		SpoolDir: ro.spoolDir, SpoolMaxBytes: 64 << 20,
		Resolve:    proxy.KeyringResolver(tr.lookup),
		ListenAddr: "127.0.0.1:8000", Account: account, Region: region,
	}
	if o.SpoolDir == "" {
		o.SpoolDir = t.TempDir()
	}
	if ro.policy != "" {
		pol, err := proxy.ParsePolicy([]byte(ro.policy))
		if err != nil {
			t.Fatal(err)
		}
		o.Policy = pol
	}
	if ro.mutate != nil {
		ro.mutate(&o)
	}
	p, err := proxy.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ps := httptest.NewServer(p)
	t.Cleanup(func() { ps.Close(); p.Close() })
	return &rig{trail: tr, upstream: ct, proxy: p, url: ps.URL, ddb: ddbClient(ps.URL, cid, csecret), callerID: cid}
}

func ddbClient(endpoint, id, secret string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		BaseEndpoint: aws.String(endpoint), Region: region, RetryMaxAttempts: 1,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}, nil
		}),
	})
}

// requestID is the request ID the SDK saw, on success or failure.
func requestID(md middleware.Metadata, err error) string {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.ServiceRequestID()
	}
	id, _ := awsmiddleware.GetRequestIDMetadata(md)
	return id
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

// call is one call the test made and what its record must say.
type want struct {
	name, category, errorCode string
	readOnly                  bool
	tables                    []string
	reqID                     string
	params                    func(t *testing.T, p map[string]any)
}

func at(m any, path ...any) any {
	for _, k := range path {
		switch x := m.(type) {
		case map[string]any:
			m = x[k.(string)]
		case []any:
			i := k.(int)
			if i >= len(x) {
				return nil
			}
			m = x[i]
		default:
			return nil
		}
	}
	return m
}

func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if !bytes.Equal(gb, wb) {
		t.Errorf("%s = %s, want %s", what, gb, wb)
	}
}

// secrets never appear in any record.
var secrets = []string{"s3cr3t-value", "n3w-s3cr3t", "batch-s3cr3t", "partiql-s3cr3t", "query-s3cr3t"}

func TestDynamoDBEndToEnd(t *testing.T) {
	r := newRig(t, rigOpts{})
	ctx := context.Background()
	var wants []want
	record := func(w want, md middleware.Metadata, err error) {
		t.Helper()
		w.reqID = requestID(md, err)
		if w.reqID == "" {
			t.Fatalf("%s: the SDK saw no request ID (err %v)", w.name, err)
		}
		if got := apiCode(err); got != w.errorCode {
			t.Fatalf("%s: error code %q (%v), want %q", w.name, got, err, w.errorCode)
		}
		wants = append(wants, w)
	}
	mdOf := outputMetadata

	ct, err := r.ddb.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("Music"),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("Artist"), AttributeType: types.ScalarAttributeTypeS}, {AttributeName: aws.String("SongTitle"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("Artist"), KeyType: types.KeyTypeHash}, {AttributeName: aws.String("SongTitle"), KeyType: types.KeyTypeRange}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	record(want{name: "CreateTable", category: "Management", tables: []string{"Music"}, params: func(t *testing.T, p map[string]any) {
		eq(t, "tableName", p["tableName"], "Music")
		eq(t, "keySchema[0]", at(p, "keySchema", 0), map[string]any{"attributeName": "Artist", "keyType": "HASH"})
	}}, mdOf(ct), err)

	pi, err := r.ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("Music"),
		Item: map[string]types.AttributeValue{"Artist": s("Acme Band"), "SongTitle": s("Happy Day"), "Lyrics": s("s3cr3t-value")}})
	record(want{name: "PutItem", category: "Data", tables: []string{"Music"}, params: func(t *testing.T, p map[string]any) {
		eq(t, "item.Artist (key kept)", at(p, "item", "Artist"), map[string]any{"S": "Acme Band"})
		eq(t, "item.SongTitle (key kept)", at(p, "item", "SongTitle"), map[string]any{"S": "Happy Day"})
		eq(t, "item.Lyrics (redacted)", at(p, "item", "Lyrics"), "***")
	}}, mdOf(pi), err)

	gi, err := r.ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("Music"),
		Key: map[string]types.AttributeValue{"Artist": s("Acme Band"), "SongTitle": s("Happy Day")}, ProjectionExpression: aws.String("Lyrics")})
	record(want{name: "GetItem", category: "Data", readOnly: true, tables: []string{"Music"}, params: func(t *testing.T, p map[string]any) {
		eq(t, "key", p["key"], map[string]any{"Artist": map[string]any{"S": "Acme Band"}, "SongTitle": map[string]any{"S": "Happy Day"}})
		eq(t, "projectionExpression", p["projectionExpression"], "Lyrics")
	}}, mdOf(gi), err)
	if err == nil {
		if v, ok := gi.Item["Lyrics"].(*types.AttributeValueMemberS); !ok || v.Value != "s3cr3t-value" {
			t.Fatalf("GetItem through the proxy returned %v", gi.Item)
		}
	}

	ui, err := r.ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("Music"),
		Key:              map[string]types.AttributeValue{"Artist": s("Acme Band"), "SongTitle": s("Happy Day")},
		UpdateExpression: aws.String("SET #L = :v"), ExpressionAttributeNames: map[string]string{"#L": "Lyrics"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": s("n3w-s3cr3t")}})
	record(want{name: "UpdateItem", category: "Data", tables: []string{"Music"}, params: func(t *testing.T, p map[string]any) {
		eq(t, "updateExpression", p["updateExpression"], "SET #L = :v")
		eq(t, "expressionAttributeNames", p["expressionAttributeNames"], map[string]any{"#L": "Lyrics"})
		eq(t, "expressionAttributeValues", p["expressionAttributeValues"], map[string]any{":v": "***"})
		eq(t, "key.Artist", at(p, "key", "Artist"), map[string]any{"S": "Acme Band"})
	}}, mdOf(ui), err)

	q, err := r.ddb.Query(ctx, &dynamodb.QueryInput{TableName: aws.String("Music"),
		KeyConditionExpression:    aws.String("Artist = :a"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":a": s("query-s3cr3t")}})
	record(want{name: "Query", category: "Data", readOnly: true, tables: []string{"Music"}, params: func(t *testing.T, p map[string]any) {
		eq(t, "keyConditionExpression", p["keyConditionExpression"], "Artist = :a")
		eq(t, "expressionAttributeValues", p["expressionAttributeValues"], map[string]any{":a": "***"})
	}}, mdOf(q), err)

	sc, err := r.ddb.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String("Music"), Limit: aws.Int32(10)})
	record(want{name: "Scan", category: "Data", readOnly: true, tables: []string{"Music"}, params: func(t *testing.T, p map[string]any) {
		eq(t, "limit", p["limit"], 10)
	}}, mdOf(sc), err)

	bw, err := r.ddb.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{
		"Music": {
			{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{"Artist": s("B"), "SongTitle": s("T"), "Lyrics": s("batch-s3cr3t")}}},
			{DeleteRequest: &types.DeleteRequest{Key: map[string]types.AttributeValue{"Artist": s("Acme Band"), "SongTitle": s("Gone")}}},
		}}})
	record(want{name: "BatchWriteItem", category: "Data", tables: []string{"Music"}, params: func(t *testing.T, p map[string]any) {
		eq(t, "put item", at(p, "requestItems", "Music", 0, "putRequest", "item"),
			map[string]any{"Artist": map[string]any{"S": "B"}, "SongTitle": map[string]any{"S": "T"}, "Lyrics": "***"})
		eq(t, "delete key", at(p, "requestItems", "Music", 1, "deleteRequest", "key", "SongTitle"), map[string]any{"S": "Gone"})
	}}, mdOf(bw), err)

	// dynalite 4 does not implement TransactGetItems or PartiQL: the upstream's
	// UnknownOperationException must be on the record, as any upstream error.
	tg, err := r.ddb.TransactGetItems(ctx, &dynamodb.TransactGetItemsInput{TransactItems: []types.TransactGetItem{
		{Get: &types.Get{TableName: aws.String("Music"), Key: map[string]types.AttributeValue{"Artist": s("B"), "SongTitle": s("T")}}}}})
	record(want{name: "TransactGetItems", category: "Data", readOnly: true, tables: []string{"Music"}, errorCode: "UnknownOperationException",
		params: func(t *testing.T, p map[string]any) {
			eq(t, "get key", at(p, "transactItems", 0, "get", "key", "Artist"), map[string]any{"S": "B"})
		}}, mdOf(tg), err)

	es, err := r.ddb.ExecuteStatement(ctx, &dynamodb.ExecuteStatementInput{
		Statement:  aws.String(`SELECT * FROM "Music" WHERE Artist = ?`),
		Parameters: []types.AttributeValue{s("partiql-s3cr3t")}})
	record(want{name: "ExecuteStatement", category: "Data", tables: []string{"Music"}, errorCode: "UnknownOperationException",
		params: func(t *testing.T, p map[string]any) {
			eq(t, "statement", p["statement"], `SELECT * FROM "Music" WHERE Artist = ?`)
			eq(t, "parameters", p["parameters"], []any{"***"})
		}}, mdOf(es), err)

	nf, err := r.ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("NoSuchTable"),
		Key: map[string]types.AttributeValue{"id": s("x")}})
	record(want{name: "GetItem", category: "Data", readOnly: true, tables: []string{"NoSuchTable"}, errorCode: "ResourceNotFoundException"}, mdOf(nf), err)

	dt, err := r.ddb.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String("Music")})
	record(want{name: "DeleteTable", category: "Management", tables: []string{"Music"}}, mdOf(dt), err)

	recs := r.trail.records("dynamodb.amazonaws.com")
	if len(recs) != len(wants) {
		t.Fatalf("%d records for %d calls", len(recs), len(wants))
	}
	byReq := map[string]map[string]any{}
	for _, rec := range recs {
		id, _ := rec["requestID"].(string)
		if byReq[id] != nil {
			t.Fatalf("two records with requestID %s", id)
		}
		byReq[id] = rec
		for _, sec := range secrets {
			if strings.Contains(rec["_raw"].(string), sec) {
				t.Errorf("record %s carries the value %q: %s", rec["eventName"], sec, rec["_raw"])
			}
		}
	}
	for _, w := range wants {
		t.Run(w.name+"/"+w.errorCode, func(t *testing.T) {
			rec := byReq[w.reqID]
			if rec == nil {
				t.Fatalf("no record with requestID %s", w.reqID)
			}
			eq(t, "eventName", rec["eventName"], w.name)
			eq(t, "eventSource", rec["eventSource"], "dynamodb.amazonaws.com")
			eq(t, "eventCategory", rec["eventCategory"], w.category)
			eq(t, "managementEvent", rec["managementEvent"], w.category == "Management")
			eq(t, "readOnly", rec["readOnly"], w.readOnly)
			eq(t, "eventType", rec["eventType"], "AwsApiCall")
			eq(t, "eventVersion", rec["eventVersion"], "1.11")
			eq(t, "awsRegion", rec["awsRegion"], region)
			eq(t, "recipientAccountId", rec["recipientAccountId"], account)
			eq(t, "sourceIPAddress", rec["sourceIPAddress"], "127.0.0.1")
			eq(t, "vpcEndpointId", rec["vpcEndpointId"], proxy.EndpointID("127.0.0.1:8000"))
			eq(t, "vpcEndpointAccountId", rec["vpcEndpointAccountId"], account)
			eq(t, "userIdentity.type", at(rec, "userIdentity", "type"), "IAMUser")
			eq(t, "userIdentity.arn", at(rec, "userIdentity", "arn"), "arn:aws:iam::"+account+":user/alice")
			eq(t, "userIdentity.accessKeyId", at(rec, "userIdentity", "accessKeyId"), r.callerID)
			if ua, _ := rec["userAgent"].(string); !strings.Contains(ua, "aws-sdk-go-v2") {
				t.Errorf("userAgent = %q", ua)
			}
			if w.errorCode != "" {
				eq(t, "errorCode", rec["errorCode"], w.errorCode)
			} else if rec["errorCode"] != nil {
				t.Errorf("errorCode = %v on a successful call", rec["errorCode"])
			}
			var res []any
			for _, tb := range w.tables {
				res = append(res, map[string]any{"accountId": account, "type": "AWS::DynamoDB::Table",
					"ARN": "arn:aws:dynamodb:" + region + ":" + account + ":table/" + tb})
			}
			eq(t, "resources", rec["resources"], res)
			eq(t, "responseElements", rec["responseElements"], nil)
			if w.params != nil {
				p, _ := rec["requestParameters"].(map[string]any)
				w.params(t, p)
			}
		})
	}
}

// outputMetadata digs ResultMetadata out of any SDK output (nil on failure).
func outputMetadata(out any) middleware.Metadata {
	v := reflect.ValueOf(out)
	if !v.IsValid() || v.IsNil() {
		return middleware.Metadata{}
	}
	return v.Elem().FieldByName("ResultMetadata").Interface().(middleware.Metadata)
}

// headerTransport sets a request header after the SDK signed the request
// (SigV4 leaves User-Agent out of the signature).
type headerTransport struct{ key, value string }

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.key, h.value)
	return http.DefaultTransport.RoundTrip(r)
}

// A client's User-Agent and an upstream's error message are cut in the record
// (on a rune boundary), so that a record's size is known before the call is
// forwarded.
func TestRecordCaps(t *testing.T) {
	r := newRig(t, rigOpts{})
	ua := "a" + strings.Repeat("é", 2000) // two bytes a rune, cut inside one
	c := dynamodb.New(dynamodb.Options{
		BaseEndpoint: aws.String(r.url), Region: region, RetryMaxAttempts: 1,
		Credentials: r.ddb.Options().Credentials, HTTPClient: &http.Client{Transport: headerTransport{"User-Agent", ua}},
	})
	createMusic(t, r.ddb)
	long := strings.Repeat("x", 3000) // dynalite quotes the key it refuses
	out, err := c.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String("Music"),
		ExpressionAttributeNames: map[string]string{long: "Artist"}, ProjectionExpression: aws.String("Artist")})
	if apiCode(err) != "ValidationException" {
		t.Fatalf("Scan with a 3000-byte invalid name key: %v, want ValidationException", err)
	}
	if !strings.Contains(err.Error(), long[:2100]) {
		t.Fatalf("the upstream's message does not quote the name: %v", err)
	}
	reqID := requestID(outputMetadata(out), err)
	var rec map[string]any
	for _, x := range r.trail.records("dynamodb.amazonaws.com") {
		if x["requestID"] == reqID {
			rec = x
		}
	}
	if rec == nil {
		t.Fatal("no record of the call")
	}
	got, _ := rec["userAgent"].(string)
	if len(got) != 1023 || !strings.HasPrefix(ua, got) {
		t.Errorf("userAgent kept %d bytes, want the first 1023 (1024 cut back to a rune boundary)", len(got))
	}
	msg, _ := rec["errorMessage"].(string)
	if len(msg) != 2048 || !strings.Contains(err.Error(), msg) {
		t.Errorf("errorMessage kept %d bytes, want the first 2048 of the upstream's", len(msg))
	}
}
