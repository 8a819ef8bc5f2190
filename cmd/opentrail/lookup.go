package main

import (
	"context"
	"encoding/json"
	"flag"
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
	fs := flag.NewFlagSet("lookup", flag.ExitOnError)
	endpoint := fs.String("endpoint", env("http://127.0.0.1:4590", "OPENTRAIL_ENDPOINT"), "OpenTrail server URL")
	region := fs.String("region", env("us-east-1", "OPENTRAIL_REGION"), "region to look in")
	attr := fs.String("attribute", "", "lookup attribute as Key=Value, e.g. EventName=CreateTrail (keys: EventId, EventName, ReadOnly, Username, ResourceType, ResourceName, EventSource, AccessKeyId)")
	start := fs.String("start-time", "", "only events at or after this time (RFC 3339, or a duration ago such as 1h)")
	end := fs.String("end-time", "", "only events at or before this time (RFC 3339, or a duration ago)")
	insight := fs.Bool("insight", false, "look up insight events instead of management events")
	max := fs.Int("max", 50, "how many events to print at most (0 = all)")
	output := fs.String("output", "table", "table or json")
	fs.Parse(args)

	in := &cloudtrail.LookupEventsInput{}
	if *attr != "" {
		k, v, ok := strings.Cut(*attr, "=")
		if !ok {
			return fmt.Errorf("--attribute must be Key=Value")
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
			return err
		}
		*t.dst = &tm
	}
	if *insight {
		in.EventCategory = types.EventCategoryInsight
	}
	c, err := newClient(*endpoint, *region, false)
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
