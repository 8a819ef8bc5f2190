package dest

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// smtpServer is a minimal SMTP server: EHLO, optional STARTTLS and AUTH
// PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT.
type smtpServer struct {
	ln        net.Listener
	tlsConfig *tls.Config // non-nil: offer STARTTLS
	user      string      // non-empty: offer AUTH PLAIN and require it
	pass      string
	rcptReply string // instead of 250 for RCPT

	wg   sync.WaitGroup
	mu   sync.Mutex
	msgs []smtpMessage
}

type smtpMessage struct {
	ehlo     string
	tls      bool
	authUser string
	from     string
	to       []string
	wire     string // DATA as sent, dot-stuffed, CRLF
	data     string // DATA after removing the dot-stuffing
}

func startSMTP(t *testing.T, s *smtpServer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return ln.Addr().String()
}

func (s *smtpServer) messages() []smtpMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smtpMessage(nil), s.msgs...)
}

func (s *smtpServer) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute)) // a stuck test must not hang forever
	br := bufio.NewReader(c)
	tp := textproto.NewConn(struct {
		io.Reader
		io.Writer
		io.Closer
	}{br, c, c})
	var m smtpMessage
	tp.PrintfLine("220 test.invalid ESMTP")
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			m.ehlo = arg
			lines := []string{"test.invalid", "8BITMIME"}
			if s.tlsConfig != nil && !m.tls {
				lines = append(lines, "STARTTLS")
			}
			if s.user != "" {
				lines = append(lines, "AUTH PLAIN")
			}
			for i, l := range lines {
				sep := "-"
				if i == len(lines)-1 {
					sep = " "
				}
				tp.PrintfLine("250%s%s", sep, l)
			}
		case "STARTTLS":
			if s.tlsConfig == nil || m.tls {
				tp.PrintfLine("502 no")
				continue
			}
			tp.PrintfLine("220 go ahead")
			tc := tls.Server(c, s.tlsConfig)
			if err := tc.Handshake(); err != nil {
				return
			}
			c = tc
			br = bufio.NewReader(tc)
			tp = textproto.NewConn(struct {
				io.Reader
				io.Writer
				io.Closer
			}{br, tc, tc})
			m = smtpMessage{tls: true}
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			dec, err := base64.StdEncoding.DecodeString(resp)
			if !strings.EqualFold(mech, "PLAIN") || err != nil || string(dec) != "\x00"+s.user+"\x00"+s.pass {
				tp.PrintfLine("535 5.7.8 authentication failed")
				continue
			}
			m.authUser = s.user
			tp.PrintfLine("235 2.7.0 ok")
		case "MAIL":
			if s.user != "" && m.authUser == "" {
				tp.PrintfLine("530 5.7.0 authentication required")
				continue
			}
			m.from = angle(arg) // net/smtp adds BODY=8BITMIME after it
			tp.PrintfLine("250 ok")
		case "RCPT":
			if s.rcptReply != "" {
				tp.PrintfLine("%s", s.rcptReply)
				continue
			}
			m.to = append(m.to, angle(arg))
			tp.PrintfLine("250 ok")
		case "DATA":
			tp.PrintfLine("354 go ahead")
			var wire, data strings.Builder
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				wire.WriteString(l)
				data.WriteString(strings.TrimPrefix(l, "."))
			}
			m.wire, m.data = wire.String(), data.String()
			s.mu.Lock()
			s.msgs = append(s.msgs, m)
			s.mu.Unlock()
			m = smtpMessage{ehlo: m.ehlo, tls: m.tls, authUser: m.authUser}
			tp.PrintfLine("250 ok queued")
		case "RSET", "NOOP":
			tp.PrintfLine("250 ok")
		case "QUIT":
			tp.PrintfLine("221 bye")
			return
		default:
			tp.PrintfLine("500 unknown command")
		}
	}
}

// angle returns the address in "FROM:<a@b> PARAMS".
func angle(s string) string {
	_, a, _ := strings.Cut(s, "<")
	a, _, _ = strings.Cut(a, ">")
	return a
}

func mailConfig(addr string) *Config {
	return &Config{
		Topics: map[string][]string{"security-alerts": {"mailto:alice@example.com,bob@example.org"}},
		SMTP:   SMTPConfig{Addr: addr, From: "OpenTrail <opentrail@example.com>", HelloName: "opentrail.test"},
	}
}

