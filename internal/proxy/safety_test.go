package proxy_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/opentrail/opentrail/internal/proxy"
	"github.com/opentrail/opentrail/internal/selector"
)

func createMusic(t *testing.T, c *dynamodb.Client) {
	t.Helper()
	_, err := c.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName:            aws.String("Music"),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("Artist"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("Artist"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
}

const denyScanPolicy = `{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "tables", "Effect": "Allow", "Principal": "*", "Action": "dynamodb:*",
     "Resource": ["arn:aws:dynamodb:us-east-1:123456789012:table/Mus?c", "*"]},
    {"Sid": "noscan", "Effect": "Deny", "Principal": {"AWS": ["arn:aws:iam::123456789012:user/*"]},
     "Action": ["dynamodb:Scan", "dynamodb:Batch*"], "Resource": "arn:aws:dynamodb:*:*:table/*"}
  ]
}`

func TestDeniedCallIsRecordedAndNotForwarded(t *testing.T) {
	r := newRig(t, rigOpts{policy: denyScanPolicy})
	createMusic(t, r.ddb)
	before := r.upstream.n.Load()
	out, err := r.ddb.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String("Music")})
	if apiCode(err) != "AccessDeniedException" {
		t.Fatalf("Scan: %v, want AccessDeniedException", err)
	}
	want := "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: dynamodb:Scan on resource: " +
		"arn:aws:dynamodb:us-east-1:123456789012:table/Music with an explicit deny in a VPC endpoint policy"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("message: %v\nwant it to contain %q", err, want)
	}
	if n := r.upstream.n.Load(); n != before {
		t.Fatalf("the upstream saw %d requests for a denied call", n-before)
	}
	reqID := requestID(outputMetadata(out), err)
	var denied map[string]any
	for _, rec := range r.trail.records("dynamodb.amazonaws.com") {
		if rec["requestID"] == reqID {
			denied = rec
		}
	}
	if denied == nil {
		t.Fatal("no record of the denied call")
	}
	eq(t, "eventCategory", denied["eventCategory"], "NetworkActivity")
	eq(t, "eventType", denied["eventType"], "AwsVpceEvent")
	eq(t, "errorCode", denied["errorCode"], "VpceAccessDenied")
	eq(t, "errorMessage", denied["errorMessage"], "The request was denied due to a VPC endpoint policy")
	eq(t, "managementEvent", denied["managementEvent"], false)
	eq(t, "eventName", denied["eventName"], "Scan")
	eq(t, "vpcEndpointId", denied["vpcEndpointId"], proxy.EndpointID("127.0.0.1:8000"))

	// The console's "network activity access denied events" template selects it.
	name := "denied"
	sels, err := selector.NormalizeAdvanced([]selector.AdvancedEventSelector{{Name: &name, FieldSelectors: []selector.AdvancedFieldSelector{
		{Field: "eventCategory", Equals: []string{"NetworkActivity"}},
		{Field: "eventSource", Equals: []string{"dynamodb.amazonaws.com"}},
		{Field: "errorCode", Equals: []string{"VpceAccessDenied"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := selector.Compile(nil, sels)
	if err != nil {
		t.Fatal(err)
	}
	ev := selector.Event{Category: "NetworkActivity", Source: "dynamodb.amazonaws.com", Name: "Scan", Type: "AwsVpceEvent",
		ErrorCode: denied["errorCode"].(string), VPCEndpointID: denied["vpcEndpointId"].(string)}
	if !m.Match(&ev) {
		t.Error("the access-denied template does not select the record")
	}

	// An implicit deny: a principal no statement names.
	if _, err := r.ddb.ListTables(context.Background(), &dynamodb.ListTablesInput{}); err != nil {
		t.Fatalf("ListTables (allowed by Resource *): %v", err)
	}
	if st := r.proxy.Stats(); st.Denied != 1 {
		t.Errorf("Stats.Denied = %d, want 1", st.Denied)
	}
}

// failingSink stands for an OpenTrail that is down.
type failingSink struct{}

func (failingSink) Write(context.Context, [][]byte) error { return errors.New("connection refused") }

// fillSpool leaves a spool directory holding about n bytes of valid records.
func fillSpool(t *testing.T, dir string, n int) {
	t.Helper()
	rec := []byte(`{"eventVersion":"1.11","eventTime":"2024-01-01T00:00:00Z","eventSource":"x.amazonaws.com","eventName":"X","eventID":"` + strings.Repeat("f", 36) + `"}`)
	var b []byte
	for len(b) < n {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(rec)))
		b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(rec, crc32.MakeTable(crc32.Castagnoli)))
		b = append(b, rec...)
	}
	if err := os.WriteFile(filepath.Join(dir, "0000000000000000.spool"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestFullSpoolFailsClosed(t *testing.T) {
	dir := t.TempDir()
	fillSpool(t, dir, 1<<20)
	r := newRig(t, rigOpts{spoolDir: dir, mutate: func(o *proxy.Options) {
		o.Sink, o.SpoolMaxBytes = failingSink{}, 1<<20
	}})
	before := r.upstream.n.Load()
	_, err := r.ddb.ListTables(context.Background(), &dynamodb.ListTablesInput{})
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusServiceUnavailable {
		t.Fatalf("ListTables with a full spool: %v, want HTTP 503", err)
	}
	if n := r.upstream.n.Load(); n != before {
		t.Fatalf("a call that could not be recorded reached the upstream (%d requests)", n-before)
	}
	if st := r.proxy.Stats(); st.FailedClosed != 1 || st.FailedOpen != 0 {
		t.Errorf("stats %+v, want FailedClosed 1", st)
	}
}

func TestFullSpoolFailsOpen(t *testing.T) {
	dir := t.TempDir()
	fillSpool(t, dir, 1<<20)
	r := newRig(t, rigOpts{spoolDir: dir, mutate: func(o *proxy.Options) {
		o.Sink, o.SpoolMaxBytes, o.FailOpen = failingSink{}, 1<<20, true
	}})
	before := r.upstream.n.Load()
	if _, err := r.ddb.ListTables(context.Background(), &dynamodb.ListTablesInput{}); err != nil {
		t.Fatalf("ListTables fail-open: %v", err)
	}
	if n := r.upstream.n.Load(); n != before+1 {
		t.Fatalf("upstream saw %d requests, want 1", n-before)
	}
	if st := r.proxy.Stats(); st.FailedOpen != 1 || st.Lost != 1 {
		t.Errorf("stats %+v, want FailedOpen 1, Lost 1", st)
	}
}

// TestOpenTrailDownMidRun stops OpenTrail while clients are calling, starts it
// again, and checks that every call a client got an answer for is on record
// exactly once, once the spool has drained.
func TestOpenTrailDownMidRun(t *testing.T) {
	r := newRig(t, rigOpts{mutate: func(o *proxy.Options) { o.SinkTimeout = time.Second }})
	createMusic(t, r.ddb)
	const workers, perWorker = 4, 60
	var mu sync.Mutex
	var acked []string
	var failures []error
	var wg sync.WaitGroup
	half := make(chan struct{})
	var once sync.Once
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				out, err := r.ddb.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String("Music"),
					Item: map[string]types.AttributeValue{"Artist": s(fmt.Sprintf("a-%d-%d", w, i))}})
				mu.Lock()
				if err != nil {
					failures = append(failures, err)
				} else {
					acked = append(acked, requestID(outputMetadata(out), nil))
				}
				n := len(acked)
				mu.Unlock()
				if n == workers*perWorker/3 {
					once.Do(func() { close(half) })
				}
			}
		}()
	}
	<-half
	r.trail.stop() // OpenTrail goes away mid-run
	time.Sleep(50 * time.Millisecond)
	spooled := r.proxy.Stats().Spooled
	r.trail.start(nil)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d calls failed, first: %v", len(failures), failures[0])
	}
	if spooled == 0 && r.proxy.Stats().Spooled == 0 {
		t.Log("no record needed the spool; the outage was too short to matter")
	}
	// Wait for the spool to drain (the shipper retries with backoff up to 5s).
	deadline := time.Now().Add(60 * time.Second)
	for r.proxy.Stats().SpoolBytes > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("spool did not drain: %+v", r.proxy.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	count := map[string]int{}
	for _, rec := range r.trail.records("dynamodb.amazonaws.com") {
		if rec["eventName"] == "PutItem" {
			count[rec["requestID"].(string)]++
		}
	}
	for _, id := range acked {
		if count[id] != 1 {
			t.Errorf("acknowledged call %s has %d records", id, count[id])
		}
	}
	if len(count) != len(acked) {
		t.Errorf("%d PutItem records for %d acknowledged calls", len(count), len(acked))
	}
	t.Logf("calls %d, spooled %d records during the outage", len(acked), r.proxy.Stats().Spooled)
}

