package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opentrail/opentrail/internal/server"
)

// runFindings prints the detection findings of the caller's account, oldest
// first: those since --since, then (with --follow) new ones until interrupted.
func runFindings(args []string) error {
	fs := newFlags("opentrail findings", "[flags]", "Prints the detection findings of the caller's account (Sigma rules the server evaluates, "+
		"serve --rules), oldest first: those since --since, then with --follow new ones until interrupted.",
		"opentrail findings --since 24h --min-level high --follow")
	cf := addClientFlags(fs, "region to sign requests for")
	since := fs.String("since", "10m", "start this long ago (e.g. 24h) or at this time (RFC 3339)")
	rule := fs.String("rule", "", "only findings of this rule ID")
	minLevel := fs.String("min-level", "", "only findings of at least this level: informational, low, medium, high, critical")
	follow := fs.Bool("follow", false, "keep printing new findings until interrupted")
	output := fs.enum("output", "table", []string{"table", "json"}, "output format; json prints one finding per line")
	poll := fs.Duration("poll", 2*time.Second, "with --follow: how often to ask for new findings")
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c, err := cf.connect(ctx, false)
	if err != nil {
		return err
	}
	p := &findingsPrinter{w: os.Stdout, json: *output == "json"}
	seen := map[string]bool{} // findings printed at the newest time seen, which the next poll asks for again
	for {
		list, err := fetchFindings(ctx, c, start, *rule, *minLevel)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		var fresh []server.Finding
		for _, f := range list {
			if !seen[f.FindingId] {
				fresh = append(fresh, f)
			}
		}
		if err := p.print(fresh); err != nil {
			return err
		}
		if len(list) > 0 {
			newest := list[0].Time
			if newest > float64(start.UnixNano())/1e9 {
				clear(seen)
			}
			for _, f := range list {
				if f.Time == newest {
					seen[f.FindingId] = true
				}
			}
			start = time.Unix(0, int64(newest*1e9))
		}
		if !*follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*poll):
		}
	}
}

// fetchFindings reads every page of findings since start, newest first.
func fetchFindings(ctx context.Context, c *client, start time.Time, rule, minLevel string) ([]server.Finding, error) {
	st := float64(start.UnixNano()) / 1e9
	max := 1000
	in := server.FindingsRequest{StartTime: &st, RuleId: rule, MinLevel: minLevel, MaxResults: &max}
	var all []server.Finding
	for {
		body, _ := json.Marshal(in)
		var out server.FindingsResponse
		if err := c.post(ctx, "/v1/findings", body, &out); err != nil {
			return nil, err
		}
		all = append(all, out.Findings...)
		if out.NextToken == "" {
			return all, nil
		}
		in.NextToken = out.NextToken
	}
}

type findingsPrinter struct {
	w    io.Writer
	json bool
	head bool
}

// print writes findings (newest first, as the server sends them) oldest first.
func (p *findingsPrinter) print(list []server.Finding) error {
	list = slices.Clone(list)
	slices.Reverse(list)
	if p.json {
		enc := json.NewEncoder(p.w)
		for _, f := range list {
			if err := enc.Encode(f); err != nil {
				return err
			}
		}
		return nil
	}
	if len(list) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	if !p.head {
		fmt.Fprintln(tw, "TIME\tLEVEL\tRULE\tREGION\tEVENTS\tGROUP")
		p.head = true
	}
	for _, f := range list {
		var group []string
		for k, v := range f.GroupBy {
			group = append(group, k+"="+v)
		}
		sort.Strings(group)
		t := time.Unix(0, int64(f.Time*1e9)).UTC().Format(time.RFC3339)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", t, f.Level, oneLine(f.RuleTitle), f.Region, len(f.EventIds), oneLine(strings.Join(group, ",")))
	}
	return tw.Flush()
}

func oneLine(s string) string { return strings.NewReplacer("\t", " ", "\n", " ").Replace(s) }
