package dest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func resolveConfig() *Config {
	return &Config{
		Lambdas: map[string]string{
			"notify":      "http://127.0.0.1:9000/2015-03-31/functions/function/invocations",
			"notify:prod": "exec:python3 /opt/prod.py",
			"local":       "exec:/usr/local/bin/handler --flag 'a b'",
		},
		Topics: map[string][]string{
			"alerts":      {"https://hooks.example.com/sns", "slack+https://hooks.slack.com/services/T/B/X"},
			"ops.fifo":    {"http://127.0.0.1:8080/"},
			"mail-alerts": {"mailto:alice@example.com"},
		},
		SMTP: SMTPConfig{Addr: "127.0.0.1:25", From: "opentrail@example.com"},
	}
}

var resolveTests = []struct {
	arn  string
	want string // String() of the destination, or the start of the error
	ok   bool
}{
	{"arn:aws:lambda:us-east-1:111122223333:function:notify", "lambda notify http://127.0.0.1:9000/2015-03-31/functions/function/invocations", true},
	{"arn:aws:lambda:us-east-1:111122223333:function:notify:prod", "lambda notify exec:python3", true},
	{"arn:aws:lambda:us-east-1:111122223333:function:notify:$LATEST", "lambda notify http://", true},
	{"arn:aws:lambda:us-east-1:111122223333:function:notify:7", "lambda notify http://", true},
	{"arn:aws-cn:lambda:cn-north-1:111122223333:function:local", "lambda local exec:handler", true},
	{"arn:aws:sns:eu-west-1:111122223333:alerts", "sns alerts (2 endpoints)", true},
	{"arn:aws:sns:eu-west-1:111122223333:ops.fifo", "sns ops.fifo (1 endpoint)", true},
	{"arn:aws:sns:eu-west-1:111122223333:mail-alerts", "sns mail-alerts (1 endpoint)", true},
	{"https://collector.example.com/ct?key=SECRET", "url https://collector.example.com/ct?REDACTED", true},
	{"HTTP://collector.example.com", "url http://collector.example.com", true},

	{"arn:aws:lambda:us-east-1:111122223333:function:missing", "Could not execute the lambda function. Make sure you have given CloudWatch Logs permission to execute your function.", false},
	{"arn:aws:sns:eu-west-1:111122223333:missing", "Could not deliver test message to specified SNS topic missing", false},
	{"arn:aws:lambda:us-east-1:111122223333:function:", "Invalid destinationArn", false},
	{"arn:aws:lambda:us-east-1:111122223333:function:bad name", "Invalid destinationArn", false},
	{"arn:aws:lambda:us-east-1:111122223333:notify", "Invalid destinationArn", false},
	{"arn:aws:lambda:us-east-1:111122223333:function:notify:bad/alias", "Invalid destinationArn", false},
	{"arn:aws:lambda:us-east-1:1234:function:notify", "Invalid destinationArn", false},
	{"arn:aws:lambda::111122223333:function:notify", "Invalid destinationArn", false},
	{"arn:aws:lambda:us-east-1:111122223333", "Invalid destinationArn", false},
	{"arn:gcp:lambda:us-east-1:111122223333:function:notify", "Invalid destinationArn", false},
	{"arn:aws:sns:eu-west-1:111122223333:a:b", "Invalid destinationArn", false},
	{"arn:aws:kinesis:us-east-1:111122223333:stream/RootAccess", "Invalid destinationArn \"arn:aws:kinesis", false},
	{"arn:aws:firehose:us-east-1:111122223333:deliverystream/x", "Invalid destinationArn", false},
	{"arn:aws:logs:us-east-1:111122223333:destination:testDestination", "Invalid destinationArn", false},
	{"arn:aws:s3:::bucket", "Invalid destinationArn", false},
	{"", "Invalid destinationArn: it is empty", false},
	{"ftp://example.com/", "Invalid destinationArn", false},
	{"mailto:alice@example.com", "Invalid destinationArn", false},
	{"https://", "Invalid destinationArn: bad URL", false},
	{"http://a b/", "Invalid destinationArn: bad URL", false},
}

