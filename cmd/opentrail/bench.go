package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
)

var benchCommands = []command{
	{"ingest", "records per second a server makes durable, and its memory", benchIngest},
	{"lookup", "LookupEvents latency over a large history", benchLookup},
	{"deliver", "time to write a trail's log file", benchDeliver},
	{"import", "opentrail import's throughput over a generated archive", benchImport},
}

// parseBench parses a benchmark's flags; benchmarks take no positional arguments.
func parseBench(fs *flagSet, args []string) error {
	if err := fs.parse(args); err != nil {
		return err
	}
	return fs.wantArgs(0, "no arguments")
}

// benchServer is an OpenTrail server started as a child process, so that its
// memory and restart time are measured apart from the load generator's.
type benchServer struct {
	cmd      *exec.Cmd
	endpoint string
	metrics  string // URL of GET /metrics
	dataDir  string
	keyID    string
	secret   string
}

func startBenchServer(dataDir string) (*benchServer, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startBenchServerWith(self, dataDir)
}

// startBenchServerWith runs "bin serve" on a free loopback port and waits until it answers.
func startBenchServerWith(bin, dataDir string, extra ...string) (*benchServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	maddr := mln.Addr().String()
	mln.Close()
	s := &benchServer{endpoint: "http://" + addr, metrics: "http://" + maddr + "/metrics", dataDir: dataDir, keyID: "AKIABENCHROOTKEY0001", secret: "bench-secret-bench-secret-bench-secret!!"}
	// OPENTRAIL_BENCH_SERVER_FLAGS adds serve flags, e.g. "--pprof 127.0.0.1:6060" to profile the server.
	extra = append(extra, strings.Fields(os.Getenv("OPENTRAIL_BENCH_SERVER_FLAGS"))...)
	s.cmd = exec.Command(bin, append([]string{"serve", "--listen", addr, "--metrics-listen", maddr, "--data-dir", dataDir, "--log-level", "warn"}, extra...)...)
	s.cmd.Env = append(os.Environ(), "OPENTRAIL_ROOT_ACCESS_KEY_ID="+s.keyID, "OPENTRAIL_ROOT_SECRET_ACCESS_KEY="+s.secret)
	s.cmd.Stderr = os.Stderr
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(s.endpoint + "/healthz"); err == nil {
			resp.Body.Close()
			return s, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.cmd.Process.Kill()
	return nil, errors.New("bench server did not come up within 60s")
}

func (s *benchServer) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
}

// rssMiB reads the server's resident set size.
func (s *benchServer) rssMiB() float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return -1
}

