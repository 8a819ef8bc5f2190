package dest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
)

// mailEndpoint sends a notification as one email to its addresses.
type mailEndpoint struct {
	to   []string
	smtp SMTPConfig
}

func (e *mailEndpoint) String() string { return "email " + strings.Join(e.to, ",") }

// smtpTimeout bounds one SMTP session when ctx has no deadline.
const smtpTimeout = 30 * time.Second

// mailSubjectMax keeps the Subject header on one reasonable line.
const mailSubjectMax = 150

func (e *mailEndpoint) send(ctx context.Context, n *notification) (err error) {
	from, err := mail.ParseAddress(e.smtp.From)
	if err != nil {
		return &rejected{fmt.Errorf("smtp.from: %v", err)}
	}
	msg := buildMail(from, e.to, n)

	host, _, err := net.SplitHostPort(e.smtp.Addr)
	if err != nil {
		return &rejected{fmt.Errorf("smtp.addr: %v", err)}
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", e.smtp.Addr)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", e.smtp.Addr, err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(smtpTimeout)
	}
	conn.SetDeadline(deadline)
	// net/smtp takes no context: cancelling ctx unblocks it through the deadline.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("smtp %s: %w (%v)", e.smtp.Addr, ctx.Err(), err)
		}
	}()

	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return smtpErr(e.smtp.Addr, "greeting", err)
	}
	defer c.Close()
	hello := e.smtp.HelloName
	if hello == "" {
		if hello, _ = os.Hostname(); hello == "" {
			hello = "localhost"
		}
	}
	if err := c.Hello(hello); err != nil {
		return smtpErr(e.smtp.Addr, "EHLO", err)
	}
	offered, _ := c.Extension("STARTTLS")
	switch mode := e.smtp.StartTLS; {
	case offered && mode != "never":
		cfg := e.smtp.TLSConfig.Clone()
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		if err := c.StartTLS(cfg); err != nil {
			return smtpErr(e.smtp.Addr, "STARTTLS", err)
		}
	case !offered && mode == "require":
		return &rejected{fmt.Errorf("smtp %s: the server does not offer STARTTLS and smtp.startTLS is require", e.smtp.Addr)}
	}
	if e.smtp.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return &rejected{fmt.Errorf("smtp %s: the server does not offer AUTH but a username is configured", e.smtp.Addr)}
		}
		// PlainAuth refuses to send the password unencrypted except to localhost.
		if err := c.Auth(smtp.PlainAuth("", e.smtp.Username, e.smtp.Password, host)); err != nil {
			return smtpErr(e.smtp.Addr, "AUTH PLAIN", err)
		}
	}
	if err := c.Mail(from.Address); err != nil {
		return smtpErr(e.smtp.Addr, "MAIL FROM", err)
	}
	for _, to := range e.to {
		if err := c.Rcpt(to); err != nil {
			return smtpErr(e.smtp.Addr, "RCPT TO <"+to+">", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return smtpErr(e.smtp.Addr, "DATA", err)
	}
	// The DotWriter turns line ends into CRLF and dot-stuffs.
	if _, err := w.Write(msg); err != nil {
		return smtpErr(e.smtp.Addr, "DATA", err)
	}
	if err := w.Close(); err != nil { // the server's answer to the message
		return smtpErr(e.smtp.Addr, "DATA", err)
	}
	if err := c.Quit(); err != nil {
		// The message was accepted (250 after DATA); a failed QUIT loses nothing.
		return nil
	}
	return nil
}

// smtpErr wraps a failed SMTP step; a 5xx answer is permanent.
func smtpErr(addr, step string, err error) error {
	err = fmt.Errorf("smtp %s: %s: %w", addr, step, err)
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		return &rejected{err}
	}
	if strings.Contains(err.Error(), "unencrypted connection") {
		return &rejected{err} // PlainAuth's refusal: only configuration can fix it
	}
	return err
}

// buildMail renders the RFC 5322 message: headers, then a text/plain body in
// quoted-printable (safe for any server: 7-bit, lines under 78 characters).
func buildMail(from *mail.Address, to []string, n *notification) []byte {
	var buf bytes.Buffer
	header := func(k, v string) {
		if strings.HasPrefix(v, "\r\n ") { // already folded
			fmt.Fprintf(&buf, "%s:%s\r\n", k, v)
			return
		}
		fmt.Fprintf(&buf, "%s: %s\r\n", k, v)
	}
	header("From", from.String())
	header("To", strings.Join(to, ", "))
	header("Subject", encodeHeader(oneLine(n.subject, mailSubjectMax)))
	header("Date", n.at.Format(time.RFC1123Z))
	domain := "opentrail.invalid"
	if i := strings.LastIndexByte(from.Address, '@'); i >= 0 && i+1 < len(from.Address) {
		domain = from.Address[i+1:]
	}
	header("Message-ID", "<"+uuid.NewString()+"@"+domain+">")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	header("Auto-Submitted", "auto-generated") // RFC 3834: no vacation replies
	buf.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&buf)
	if n.msg != nil {
		text := n.msg.Text
		if text == "" {
			text = n.msg.Body
		}
		qp.Write([]byte(strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\n", "\r\n")))
	} else {
		qp.Write([]byte(plainText(n.batch, n.sums)))
	}
	qp.Close()
	return buf.Bytes()
}

// encodeHeader returns s as is when it is printable ASCII, else as RFC 2047
// encoded-words, each on its own folded line (starting with CRLF SP) so that
// no line passes 78 characters.
func encodeHeader(s string) string {
	plain := true
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	enc := mime.QEncoding.Encode("utf-8", s)
	return "\r\n " + strings.ReplaceAll(enc, "?= =?", "?=\r\n =?")
}
