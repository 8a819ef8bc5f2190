package console_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/opentrail/opentrail/internal/app"
	"github.com/opentrail/opentrail/internal/server"
)

var updateScreenshots = flag.Bool("update-screenshots", os.Getenv("OPENTRAIL_UPDATE_SCREENSHOTS") == "1",
	"write docs/screenshots/console-*.png from the browser tests")

const (
	rootID     = "AKIATESTROOT00000001"
	rootSecret = "test-root-secret-0123456789abcdefghijkl"
	acctA      = "111111111111"
	acctB      = "222222222222"
)

type key struct{ id, secret string }

// env is a real OpenTrail server (app.Open behind an HTTP listener) and one headless Chromium.
type env struct {
	t   *testing.T
	a   *app.App
	url string
	ctx context.Context // the browser tab

	mu     sync.Mutex
	jsErrs []string
}

func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("OPENTRAIL_REQUIRE_SERVERS") == "1" {
		t.Fatal("chromium is not installed (apt-get install chromium) and OPENTRAIL_REQUIRE_SERVERS=1")
	}
	t.Skip("chromium is not installed; the browser tests need it (apt-get install chromium)")
	return ""
}

func start(t *testing.T) *env {
	exe := chromiumPath(t)
	// Account A is the root key's, so that the folder buckets (owned by the root's account) are A's.
	// With detection rules, so that Findings shows findings.
	a, err := app.Open(context.Background(), app.Config{DataDir: t.TempDir(), RootKeyID: rootID, RootKey: rootSecret, Account: acctA, CacheMiB: 16,
		RulePaths: []string{filepath.Join("..", "detect", "testdata", "rules")}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(a.Handler)
	t.Cleanup(func() { ts.Close(); a.Close() })

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900), chromedp.Flag("disable-gpu", true), chromedp.Flag("hide-scrollbars", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx, chromedp.WithErrorf(func(format string, args ...any) {
		if !strings.HasPrefix(format, "unhandled") { // events of newer Chromium versions than chromedp knows
			t.Logf("chromedp: "+format, args...)
		}
	}))
	t.Cleanup(func() { cancelB(); cancelA() })
	e := &env{t: t, a: a, url: ts.URL, ctx: ctx}
	chromedp.ListenTarget(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError || ev.Type == runtime.APITypeAssert {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				msg = "console.error: " + strings.Join(parts, " ")
			}
		case *cdplog.EventEntryAdded:
			// HTTP errors the console expects (a reader's refused call answers 403) are logged by
			// Chromium as network entries; everything else at error level (CSP violations,
			// script errors) fails the test.
			if ev.Entry.Level == cdplog.LevelError && ev.Entry.Source != cdplog.SourceNetwork {
				msg = fmt.Sprintf("log %s: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		}
		if msg != "" {
			e.mu.Lock()
			e.jsErrs = append(e.jsErrs, msg)
			e.mu.Unlock()
		}
	})
	if err := chromedp.Run(ctx, cdplog.Enable(), runtime.Enable(), accessibility.Enable()); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return e
}

// run runs browser actions with a deadline, failing the test with what went wrong.
func (e *env) run(what string, actions ...chromedp.Action) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		var body string
		dctx, dcancel := context.WithTimeout(e.ctx, 2*time.Second)
		chromedp.Run(dctx, chromedp.Evaluate(`location.href + "\n" + document.body.innerText`, &body))
		dcancel()
		e.mu.Lock()
		defer e.mu.Unlock()
		e.t.Fatalf("%s: %v\npage: %s\nJavaScript errors: %s", what, err, body, strings.Join(e.jsErrs, "\n"))
	}
}

// sub runs a subtest whose failures the env's helpers report.
func (e *env) sub(name string, f func(t *testing.T)) {
	parent := e.t
	parent.Run(name, func(t *testing.T) {
		e.t = t
		defer func() { e.t = parent }()
		f(t)
	})
}

func (e *env) noJSErrors() {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.jsErrs) > 0 {
		e.t.Errorf("JavaScript errors in the console:\n%s", strings.Join(e.jsErrs, "\n"))
		e.jsErrs = nil
	}
}

// post sends a SigV4-signed POST (the API, not the console).
func (e *env) post(k key, path string, body []byte) []byte {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: k.id, SecretAccessKey: k.secret},
		req, hex.EncodeToString(sum[:]), "cloudtrail", "us-east-1", time.Now()); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		e.t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}

func (e *env) newKey(account, user, role string) key {
	b := e.post(key{rootID, rootSecret}, "/v1/keys", fmt.Appendf(nil, `{"Account":%q,"User":%q,"Role":%q}`, account, user, role))
	var out server.CreateKeyResponse
	json.Unmarshal(b, &out)
	return key{out.AccessKeyID, out.SecretAccessKey}
}