func TestEmail(t *testing.T) {
	srv := &smtpServer{user: "opentrail", pass: "s3cret"}
	addr := startSMTP(t, srv)
	c := mailConfig(addr)
	c.SMTP.Username, c.SMTP.Password = "opentrail", "s3cret"
	d, err := c.Resolve(topicARN)
	if err != nil {
		t.Fatal(err)
	}
	b := twoEventBatch()
	// A text event whose lines would end DATA early without dot-stuffing.
	b.Events = append(b.Events, LogEvent{ID: "3", Timestamp: 1714564801000, Message: "first line\n.\n.hidden\nlast line"})
	if err := d.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	msgs := srv.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if m.ehlo != "opentrail.test" || m.authUser != "opentrail" || m.from != "opentrail@example.com" ||
		strings.Join(m.to, ",") != "alice@example.com,bob@example.org" {
		t.Errorf("envelope: %+v", m)
	}
	if strings.Contains(strings.ReplaceAll(m.wire, "\r\n", ""), "\n") {
		t.Error("a bare LF on the wire")
	}
	if !strings.Contains(m.wire, "\r\n..\r\n..hidden\r\n") {
		t.Errorf("lines starting with a dot are not dot-stuffed on the wire:\n%s", m.wire)
	}

	msg, err := mail.ReadMessage(strings.NewReader(m.data))
	if err != nil {
		t.Fatal(err)
	}
	h := msg.Header
	if got := h.Get("Subject"); got != "[OpenTrail] 3 events: administrator: DescribeTrails (cloudtrail.amazonaws.com) and 2 more" {
		t.Errorf("Subject = %q", got)
	}
	if from, err := mail.ParseAddress(h.Get("From")); err != nil || from.Name != "OpenTrail" || from.Address != "opentrail@example.com" {
		t.Errorf("From = %q", h.Get("From"))
	}
	if h.Get("To") != "alice@example.com, bob@example.org" {
		t.Errorf("To = %q", h.Get("To"))
	}
	if _, err := h.Date(); err != nil {
		t.Errorf("Date %q: %v", h.Get("Date"), err)
	}
	if id := h.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@example.com>") {
		t.Errorf("Message-ID = %q", id)
	}
	if h.Get("Content-Type") != "text/plain; charset=utf-8" || h.Get("MIME-Version") != "1.0" ||
		h.Get("Content-Transfer-Encoding") != "quoted-printable" || h.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("MIME headers: %v", h)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(body), "\r\n", "\n")
	for _, want := range []string{
		"3 events from log group /aws/cloudtrail/swx-trail, stream 506364634079_CloudTrail_ap-northeast-1 (account 506364634079, ap-northeast-1), subscription filter LambdaStream_CloudTrail-Notification.",
		"Time:       2017-02-08T14:45:46Z\nUser:       administrator\nEvent:      DescribeTrails (cloudtrail.amazonaws.com)\nSource IP:  153.170.153.69\nUser agent: signin.amazonaws.com\nRegion:     us-west-2\nLink:       https://us-west-2.console.aws.amazon.com/cloudtrailv2/home?region=us-west-2#/events/e2b23d27-0653-4926-8c3e-43bbe976f725\n",
		"User:       alice\nEvent:      DeleteBucket (s3.amazonaws.com)\nSource IP:  203.0.113.7\nUser agent: aws-cli/2.15.0 <md/arch#x86_64> & more\nError:      AccessDenied\nRegion:     eu-west-1\n",
		"Message:\nfirst line\n.\n.hidden\nlast line\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("body lacks\n%s\n--- body:\n%s", want, text)
		}
	}
	if s := d.String(); s != "sns security-alerts (1 endpoint)" {
		t.Errorf("String() = %q", s)
	}
}

