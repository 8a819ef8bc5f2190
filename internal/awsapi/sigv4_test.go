package awsapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/smithy-go"
)

const (
	testKey    = "AKIDEXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
)

func testVerifier(now func() time.Time) *Verifier {
	return &Verifier{
		Lookup: func(id string) (string, bool) {
			if id == testKey {
				return testSecret, true
			}
			return "", false
		},
		Now: now,
	}
}

// verifyServer answers every request like DescribeTrails once v has
// verified it, and remembers the SignedHeaders of the last request.
type verifyServer struct {
	*httptest.Server
	mu            sync.Mutex
	signedHeaders string
}

var signedHeadersRE = regexp.MustCompile(`SignedHeaders=([^,]*)`)

func newVerifyServer(t *testing.T, v *Verifier) *verifyServer {
	s := &verifyServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := signedHeadersRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
			s.mu.Lock()
			s.signedHeaders = m[1]
			s.mu.Unlock()
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			WriteError(w, "test-request", err, slog.New(slog.DiscardHandler))
			return
		}
		scope, err := v.Verify(r, body)
		if err != nil {
			WriteError(w, "test-request", err, slog.New(slog.DiscardHandler))
			return
		}
		w.Header().Set("X-Test-Scope", strings.Join([]string{scope.AccessKeyID, scope.Date, scope.Region, scope.Service}, "/"))
		WriteJSON(w, "test-request", http.StatusOK, map[string]any{"trailList": []any{}})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *verifyServer) lastSignedHeaders() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signedHeaders
}

// outcome is how a request fared: "ok" or the error code, plus the message.
type outcome struct {
	status  int
	code    string
	message string
}