// ingest sends records for k's account and waits until event history and findings show them.
func (e *env) ingest(k key, records ...string) {
	e.post(k, "/v1/records", []byte(`{"Records":[`+strings.Join(records, ",")+`]}`))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.a.Store.WaitApplied(ctx, e.a.Journal.Last()); err != nil {
		e.t.Fatal(err)
	}
	if err := e.a.Detect.WaitApplied(ctx, e.a.Journal.Last()); err != nil {
		e.t.Fatal(err)
	}
}

func record(name, user, ip string, at time.Time) string {
	return fmt.Sprintf(`{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","userName":%q,"arn":"arn:aws:iam::%s:user/%s"},`+
		`"eventTime":%q,"eventSource":"orders.example.com","eventName":%q,"awsRegion":"us-east-1","sourceIPAddress":%q,`+
		`"userAgent":"test","requestParameters":{"orderId":"o-1"},"responseElements":null,"readOnly":false,"eventType":"AwsApiCall",`+
		`"managementEvent":true,"eventCategory":"Management","resources":[{"type":"Example::Order","ARN":"arn:aws:example:us-east-1:%s:order/o-1"}]}`,
		user, acctA, user, at.UTC().Format(time.RFC3339), name, ip, acctA)
}

// inRegion moves a record made by record to another region.
func inRegion(rec, region string) string {
	return strings.Replace(rec, `"awsRegion":"us-east-1"`, `"awsRegion":"`+region+`"`, 1)
}

// stopLogging is a record that the rule "CloudTrail Logging Stopped"
// (../detect/testdata/rules/stop_logging.yml) turns into a finding.
func stopLogging(account, id, user string, at time.Time) string {
	return fmt.Sprintf(`{"eventVersion":"1.08","eventID":%q,"userIdentity":{"type":"IAMUser","userName":%q,"arn":"arn:aws:iam::%s:user/%s"},`+
		`"eventTime":%q,"eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging","awsRegion":"us-east-1","sourceIPAddress":"10.6.6.6",`+
		`"userAgent":"test","requestParameters":{"name":"main"},"responseElements":null,"readOnly":false,"eventType":"AwsApiCall",`+
		`"managementEvent":true,"eventCategory":"Management","recipientAccountId":%q}`, id, user, account, user, at.UTC().Format(time.RFC3339), account)
}

func (e *env) ct(k key) *cloudtrail.Client {
	return cloudtrail.New(cloudtrail.Options{BaseEndpoint: aws.String(e.url), Region: "us-east-1", RetryMaxAttempts: 1,
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: k.id, SecretAccessKey: k.secret}, nil
		}))})
}

func (e *env) logs(k key) *cloudwatchlogs.Client {
	return cloudwatchlogs.New(cloudwatchlogs.Options{BaseEndpoint: aws.String(e.url), Region: "us-east-1", RetryMaxAttempts: 1,
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: k.id, SecretAccessKey: k.secret}, nil
		}))})
}

// signIn signs in through the form and waits for the dashboard.
func (e *env) signIn(k key) {
	e.t.Helper()
	e.run("sign in",
		chromedp.Navigate(e.url+"/"),
		chromedp.WaitVisible("#signin-form", chromedp.ByQuery),
		chromedp.SendKeys("#akid", k.id, chromedp.ByQuery),
		chromedp.SendKeys("#secret", k.secret, chromedp.ByQuery),
		chromedp.Click("#signin-btn", chromedp.ByQuery),
		chromedp.WaitVisible("#topbar", chromedp.ByQuery),
		chromedp.WaitVisible("#dash-chart svg", chromedp.ByQuery),
	)
}

func (e *env) signOut() {
	e.t.Helper()
	e.run("sign out", chromedp.Click("#signout", chromedp.ByQuery), chromedp.WaitVisible("#signin-form", chromedp.ByQuery))
}

// goPage opens a console page and waits for sel.
func (e *env) goPage(page, sel string) {
	e.t.Helper()
	e.run("open "+page, chromedp.Navigate(e.url+"/console/#/"+page), chromedp.WaitVisible(sel, chromedp.ByQuery))
}

func (e *env) text(sel string) string {
	e.t.Helper()
	var s string
	e.run("read "+sel, chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

// waitText waits until the text of sel contains want.
func (e *env) waitText(sel, want string, within time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(within)
	var got string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(e.ctx, time.Second)
		err := chromedp.Run(ctx, chromedp.Evaluate(fmt.Sprintf(`(document.querySelector(%q)||{}).textContent||""`, sel), &got))
		cancel()
		if err == nil && strings.Contains(got, want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("%s did not show %q within %v; it shows %q", sel, want, within, got)
}

// pressEnter presses Enter as a keyboard does: one keyDown that, unless a handler prevents
// it, also makes a keypress. (chromedp.KeyEvent sends the keypress apart from the keyDown, so
// a row that opens a dialog on keydown would also press the dialog's focused button.)
func pressEnter() chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		if err := input.DispatchKeyEvent(input.KeyDown).WithKey("Enter").WithCode("Enter").WithText("\r").
			WithWindowsVirtualKeyCode(13).WithNativeVirtualKeyCode(13).Do(ctx); err != nil {
			return err
		}
		return input.DispatchKeyEvent(input.KeyUp).WithKey("Enter").WithCode("Enter").WithWindowsVirtualKeyCode(13).WithNativeVirtualKeyCode(13).Do(ctx)
	})
}