func TestEmailNonASCIISubject(t *testing.T) {
	srv := &smtpServer{}
	addr := startSMTP(t, srv)
	c := mailConfig(addr)
	d, err := c.Resolve(topicARN)
	if err != nil {
		t.Fatal(err)
	}
	rec := strings.Replace(deleteBucketRecord, `"userName":"alice"`, `"userName":"山田太郎-`+strings.Repeat("ü", 40)+`"`, 1)
	if err := d.Send(context.Background(), &Batch{Owner: "111122223333", Region: "eu-west-1", LogGroup: "g", LogStream: "s",
		SubscriptionFilters: []string{"f"}, Events: []LogEvent{{ID: "1", Message: rec}}}); err != nil {
		t.Fatal(err)
	}
	m := srv.messages()[0]
	head, _, _ := strings.Cut(m.wire, "\r\n\r\n")
	for _, l := range strings.Split(head, "\r\n") {
		if len(l) > 78 {
			t.Errorf("header line of %d characters: %q", len(l), l)
		}
		for _, r := range l {
			if r > '~' {
				t.Errorf("raw non-ASCII in header %q", l)
				break
			}
		}
	}
	msg, err := mail.ReadMessage(strings.NewReader(m.data))
	if err != nil {
		t.Fatal(err)
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if want := "[OpenTrail] 山田太郎-" + strings.Repeat("ü", 40) + ": DeleteBucket (s3.amazonaws.com) [AccessDenied]"; err != nil || subj != want {
		t.Errorf("Subject decodes to %q, %v; want %q", subj, err, want)
	}
}

func TestEmailStartTLS(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	srv := &smtpServer{tlsConfig: serverTLS, user: "u", pass: "p"}
	addr := startSMTP(t, srv)
	c := mailConfig(addr)
	c.SMTP.StartTLS, c.SMTP.Username, c.SMTP.Password, c.SMTP.TLSConfig = "require", "u", "p", clientTLS
	d, err := c.Resolve(topicARN)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Send(context.Background(), seedBatch()); err != nil {
		t.Fatal(err)
	}
	if m := srv.messages(); len(m) != 1 || !m[0].tls || m[0].authUser != "u" {
		t.Errorf("messages: %+v", m)
	}

	// A server certificate the client does not trust fails the delivery.
	c.SMTP.TLSConfig = nil
	d, _ = c.Resolve(topicARN)
	if err := d.Send(context.Background(), seedBatch()); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("untrusted certificate: %v", err)
	}
}

func TestEmailFailures(t *testing.T) {
	t.Run("require without STARTTLS", func(t *testing.T) {
		srv := &smtpServer{}
		c := mailConfig(startSMTP(t, srv))
		c.SMTP.StartTLS = "require"
		d, _ := c.Resolve(topicARN)
		err := d.Send(context.Background(), seedBatch())
		if err == nil || !strings.Contains(err.Error(), "does not offer STARTTLS") || !errors.Is(err, ErrRejected) {
			t.Errorf("err = %v", err)
		}
		if len(srv.messages()) != 0 {
			t.Error("mail sent in clear text")
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		srv := &smtpServer{user: "u", pass: "right"}
		c := mailConfig(startSMTP(t, srv))
		c.SMTP.Username, c.SMTP.Password = "u", "WRONGPASS"
		d, _ := c.Resolve(topicARN)
		err := d.Send(context.Background(), seedBatch())
		if err == nil || !strings.Contains(err.Error(), "535") || !errors.Is(err, ErrRejected) {
			t.Errorf("err = %v", err)
		}
		if strings.Contains(err.Error(), "WRONGPASS") {
			t.Error("password in the error")
		}
	})
	t.Run("recipient refused", func(t *testing.T) {
		srv := &smtpServer{rcptReply: "550 5.1.1 no such user"}
		c := mailConfig(startSMTP(t, srv))
		d, _ := c.Resolve(topicARN)
		err := d.Send(context.Background(), seedBatch())
		if err == nil || !strings.Contains(err.Error(), "RCPT TO <alice@example.com>") || !errors.Is(err, ErrRejected) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("temporary failure", func(t *testing.T) {
		srv := &smtpServer{rcptReply: "451 4.3.0 try later"}
		c := mailConfig(startSMTP(t, srv))
		d, _ := c.Resolve(topicARN)
		err := d.Send(context.Background(), seedBatch())
		if err == nil || errors.Is(err, ErrRejected) {
			t.Errorf("err = %v, want a retryable error", err)
		}
	})
	t.Run("nobody listening", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		d, _ := mailConfig(addr).Resolve(topicARN)
		if err := d.Send(context.Background(), seedBatch()); err == nil {
			t.Error("Send succeeded")
		}
	})
	t.Run("cancelled while the server stalls", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ctx, cancel := context.WithCancel(context.Background())
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				accepted <- c
				cancel() // connected, never greets; the caller gives up
			}
		}()
		d, _ := mailConfig(ln.Addr().String()).Resolve(topicARN)
		err = d.Send(ctx, seedBatch())
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		(<-accepted).Close()
	})
}

// testTLS returns a server config with a fresh self-signed certificate for
// 127.0.0.1 and a client config that trusts it.
func testTLS(t *testing.T) (*tls.Config, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "smtp test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool}
}

func deadlinePast() time.Time { return time.Unix(1, 0) }