func TestResolve(t *testing.T) {
	c := resolveConfig()
	for _, tt := range resolveTests {
		d, err := c.Resolve(tt.arn)
		if tt.ok {
			if err != nil {
				t.Errorf("Resolve(%q): %v", tt.arn, err)
				continue
			}
			if !strings.HasPrefix(d.String(), tt.want) {
				t.Errorf("Resolve(%q) = %q, want %q", tt.arn, d.String(), tt.want)
			}
			if strings.Contains(d.String(), "SECRET") || strings.Contains(d.String(), "/services/") {
				t.Errorf("Resolve(%q).String() = %q shows a secret", tt.arn, d)
			}
			continue
		}
		if err == nil {
			t.Errorf("Resolve(%q) = %v, want an error", tt.arn, d)
			continue
		}
		if !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Resolve(%q) error %q, want it to start with %q", tt.arn, err, tt.want)
		}
		if !errors.Is(err, ErrInvalidDestination) {
			t.Errorf("Resolve(%q) error is not ErrInvalidDestination", tt.arn)
		}
	}
	// mailto without SMTP settings cannot work: Resolve says so.
	c.SMTP = SMTPConfig{}
	if _, err := c.Resolve("arn:aws:sns:eu-west-1:111122223333:mail-alerts"); err == nil || !strings.Contains(err.Error(), "smtp.addr") {
		t.Errorf("mailto without SMTP: %v", err)
	}
}

