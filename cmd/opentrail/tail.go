package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/opentrail/opentrail/internal/server"
)

// runTail prints events from the server as they happen: history since
// --since, then (with --follow) live events until interrupted.
func runTail(args []string) error {
	fs := newFlags("opentrail tail", "[flags]", "Prints events as they happen: a log group's, or (without --log-group) every record of the caller's account; "+
		"history since --since first, then with --follow live events until interrupted.",
		"opentrail tail --follow --filter '{ $.userIdentity.userName = \"alice\" }'")
	cf := addClientFlags(fs, "region of the log group")
	group := fs.String("log-group", "", "log group to tail; empty tails every record of your account")
	filter := fs.String("filter", "", "CloudWatch Logs filter pattern, e.g. '{ $.userIdentity.userName = \"alice\" }'")
	since := fs.String("since", "10m", "start this long ago (e.g. 1h) or at this time (RFC 3339)")
	follow := fs.Bool("follow", false, "keep printing new events until interrupted")
	format := fs.enum("format", "short", []string{"short", "json"}, "short (time, stream, message) or json (one JSON object per line)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(0, "no arguments"); err != nil {
		return err
	}
	start, err := parseWhen(*since)
	if err != nil {
		return usagef("--since: %v", err)
	}
	c, err := cf.connect(context.Background(), false)
	if err != nil {
		return err
	}
	c.http = &http.Client{Transport: c.http.Transport} // no overall timeout: a tail runs until stopped
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	body, _ := json.Marshal(server.TailRequest{LogGroupName: *group, FilterPattern: *filter, StartTime: start.UnixMilli(), Follow: *follow})
	resp, err := c.open(ctx, "/v1/tail", body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return printTail(os.Stdout, resp.Body, *format)
}

func printTail(w io.Writer, r io.Reader, format string) error {
	out := bufio.NewWriter(w)
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		if format == "json" {
			out.Write(sc.Bytes())
			out.WriteByte('\n')
		} else {
			var l server.TailLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				return fmt.Errorf("tail: bad line from the server: %w", err)
			}
			if l.Dropped > 0 {
				fmt.Fprintf(os.Stderr, "tail: %d events were dropped because this tail did not keep up\n", l.Dropped)
				continue
			}
			fmt.Fprintf(out, "%s %s %s\n", time.UnixMilli(l.Timestamp).UTC().Format("2006-01-02T15:04:05.000Z"), l.LogStreamName, l.Message)
		}
		// Flush at the end of each batch the server sent, so live events show at once.
		if sc.Err() == nil {
			out.Flush()
		}
	}
	out.Flush()
	if err := sc.Err(); err != nil && err != context.Canceled {
		return err
	}
	return nil
}