var (
	t0830 = time.Date(2019, 1, 1, 0, 30, 0, 0, time.UTC)
	body0 = []byte(`{"trailNameList":["t1"]}`)
)

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestVerifySigned signs requests with aws-sdk-go-v2's signer, optionally
// tampers with them, and sends them to a verifying server.
func TestVerifySigned(t *testing.T) {
	srv := newVerifyServer(t, testVerifier(func() time.Time { return t0830 }))
	tests := []struct {
		name     string
		query    string
		key      string // default testKey
		secret   string // default testSecret
		token    string
		signedAt time.Time // default t0830
		before   func(r *http.Request)
		after    func(r *http.Request)
		unsigned bool // send without signing
		want     outcome
	}{
		{name: "valid", want: outcome{200, "ok", ""}},
		{name: "valid with query string", query: "?b=2&a=1&empty=", want: outcome{200, "ok", ""}},
		{name: "valid with session token", token: "session-token", want: outcome{200, "ok", ""}},
		{name: "valid at the edge of the skew window", signedAt: t0830.Add(-15 * time.Minute), want: outcome{200, "ok", ""}},
		{name: "unsigned header added later is ignored", after: func(r *http.Request) { r.Header.Set("X-Extra", "1") },
			want: outcome{200, "ok", ""}},
		{name: "valid with signed content sha256",
			before: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", sha256Hex(body0)) },
			want:   outcome{200, "ok", ""}},
		{name: "wrong secret", secret: "not-the-secret",
			want: outcome{400, "InvalidSignatureException", messageBadSignature}},
		{name: "unknown key", key: "AKIDUNKNOWN",
			want: outcome{400, "UnrecognizedClientException", "The security token included in the request is invalid."}},
		{name: "signature expired", signedAt: time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC),
			want: outcome{400, "InvalidSignatureException",
				"Signature expired: 20190101T000000Z is now earlier than 20190101T001500Z (20190101T003000Z - 15 min.)"}},
		{name: "signature not yet current", signedAt: time.Date(2019, 1, 1, 1, 0, 0, 0, time.UTC),
			want: outcome{400, "InvalidSignatureException",
				"Signature not yet current: 20190101T010000Z is still later than 20190101T004500Z (20190101T003000Z + 15 min.)"}},
		{name: "missing authorization", unsigned: true,
			want: outcome{400, "MissingAuthenticationTokenException", "Request is missing Authentication Token"}},
		{name: "presigned query", unsigned: true, query: "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00",
			want: outcome{400, "IncompleteSignatureException", ""}},
		{name: "body tampered after signing", after: func(r *http.Request) {
			tampered := bytes.Replace(body0, []byte("t1"), []byte("t2"), 1)
			r.Body = io.NopCloser(bytes.NewReader(tampered))
		}, want: outcome{400, "InvalidSignatureException", messageBadSignature}},
		{name: "header tampered after signing", after: func(r *http.Request) {
			r.Header.Set("X-Amz-Target", "CloudTrail_20131101.DeleteTrail")
		}, want: outcome{400, "InvalidSignatureException", messageBadSignature}},
		{name: "query tampered after signing", query: "?a=1", after: func(r *http.Request) { r.URL.RawQuery = "a=2" },
			want: outcome{400, "InvalidSignatureException", messageBadSignature}},
		{name: "signed content sha256 that is not the body's",
			before: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD") },
			want: outcome{400, "InvalidSignatureException",
				"The provided 'x-amz-content-sha256' header does not match what was computed."}},
		{name: "credential scope date differs from X-Amz-Date", after: func(r *http.Request) {
			r.Header.Set("X-Amz-Date", "20190101T003000Z")
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/20190101/", "/20190102/", 1))
		}, want: outcome{400, "InvalidSignatureException",
			"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20190102' != '20190101', from '20190101T003000Z'."}},
		{name: "missing X-Amz-Date", after: func(r *http.Request) { r.Header.Del("X-Amz-Date") },
			want: outcome{400, "IncompleteSignatureException",
				"Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."}},
		{name: "Date instead of X-Amz-Date", after: func(r *http.Request) {
			r.Header.Del("X-Amz-Date")
			r.Header.Set("Date", "Tue, 01 Jan 2019 00:30:00 GMT")
		}, want: outcome{400, "IncompleteSignatureException", ""}},
		{name: "X-Amz-Date not in basic format", after: func(r *http.Request) { r.Header.Set("X-Amz-Date", "2019-01-01T00:30:00Z") },
			want: outcome{400, "IncompleteSignatureException",
				"Date must be in ISO-8601 'basic format'. Got '2019-01-01T00:30:00Z'. See http://en.wikipedia.org/wiki/ISO_8601"}},
		{name: "host not signed", after: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "host;", "", 1))
		}, want: outcome{400, "IncompleteSignatureException", "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."}},
		{name: "x-amz-date not signed", after: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), ";x-amz-date", "", 1))
		}, want: outcome{400, "IncompleteSignatureException", "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization."}},
		{name: "signed header list tampered", after: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), ";x-amz-target", "", 1))
		}, want: outcome{400, "InvalidSignatureException", messageBadSignature}},
		{name: "signature not hex", after: func(r *http.Request) {
			r.Header.Set("Authorization", regexp.MustCompile(`Signature=.*`).ReplaceAllString(r.Header.Get("Authorization"), "Signature=zz"))
		}, want: outcome{400, "InvalidSignatureException", messageBadSignature}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/"+tt.query, bytes.NewReader(body0))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			req.Header.Set("X-Amz-Target", "CloudTrail_20131101.DescribeTrails")
			if tt.before != nil {
				tt.before(req)
			}
			if !tt.unsigned {
				creds := aws.Credentials{AccessKeyID: or(tt.key, testKey), SecretAccessKey: or(tt.secret, testSecret), SessionToken: tt.token}
				signedAt := tt.signedAt
				if signedAt.IsZero() {
					signedAt = t0830
				}
				if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, sha256Hex(body0),
					"cloudtrail", "us-east-1", signedAt); err != nil {
					t.Fatal(err)
				}
			}
			if tt.after != nil {
				tt.after(req)
			}
			got := send(t, req)
			if got.status != tt.want.status || got.code != tt.want.code || (tt.want.message != "" && got.message != tt.want.message) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func send(t *testing.T, req *http.Request) outcome {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode == http.StatusOK {
		if scope := res.Header.Get("X-Test-Scope"); scope != testKey+"/20190101/us-east-1/cloudtrail" {
			t.Errorf("scope = %q", scope)
		}
		return outcome{200, "ok", ""}
	}
	if et := res.Header.Get("X-Amzn-ErrorType"); et != body.Type {
		t.Errorf("X-Amzn-ErrorType %q != __type %q", et, body.Type)
	}
	return outcome{res.StatusCode, body.Type, body.Message}
}