func FuzzResolve(f *testing.F) {
	for _, tt := range resolveTests {
		f.Add(tt.arn)
	}
	c := resolveConfig()
	f.Fuzz(func(t *testing.T, arn string) {
		d, err := c.Resolve(arn)
		if (d == nil) == (err == nil) {
			t.Fatalf("Resolve(%q) = %v, %v", arn, d, err)
		}
		if err != nil && !errors.Is(err, ErrInvalidDestination) {
			t.Fatalf("Resolve(%q) error %v is not ErrInvalidDestination", arn, err)
		}
		if d != nil {
			_ = d.String()
		}
	})
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dest.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigFile(t *testing.T) {
	t.Setenv("TEST_SMTP_PASSWORD", "hunter2")
	t.Setenv("TEST_SLACK", "slack+https://hooks.slack.com/services/T/B/X")
	p := writeConfig(t, `{
  "lambdas": {"notify": "exec:python3 /opt/notify.py", "rie": "http://127.0.0.1:9000/2015-03-31/functions/function/invocations"},
  "topics": {"alerts": ["mailto:alice@example.com", "env:TEST_SLACK", "https://hooks.example.com/sns"]},
  "smtp": {"addr": "smtp.example.com:587", "from": "OpenTrail <opentrail@example.com>",
           "username": "opentrail", "password": "env:TEST_SMTP_PASSWORD", "startTLS": "require", "helloName": "ot.example.com"},
  "eventLink": "https://ct.example.com/{account}/{eventID}"
}`)
	c, err := LoadConfigFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Lambdas: map[string]string{"notify": "exec:python3 /opt/notify.py", "rie": "http://127.0.0.1:9000/2015-03-31/functions/function/invocations"},
		Topics:  map[string][]string{"alerts": {"mailto:alice@example.com", "slack+https://hooks.slack.com/services/T/B/X", "https://hooks.example.com/sns"}},
		SMTP: SMTPConfig{Addr: "smtp.example.com:587", From: "OpenTrail <opentrail@example.com>", Username: "opentrail",
			Password: "hunter2", StartTLS: "require", HelloName: "ot.example.com"},
		EventLink: "https://ct.example.com/{account}/{eventID}",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
}

func TestLoadConfigFileErrors(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"unknown keys, all named", `{"lambdas": {}, "topcs": {}, "smtp": {"adr": "x", "from": "a@b"}}`,
			": unknown keys smtp.adr, topcs (accepted:"},
		{"keys are case-sensitive", `{"Lambdas": {}}`, ": unknown keys Lambdas"},
		{"syntax error position", "{\n  \"lambdas\": {\n    \"a\": \"exec:x\",\n  }\n}", ":4:3: invalid character '}' looking for beginning of object key string"},
		{"type error position", "{\n  \"topics\": {\"alerts\": \"https://x\"}\n}", ":2:24: topics: expected an array, found JSON string"},
		{"smtp not an object", "{\"smtp\": [1]}", ":1:10: smtp: expected an object, found JSON array"},
		{"truncated", "{\"lambdas\": {", ":1:14: unexpected end of JSON input"},
		{"trailing data", "{} {}", ":1:4: unexpected data after the top-level value"},
		{"not an object", "null", ": the file must hold a JSON object"},
		{"unset env", `{"smtp": {"addr": "h:25", "from": "a@b.c", "password": "env:NOT_SET_ANYWHERE_XYZ", "username": "u"}}`,
			": smtp.password: environment variable NOT_SET_ANYWHERE_XYZ is not set"},
		{"bad lambda target", `{"lambdas": {"f": "ftp://x"}}`, ": lambdas.f: expected an http(s) URL or exec:COMMAND"},
		{"bad exec quoting", `{"lambdas": {"f": "exec:python3 'x"}}`, ": lambdas.f: exec: unterminated '"},
		{"mailto needs smtp", `{"topics": {"t": ["mailto:a@example.com"]}}`, ": smtp.addr: mailto endpoints need an SMTP server"},
		{"bad startTLS", `{"smtp": {"addr": "h:25", "from": "a@b.c", "startTLS": "maybe"}}`, `: smtp.startTLS "maybe": expected auto, require or never`},
		{"slack over http", `{"topics": {"t": ["slack+http://hooks.slack.com/x"]}}`, ": topics.t[0]: Slack webhooks need https"},
		{"empty topic", `{"topics": {"t": []}}`, ": topics.t: no endpoints"},
		{"bad topic name", `{"topics": {"a b": ["https://x"]}}`, `: topics: bad topic name "a b"`},
		{"secret not shown", `{"topics": {"t": ["gopher://user:TOPSECRET@x"]}}`, ": topics.t[0]: expected http(s)://..., slack+https://... or mailto:..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeConfig(t, tt.content)
			_, err := LoadConfigFile(p)
			if err == nil {
				t.Fatal("no error")
			}
			want := "dest config " + p + tt.want
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error\n%s\nwant it to start with\n%s", err, want)
			}
			if strings.Contains(err.Error(), "TOPSECRET") {
				t.Error("secret in the error")
			}
		})
	}
	if _, err := LoadConfigFile(filepath.Join(t.TempDir(), "missing.json")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

var flagTests = []struct {
	lambda bool
	in     string
	err    string // "" = ok
}{
	{true, "notify=http://127.0.0.1:9000/x", ""},
	{true, "notify:prod=exec:python3 h.py", ""},
	{true, "notify=exec:python3 'a=b'", ""},
	{true, "notify", "expected NAME=URL"},
	{true, "=http://x", "expected NAME=URL"},
	{true, "notify=", "expected NAME=URL"},
	{true, "bad name=http://x", "bad function name"},
	{true, "notify=ftp://x", "expected an http(s) URL or exec:COMMAND"},
	{true, "notify=exec:", "exec: no command"},
	{true, "notify=env:TEST_LAMBDA_TARGET", ""},
	{true, "notify=env:NOT_SET_ANYWHERE_XYZ", "environment variable NOT_SET_ANYWHERE_XYZ is not set"},
	{false, "alerts=https://hooks.example.com/sns", ""},
	{false, "alerts=slack+https://hooks.slack.com/services/T/B/X", ""},
	{false, "alerts=mailto:alice@example.com,bob@example.org", ""},
	{false, "alerts.fifo=http://127.0.0.1/", ""},
	{false, "alerts=mailto:not an address", "mailto:"},
	{false, "alerts=mailto:a@example.com?subject=x", "not supported"},
	{false, "alerts", "expected NAME=ENDPOINT"},
	{false, "a/b=https://x", "bad topic name"},
	{false, "alerts=irc://x", "expected http(s)://"},
}

func TestFlags(t *testing.T) {
	t.Setenv("TEST_LAMBDA_TARGET", "exec:true")
	var c Config
	for _, tt := range flagTests {
		var err error
		if tt.lambda {
			err = ParseLambdaFlag(tt.in, &c)
		} else {
			err = ParseTopicFlag(tt.in, &c)
		}
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%q: %v", tt.in, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%q: error %v, want %q", tt.in, err, tt.err)
		}
	}
	if got := c.Lambdas["notify"]; got != "exec:true" {
		t.Errorf("lambda notify = %q (env: not applied, or a later bad flag changed it)", got)
	}
	if got := c.Lambdas["notify:prod"]; got != "exec:python3 h.py" {
		t.Errorf("lambda notify:prod = %q", got)
	}
	if got := c.Topics["alerts"]; len(got) != 3 || got[0] != "https://hooks.example.com/sns" || got[2] != "mailto:alice@example.com,bob@example.org" {
		t.Errorf("topic alerts = %q: repeated flags must append in order", got)
	}
}

