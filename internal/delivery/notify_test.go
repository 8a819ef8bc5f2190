package delivery

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/logs/dest"
	"github.com/opentrail/opentrail/internal/outbox"
)

// TestNotificationEveryEndpoint: a trail's file notification goes to every
// endpoint of its topic (here SNS HTTP and Slack), through the outbox, and a
// notification its topic keeps refusing becomes a dead letter (issue 13 §4).
// A redirect is not followed (issue 11 §5: the guarded transport).
func TestNotificationEveryEndpoint(t *testing.T) {
	var mu sync.Mutex
	var sns []map[string]string
	var slack []string
	snsSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var m map[string]string
		json.NewDecoder(req.Body).Decode(&m)
		mu.Lock()
		sns = append(sns, m)
		mu.Unlock()
	}))
	defer snsSrv.Close()
	slackSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		mu.Lock()
		slack = append(slack, string(b))
		mu.Unlock()
	}))
	defer slackSrv.Close()
	var redirected atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { redirected.Add(1) }))
	defer target.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, target.URL+"/latest/meta-data/", http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()

	// Slack needs https: its topic uses the test server's TLS client, with
	// redirects refused as dest's default client does; the other topic uses
	// dest's default, guarded client.
	tlsClient := slackSrv.Client()
	tlsClient.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	opsCfg := &dest.Config{HTTPClient: tlsClient, Topics: map[string][]string{
		"ops": {snsSrv.URL + "/sns", "slack+" + slackSrv.URL + "/services/T/B/SECRET"}}}
	cfg := &dest.Config{Topics: map[string][]string{"moved": {redirector.URL + "/"}}}
	resolve := func(arn string) (dest.Publisher, error) {
		if strings.HasSuffix(arn, ":ops") {
			return opsCfg.ResolveTopic(arn)
		}
		return cfg.ResolveTopic(arn)
	}
	store := newMemStore("bucket-1", "bucket-2")
	var n *Notifier
	r := newRig(t, store, func(r *rig, o *Options) {
		n = NewTopicNotifier(r.db, r.ct, resolve, NotifierOptions{MaxAttempts: 2, Backoff: 10 * time.Millisecond}, slog.New(slog.DiscardHandler))
		o.Notify = n
	})
	defer r.close()
	n.Start(context.Background())
	defer n.Close()
	r.call("us-east-1", "CreateTrail", `{"Name":"trail-1","S3BucketName":"bucket-1","SnsTopicName":"ops"}`)
	r.call("us-east-1", "CreateTrail", `{"Name":"trail-2","S3BucketName":"bucket-2","SnsTopicName":"moved"}`)
	r.call("us-east-1", "StartLogging", `{"Name":"trail-1"}`)
	r.call("us-east-1", "StartLogging", `{"Name":"trail-2"}`)
	r.advance(time.Second)
	r.ingest("us-east-1", 0, 3, mgmt)
	r.advance(2 * time.Minute)

	defer func() {
		if t.Failed() {
			b, _ := json.Marshal(r.call("us-east-1", "GetTrailStatus", `{"Name":"trail-1"}`))
			t.Logf("status %s stats %+v sns %d slack %d", b, n.Stats(), len(sns), len(slack))
		}
	}()
	r.waitFor("both endpoints", func() bool { mu.Lock(); defer mu.Unlock(); return len(sns) == 1 && len(slack) == 1 })
	_, keys := store.delivered(t, "bucket-1")
	if m := sns[0]; m["TopicArn"] != "arn:aws:sns:us-east-1:123456789012:ops" || m["Message"] != `{"s3Bucket":"bucket-1","s3ObjectKey":["`+keys[0]+`"]}` {
		t.Fatalf("SNS notification: %v", m)
	}
	if !strings.Contains(slack[0], keys[0]) || !strings.Contains(slack[0], "trail-1") {
		t.Fatalf("Slack message lacks the trail or the key: %s", slack[0])
	}

	r.waitFor("the dead letter", func() bool {
		for _, st := range n.Stats() {
			if strings.HasSuffix(st.TopicARN, ":moved") && st.DeadLetters == 1 && st.Pending == 0 {
				return true
			}
		}
		return false
	})
	if redirected.Load() != 0 {
		t.Fatal("the notification followed a redirect")
	}
	movedARN := "arn:aws:sns:us-east-1:123456789012:moved"
	dead, err := n.DeadLetters(movedARN, "", 0)
	if err != nil || len(dead) != 1 || dead[0].Trail != "trail-2" || dead[0].Bucket != "bucket-2" || len(dead[0].Keys) != 1 {
		t.Fatalf("DeadLetters = %+v, %v", dead, err)
	}
	// Another account neither sees nor replays this account's dead letters.
	if other, err := n.DeadLetters("", "210987654321", 0); err != nil || len(other) != 0 {
		t.Fatalf("another account's DeadLetters = %+v, %v", other, err)
	}
	if k, err := n.Replay(context.Background(), "", "210987654321"); err != nil || k != 0 {
		t.Fatalf("another account's Replay = %d, %v", k, err)
	}
	if all, err := n.DeadLetters("", "123456789012", 0); err != nil || len(all) != 1 || all[0].TopicARN != movedARN {
		t.Fatalf("the account's DeadLetters of every topic = %+v, %v", all, err)
	}
	if k, err := n.Replay(context.Background(), movedARN, "123456789012"); err != nil || k != 1 {
		t.Fatalf("Replay = %d, %v", k, err)
	}
	b, _ := json.Marshal(r.call("us-east-1", "GetTrailStatus", `{"Name":"trail-2"}`))
	if !strings.Contains(string(b), "HTTP 307") {
		t.Fatalf("status does not show the refused redirect: %s", b)
	}
}

