package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/proxy/dynalitetest"
)

// proxyProcess is "opentrail proxy" running as its own process.
type proxyProcess struct {
	cmd  *exec.Cmd
	addr string
}

func startProxy(t *testing.T, bin, addr, upstream string, srv *benchServer, spool string) *proxyProcess {
	t.Helper()
	cmd := exec.Command(bin, "proxy", "--listen", addr, "--upstream", upstream, "--server", srv.endpoint, "--spool-dir", spool)
	cmd.Env = append(os.Environ(), "OPENTRAIL_ACCESS_KEY_ID="+srv.keyID, "OPENTRAIL_SECRET_ACCESS_KEY="+srv.secret)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proxyProcess{cmd: cmd, addr: addr}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return p
		}
		if i == 500 {
			t.Fatalf("proxy on %s did not start", addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *proxyProcess) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

// TestKill9ProxyLosesNoCall runs DynamoDB calls through "opentrail proxy"
// while first the OpenTrail server and then the proxy itself are killed with
// SIGKILL and restarted. Every call that got an answer has exactly one record
// in the journal at the end; calls made while OpenTrail was down waited in the
// proxy's spool.
func TestKill9ProxyLosesNoCall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	upstream := dynalitetest.Start(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	srv := startServerBinary(t, bin, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	spool := filepath.Join(t.TempDir(), "spool")
	px := startProxy(t, bin, addr, upstream, srv, spool)

	ddb := dynamodb.New(dynamodb.Options{
		BaseEndpoint: aws.String("http://" + addr), Region: "us-east-1", RetryMaxAttempts: 1,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIAPROXYCLIENT00001", SecretAccessKey: "client-secret"}, nil
		}),
	})
	ctx := context.Background()
	if _, err := ddb.CreateTable(ctx, &dynamodb.CreateTableInput{TableName: aws.String("crash"), BillingMode: ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: ddbtypes.KeyTypeHash}}}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string]bool{} // request IDs of calls that were answered
	put := func(phase string, n int) {
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range n {
					out, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("crash"), Item: map[string]ddbtypes.AttributeValue{
						"pk": &ddbtypes.AttributeValueMemberS{Value: fmt.Sprintf("%s-%d-%d", phase, w, i)}, "secret": &ddbtypes.AttributeValueMemberS{Value: "v"}}})
					if err != nil {
						continue // not answered (the proxy was killed): the client never saw success
					}
					id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	put("before", 25)
	// OpenTrail dies; calls go on, their records wait in the spool.
	killDone := make(chan struct{})
	go func() {
		time.Sleep(50 * time.Millisecond)
		srv.cmd.Process.Signal(syscall.SIGKILL)
		srv.cmd.Wait()
		close(killDone)
	}()
	put("server-kill", 25)
	<-killDone
	put("server-down", 10)
	srv = startServerBinary(t, bin, dir)
	// The proxy dies mid-run; a new one takes over its spool.
	go func() {
		time.Sleep(50 * time.Millisecond)
		px.kill()
	}()
	put("proxy-kill", 25)
	px.kill()
	px = startProxy(t, bin, addr, upstream, srv, spool)
	put("after", 10)
	if len(acked) < 100 {
		t.Fatalf("only %d calls answered", len(acked))
	}

	// Wait until the spool is shipped, then count records offline.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if spoolEmpty(spool) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the spool was not drained within 60 s")
		}
	}
	px.kill()
	srv.stop()
	count := map[string]int{}
	journalRecords(t, dir, func(r event.Record) {
		if r.Meta.Source == "dynamodb.amazonaws.com" && r.Meta.Name == "PutItem" {
			count[requestIDOf(r.Raw)]++
		}
	})
	for id := range acked {
		if count[id] != 1 {
			t.Fatalf("answered call %s has %d records (%d answered, %d recorded)", id, count[id], len(acked), len(count))
		}
	}
	for id, n := range count {
		if n != 1 {
			t.Fatalf("call %s recorded %d times", id, n)
		}
	}
	t.Logf("%d calls answered across a SIGKILL of the server and one of the proxy; each has exactly one record (%d records in all)", len(acked), len(count))
}

// spoolEmpty reports whether every spool segment has been shipped.
func spoolEmpty(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && filepath.Ext(e.Name()) == ".spool" && info.Size() > 0 {
			return false
		}
	}
	return true
}

func requestIDOf(raw []byte) string {
	var r struct {
		RequestID string `json:"requestID"`
	}
	json.Unmarshal(raw, &r)
	return r.RequestID
}

// TestServeInProcessProxy: "serve --proxy-listen --proxy-upstream" runs the
// audit proxy inside the server; a call through it is recorded, with the
// caller resolved from the keyring, and a policy denial is a NetworkActivity record.
func TestServeInProcessProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	upstream := dynalitetest.Start(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	policy := filepath.Join(dir, "policy.json")
	os.WriteFile(policy, []byte(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":"*","Action":"dynamodb:*","Resource":"*"},
		{"Effect":"Deny","Principal":"*","Action":"dynamodb:Scan","Resource":"*"}]}`), 0o600)
	srv := startServerBinary(t, bin, dir, "--proxy-listen", addr, "--proxy-upstream", upstream, "--proxy-policy", policy)
	ddb := dynamodb.New(dynamodb.Options{
		BaseEndpoint: aws.String("http://" + addr), Region: "us-east-1", RetryMaxAttempts: 1,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: srv.keyID, SecretAccessKey: srv.secret}, nil
		}),
	})
	ctx := context.Background()
	if _, err := ddb.CreateTable(ctx, &dynamodb.CreateTableInput{TableName: aws.String("inproc"), BillingMode: ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: ddbtypes.KeyTypeHash}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("inproc"), Item: map[string]ddbtypes.AttributeValue{
		"pk": &ddbtypes.AttributeValueMemberS{Value: "k1"}, "card": &ddbtypes.AttributeValueMemberS{Value: "4111-1111"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ddb.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String("inproc")}); err == nil {
		t.Fatal("Scan was allowed despite the policy")
	}
	srv.stop()
	var put, denied *event.Record
	journalRecords(t, dir, func(r event.Record) {
		if r.Meta.Source == "dynamodb.amazonaws.com" {
			r.Raw = slices.Clone(r.Raw) // only valid during the call
			switch r.Meta.Name {
			case "PutItem":
				put = &r
			case "Scan":
				denied = &r
			}
		}
	})
	if put == nil || put.Meta.Category != event.CategoryData || put.Meta.AccessKeyID != srv.keyID || put.Meta.Username != "" && put.Meta.Username != "root" {
		t.Fatalf("PutItem record: %+v", put)
	}
	if strings.Contains(string(put.Raw), "4111-1111") || !strings.Contains(string(put.Raw), `"k1"`) {
		t.Fatalf("PutItem record leaks the item value or lost the key: %s", put.Raw)
	}
	if denied == nil || denied.Meta.Category != event.CategoryNetworkActivity || denied.Meta.ErrorCode != "VpceAccessDenied" {
		t.Fatalf("denied Scan record: %+v", denied)
	}
}
