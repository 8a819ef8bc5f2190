package dest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

const lambdaARN = "arn:aws:lambda:ap-northeast-1:506364634079:function:notify"

func TestLambdaHTTP(t *testing.T) {
	want, err := Payload(seedBatch())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []byte
	var hdr http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, hdr = body, r.Header.Clone()
		mu.Unlock()
		if r.Method != http.MethodPost || r.URL.Path != "/2015-03-31/functions/function/invocations" {
			http.Error(w, "wrong request "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		w.Write([]byte(`{"statusCode":200}`))
	}))
	defer srv.Close()

	c := &Config{Lambdas: map[string]string{"notify": srv.URL + "/2015-03-31/functions/function/invocations"}}
	d, err := c.Resolve(lambdaARN)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Send(context.Background(), seedBatch()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !bytes.Equal(got, want) {
		t.Errorf("function received\n%s\nwant\n%s", got, want)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if s := d.String(); !strings.HasPrefix(s, "lambda notify http://127.0.0.1:") {
		t.Errorf("String() = %q", s)
	}
}

func TestLambdaHTTPFailures(t *testing.T) {
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		want     string
		rejected bool
	}{
		{"server error", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "function crashed", http.StatusBadGateway)
		}, "HTTP 502: function crashed", false},
		{"throttled", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "slow down", http.StatusTooManyRequests)
		}, "HTTP 429", false},
		{"not found", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no such function", http.StatusNotFound)
		}, "HTTP 404: no such function", true},
		{"function error reported in a 200", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
			w.Write([]byte(`{"errorMessage":"boom","errorType":"RuntimeError"}`))
		}, `function error "Unhandled": {"errorMessage":"boom"`, false},
		{"redirect is not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}, "HTTP 302", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			c := &Config{Lambdas: map[string]string{"notify": srv.URL + "/fn?token=SECRET"}}
			d, err := c.Resolve(lambdaARN)
			if err != nil {
				t.Fatal(err)
			}
			err = d.Send(context.Background(), seedBatch())
			if err == nil {
				t.Fatal("Send succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "SECRET") || strings.Contains(d.String(), "SECRET") {
				t.Errorf("secret leaked: %q / %q", err, d)
			}
			if got := errors.Is(err, ErrRejected); got != tt.rejected {
				t.Errorf("errors.Is(err, ErrRejected) = %v, want %v", got, tt.rejected)
			}
		})
	}
}

func needPython(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	return p
}

// syncBuffer is an io.Writer safe for the concurrent use Config.LambdaStdout allows.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLambdaExecPython runs the seed's notification Lambda handler, unchanged
// Python, on the payload.
func TestLambdaExecPython(t *testing.T) {
	needPython(t)
	runner, err := filepath.Abs("testdata/lambda/runner.py")
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	c := &Config{
		Lambdas:      map[string]string{"notify": fmt.Sprintf("exec:python3 '%s' notify", runner)},
		LambdaStdout: &out,
	}
	d, err := c.Resolve(lambdaARN)
	if err != nil {
		t.Fatal(err)
	}
	b := seedBatch()
	b.Events = append(b.Events, LogEvent{ID: "33151510541962474777665171134233651761114350748750184449", Timestamp: 1714564800000, Message: deleteBucketRecord})
	if err := d.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	want := "group=/aws/cloudtrail/swx-trail stream=506364634079_CloudTrail_ap-northeast-1 filters=LambdaStream_CloudTrail-Notification\n" +
		"time=2017-02-08T14:45:46Z eventName=DescribeTrails sourceIPAddress=153.170.153.69 userAgent=signin.amazonaws.com\n" +
		"time=2024-05-01T12:00:00Z eventName=DeleteBucket sourceIPAddress=203.0.113.7 userAgent=aws-cli/2.15.0 <md/arch#x86_64> & more\n"
	if got := out.String(); got != want {
		t.Errorf("handler printed\n%s\nwant\n%s", got, want)
	}
	if s := d.String(); s != "lambda notify exec:python3" {
		t.Errorf("String() = %q", s)
	}
}