// TestNotificationMigration: a notification queued by the version before the
// outbox (under kv.StateKey("delivery-notify", "", id)) is sent after an upgrade.
func TestNotificationMigration(t *testing.T) {
	got := make(chan map[string]string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var m map[string]string
		json.NewDecoder(req.Body).Decode(&m)
		got <- m
	}))
	defer srv.Close()
	r := newRig(t, newMemStore())
	defer r.close()
	old := `{"account":"123456789012","homeRegion":"us-east-1","trail":"gone","topicArn":"arn:aws:sns:us-east-1:123456789012:old","s3Bucket":"bkt","s3ObjectKey":["k1"]}`
	if err := r.db.Set(kv.StateKey(kv.StateNotify, "", "00000000000000000001"), []byte(old), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	n := NewNotifier(r.db, r.ct, map[string]string{"old": srv.URL}, slog.New(slog.DiscardHandler))
	n.Start(context.Background())
	defer n.Close()
	select {
	case m := <-got:
		if m["Message"] != `{"s3Bucket":"bkt","s3ObjectKey":["k1"]}` {
			t.Fatalf("notification: %v", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the old notification was not sent")
	}
	lo := kv.StatePrefix(kv.StateNotify, "")
	it, _ := r.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: kv.PrefixUpper(lo)})
	defer it.Close()
	if it.First() {
		t.Fatal("the old entry is still there")
	}
}

// TestNotificationSurvivesRestart: a notification queued in a topic's outbox
// is found and sent by the next start (the streams are discovered from disk).
func TestNotificationSurvivesRestart(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var m map[string]string
		json.NewDecoder(req.Body).Decode(&m)
		got <- m["Message"]
	}))
	defer srv.Close()
	r := newRig(t, newMemStore())
	defer r.close()
	arn := "arn:aws:sns:us-east-1:123456789012:later"
	s := outbox.New(r.db, outbox.Options{Pending: kv.OutboxPrefix(false, kv.OutboxTrailNotify, arn), Dead: kv.OutboxPrefix(true, kv.OutboxTrailNotify, arn)})
	b := r.db.NewBatch()
	if _, err := s.Append(b, []byte(`{"account":"123456789012","homeRegion":"us-east-1","trail":"x","topicArn":"`+arn+`","s3Bucket":"bkt","s3ObjectKey":["k2"]}`)); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	b.Close()
	n := NewNotifier(r.db, r.ct, map[string]string{"later": srv.URL}, slog.New(slog.DiscardHandler))
	n.Start(context.Background())
	defer n.Close()
	select {
	case m := <-got:
		if m != `{"s3Bucket":"bkt","s3ObjectKey":["k2"]}` {
			t.Fatalf("Message = %s", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the queued notification was not sent after the start")
	}
}
