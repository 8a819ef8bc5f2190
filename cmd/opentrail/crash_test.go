package main

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/kv"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// buildBinary builds opentrail once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "opentrail-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "opentrail")
		cmd := exec.Command("go", "build", "-o", builtBin, ".")
		cmd.Stderr = os.Stderr
		buildErr = cmd.Run()
	})
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// TestKill9LosesNoAcknowledgedRecord ingests from concurrent clients, kills the
// server with SIGKILL mid-stream, restarts it, and checks that every
// acknowledged eventID is stored exactly once and visible in event history.
func TestKill9LosesNoAcknowledgedRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	srv := startServerBinary(t, bin, dir)
	c := srv.client()
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := genRecords(fmt.Sprintf("crash-w%d-b%d", w, i), 0, 50, true, time.Hour, time.Now(), rng)
				var out struct{ EventIds []string }
				if err := c.post(context.Background(), "/v1/records", body, &out); err != nil {
					return // the server is gone; this batch was never acknowledged
				}
				mu.Lock()
				for _, id := range out.EventIds {
					acked[id] = true
				}
				mu.Unlock()
			}
		}()
	}
	// Let acknowledgements accumulate, then kill without warning.
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 20000 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	srv.cmd.Wait()
	close(stop)
	wg.Wait()
	if len(acked) < 1000 {
		t.Fatalf("only %d records acknowledged before the kill", len(acked))
	}

	// After a restart, acknowledged records are in event history.
	srv = startServerBinary(t, bin, dir)
	lc := srv.client()
	lc.region = "ap-northeast-1" // the region of the generated records
	ct := lc.cloudTrail()
	sample := 0
	for id := range acked {
		if sample++; sample > 200 {
			break
		}
		var found bool
		for try := 0; try < 100 && !found; try++ {
			out, err := ct.LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{
				{AttributeKey: types.LookupAttributeKeyEventId, AttributeValue: aws.String(id)}}})
			if err != nil {
				t.Fatal(err)
			}
			found = len(out.Events) == 1
			if !found {
				time.Sleep(10 * time.Millisecond) // history replays the journal tail after a restart
			}
		}
		if !found {
			t.Fatalf("acknowledged %s not in event history after restart", id)
		}
	}
	srv.stop()

	// Offline: every acknowledged eventID is in the journal exactly once.
	count := map[string]int{}
	journalRecords(t, dir, func(r event.Record) {
		if strings.HasPrefix(r.Meta.EventID, "crash-") {
			count[r.Meta.EventID]++
		}
	})
	for id := range acked {
		if count[id] != 1 {
			t.Fatalf("acknowledged %s stored %d times", id, count[id])
		}
	}
	for id, n := range count {
		if n != 1 {
			t.Fatalf("%s stored %d times", id, n)
		}
	}
	t.Logf("%d acknowledged before SIGKILL, %d stored (the rest were in flight), all acknowledged present once", len(acked), len(count))
}

func startServerBinary(t *testing.T, bin, dir string, extra ...string) *benchServer {
	t.Helper()
	s, err := startBenchServerWith(bin, dir, extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.cmd.Process.Kill(); s.cmd.Wait() })
	return s
}

// TestKill9DeliveryExactlyOnce kills the server repeatedly while a trail is
// delivering, and checks that in the end every acknowledged event the trail
// selects is in exactly one log file in the bucket.
func TestKill9DeliveryExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "buckets", "crash-bucket"), 0o755); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--delivery-interval", "200ms"}
	srv := startServerBinary(t, bin, dir, flags...)
	lc := srv.client()
	lc.region = "ap-northeast-1" // the generated records' region
	ct := lc.cloudTrail()
	ctx := context.Background()
	if _, err := ct.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("crash-trail"), S3BucketName: aws.String("crash-bucket")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ct.StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: aws.String("crash-trail")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the worker reads trails every second
	acked, srv := ingestThroughKills(t, srv, bin, dir, "dlv", 4, 700*time.Millisecond, rand.New(rand.NewPCG(9, 9)), flags...)
	// Let the last server deliver everything, then count.
	var counts map[string]int
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		counts = countDelivered(t, filepath.Join(dir, "buckets", "crash-bucket"))
		if len(counts) >= len(acked) {
			break
		}
	}
	for id := range acked {
		if counts[id] != 1 {
			t.Fatalf("acknowledged %s is in %d delivered files (of %d acknowledged, %d delivered)", id, counts[id], len(acked), len(counts))
		}
	}
	for id, n := range counts {
		if n != 1 {
			t.Fatalf("%s delivered %d times", id, n)
		}
	}
	t.Logf("%d acknowledged events across 4 kills, each in exactly one log file", len(acked))
}

// countDelivered counts eventIDs over every log file under dir.
func countDelivered(t *testing.T, dir string) map[string]int {
	counts := map[string]int{}
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir // the folder backend's metadata
		}
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json.gz") || !strings.Contains(path, "/CloudTrail/") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return nil
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		var file struct{ Records []struct{ EventID string } }
		if err := json.NewDecoder(zr).Decode(&file); err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		for _, r := range file.Records {
			counts[r.EventID]++
		}
		return nil
	})
	return counts
}

// journalRecords opens the journal of a stopped server's data dir and calls fn
// for every record, in order. A record's Raw is only valid during the call.
func journalRecords(t *testing.T, dir string, fn func(event.Record)) {
	t.Helper()
	db, err := kv.Open(filepath.Join(dir, "db"), kv.Options{CacheBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	j, err := journal.Open(db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if _, err := j.Scan(1, 0, func(_ uint64, v []byte) error {
		r, err := event.Decode(v)
		if err != nil {
			return err
		}
		fn(r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// ingestThroughKills runs rounds of ingest, each for 300 ms plus up to spread,
// and ends each with a SIGKILL of the server and a restart with flags. It
// returns the eventIDs that were acknowledged and the server now running.
func ingestThroughKills(t *testing.T, srv *benchServer, bin, dir, prefix string, rounds int, spread time.Duration, rng *rand.Rand, flags ...string) (map[string]bool, *benchServer) {
	t.Helper()
	acked := map[string]bool{}
	for round := range rounds {
		c := srv.client()
		stop := time.Now().Add(300*time.Millisecond + time.Duration(rng.Int64N(int64(spread))))
		for i := 0; time.Now().Before(stop); i++ {
			body := genRecords(fmt.Sprintf("%s-r%d-b%d", prefix, round, i), 0, 50, true, time.Hour, time.Now(), rng)
			var out struct{ EventIds []string }
			if err := c.post(context.Background(), "/v1/records", body, &out); err != nil {
				t.Fatal(err)
			}
			for _, id := range out.EventIds {
				acked[id] = true
			}
		}
		srv.cmd.Process.Signal(syscall.SIGKILL)
		srv.cmd.Wait()
		srv = startServerBinary(t, bin, dir, flags...)
	}
	return acked, srv
}
