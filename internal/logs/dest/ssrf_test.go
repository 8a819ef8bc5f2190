package dest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestEveryMetadataFormRefused reproduces issue 11 §5: an IPv6 link-local
// address with a zone (http://[fe80::1%25lo]:PORT/) was delivered to, because
// the dial-time check parsed it with net.ParseIP, which knows no zones. Every
// spelling of a link-local, unspecified or metadata address is refused when
// dialled, by subscription URLs, SNS topic endpoints and Lambda URLs alike.
func TestEveryMetadataFormRefused(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	forms := []string{
		"http://[fe80::1%25lo]:" + port + "/",      // the reported one: link-local with a zone
		"http://[fe80::1%25eth0]:" + port + "/",    // another zone
		"http://[fe80::1]:" + port + "/",           // no zone
		"http://[ff02::1%25lo]:" + port + "/",      // link-local multicast
		"http://169.254.169.254/latest/meta-data/", // EC2, GCP, Azure metadata
		"http://169.254.170.2:" + port + "/",       // ECS task metadata
		"http://[::ffff:169.254.169.254]/",         // IPv4-mapped
		"http://[::ffff:a9fe:a9fe]/",               // IPv4-mapped, hex
		"http://[::169.254.169.254]/",              // IPv4-compatible
		"http://[64:ff9b::169.254.169.254]/",       // NAT64 well-known prefix
		"http://[64:ff9b::a9fe:a9fe]/",             // NAT64, hex
		"http://[64:ff9b:1::a9fe:a9fe]/",           // NAT64 local-use prefix
		"http://[fd00:ec2::254]/",                  // EC2's IPv6 metadata
		"http://0.0.0.0:" + port + "/",             // unspecified: reaches this host
		"http://0:" + port + "/",                   // 0.0.0.0 spelled short
		"http://0.1.2.3:" + port + "/",             // 0.0.0.0/8
		"http://[::]:" + port + "/",                // IPv6 unspecified
		"http://[::ffff:0.0.0.0]:" + port + "/",    // mapped unspecified
		"http://[64:ff9b::0.0.0.0]:" + port + "/",  // NAT64 unspecified
		"http://2852039166/latest/meta-data/",      // 169.254.169.254 as one decimal number
		"http://0xa9fea9fe/latest/meta-data/",      // ... as hex
	}
	var c Config
	c.Topics = map[string][]string{}
	c.Lambdas = map[string]string{}
	for _, u := range forms {
		t.Run(u, func(t *testing.T) {
			d, err := c.Resolve(u)
			if err != nil {
				// Refusing it up front is fine too, as long as nothing is sent.
				return
			}
			err = d.Send(context.Background(), seedBatch())
			if err == nil {
				t.Fatalf("Send to %s succeeded", u)
			}
			if !errors.Is(err, ErrAddressRefused) && !strings.Contains(err.Error(), "no such host") {
				t.Errorf("Send to %s: %v, want ErrAddressRefused", u, err)
			}
			topic := Config{Topics: map[string][]string{"t": {u}}}
			p, err := topic.ResolveTopic("arn:aws:sns:us-east-1:123456789012:t")
			if err == nil {
				if err := p.Publish(context.Background(), &Message{Body: "{}"}); err == nil {
					t.Errorf("Publish to %s succeeded", u)
				}
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback server was reached %d times", n)
	}
}

// TestAllowedAddresses: the guard refuses only what it must; loopback, private
// and public addresses (also inside IPv6) pass.
func TestAllowedAddresses(t *testing.T) {
	for _, tt := range []struct {
		host    string
		refused bool
	}{
		{"127.0.0.1", false}, {"::1", false}, {"10.0.0.1", false}, {"192.0.2.10", false},
		{"2001:db8::1", false}, {"64:ff9b::192.0.2.1", false}, {"::ffff:127.0.0.1", false},
		{"fe80::1%lo", true}, {"FE80::abcd%25eth0", true}, {"169.254.0.1", true}, {"::", true},
		{"0.0.0.0", true}, {"fd00:ec2::254", true}, {"::ffff:169.254.1.1", true}, {"example.com", true},
	} {
		if got := refusedAddr(tt.host); got != tt.refused {
			t.Errorf("refusedAddr(%q) = %v, want %v", tt.host, got, tt.refused)
		}
	}
}

// TestRedact: destinations in logs and metric labels lose user info, path
// and query (issue 11 §2), keeping a stable hash to tell them apart.
func TestRedact(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"arn:aws:lambda:us-east-1:123456789012:function:f", "arn:aws:lambda:us-east-1:123456789012:function:f"},
		{"http://user:pass@hooks.example.com/x", "http://hooks.example.com #"},
		{"https://hooks.slack.com/services/T0/B0/SECRET", "https://hooks.slack.com #"},
		{"slack+https://hooks.slack.com/services/T0/B0/SECRET", "slack+https://hooks.slack.com #"},
		{"https://collector.example.com/?token=SECRET", "https://collector.example.com #"},
		{"https://collector.example.com/", "https://collector.example.com"},
		{"exec:python3 /opt/run.py --key SECRET", "exec:python3"},
		{"mailto:alice@example.com", "mailto:#"},
	} {
		got := Redact(tt.in)
		if !strings.HasPrefix(got, tt.want) || strings.Contains(got, "SECRET") || strings.Contains(got, "pass") || strings.Contains(got, "alice") {
			t.Errorf("Redact(%q) = %q, want %q...", tt.in, got, tt.want)
		}
	}
	if Redact("https://h.example.com/a") == Redact("https://h.example.com/b") {
		t.Error("two paths on one host look the same")
	}
}

// TestErrorsHideURLSecrets: a failing endpoint's error (which reaches the
// log, the trail status and the outbox stats) names it as scheme://host and a
// hash, without user info, path or query (issue 11 §2).
func TestErrorsHideURLSecrets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	u := strings.Replace(srv.URL, "http://", "http://user:PASSWORD@", 1) + "/hook/PATHSECRET?k=QUERYSECRET"
	c := Config{Topics: map[string][]string{"t": {u}}}
	p, err := c.ResolveTopic("arn:aws:sns:us-east-1:123456789012:t")
	if err != nil {
		t.Fatal(err)
	}
	perr := p.Publish(context.Background(), &Message{Body: "{}"})
	d, err := c.Resolve(u)
	if err != nil {
		t.Fatal(err)
	}
	serr := d.Send(context.Background(), seedBatch())
	for _, err := range []error{perr, serr} {
		if err == nil || !strings.Contains(err.Error(), "HTTP 503") {
			t.Fatalf("error = %v, want HTTP 503", err)
		}
		for _, secret := range []string{"PASSWORD", "PATHSECRET", "QUERYSECRET"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows %s: %v", secret, err)
			}
		}
	}
}