// authorizationCases are malformed headers; they also seed FuzzParseAuthorization.
var authorizationCases = []struct {
	name, header, want string
}{
	{"other algorithm", "Bearer abc",
		"Unsupported authorization algorithm 'Bearer'; only AWS4-HMAC-SHA256 is supported."},
	{"only the algorithm", "AWS4-HMAC-SHA256",
		"Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter."},
	{"missing signature", "AWS4-HMAC-SHA256 Credential=AKID/20190101/us-east-1/cloudtrail/aws4_request, SignedHeaders=host;x-amz-date",
		"Authorization header requires 'Signature' parameter."},
	{"pair without equal sign", "AWS4-HMAC-SHA256 Credential=AKID/20190101/us-east-1/cloudtrail/aws4_request, SignedHeaders, Signature=00",
		"'SignedHeaders' not a valid key=value pair (missing equal-sign) in Authorization header."},
	{"short credential", "AWS4-HMAC-SHA256 Credential=AKID/20190101/us-east-1, SignedHeaders=host, Signature=00",
		"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKID/20190101/us-east-1'."},
	{"empty credential element", "AWS4-HMAC-SHA256 Credential=AKID/20190101//cloudtrail/aws4_request, SignedHeaders=host, Signature=00",
		"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKID/20190101//cloudtrail/aws4_request'."},
	{"bad terminator", "AWS4-HMAC-SHA256 Credential=AKID/20190101/us-east-1/cloudtrail/aws4_reques, SignedHeaders=host, Signature=00",
		"Credential should be scoped with a valid terminator: 'aws4_request', not 'aws4_reques'."},
	{"bad scope date", "AWS4-HMAC-SHA256 Credential=AKID/2019-1-1/us-east-1/cloudtrail/aws4_request, SignedHeaders=host, Signature=00",
		"Credential should be scoped to a date in YYYYMMDD form, not '2019-1-1'."},
	{"empty signed header", "AWS4-HMAC-SHA256 Credential=AKID/20190101/us-east-1/cloudtrail/aws4_request, SignedHeaders=host;;x-amz-date, Signature=00",
		"SignedHeaders 'host;;x-amz-date' contains an empty header name."},
	{"host not signed", "AWS4-HMAC-SHA256 Credential=AKID/20190101/us-east-1/cloudtrail/aws4_request, SignedHeaders=x-amz-date, Signature=00",
		"'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."},
}

func TestParseAuthorization(t *testing.T) {
	for _, tt := range authorizationCases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseAuthorization(tt.header)
			var ae *Error
			if !errors.As(err, &ae) || ae.Code != "IncompleteSignatureException" || ae.Message != tt.want {
				t.Errorf("parseAuthorization(%q) = %v\nwant IncompleteSignatureException: %s", tt.header, err, tt.want)
			}
		})
	}
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20190101/us-east-1/cloudtrail/aws4_request, " +
		"SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + strings.Repeat("ab", 32))
	for _, tt := range authorizationCases {
		f.Add(tt.header)
	}
	f.Fuzz(func(t *testing.T, header string) {
		auth, err := parseAuthorization(header)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Code != "IncompleteSignatureException" || ae.Message == "" {
				t.Fatalf("parseAuthorization(%q) = %v, want IncompleteSignatureException", header, err)
			}
			return
		}
		if auth.signature == "" || !slices.Contains(auth.signedHeaders, "host") ||
			auth.scope.AccessKeyID == "" || auth.scope.Region == "" || auth.scope.Service == "" || len(auth.scope.Date) != 8 {
			t.Fatalf("parseAuthorization(%q) accepted an incomplete header: %+v", header, auth)
		}
	})
}

// clientCases drive real clients against a verifying server whose clock is
// skewed by skew.
var clientCases = []struct {
	name          string
	key, secret   string
	token         string
	skew          time.Duration
	signUserAgent bool // botocore only: sign a header aws-sdk-go-v2's signer would ignore
	wantCode      string
	wantMessage   string
}{
	{name: "valid", key: testKey, secret: testSecret},
	{name: "valid with session token", key: testKey, secret: testSecret, token: "session-token"},
	{name: "wrong secret", key: testKey, secret: "not-the-secret", wantCode: "InvalidSignatureException", wantMessage: messageBadSignature},
	{name: "unknown key", key: "AKIDUNKNOWN", secret: testSecret, wantCode: "UnrecognizedClientException"},
	{name: "client clock behind", key: testKey, secret: testSecret, skew: 20 * time.Minute,
		wantCode: "InvalidSignatureException", wantMessage: "Signature expired: "},
	{name: "client clock ahead", key: testKey, secret: testSecret, skew: -20 * time.Minute,
		wantCode: "InvalidSignatureException", wantMessage: "Signature not yet current: "},
}

func skewedVerifier(skew time.Duration) *Verifier {
	return testVerifier(func() time.Time { return time.Now().Add(skew) })
}