func (s *benchServer) client() *client {
	return &client{endpoint: s.endpoint, region: "us-east-1",
		creds: aws.Credentials{AccessKeyID: s.keyID, SecretAccessKey: s.secret},
		http:  &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
}

// lambdaInvoke is the seed's Lambda Invoke data event (~1.5 KB), with placeholders.
const lambdaInvoke = `{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"ABCDEFGHIJKLMNOPQRST:some-user","arn":"arn:aws:sts::123456789012:assumed-role/some-role/%s","accountId":"123456789012","accessKeyId":"ABCDEFGHIJKLMNOPQRST","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"ABCDEFGHIJKLMNOPQRST","arn":"arn:aws:iam::123456789012:role/some-role","accountId":"123456789012","userName":"some-role"},"attributes":{"creationDate":"2021-12-04T03:12:23Z","mfaAuthenticated":"true"}}},"eventTime":"%s","eventSource":"lambda.amazonaws.com","eventName":"%s","awsRegion":"ap-northeast-1","sourceIPAddress":"1.2.3.4","userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/96.0.4664.55 Safari/537.36","requestParameters":{"functionName":"arn:aws:lambda:ap-northeast-1:123456789012:function:vpc-lambda-1","invocationType":"RequestResponse","logType":"Tail","contentType":"application/json"},"responseElements":null,"additionalEventData":{"customerEniId":"eni-045d450a2100243b1","functionVersion":"arn:aws:lambda:ap-northeast-1:123456789012:function:vpc-lambda-1:$LATEST"},"requestID":"5a6e6f1b-4d3c-4a8e-9c1b-%012d","eventID":"%s","readOnly":false,"resources":[{"accountId":"123456789012","type":"AWS::Lambda::Function","ARN":"arn:aws:lambda:ap-northeast-1:123456789012:function:vpc-lambda-1"}],"eventType":"AwsApiCall","managementEvent":%t,"recipientAccountId":"123456789012","eventCategory":"%s"}`

var benchNames = []string{"Invoke", "GetFunction", "CreateFunction", "DeleteFunction", "UpdateFunctionCode", "ListFunctions",
	"PutObject", "GetObject", "DescribeInstances", "RunInstances", "TerminateInstances", "AssumeRole", "ConsoleLogin",
	"CreateUser", "DeleteUser", "AttachRolePolicy", "PutBucketPolicy", "CreateTrail", "StopLogging", "DeleteTrail"}

// genRecords returns a body of n records with IDs prefix-i, times spread over span ending now.
func genRecords(prefix string, from, n int, management bool, span time.Duration, now time.Time, rng *rand.Rand) []byte {
	var b strings.Builder
	b.WriteString(`{"Records":[`)
	cat := "Data"
	if management {
		cat = "Management"
	}
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		k := from + i
		t := now.Add(-time.Duration(rng.Int64N(int64(span)))).UTC().Format(time.RFC3339)
		name := benchNames[0]
		if management {
			name = benchNames[rng.IntN(len(benchNames))]
		}
		fmt.Fprintf(&b, lambdaInvoke, fmt.Sprintf("user-%d", rng.IntN(1000)), t, name, k, fmt.Sprintf("%s-%012d", prefix, k), management, cat)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// load sends total records in batches of batch from conc workers, and returns the time spent
// sending and each request's latency. It works in rounds: the bodies of a round are generated
// before the clock starts, then all workers send them; only the sending is timed, so the figure is
// the server's (and the signing client's), not the load generator's JSON formatting.
func load(c *client, prefix string, total, batch, conc int, management bool, span time.Duration) (time.Duration, []time.Duration, error) {
	const perWorker = 20
	now := time.Now()
	rngs := make([]*rand.Rand, conc)
	for w := range rngs {
		rngs[w] = rand.New(rand.NewPCG(uint64(w), 42))
	}
	rc := c.records(0) // a failure ends the run: a retry would hide it in the figures
	var lat []time.Duration
	var sending time.Duration
	for from := 0; from < total; {
		bodies := make([][][]byte, conc)
		var wg sync.WaitGroup
		for w := range conc {
			start := from + w*perWorker*batch
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := start; k < min(total, start+perWorker*batch); k += batch {
					bodies[w] = append(bodies[w], genRecords(prefix, k, min(batch, total-k), management, span, now, rngs[w]))
				}
			}()
		}
		wg.Wait()
		from += conc * perWorker * batch

		var mu sync.Mutex
		var firstErr error
		t0 := time.Now()
		for w := range conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, body := range bodies[w] {
					r0 := time.Now()
					_, err := rc.Post(context.Background(), body)
					d := time.Since(r0)
					mu.Lock()
					lat = append(lat, d)
					if err != nil && firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
		wg.Wait()
		sending += time.Since(t0)
		if firstErr != nil {
			return sending, lat, firstErr
		}
	}
	return sending, lat, nil
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

func benchIngest(args []string) error {
	fs := newFlags("opentrail bench ingest", "[flags]", "Starts a server (a child process, on a temporary data dir unless --data-dir) and measures how many records per second it makes durable.\nOPENTRAIL_BENCH_SERVER_FLAGS adds serve flags to the server.", "opentrail bench ingest --records 200000 --concurrency 8")
	total := fs.Int("records", 500000, "records to send")
	batch := fs.Int("batch", 500, "records per request")
	conc := fs.Int("concurrency", 8, "concurrent clients")
	dataDir := fs.String("data-dir", "", "server data dir (default: a new temporary one, removed after)")
	withTrail := fs.Bool("trail", false, "also run a trail that takes every record (Lambda data events) into a folder bucket, and report how far delivery lags")
	subs := fs.Int("subscriptions", 0, "also send every record to a log group with this many subscription filters (each one user's calls, to a local webhook), and report how far they lag")
	noInsights := fs.Bool("insights-off", false, "run the server without Insights detection (to measure what it costs)")
	if err := parseBench(fs, args); err != nil {
		return err
	}
	if *subs > 0 {
		*withTrail = true
	}
	dir, cleanup, err := benchDir(*dataDir)
	if err != nil {
		return err
	}
	defer cleanup()
	var flags []string
	if *subs > 0 {
		flags = append(flags, "--subscription-filters-per-group", fmt.Sprint(*subs))
	}
	if *noInsights {
		flags = append(flags, "--insights-off")
	}
	if *withTrail {
		flags = append(flags, "--delivery-interval", "1s")
		if err := os.MkdirAll(filepath.Join(dir, "buckets", "bench-bucket"), 0o755); err != nil {
			return err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	srv, err := startBenchServerWith(self, dir, flags...)
	if err != nil {
		return err
	}
	defer srv.stop()
	var hook *subscriptionHook
	if *subs > 0 {
		if hook, err = benchSubscriptions(srv, *subs); err != nil {
			return err
		}
		defer hook.close()
	}
	if *withTrail {
		if err := benchTrail(srv, hook != nil); err != nil {
			return err
		}
	}
	elapsed, lat, err := load(srv.client(), fmt.Sprintf("ingest-%d", time.Now().UnixNano()), *total, *batch, *conc, false, time.Hour)
	if err != nil {
		return err
	}
	fmt.Printf("ingest: %d records (seed Lambda Invoke, %d B each) in %d-record requests from %d clients\n",
		*total, len(genRecords("x", 0, 1, false, time.Hour, time.Now(), rand.New(rand.NewPCG(1, 1))))-len(`{"Records":[]}`), *batch, *conc)
	fmt.Printf("  %.0f acknowledged (fsynced) records/s; request latency p50 %v p99 %v; server RSS %.0f MiB\n",
		float64(*total)/elapsed.Seconds(), pct(lat, 0.5).Round(time.Microsecond), pct(lat, 0.99).Round(time.Microsecond), srv.rssMiB())
	if *withTrail {
		ended := time.Now()
		n, err := waitDelivered(filepath.Join(dir, "buckets", "bench-bucket"), *total, 5*time.Minute)
		if err != nil {
			return err
		}
		fmt.Printf("  trail delivery: all %d records in log files %v after the last acknowledgement (delivery interval 1s)\n", n, time.Since(ended).Round(10*time.Millisecond))
		if hook != nil {
			if err := hook.report(srv, ended); err != nil {
				return err
			}
		}
	}
	return nil
}

// benchTrail creates a logging trail that takes every Lambda data event, and
// sends them to log group "bench" as well when logGroup is set.
func benchTrail(srv *benchServer, logGroup bool) error {
	c := srv.client()
	c.region = "ap-northeast-1"
	ct := c.cloudTrail()
	ctx := context.Background()
	in := &cloudtrail.CreateTrailInput{Name: aws.String("bench"), S3BucketName: aws.String("bench-bucket")}
	if logGroup {
		in.CloudWatchLogsLogGroupArn = aws.String("arn:aws:logs:ap-northeast-1:123456789012:log-group:bench:*")
		in.CloudWatchLogsRoleArn = aws.String("arn:aws:iam::123456789012:role/bench")
	}
	if _, err := ct.CreateTrail(ctx, in); err != nil {
		return err
	}
	if _, err := ct.PutEventSelectors(ctx, &cloudtrail.PutEventSelectorsInput{TrailName: aws.String("bench"), EventSelectors: []types.EventSelector{{
		ReadWriteType: types.ReadWriteTypeAll, IncludeManagementEvents: aws.Bool(true),
		DataResources: []types.DataResource{{Type: aws.String("AWS::Lambda::Function"), Values: []string{"arn:aws:lambda"}}}}}}); err != nil {
		return err
	}
	if _, err := ct.StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: aws.String("bench")}); err != nil {
		return err
	}
	time.Sleep(1500 * time.Millisecond) // delivery reads the trails every second
	return nil
}

// waitDelivered counts records in the log files under dir until want are there.
func waitDelivered(dir string, want int, timeout time.Duration) (int, error) {
	seen := map[string]int{}
	total := 0
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json.gz") {
				return nil
			}
			if _, ok := seen[path]; ok {
				return nil
			}
			n, err := countRecords(path)
			if err == nil {
				seen[path] = n
				total += n
			}
			return nil
		})
		if total >= want {
			return total, nil
		}
	}
	return total, fmt.Errorf("only %d of %d records delivered within %v", total, want, timeout)
}

