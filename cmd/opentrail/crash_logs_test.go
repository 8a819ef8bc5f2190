package main

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
)

// TestKill9SubscriptionsLoseNothing: a trail feeds a log group whose
// subscription filter posts to a webhook; the server is killed with SIGKILL
// three times while events flow. In the end every acknowledged event has
// reached the webhook (at least once, in order within each delivery).
func TestKill9SubscriptionsLoseNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	var mu sync.Mutex
	got := map[string]int{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Records []struct{ EventID string } }
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, rec := range body.Records {
			got[rec.EventID]++
		}
		mu.Unlock()
	}))
	defer hook.Close()

	bin := buildBinary(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "buckets", "sub-bucket"), 0o755); err != nil {
		t.Fatal(err)
	}
	srv := startServerBinary(t, bin, dir)
	c := srv.client()
	c.region = "ap-northeast-1" // the generated records' region
	ctx := context.Background()
	group := "/aws/cloudtrail/crash"
	if _, err := c.logs().CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.logs().PutSubscriptionFilter(ctx, &cloudwatchlogs.PutSubscriptionFilterInput{LogGroupName: aws.String(group),
		FilterName: aws.String("all"), FilterPattern: aws.String(`{ $.eventID = "sub-*" }`), DestinationArn: aws.String(hook.URL)}); err != nil {
		t.Fatal(err)
	}
	ct := c.cloudTrail()
	if _, err := ct.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("sub-trail"), S3BucketName: aws.String("sub-bucket"),
		CloudWatchLogsLogGroupArn: aws.String("arn:aws:logs:ap-northeast-1:123456789012:log-group:" + group + ":*"),
		CloudWatchLogsRoleArn:     aws.String("arn:aws:iam::123456789012:role/CloudTrail_CloudWatchLogs_Role")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ct.StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: aws.String("sub-trail")}); err != nil {
		t.Fatal(err)
	}
	acked, _ := ingestThroughKills(t, srv, bin, dir, "sub", 3, 500*time.Millisecond, rand.New(rand.NewPCG(3, 5)))
	missing := len(acked)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && missing > 0; time.Sleep(100 * time.Millisecond) {
		mu.Lock()
		missing = 0
		for id := range acked {
			if got[id] == 0 {
				missing++
			}
		}
		mu.Unlock()
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged events never reached the webhook", missing, len(acked))
	}
	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for id, n := range got {
		if !strings.HasPrefix(id, "sub-") {
			t.Fatalf("webhook got %s, which the filter does not select", id)
		}
		dups += n - 1
	}
	t.Logf("%d acknowledged events across 3 kills, all delivered; %d deliveries were repeats (at-least-once)", len(acked), dups)
}