// TestSpoolOutlivesTheProxy: records a proxy spooled (OpenTrail away) and
// acknowledged are delivered by the next proxy started on the same spool.
func TestSpoolOutlivesTheProxy(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, rigOpts{spoolDir: dir, mutate: func(o *proxy.Options) { o.Sink = failingSink{} }})
	createMusic(t, r.ddb)
	var acked []string
	for i := range 5 {
		out, err := r.ddb.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String("Music"),
			Item: map[string]types.AttributeValue{"Artist": s(fmt.Sprint(i))}})
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, requestID(outputMetadata(out), nil))
	}
	r.proxy.Close() // as good as dead: its sink never worked, so everything is in the spool

	wid, wsecret := r.trail.key("proxy-writer-2", "writer")
	p2, err := proxy.New(proxy.Options{Upstream: "http://127.0.0.1:1", SpoolDir: dir, Account: account, Region: region,
		Sink: proxy.NewRemoteSink(r.trail.url(), region, wid, wsecret, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	deadline := time.Now().Add(30 * time.Second)
	for p2.Stats().SpoolBytes > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("spool not delivered: %+v", p2.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := map[string]int{}
	for _, rec := range r.trail.records("dynamodb.amazonaws.com") {
		got[rec["requestID"].(string)]++
	}
	for _, id := range acked {
		if got[id] != 1 {
			t.Errorf("call %s: %d records", id, got[id])
		}
	}
}