func countRecords(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return 0, err
	}
	var file struct{ Records []json.RawMessage }
	if err := json.NewDecoder(zr).Decode(&file); err != nil {
		return 0, err
	}
	return len(file.Records), nil
}

// benchDeliver measures how soon after its interval closes a log file is in the bucket.
func benchDeliver(args []string) error {
	fs := newFlags("opentrail bench deliver", "[flags]", "Starts a server and times the delivery of trail log files.", "opentrail bench deliver --rounds 10")
	rounds := fs.Int("rounds", 10, "files to time")
	if err := parseBench(fs, args); err != nil {
		return err
	}
	dir, cleanup, err := benchDir("")
	if err != nil {
		return err
	}
	defer cleanup()
	bucketDir := filepath.Join(dir, "buckets", "bench-bucket")
	if err := os.MkdirAll(bucketDir, 0o755); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	const interval = time.Second
	srv, err := startBenchServerWith(self, dir, "--delivery-interval", interval.String())
	if err != nil {
		return err
	}
	defer srv.stop()
	if err := benchTrail(srv, false); err != nil {
		return err
	}
	c := srv.client()
	rng := rand.New(rand.NewPCG(3, 3))
	var delays []time.Duration
	for i := range *rounds {
		before, _ := waitDelivered(bucketDir, 0, time.Second)
		if _, err := c.records(0).Post(context.Background(), genRecords("deliver", i, 1, false, time.Minute, time.Now(), rng)); err != nil {
			return err
		}
		acked := time.Now()
		if _, err := waitDelivered(bucketDir, before+1, 30*time.Second); err != nil {
			return err
		}
		// The file's interval opened when delivery first saw the record (at most one poll after the ack).
		delays = append(delays, time.Since(acked)-interval)
	}
	fmt.Printf("deliver: a log file is in the bucket p50 %v, max %v after its %v interval closes (%d files; includes up to 20 ms of polling)\n",
		pct(delays, 0.5).Round(time.Millisecond), pct(delays, 1).Round(time.Millisecond), interval, *rounds)
	return nil
}

