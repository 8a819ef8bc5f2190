package dest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func (c *Config) newLambda(name, region, target string) (Destination, error) {
	switch {
	case hasPrefixFold(target, "http://"), hasPrefixFold(target, "https://"):
		u, err := parseHTTPURL(target)
		if err != nil {
			return nil, invalidf("Invalid configuration for function %s: %v", name, err)
		}
		return &httpLambda{name: name, url: u, client: c.httpClient()}, nil
	case strings.HasPrefix(target, "exec:"):
		argv, err := splitCommand(strings.TrimPrefix(target, "exec:"))
		if err == nil && len(argv) == 0 {
			err = errors.New("no command")
		}
		if err != nil {
			return nil, invalidf("Invalid configuration for function %s: exec: %v", name, err)
		}
		return &execLambda{name: name, region: region, argv: argv, stdout: c.LambdaStdout}, nil
	}
	return nil, invalidf("Invalid configuration for function %s: expected an http(s) URL or exec:COMMAND", name)
}

// httpLambda POSTs the Lambda event to a URL: a function behind any HTTP
// front, or the Lambda Runtime Interface Emulator
// (http://host:9000/2015-03-31/functions/function/invocations).
type httpLambda struct {
	name   string
	url    *url.URL
	client *http.Client
}

func (l *httpLambda) String() string { return "lambda " + l.name + " " + redactURL(l.url) }

func (l *httpLambda) Send(ctx context.Context, b *Batch) error {
	body, err := Payload(b)
	if err != nil {
		return fmt.Errorf("lambda %s: %w", l.name, err)
	}
	return l.invoke(ctx, b.Region, body)
}

// invoker runs a function with an event: the awslogs event of a subscription,
// the SNS event of a topic it subscribes to.
type invoker interface {
	invoke(ctx context.Context, region string, event []byte) error
}

func (l *httpLambda) invoke(ctx context.Context, _ string, body []byte) error {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-Amz-Invocation-Type", "Event") // CloudWatch Logs invokes asynchronously
	err := post(ctx, l.client, l.url, safeURL(l.url), body, h, func(r *http.Response) error {
		// The Invoke API and the emulator answer 200 even when the function
		// failed, and say so in this header.
		if fe := r.Header.Get("X-Amz-Function-Error"); fe != "" {
			return fmt.Errorf("function error %q", fe)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("lambda %s: %w", l.name, err)
	}
	return nil
}

// execLambda runs a command with the Lambda event on stdin, as one
// invocation of the function.
type execLambda struct {
	name   string
	region string
	argv   []string
	stdout io.Writer
}

func (l *execLambda) String() string {
	return "lambda " + l.name + " exec:" + filepath.Base(l.argv[0])
}

const (
	stderrTail = 2048
	stdoutCap  = 1 << 20
	// execWaitDelay bounds how long a cancelled command's leftover children
	// may hold its pipes open.
	execWaitDelay = 5 * time.Second
)

func (l *execLambda) Send(ctx context.Context, b *Batch) error {
	body, err := Payload(b)
	if err != nil {
		return fmt.Errorf("lambda %s: %w", l.name, err)
	}
	return l.invoke(ctx, b.Region, body)
}

func (l *execLambda) invoke(ctx context.Context, region string, body []byte) error {
	cmd := exec.CommandContext(ctx, l.argv[0], l.argv[1:]...)
	cmd.Stdin = bytes.NewReader(body)
	// What a Lambda runtime would set that handlers commonly read.
	cmd.Env = append(os.Environ(),
		"AWS_LAMBDA_FUNCTION_NAME="+l.name,
		"AWS_REGION="+region,
		"AWS_DEFAULT_REGION="+region,
	)
	var stdout capBuffer
	stdout.max = stdoutCap
	var stderr tailBuffer
	stderr.max = stderrTail
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = execWaitDelay
	err := cmd.Run()
	if l.stdout != nil && stdout.buf.Len() > 0 {
		l.stdout.Write(stdout.buf.Bytes())
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("lambda %s: exec %s: %w (%v)", l.name, filepath.Base(l.argv[0]), ctx.Err(), err)
		}
		msg := strings.TrimSpace(strings.ToValidUTF8(stderr.String(), "?"))
		if msg != "" {
			msg = ": " + msg
		}
		return fmt.Errorf("lambda %s: exec %s: %v%s", l.name, filepath.Base(l.argv[0]), err, msg)
	}
	return nil
}

// capBuffer keeps the first max bytes written and drops the rest.
type capBuffer struct {
	buf bytes.Buffer
	max int
}

func (c *capBuffer) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	buf       []byte
	max       int
	truncated bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.truncated = true
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	if t.truncated {
		return "…" + string(t.buf)
	}
	return string(t.buf)
}

// splitCommand splits a command line into argv the way a POSIX shell splits
// words, without running a shell: blanks separate words; '...' is literal;
// "..." is literal except \" \\ \$ \` and \newline; a backslash outside quotes
// escapes the next character. No variables, globs, pipes or redirections: a
// '|' or '>' is an ordinary character.
func splitCommand(s string) ([]string, error) {
	var argv []string
	var word strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
			if inWord {
				argv = append(argv, word.String())
				word.Reset()
				inWord = false
			}
		case ch == '\\':
			inWord = true
			if i+1 == len(s) {
				return nil, errors.New("command line ends with a backslash")
			}
			i++
			if s[i] != '\n' { // backslash-newline joins lines
				word.WriteByte(s[i])
			}
		case ch == '\'':
			inWord = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated ' in command line")
			}
			word.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case ch == '"':
			inWord = true
			closed := false
			for i++; i < len(s); i++ {
				c := s[i]
				if c == '"' {
					closed = true
					break
				}
				if c == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`\n", s[i+1]) >= 0 {
					i++
					if s[i] != '\n' {
						word.WriteByte(s[i])
					}
					continue
				}
				word.WriteByte(c)
			}
			if !closed {
				return nil, errors.New(`unterminated " in command line`)
			}
		default:
			inWord = true
			word.WriteByte(ch)
		}
	}
	if inWord {
		argv = append(argv, word.String())
	}
	return argv, nil
}