func TestVerifyGoSDK(t *testing.T) {
	for _, tt := range clientCases {
		t.Run(tt.name, func(t *testing.T) {
			srv := newVerifyServer(t, skewedVerifier(tt.skew))
			client := cloudtrail.NewFromConfig(aws.Config{
				Region:      "us-east-1",
				Credentials: credentials.NewStaticCredentialsProvider(tt.key, tt.secret, tt.token),
			}, func(o *cloudtrail.Options) {
				o.BaseEndpoint = aws.String(srv.URL)
				o.RetryMaxAttempts = 1
			})
			out, err := client.DescribeTrails(context.Background(), &cloudtrail.DescribeTrailsInput{TrailNameList: []string{"t1"}})
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("DescribeTrails: %v", err)
				}
				if out.TrailList == nil {
					t.Error("TrailList not decoded")
				}
				return
			}
			var apiErr smithy.APIError
			var httpErr *awshttp.ResponseError
			if !errors.As(err, &apiErr) || !errors.As(err, &httpErr) {
				t.Fatalf("DescribeTrails error = %v, want an API error", err)
			}
			if apiErr.ErrorCode() != tt.wantCode || !strings.HasPrefix(apiErr.ErrorMessage(), tt.wantMessage) ||
				httpErr.HTTPStatusCode() != 400 {
				t.Errorf("got %s %q (HTTP %d), want %s %q... (HTTP 400)",
					apiErr.ErrorCode(), apiErr.ErrorMessage(), httpErr.HTTPStatusCode(), tt.wantCode, tt.wantMessage)
			}
		})
	}
}

// botocoreScript runs the cases on stdin through boto3 and prints one result each.
const botocoreScript = `
import json, sys
import boto3, botocore.auth
from botocore.config import Config
from botocore.exceptions import ClientError

results = []
for c in json.load(sys.stdin):
    saved = list(botocore.auth.SIGNED_HEADERS_BLACKLIST)
    if c["sign_user_agent"]:
        botocore.auth.SIGNED_HEADERS_BLACKLIST.remove("user-agent")
    try:
        client = boto3.client("cloudtrail", endpoint_url=c["endpoint"], region_name="us-east-1",
                              aws_access_key_id=c["key"], aws_secret_access_key=c["secret"],
                              aws_session_token=c["token"] or None,
                              config=Config(retries={"total_max_attempts": 1}))
        client.describe_trails(trailNameList=["t1"])
        results.append({"code": "", "message": "", "status": 200})
    except ClientError as e:
        results.append({"code": e.response["Error"]["Code"], "message": e.response["Error"]["Message"],
                        "status": e.response["ResponseMetadata"]["HTTPStatusCode"]})
    finally:
        botocore.auth.SIGNED_HEADERS_BLACKLIST[:] = saved
json.dump(results, sys.stdout)
`

func TestVerifyBotocore(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed; botocore compatibility not tested")
	}
	if err := exec.Command(python, "-c", "import boto3").Run(); err != nil {
		t.Skip("boto3 not installed; botocore compatibility not tested")
	}
	cases := append(clientCases[:len(clientCases):len(clientCases)], struct {
		name          string
		key, secret   string
		token         string
		skew          time.Duration
		signUserAgent bool
		wantCode      string
		wantMessage   string
	}{name: "user-agent signed", key: testKey, secret: testSecret, signUserAgent: true})

	type input struct {
		Endpoint      string `json:"endpoint"`
		Key           string `json:"key"`
		Secret        string `json:"secret"`
		Token         string `json:"token"`
		SignUserAgent bool   `json:"sign_user_agent"`
	}
	inputs := make([]input, len(cases))
	servers := make([]*verifyServer, len(cases))
	for i, c := range cases {
		servers[i] = newVerifyServer(t, skewedVerifier(c.skew))
		inputs[i] = input{servers[i].URL, c.key, c.secret, c.token, c.signUserAgent}
	}
	stdin, err := json.Marshal(inputs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "-c", botocoreScript)
	cmd.Stdin = bytes.NewReader(stdin)
	// Only the test's settings: no profile, endpoint or credentials from the machine.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("botocore: %v\n%s", err, stderr.String())
	}
	var results []struct {
		Code    string
		Message string
		Status  int
	}
	if err := json.Unmarshal(stdout, &results); err != nil || len(results) != len(cases) {
		t.Fatalf("botocore output %q: %v", stdout, err)
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := results[i]
			wantStatus := 400
			if c.wantCode == "" {
				wantStatus = 200
			}
			if got.Code != c.wantCode || !strings.HasPrefix(got.Message, c.wantMessage) || got.Status != wantStatus {
				t.Errorf("got %s %q (HTTP %d), want %s %q... (HTTP %d)", got.Code, got.Message, got.Status, c.wantCode, c.wantMessage, wantStatus)
			}
			signed := servers[i].lastSignedHeaders()
			if c.signUserAgent != strings.Contains(signed, "user-agent") {
				t.Errorf("SignedHeaders=%s; want user-agent signed: %v", signed, c.signUserAgent)
			}
		})
	}
}