func FuzzFlags(f *testing.F) {
	for _, tt := range flagTests {
		f.Add(tt.lambda, tt.in)
	}
	f.Fuzz(func(t *testing.T, lambda bool, s string) {
		var c Config
		var err error
		if lambda {
			err = ParseLambdaFlag(s, &c)
		} else {
			err = ParseTopicFlag(s, &c)
		}
		if err != nil {
			return
		}
		// What a flag accepted must resolve, or be refused for want of SMTP.
		c.SMTP = SMTPConfig{Addr: "127.0.0.1:25", From: "a@example.com"}
		for name := range c.Lambdas {
			if _, err := c.Resolve("arn:aws:lambda:us-east-1:111122223333:function:" + name); err != nil {
				t.Fatalf("flag %q accepted but Resolve: %v", s, err)
			}
		}
		for name := range c.Topics {
			if _, err := c.Resolve("arn:aws:sns:us-east-1:111122223333:" + name); err != nil {
				t.Fatalf("flag %q accepted but Resolve: %v", s, err)
			}
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("flag %q accepted but Validate: %v", s, err)
		}
	})
}

func FuzzSplitCommand(f *testing.F) {
	for _, s := range []string{`a 'b c' "d \" e" f\ g`, "", "'", `"\`, "a\\\nb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		argv, err := splitCommand(s)
		if err != nil {
			return
		}
		// Re-quoting each word and splitting again gives the same words.
		var q []string
		for _, a := range argv {
			q = append(q, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
		}
		again, err := splitCommand(strings.Join(q, " "))
		if err != nil || !reflect.DeepEqual(again, argv) && !(len(again) == 0 && len(argv) == 0) {
			t.Fatalf("%q: %q re-split as %q, %v", s, argv, again, err)
		}
	})
}

// TestURLPrefixes: with an allow-list, plain URL destinations outside it are
// refused when the subscription filter is put; a prefix must name a path.
func TestURLPrefixes(t *testing.T) {
	c := Config{URLPrefixes: []string{"https://hooks.example.com/opentrail/", "http://127.0.0.1:9000/"}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for arn, ok := range map[string]bool{
		"https://hooks.example.com/opentrail/alerts":     true,
		"http://127.0.0.1:9000/x":                        true,
		"https://hooks.example.com/other":                false,
		"https://hooks.example.com.evil.test/opentrail/": false,
		"http://127.0.0.1:90001/x":                       false,
		"https://HOOKS.example.com/opentrail/x":          false, // as written; URLs are compared as strings
	} {
		_, err := c.Resolve(arn)
		if (err == nil) != ok {
			t.Errorf("Resolve(%s): %v, want accepted %v", arn, err, ok)
		}
		if err != nil && (!errors.Is(err, ErrInvalidDestination) || !strings.Contains(err.Error(), "hooks.example.com/opentrail/")) {
			t.Errorf("Resolve(%s): %v", arn, err)
		}
	}
	bad := Config{URLPrefixes: []string{"https://hooks.example.com"}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "urlPrefixes[0]") {
		t.Errorf("a prefix without a path: %v", err)
	}
	p := writeConfig(t, `{"urlPrefixes":["https://hooks.example.com/a/"]}`)
	if fc, err := LoadConfigFile(p); err != nil || len(fc.URLPrefixes) != 1 {
		t.Errorf("config file urlPrefixes: %+v %v", fc.URLPrefixes, err)
	}
}

// TestLinkLocalRefused: the default client dials no metadata-service address,
// whatever the allow-list says.
func TestLinkLocalRefused(t *testing.T) {
	var c Config
	for _, u := range []string{"http://169.254.169.254/latest/meta-data/", "http://[fe80::1]:8080/", "http://0.0.0.0:1/", "http://[fd00:ec2::254]/"} {
		d, err := c.Resolve(u)
		if err != nil {
			t.Fatalf("Resolve(%s): %v", u, err)
		}
		err = d.Send(context.Background(), seedBatch())
		if !errors.Is(err, ErrAddressRefused) {
			t.Errorf("Send to %s: %v, want ErrAddressRefused", u, err)
		}
	}
}
