package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
)

func runLookup(args []string) error {
	fs := newFlags("opentrail lookup", "[flags]", "Looks up management (or insight) events of the caller's account with LookupEvents, newest first.",
		"opentrail lookup --attribute EventName=CreateTrail --start-time 24h\nopentrail lookup --attribute Username=alice --output json")
	cf := addClientFlags(fs, "region to look in")
	attr := fs.String("attribute", "", "lookup attribute as Key=Value, e.g. EventName=CreateTrail (keys: EventId, EventName, ReadOnly, Username, ResourceType, ResourceName, EventSource, AccessKeyId)")
	start := fs.String("start-time", "", "only events at or after this time (RFC 3339, or a duration ago such as 1h)")
	end := fs.String("end-time", "", "only events at or before this time (RFC 3339, or a duration ago)")
	insight := fs.Bool("insight", false, "look up insight events instead of management events")
	max := fs.Int("max", 50, "how many events to print at most (0 = all)")
	output := fs.enum("output", "table", []string{"table", "json"}, "output format; json prints one event (CloudTrailEvent) per line")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(0, "no arguments"); err != nil {
		return err
	}

	in := &cloudtrail.LookupEventsInput{}
	if *attr != "" {
		k, v, ok := strings.Cut(*attr, "=")
		if !ok {
			return usagef("--attribute must be Key=Value, e.g. EventName=CreateTrail")
		}
		in.LookupAttributes = []types.LookupAttribute{{AttributeKey: types.LookupAttributeKey(k), AttributeValue: aws.String(v)}}
	}
	for _, t := range []struct {
		flag string
		dst  **time.Time
	}{{*start, &in.StartTime}, {*end, &in.EndTime}} {
		if t.flag == "" {
			continue
		}
		tm, err := parseWhen(t.flag)
		if err != nil {
			return usageError{err.Error()}
		}
		*t.dst = &tm
	}
	if *insight {
		in.EventCategory = types.EventCategoryInsight
	}
	c, err := cf.connect(context.Background(), false)
	if err != nil {
		return err
	}
	var events []types.Event
	p := cloudtrail.NewLookupEventsPaginator(c.cloudTrail(), in)
	for p.HasMorePages() && (*max == 0 || len(events) < *max) {
		page, err := p.NextPage(context.Background())
		if err != nil {
			return err
		}
		events = append(events, page.Events...)
	}
	if *max > 0 && len(events) > *max {
		events = events[:*max]
	}
	if *output == "json" {
		enc := json.NewEncoder(os.Stdout)
		for _, e := range events {
			if err := enc.Encode(json.RawMessage(aws.ToString(e.CloudTrailEvent))); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT TIME\tEVENT NAME\tUSER\tEVENT SOURCE\tREAD ONLY\tEVENT ID")
	for _, e := range events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", aws.ToTime(e.EventTime).UTC().Format(time.RFC3339), aws.ToString(e.EventName),
			aws.ToString(e.Username), aws.ToString(e.EventSource), aws.ToString(e.ReadOnly), aws.ToString(e.EventId))
	}
	return tw.Flush()
}

// parseWhen takes RFC 3339 or a duration before now ("90m", "24h").
func parseWhen(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q is neither RFC 3339 nor a duration", s)
	}
	return t, nil
}