// choose picks value in the select sel and fires its change event, as a user's choice does.
func (e *env) choose(sel, value string) {
	e.t.Helper()
	var ok bool
	e.run("choose "+value+" in "+sel, chromedp.WaitReady(fmt.Sprintf(`%s option[value=%q]`, sel, value), chromedp.ByQuery),
		chromedp.Evaluate(fmt.Sprintf(`(() => { const s = document.querySelector(%q); s.value = %q; s.dispatchEvent(new Event("change", {bubbles: true})); return s.value === %q; })()`,
			sel, value, value), &ok))
	if !ok {
		e.t.Fatalf("%s has no option %q", sel, value)
	}
}

// shot saves a screenshot of the page as docs/screenshots/console-<name>.png when asked to.
func (e *env) shot(name string) { e.shotAt(name, "") }

// shotFull saves a screenshot of the whole page, below the window's height too.
func (e *env) shotFull(name string) { e.shotAt(name, "*") }

// shotAt scrolls sel into view (unless empty) and saves a screenshot.
func (e *env) shotAt(name, sel string) {
	e.t.Helper()
	if !*updateScreenshots {
		return
	}
	var png []byte
	if sel != "" && sel != "*" {
		e.run("scroll to "+sel, chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%q).scrollIntoView({block: "start"})`, sel), nil))
	}
	time.Sleep(300 * time.Millisecond) // let transitions settle
	if sel == "*" {
		e.run("screenshot "+name, chromedp.FullScreenshot(&png, 100)) // quality 100: PNG
	} else {
		e.run("screenshot "+name, chromedp.CaptureScreenshot(&png))
	}
	path := filepath.Join("..", "..", "docs", "screenshots", "console-"+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		e.t.Fatal(err)
	}
	// Committed screenshots stay small: pngquant (apt-get install pngquant), where present, takes ~2/3 off.
	if q, err := exec.LookPath("pngquant"); err == nil {
		if out, err := exec.Command(q, "--quality", "70-95", "--strip", "--force", "--output", path, path).CombinedOutput(); err != nil {
			e.t.Logf("pngquant %s: %v %s", path, err, out)
		}
	}
}

func TestConsoleInBrowser(t *testing.T) {
	e := start(t)
	defer e.noJSErrors()
	if err := e.a.Buckets.CreateBucket(context.Background(), "console-trail-bucket"); err != nil {
		t.Fatal(err)
	}
	admin := e.newKey(acctA, "alice", "admin")
	reader := e.newKey(acctA, "auditor", "reader")
	other := e.newKey(acctB, "bob", "admin")
	eds, err := e.ct(admin).CreateEventDataStore(context.Background(), &cloudtrail.CreateEventDataStoreInput{Name: aws.String("all-events")})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var recs []string
	for i := range 30 {
		name := []string{"CreateOrder", "GetOrder", "CancelOrder"}[i%3]
		recs = append(recs, record(name, []string{"alice", "carol"}[i%2], fmt.Sprintf("10.0.0.%d", i%5+1), now.Add(-time.Duration(i)*time.Minute)))
	}
	e.ingest(admin, recs...)
	e.ingest(other, strings.Replace(record("OtherAccountSecret", "bob", "10.9.9.9", now), acctA, acctB, -1))
	// A finding for each account, and an event of A's in another region.
	const stopA, stopB = "aaaaaaaa-0000-4000-8000-00000000000a", "bbbbbbbb-0000-4000-8000-00000000000b"
	e.ingest(admin, stopLogging(acctA, stopA, "mallory", now.Add(-2*time.Minute)), inRegion(record("EuropeOrder", "zoe", "10.7.7.7", now.Add(-3*time.Minute)), "eu-west-1"))
	e.ingest(other, stopLogging(acctB, stopB, "bob", now.Add(-2*time.Minute)))
	if err := os.MkdirAll(filepath.Join("..", "..", "docs", "screenshots"), 0o755); err != nil && *updateScreenshots {
		t.Fatal(err)
	}

	e.sub("RedirectAndHeaders", func(t *testing.T) {
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Get(e.url + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/console/" {
			t.Errorf("GET / = %d Location %q, want 302 to /console/", resp.StatusCode, resp.Header.Get("Location"))
		}
		resp, err = http.Get(e.url + "/console/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("Content-Security-Policy = %q", csp)
		}
	})

	e.signIn(admin)
	e.waitText("#dash-names", "CreateOrder", 5*time.Second)

	e.sub("DashboardLagAndFindings", func(t *testing.T) {
		e.waitText("#dash-findings", "CloudTrail Logging Stopped", 5*time.Second)
		// Event history has applied everything ingest waited for; the other projections catch up.
		e.waitText(`#dash-lag li[data-projection="event_history"]`, "caught up", 5*time.Second)
		got := e.text("#dash-lag")
		for _, want := range []string{"Event history", "Lake", "Trail delivery", "Log groups", "Insights", "Detections"} {
			if !strings.Contains(got, want) {
				t.Errorf("projection lag lacks %s: %q", want, got)
			}
		}
		if strings.Contains(got, "entries") || strings.Contains(got, "entry") {
			t.Errorf("an account admin sees node-wide entry counts: %q", got)
		}
	})
	e.shotFull("dashboard")

	e.sub("OwnEventsOnly", func(t *testing.T) {
		e.goPage("events", "#ev-table tbody tr[data-event-id]")
		got := e.text("#ev-table tbody")
		if !strings.Contains(got, "CreateOrder") || !strings.Contains(got, "alice") {
			t.Errorf("event history lacks the account's events: %q", got)
		}
		if strings.Contains(got, "OtherAccountSecret") {
			t.Errorf("event history shows another account's event")
		}
		e.shot("events")
		var hidden []bool
		e.run("hide the Source IP column",
			chromedp.Click("#ev-columns summary", chromedp.ByQuery), chromedp.Click("#col-5", chromedp.ByQuery),
			chromedp.Evaluate(`[document.querySelector("#ev-table thead th:nth-child(6)").hidden, document.querySelector("#ev-table tbody tr td:nth-child(6)").hidden]`, &hidden),
			chromedp.Click("#col-5", chromedp.ByQuery), chromedp.Click("#ev-columns summary", chromedp.ByQuery))
		if len(hidden) != 2 || !hidden[0] || !hidden[1] {
			t.Errorf("after unticking Source IP, its header and cells hidden = %v", hidden)
		}
	})

	e.sub("FilterAndOpen", func(t *testing.T) {
		e.run("filter by event name",
			chromedp.SetValue("#ev-attr", "EventName", chromedp.ByQuery),
			chromedp.SetValue("#ev-value", "CancelOrder", chromedp.ByQuery),
			chromedp.Click("#ev-apply", chromedp.ByQuery))
		e.waitText("#ev-status", "10 events on this page", 5*time.Second)
		var names []string
		e.run("read names", chromedp.Evaluate(`[...document.querySelectorAll("#ev-table tbody tr")].map(r => r.cells[2].textContent)`, &names))
		if len(names) != 10 {
			t.Fatalf("filtered rows = %d (%v), want the 10 CancelOrder events", len(names), names)
		}
		for _, n := range names {
			if n != "CancelOrder" {
				t.Errorf("row %q in a CancelOrder filter", n)
			}
		}
		e.run("open the first event", chromedp.Click("#ev-table tbody tr", chromedp.ByQuery), chromedp.WaitVisible("#detail-json", chromedp.ByQuery))
		js := e.text("#detail-json")
		var rec map[string]any
		if err := json.Unmarshal([]byte(js), &rec); err != nil || rec["eventName"] != "CancelOrder" || rec["recipientAccountId"] != acctA {
			t.Errorf("detail is not the record as JSON (%v): %s", err, js)
		}
		e.shot("event-detail")
		e.run("close", chromedp.Click("#detail-close", chromedp.ByQuery), chromedp.WaitNotVisible("#detail", chromedp.ByQuery))
	})

	e.sub("Live", func(t *testing.T) {
		e.run("live on",
			chromedp.SetValue("#ev-value", "ShipOrder", chromedp.ByQuery),
			chromedp.Click("#ev-apply", chromedp.ByQuery))
		e.waitText("#ev-status", "0 events", 5*time.Second)
		e.run("live on", chromedp.Click("#ev-live", chromedp.ByQuery))
		e.waitText("#ev-status", "Live:", 5*time.Second)
		e.post(admin, "/v1/records", []byte(`{"Records":[`+record("ShipOrder", "dave", "10.1.1.1", time.Now())+`]}`))
		e.waitText("#ev-table tbody", "ShipOrder", 2*time.Second)
		if got := e.text("#ev-table tbody"); !strings.Contains(got, "dave") {
			t.Errorf("live row lacks its user: %q", got)
		}
	})

	e.sub("Findings", func(t *testing.T) {
		e.goPage("findings", "#findings-table")
		got := e.text("#findings-table")
		for _, want := range []string{"CloudTrail Logging Stopped", "critical", "0d7f1c33-6a6b-4bb4-9a1e-1f5cc0a8f003", stopA[:12]} {
			if !strings.Contains(got, want) {
				t.Errorf("findings lack %q: %q", want, got)
			}
		}
		if strings.Contains(got, stopB[:12]) {
			t.Errorf("findings show another account's: %q", got)
		}
		e.shot("findings")
		e.run("open the finding's event", chromedp.Click(`#findings-table a[title="`+stopA+`"]`, chromedp.ByQuery),
			chromedp.WaitVisible(`#ev-table tbody tr[data-event-id="`+stopA+`"]`, chromedp.ByQuery))
		if got := e.text("#ev-table tbody"); !strings.Contains(got, "StopLogging") || !strings.Contains(got, "mallory") {
			t.Errorf("the finding's event link shows %q", got)
		}
	})

	e.sub("RegionPicker", func(t *testing.T) {
		e.goPage("events", "#ev-table tbody tr[data-event-id]")
		if got := e.text("#ev-table tbody"); strings.Contains(got, "EuropeOrder") {
			t.Errorf("us-east-1 shows an eu-west-1 event: %q", got)
		}
		e.choose("#region", "eu-west-1") // offered: the account has events there
		e.waitText("#page-region", "eu-west-1", 5*time.Second)
		e.waitText("#ev-table tbody", "EuropeOrder", 5*time.Second)
		if got := e.text("#ev-table tbody"); strings.Contains(got, "CreateOrder") || strings.Contains(got, "StopLogging") {
			t.Errorf("eu-west-1 shows us-east-1 events: %q", got)
		}
		// The choice is the session's: a reload keeps it.
		e.run("reload", chromedp.Reload(), chromedp.WaitVisible("#ev-table tbody tr[data-event-id]", chromedp.ByQuery))
		e.waitJS(`document.querySelector("#region").value === "eu-west-1"`)
		if got, region := e.text("#ev-table tbody"), e.text("#page-region"); !strings.Contains(got, "EuropeOrder") || strings.Contains(got, "CreateOrder") || region != "eu-west-1" {
			t.Errorf("after a reload, %s shows %q", region, got)
		}
		// Live mode streams the region's events only.
		e.run("live on", chromedp.Click("#ev-live", chromedp.ByQuery))
		e.waitText("#ev-status", "Live:", 5*time.Second)
		e.post(admin, "/v1/records", []byte(`{"Records":[`+record("HomeLive", "dave", "10.1.1.1", time.Now())+","+
			inRegion(record("EuropeLive", "zoe", "10.7.7.7", time.Now()), "eu-west-1")+`]}`))
		e.waitText("#ev-table tbody", "EuropeLive", 2*time.Second)
		if got := e.text("#ev-table tbody"); strings.Contains(got, "HomeLive") {
			t.Errorf("live mode in eu-west-1 shows a us-east-1 event: %q", got)
		}
		e.goPage("dashboard", "#dash-chart svg")
		e.waitText("#dash-names", "EuropeOrder", 5*time.Second)
		if got := e.text("#dash-names"); strings.Contains(got, "CreateOrder") {
			t.Errorf("the dashboard in eu-west-1 counts us-east-1 events: %q", got)
		}
		e.goPage("findings", "#no-findings") // the StopLogging finding is us-east-1's
		// A region typed in: checked as the API checks a signing region.
		e.choose("#region", "*other")
		e.run("type a bad region", chromedp.WaitVisible("#region-other", chromedp.ByQuery), chromedp.SendKeys("#region-other", "Mars", chromedp.ByQuery),
			chromedp.Click("#region-go", chromedp.ByQuery))
		e.waitText("#region-error", "not a region name", 5*time.Second)
		e.run("type a region", chromedp.Evaluate(`document.querySelector("#region-other").value = ""`, nil), chromedp.SendKeys("#region-other", "ap-south-1", chromedp.ByQuery),
			chromedp.Click("#region-go", chromedp.ByQuery))
		e.waitText("#page-region", "ap-south-1", 5*time.Second)
		e.waitText("#no-findings", "ap-south-1", 5*time.Second)
		e.choose("#region", "us-east-1")
		e.waitText("#page-region", "us-east-1", 5*time.Second)
		e.waitText("#findings-table", "CloudTrail Logging Stopped", 5*time.Second)
	})

	e.sub("Lake", func(t *testing.T) {
		id := aws.ToString(eds.EventDataStoreArn)
		id = id[strings.LastIndex(id, "/")+1:]
		e.goPage("lake", "#lake-sql")
		e.run("run a query",
			chromedp.SetValue("#lake-sql", "SELECT eventName, count(*) AS events FROM "+id+" WHERE eventSource = 'orders.example.com' GROUP BY eventName ORDER BY events DESC, eventName", chromedp.ByQuery),
			chromedp.Click("#lake-run", chromedp.ByQuery),
			chromedp.WaitVisible("#lake-table", chromedp.ByQuery),
			chromedp.WaitVisible("#lake-chart svg rect.bar", chromedp.ByQuery))
		got := e.text("#lake-table")
		for _, want := range []string{"eventName", "events", "CancelOrder", "10"} {
			if !strings.Contains(got, want) {
				t.Errorf("results table lacks %q: %q", want, got)
			}
		}
		var bars int
		e.run("count bars", chromedp.Evaluate(`document.querySelectorAll("#lake-chart svg rect.bar").length`, &bars))
		if bars < 3 {
			t.Errorf("chart has %d bars, want one per event name (at least 3)", bars)
		}
		e.waitText("#lake-history", "FINISHED", 5*time.Second)
		e.shotAt("lake", "#lake-res")
	})

	e.sub("CreateAndStartTrail", func(t *testing.T) {
		e.goPage("trails", "#trail-create")
		e.run("create a trail",
			chromedp.SendKeys("#trail-name", "console-trail", chromedp.ByQuery),
			chromedp.SendKeys("#trail-bucket", "console-trail-bucket", chromedp.ByQuery),
			chromedp.Click("#trail-create-btn", chromedp.ByQuery),
			chromedp.WaitVisible(`tr[data-trail="console-trail"] button.trail-start`, chromedp.ByQuery),
			chromedp.Click(`tr[data-trail="console-trail"] button.trail-start`, chromedp.ByQuery),
			chromedp.WaitVisible(`tr[data-trail="console-trail"] button.trail-stop`, chromedp.ByQuery))
		st, err := e.ct(admin).GetTrailStatus(context.Background(), &cloudtrail.GetTrailStatusInput{Name: aws.String("console-trail")})
		if err != nil || !aws.ToBool(st.IsLogging) {
			t.Fatalf("trail after Start logging: %v %v", st, err)
		}
		e.run("details", chromedp.Click(`tr[data-trail="console-trail"] button:not(.trail-stop)`, chromedp.ByQuery))
		e.waitText("#trail-detail", "Logs management events", 5*time.Second)
		e.shot("trails")
	})

	e.sub("TailLogGroup", func(t *testing.T) {
		ctx := context.Background()
		if _, err := e.logs(admin).CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("/opentrail/orders")}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.ct(admin).CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("to-logs"), S3BucketName: aws.String("console-trail-bucket"),
			CloudWatchLogsLogGroupArn: aws.String("arn:aws:logs:us-east-1:" + acctA + ":log-group:/opentrail/orders:*"),
			CloudWatchLogsRoleArn:     aws.String("arn:aws:iam::" + acctA + ":role/CloudTrail_CloudWatchLogs_Role")}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.ct(admin).StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: aws.String("to-logs")}); err != nil {
			t.Fatal(err)
		}
		e.goPage("logs", "#lg-table")
		e.run("tail", chromedp.SetValue("#tail-pattern", `{ $.eventName = "RefundOrder" }`, chromedp.ByQuery), chromedp.Click("#tail-start", chromedp.ByQuery))
		e.waitText("main", "Tailing /opentrail/orders", 5*time.Second)
		e.post(admin, "/v1/records", []byte(`{"Records":[`+record("GetOrder", "erin", "10.2.2.2", time.Now())+","+record("RefundOrder", "erin", "10.2.2.2", time.Now())+`]}`))
		e.waitText("#tail-out", "RefundOrder", 5*time.Second)
		if got := e.text("#tail-out"); strings.Contains(got, `"GetOrder"`) {
			t.Errorf("the tail shows an event its filter pattern excludes: %q", got)
		}
		e.shot("log-groups")
	})

	e.sub("OtherPages", func(t *testing.T) {
		e.goPage("stores", "#stores-table")
		e.run("store details", chromedp.Click("#stores-table button", chromedp.ByQuery))
		e.waitText("#store-detail", "Selectors", 5*time.Second)
		e.shot("event-data-stores")
		e.goPage("insights", "#no-insights")
		// An insight, as an archive import brings them: the page lists it and charts its metric
		// data, or says plainly that this server does not answer ListInsightsMetricData.
		e.ingest(admin, fmt.Sprintf(`{"eventVersion":"1.08","eventTime":%q,"awsRegion":"us-east-1","eventID":"11111111-2222-3333-4444-555555555555",`+
			`"eventType":"AwsCloudTrailInsight","recipientAccountId":%q,"sharedEventID":"66666666-2222-3333-4444-555555555555",`+
			`"insightDetails":{"state":"Start","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","insightType":"ApiCallRateInsight",`+
			`"insightContext":{"statistics":{"baseline":{"average":0.3},"insight":{"average":6},"insightDuration":4}}},"eventCategory":"Insight"}`,
			time.Now().Add(-10*time.Minute).UTC().Format(time.RFC3339), acctA))
		e.goPage("findings", "#findings-table") // leave the page: opening the same hash again does not reload it
		e.goPage("insights", "#insight-chart")
		e.waitText("#insights", "RunInstances", 5*time.Second)
		deadline := time.Now().Add(5 * time.Second)
		for {
			var state string
			e.run("insight chart", chromedp.Evaluate(`document.querySelector("#insight-chart svg") ? "chart" : document.querySelector("#insight-chart").textContent`, &state))
			if state == "chart" || strings.Contains(state, "does not answer ListInsightsMetricData") {
				t.Logf("insight chart: %.80s", state)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("insight chart shows %q", state)
			}
			time.Sleep(50 * time.Millisecond)
		}
		e.shot("insights")
	})

	// Every page, once loaded: each control has an accessible name, text meets WCAG AA contrast.
	e.sub("Accessibility", func(t *testing.T) {
		for _, p := range a11yPages {
			e.goPage(p.page, p.ready)
			e.checkA11y(p.page)
		}
		// The checks find what they look for: a nameless button and grey text on white.
		e.run("spoil the page", chromedp.Evaluate(`(() => { const b = document.createElement("button"); b.id = "spoiled";
			const p = document.createElement("p"); p.textContent = "faint text"; p.style.color = "#999"; p.style.background = "#fff";
			document.querySelector("main").append(b, p); })()`, nil))
		got := strings.Join(e.a11yProblems(), "\n")
		if !strings.Contains(got, `<button id="spoiled">`) || !strings.Contains(got, "faint text") {
			t.Errorf("the checks missed a nameless button or faint text: %s", got)
		}
	})

	e.sub("Keyboard", func(t *testing.T) {
		e.goPage("events", "#ev-table tbody tr[data-event-id]")
		// From the page's heading, Tab walks the filters to the first event.
		var row string
		for i := 0; ; i++ {
			if i == 40 {
				t.Fatal("40 Tabs did not reach an event row")
			}
			e.run("tab", chromedp.KeyEvent(kb.Tab), chromedp.Evaluate(`document.activeElement.matches("#ev-table tbody tr") ? document.activeElement.dataset.eventId : ""`, &row))
			if row != "" {
				break
			}
		}
		var focused string
		e.run("open with Enter", pressEnter(), chromedp.WaitVisible("#detail-json", chromedp.ByQuery),
			chromedp.Evaluate(`document.activeElement.id`, &focused))
		if focused != "detail-close" {
			t.Errorf("the opened event focuses %q, want its Close button", focused)
		}
		e.run("close with Escape", chromedp.KeyEvent(kb.Escape), chromedp.WaitNotVisible("#detail", chromedp.ByQuery),
			chromedp.Evaluate(`document.activeElement.dataset.eventId || document.activeElement.id`, &focused))
		if focused != row {
			t.Errorf("closing the event focuses %q, want its row %q", focused, row)
		}
	})

	e.sub("Audited", func(t *testing.T) {
		for _, name := range []string{"ConsoleLogin", "CreateTrail"} {
			out, err := e.ct(admin).LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{{
				AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String(name)}}})
			if err != nil || len(out.Events) == 0 {
				t.Fatalf("no %s record: %v", name, err)
			}
			found := false
			for _, ev := range out.Events {
				var rec struct{ UserAgent string }
				json.Unmarshal([]byte(aws.ToString(ev.CloudTrailEvent)), &rec)
				found = found || strings.HasPrefix(rec.UserAgent, "opentrail-console/1 (")
			}
			if !found {
				t.Errorf("no %s record has a userAgent naming the console", name)
			}
		}
	})

	e.sub("ForgedCrossSitePost", func(t *testing.T) {
		var cookies []*network.Cookie
		e.run("cookies", chromedp.ActionFunc(func(ctx context.Context) error {
			var err error
			cookies, err = network.GetCookies().WithURLs([]string{e.url + "/console/"}).Do(ctx)
			return err
		}))
		var session *network.Cookie
		for _, c := range cookies {
			if c.Name == "opentrail_console" {
				session = c
			}
		}
		if session == nil || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict {
			t.Fatalf("session cookie = %+v, want HttpOnly and SameSite=Strict", session)
		}
		var csrf string
		e.run("csrf", chromedp.Evaluate(`state.session.csrf`, &csrf))
		for _, c := range []struct{ name, origin, token, want string }{
			{"other origin, right token", "https://evil.example", csrf, "CrossSiteRequestRefused"},
			{"no token", "", "", "InvalidCSRFToken"},
			{"wrong token", e.url, "x" + csrf, "InvalidCSRFToken"},
		} {
			req, _ := http.NewRequest(http.MethodPost, e.url+"/console/api/call/cloudtrail/CreateTrail",
				strings.NewReader(`{"Name":"forged","S3BucketName":"console-trail-bucket"}`))
			req.Header.Set("Content-Type", "application/json")
			req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
			if c.origin != "" {
				req.Header.Set("Origin", c.origin)
			}
			if c.token != "" {
				req.Header.Set("X-CSRF-Token", c.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), c.want) {
				t.Errorf("%s: %d %s, want 403 %s", c.name, resp.StatusCode, b, c.want)
			}
		}
		// A form a cross-site page submits carries neither the cookie (SameSite=Strict) nor JSON.
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<form method=post action="%s/console/api/call/cloudtrail/CreateTrail" enctype="text/plain">`+
				`<input name='{"Name":"forged2","S3BucketName":"console-trail-bucket","x":"' value='"}'></form>`, e.url)
		}))
		defer evil.Close()
		e.noJSErrors()
		evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1) // another site than the console's 127.0.0.1
		var body string
		e.run("forged form", chromedp.Navigate(evilURL), chromedp.Submit("form", chromedp.ByQuery),
			chromedp.Sleep(500*time.Millisecond), chromedp.Text("body", &body, chromedp.ByQuery))
		if !strings.Contains(body, "CrossSiteRequestRefused") && !strings.Contains(body, "NotSignedIn") {
			t.Errorf("forged form answered %q", body)
		}
		trails, _ := e.ct(admin).DescribeTrails(context.Background(), &cloudtrail.DescribeTrailsInput{})
		for _, tr := range trails.TrailList {
			if strings.HasPrefix(aws.ToString(tr.Name), "forged") {
				t.Errorf("a forged request created trail %s", aws.ToString(tr.Name))
			}
		}
		e.mu.Lock()
		e.jsErrs = nil // the evil page is not the console (the console's own were reported before it)
		e.mu.Unlock()
	})

	// Dark mode and a phone's width render the pages without a JavaScript error on every run;
	// the screenshots are written only with -update-screenshots.
	e.sub("DarkAndPhone", func(t *testing.T) {
		e.run("dark", emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}))
		for _, p := range a11yPages {
			e.goPage(p.page, p.ready)
			e.checkA11y(p.page + " (dark)")
		}
		e.goPage("events", "#ev-table tbody tr[data-event-id]")
		e.shot("events-dark")
		e.goPage("dashboard", "#dash-chart svg")
		e.waitText("#dash-names", "CreateOrder", 5*time.Second)
		e.shot("dashboard-dark")
		e.run("phone", emulation.SetDeviceMetricsOverride(390, 844, 2, true))
		// At a phone's width no page is wider than the screen: wide tables scroll in their own box.
		for _, p := range a11yPages {
			e.goPage(p.page, p.ready)
			var overflow int
			e.run("width of "+p.page, chromedp.Evaluate(`document.documentElement.scrollWidth - document.documentElement.clientWidth`, &overflow))
			if overflow > 0 {
				t.Errorf("%s is %d px wider than a phone's screen", p.page, overflow)
			}
		}
		e.goPage("events", "#ev-table tbody tr[data-event-id]")
		e.shot("events-phone")
		e.run("desktop", emulation.ClearDeviceMetricsOverride(),
			emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "light"}}))
	})

	e.sub("SignOut", func(t *testing.T) {
		e.goPage("dashboard", "#dash-chart svg")
		e.signOut()
		var signedIn bool
		e.run("session", chromedp.Evaluate(`fetch("/console/api/session").then(r => r.json()).then(j => !!j.csrf)`, &signedIn,
			func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
		if signedIn {
			t.Error("still signed in after signing out")
		}
	})

	e.sub("ReaderCannotCreateTrail", func(t *testing.T) {
		e.signIn(reader)
		e.goPage("trails", "#trail-create")
		e.run("try to create a trail",
			chromedp.SendKeys("#trail-name", "reader-trail", chromedp.ByQuery),
			chromedp.SendKeys("#trail-bucket", "console-trail-bucket", chromedp.ByQuery),
			chromedp.Click("#trail-create-btn", chromedp.ByQuery))
		e.waitText("#trail-create-status", "AccessDeniedException", 5*time.Second)
		if _, err := e.ct(admin).GetTrailStatus(context.Background(), &cloudtrail.GetTrailStatusInput{Name: aws.String("reader-trail")}); err == nil {
			t.Error("the reader's trail exists")
		}
		e.signOut()
	})

	e.sub("OtherAccountFindings", func(t *testing.T) {
		e.signIn(other)
		e.goPage("findings", "#findings-table")
		if got := e.text("#findings-table"); !strings.Contains(got, stopB[:12]) || strings.Contains(got, stopA[:12]) {
			t.Errorf("account B's findings: %q", got)
		}
		e.signOut()
	})

	// The operator (root) sees how many journal entries each projection has yet to apply.
	e.sub("OperatorLag", func(t *testing.T) {
		e.signIn(key{rootID, rootSecret})
		e.waitText(`#dash-lag li[data-projection="event_history"]`, "entries", 5*time.Second)
		e.signOut()
	})

	e.sub("WrongSecret", func(t *testing.T) {
		e.run("bad sign-in",
			chromedp.SendKeys("#akid", admin.id, chromedp.ByQuery),
			chromedp.SendKeys("#secret", "wrong", chromedp.ByQuery),
			chromedp.Click("#signin-btn", chromedp.ByQuery))
		e.waitText("#signin-error", "wrong", 5*time.Second)
		e.shot("signin")
	})
}