func TestLambdaExecFailure(t *testing.T) {
	needPython(t)
	runner, err := filepath.Abs("testdata/lambda/runner.py")
	if err != nil {
		t.Fatal(err)
	}
	c := &Config{Lambdas: map[string]string{"notify": fmt.Sprintf("exec:python3 %q failing", runner)}}
	d, err := c.Resolve(lambdaARN)
	if err != nil {
		t.Fatal(err)
	}
	err = d.Send(context.Background(), seedBatch())
	if err == nil {
		t.Fatal("a raising handler counted as success")
	}
	for _, want := range []string{"lambda notify", "exit status 1", "RuntimeError: boom: cannot publish 1 events to SNS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestLambdaExecStderrTail(t *testing.T) {
	needPython(t)
	// 10,000 lines of noise then the real cause: only the tail is kept.
	c := &Config{Lambdas: map[string]string{"notify": `exec:python3 -c "import sys
for i in range(10000): print('noise', i, file=sys.stderr)
sys.exit('the real cause')"`}}
	d, err := c.Resolve(lambdaARN)
	if err != nil {
		t.Fatal(err)
	}
	err = d.Send(context.Background(), seedBatch())
	if err == nil {
		t.Fatal("Send succeeded")
	}
	msg := err.Error()
	if !strings.HasSuffix(msg, "the real cause") || strings.Contains(msg, "noise 0\n") || len(msg) > stderrTail+200 {
		t.Errorf("error is not the stderr tail (%d bytes): %.300q…", len(msg), msg)
	}
}

func TestLambdaExecNoSuchCommand(t *testing.T) {
	c := &Config{Lambdas: map[string]string{"notify": "exec:/nonexistent/handler --flag"}}
	d, err := c.Resolve(lambdaARN)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Send(context.Background(), seedBatch()); err == nil || !strings.Contains(err.Error(), "handler") {
		t.Errorf("Send = %v", err)
	}
}

// TestLambdaExecCancel: cancelling ctx kills a handler that would run forever.
func TestLambdaExecCancel(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	started := filepath.Join(dir, "started")
	// The handler tells the test it runs by writing a file, then blocks.
	c := &Config{Lambdas: map[string]string{"notify": fmt.Sprintf(`exec:sh -c 'cat >/dev/null; echo x > "$0"; exec sleep 3600' %q`, started)}}
	d, err := c.Resolve(lambdaARN)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Send(ctx, seedBatch()) }()
	for {
		if _, err := os.Stat(started); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Send returned before the handler started: %v", err)
		default:
			time.Sleep(2 * time.Millisecond) // polling, not a timed assertion
		}
	}
	cancel()
	err = <-done
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Send after cancel = %v, want context.Canceled", err)
	}
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"python3 handler.py", []string{"python3", "handler.py"}, false},
		{"  a   b\tc\n", []string{"a", "b", "c"}, false},
		{`a 'b c' "d e"`, []string{"a", "b c", "d e"}, false},
		{`a 'it''s'`, []string{"a", "its"}, false},
		{`"a \"q\" \\ \$x \n"`, []string{`a "q" \ $x \n`}, false},
		{`a\ b c\'d`, []string{"a b", "c'd"}, false},
		{`x '' ""`, []string{"x", "", ""}, false},
		{`node -e 'console.log(1) | cat > /tmp/x'`, []string{"node", "-e", "console.log(1) | cat > /tmp/x"}, false},
		{"$HOME/bin/x *.py", []string{"$HOME/bin/x", "*.py"}, false},
		{"a \\\nb", []string{"a", "b"}, false},
		{"", nil, false},
		{"'open", nil, true},
		{`"open`, nil, true},
		{`trailing\`, nil, true},
	}
	for _, tt := range tests {
		got, err := splitCommand(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("splitCommand(%q) error = %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if !tt.err && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitCommand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
