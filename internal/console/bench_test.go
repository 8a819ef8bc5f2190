package console_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/app"
	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/kv"
)

// BenchmarkEventHistoryFirstPage measures the server's time for the console's first page of
// event history (LookupEvents over the last day, MaxResults 50, through the console's session,
// CSRF check, Invoke and the durable self-audit record) with CONSOLE_BENCH_EVENTS events
// (default 1,000,000; the target is 10,000,000) spread over 80 days. The history is built by
// appending normalised records straight to the journal, which skips HTTP and signing.
func BenchmarkEventHistoryFirstPage(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("CONSOLE_BENCH_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	dir := b.TempDir()
	a, err := app.Open(context.Background(), app.Config{DataDir: dir, RootKeyID: rootID, RootKey: rootSecret, Account: acctA, CacheMiB: 256},
		slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	start := time.Now()
	fill(b, a, n)
	b.Logf("history of %d events built in %v", n, time.Since(start).Round(time.Second))

	h := a.Handler
	hdr := http.Header{"Content-Type": {"application/json"}, "Origin": {"http://console.bench"}, "User-Agent": {"bench"}}
	req := func(path, body string, cookie *http.Cookie, csrf string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "http://console.bench"+path, strings.NewReader(body))
		r.Header = hdr.Clone()
		if cookie != nil {
			r.AddCookie(cookie)
			r.Header.Set("X-CSRF-Token", csrf)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := req("/console/api/signin", fmt.Sprintf(`{"accessKeyId":%q,"secret":%q}`, rootID, rootSecret), nil, "")
	if w.Code != 200 {
		b.Fatalf("sign in: %d %s", w.Code, w.Body)
	}
	cookie := w.Result().Cookies()[0]
	csrf := regexp.MustCompile(`"csrf":"([^"]+)"`).FindStringSubmatch(w.Body.String())[1]
	for _, bc := range []struct{ name, filter string }{
		{"LastDay", ""},
		{"LastDayEventName", `,"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"GetObject"}]`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			body := fmt.Sprintf(`{"MaxResults":50,"StartTime":%d%s}`, time.Now().Add(-24*time.Hour).Unix(), bc.filter)
			for b.Loop() {
				w := req("/console/api/call/cloudtrail/LookupEvents", body, cookie, csrf)
				if w.Code != 200 || !strings.Contains(w.Body.String(), `"EventId"`) {
					b.Fatalf("LookupEvents: %d %.300s", w.Code, w.Body)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
		})
	}
}

// fill appends n records, newest first in time order of eventTime over 80 days, and waits until
// event history has applied them.
func fill(b *testing.B, a *app.App, n int) {
	const batch = 5000
	names := []string{"GetObject", "PutObject", "ListBuckets", "AssumeRole", "DescribeInstances"}
	now := time.Now()
	span := 80 * 24 * time.Hour
	workers := runtime.GOMAXPROCS(0)
	batches := make(chan int)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			entries := make([]journal.Entry, 0, batch)
			for first := range batches {
				entries = entries[:0]
				for i := first; i < min(first+batch, n); i++ {
					at := now.Add(-span + time.Duration(int64(span)/int64(n)*int64(i)))
					raw := fmt.Sprintf(`{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","userName":"user%d","arn":"arn:aws:iam::%s:user/user%d","accountId":"%s"},`+
						`"eventTime":%q,"eventSource":"s3.amazonaws.com","eventName":%q,"awsRegion":"us-east-1","sourceIPAddress":"10.0.%d.%d",`+
						`"userAgent":"bench","requestParameters":{"bucketName":"b%d"},"responseElements":null,"eventID":"bench-%012d","readOnly":true,`+
						`"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"%s","eventCategory":"Management"}`,
						i%50, acctA, i%50, acctA, at.UTC().Format(time.RFC3339), names[i%len(names)], i/256%256, i%256, i%100, i, acctA)
					rec, err := event.Normalize([]byte(raw), event.Defaults{Account: acctA, Region: "us-east-1", Now: at})
					if err != nil {
						errs <- err
						return
					}
					entries = append(entries, journal.Entry{ID: kv.EventIDKey(acctA, rec.Meta.EventID), Value: event.Encode(nil, &rec)})
				}
				if _, err := a.Journal.Append(context.Background(), entries); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for first := 0; first < n; first += batch {
		if testing.Verbose() && first > 0 && first%1_000_000 == 0 {
			fmt.Fprintf(os.Stderr, "%s: %d events appended\n", time.Now().Format(time.TimeOnly), first)
		}
		select {
		case batches <- first:
		case err := <-errs:
			b.Fatal(err)
		}
	}
	close(batches)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := a.Store.WaitApplied(ctx, a.Journal.Last()); err != nil {
		b.Fatal(err)
	}
}