func benchDir(dir string) (string, func(), error) {
	if dir != "" {
		return dir, func() {}, nil
	}
	d, err := os.MkdirTemp("", "opentrail-bench-")
	return d, func() { os.RemoveAll(d) }, err
}

func benchLookup(args []string) error {
	fs := newFlags("opentrail bench lookup", "[flags]", "Starts a server, stores management events, and times LookupEvents calls.", "opentrail bench lookup --events 1000000 --lookups 2000")
	events := fs.Int("events", 1000000, "management events to store first (skipped when --data-dir already holds them)")
	lookups := fs.Int("lookups", 2000, "LookupEvents calls to time")
	conc := fs.Int("concurrency", 4, "concurrent lookup clients")
	dataDir := fs.String("data-dir", "", "server data dir, kept for reuse (default: a new temporary one, removed after)")
	if err := parseBench(fs, args); err != nil {
		return err
	}
	dir, cleanup, err := benchDir(*dataDir)
	if err != nil {
		return err
	}
	defer cleanup()
	marker := filepath.Join(dir, "bench-loaded")
	srv, err := startBenchServer(dir)
	if err != nil {
		return err
	}
	if b, err := os.ReadFile(marker); err != nil || string(b) != strconv.Itoa(*events) {
		fmt.Printf("loading %d management events spread over 80 days...\n", *events)
		elapsed, _, err := load(srv.client(), "lookup", *events, 500, 8, true, 80*24*time.Hour)
		if err != nil {
			srv.stop()
			return err
		}
		fmt.Printf("  loaded in %v (%.0f records/s)\n", elapsed.Round(time.Second), float64(*events)/elapsed.Seconds())
		os.WriteFile(marker, []byte(strconv.Itoa(*events)), 0o600)
		// Restart so that the lookups measure a freshly started server, as after a reboot.
	}
	srv.stop()
	t0 := time.Now()
	srv, err = startBenchServer(dir)
	if err != nil {
		return err
	}
	restart := time.Since(t0)
	defer srv.stop()

	lc := srv.client()
	lc.region = "ap-northeast-1" // the region of the generated records
	ct := lc.cloudTrail()
	// Wait until history has caught up with the journal (it replays after a restart).
	for {
		out, err := ct.LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(1),
			LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventId, AttributeValue: aws.String(fmt.Sprintf("lookup-%012d", *events-1))}}})
		if err == nil && len(out.Events) == 1 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var mu sync.Mutex
	var lat []time.Duration
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var returned atomic.Int64
	for w := range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for next.Add(1) <= int64(*lookups) {
				end := time.Now().Add(-time.Duration(rng.Int64N(int64(70 * 24 * time.Hour))))
				start := end.Add(-time.Duration(1+rng.IntN(7*24)) * time.Hour)
				in := &cloudtrail.LookupEventsInput{StartTime: &start, EndTime: &end, MaxResults: aws.Int32(50)}
				if rng.IntN(2) == 0 {
					in.LookupAttributes = []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String(benchNames[rng.IntN(len(benchNames))])}}
				} else {
					in.LookupAttributes = []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyUsername, AttributeValue: aws.String(fmt.Sprintf("user-%d", rng.IntN(1000)))}}
				}
				t0 := time.Now()
				out, err := ct.LookupEvents(context.Background(), in)
				d := time.Since(t0)
				if err == nil {
					returned.Add(int64(len(out.Events)))
				}
				mu.Lock()
				lat = append(lat, d)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	fmt.Printf("lookup: %d events stored; %d LookupEvents (one attribute + time range, MaxResults 50) from %d clients, %.1f events per answer\n",
		*events, *lookups, *conc, float64(returned.Load())/float64(*lookups))
	fmt.Printf("  p50 %v  p99 %v  max %v; server RSS %.0f MiB; restart to first answer %v\n",
		pct(lat, 0.5).Round(time.Microsecond), pct(lat, 0.99).Round(time.Microsecond), pct(lat, 1).Round(time.Microsecond), srv.rssMiB(), restart.Round(time.Millisecond))
	return nil
}
