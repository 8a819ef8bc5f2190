package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opentrail/opentrail/internal/server"
)

var deadLetterCommands = []command{
	{"list", "list what a subscription filter, the findings destinations or trail notifications could not deliver", func(a []string) error { return runDeadLetters("list", a) }},
	{"replay", "deliver dead letters again, in order", func(a []string) error { return runDeadLetters("replay", a) }},
}

// runDeadLetters lists or replays dead letters: a subscription filter's,
// the findings destinations' or the trail file notifications'.
func runDeadLetters(action string, args []string) error {
	about := map[string]string{
		"list": "Lists what was given up on after its attempts (serve --subscription-attempts): the events of a subscription filter " +
			"(--log-group, --filter-name), the findings of the findings destinations (--kind findings) or the trail log file " +
			"notifications (--kind trail-notifications). Keys other than root see their own account's only.",
		"replay": "Queues dead letters for delivery again, in their order; they leave the list once delivered. Keys other than root " +
			"replay their own account's only.",
	}[action]
	fs := newFlags("opentrail deadletters "+action, "[--kind subscription] --log-group G --filter-name F | --kind findings [--destination D] | --kind trail-notifications [--topic-arn ARN] [flags]",
		about, "opentrail deadletters "+action+" --log-group /aws/cloudtrail --filter-name to-siem\n  opentrail deadletters "+action+" --kind findings")
	cf := addClientFlags(fs, "region of the log group")
	kind := fs.enum("kind", server.DeadSubscription, []string{server.DeadSubscription, server.DeadFindings, server.DeadTrailNotifications}, "whose dead letters")
	group := fs.String("log-group", "", "log group of the subscription filter")
	filter := fs.String("filter-name", "", "subscription filter name")
	destination := fs.String("destination", "", "with --kind findings: only this destination, named as the list shows it")
	topic := fs.String("topic-arn", "", "with --kind trail-notifications: only this SNS topic")
	limit := fs.Int("limit", 100, "list at most this many (0 = all)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(0, "no arguments"); err != nil {
		return err
	}
	switch {
	case *kind == server.DeadSubscription && (*group == "" || *filter == ""):
		return usagef("--log-group and --filter-name are required for a subscription filter's dead letters")
	case *kind != server.DeadSubscription && (*group != "" || *filter != ""):
		return usagef("--log-group and --filter-name are only for --kind %s", server.DeadSubscription)
	case *destination != "" && *kind != server.DeadFindings:
		return usagef("--destination is only for --kind %s", server.DeadFindings)
	case *topic != "" && *kind != server.DeadTrailNotifications:
		return usagef("--topic-arn is only for --kind %s", server.DeadTrailNotifications)
	}
	c, err := cf.connect(context.Background(), false)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(server.DeadLettersRequest{Action: action, Kind: *kind, LogGroupName: *group, FilterName: *filter,
		Destination: *destination, TopicArn: *topic, Limit: *limit})
	var out struct {
		DeadLetters json.RawMessage
		Replayed    int
	}
	if err := c.post(context.Background(), "/v1/deadletters", body, &out); err != nil {
		return err
	}
	if action == "replay" {
		fmt.Printf("replayed %d %s; they are delivered again in order\n", out.Replayed, map[string]string{
			server.DeadSubscription: "events", server.DeadFindings: "findings", server.DeadTrailNotifications: "notifications"}[*kind])
		return nil
	}
	const stamp = "2006-01-02T15:04:05.000Z"
	switch *kind {
	case server.DeadSubscription:
		var list []struct {
			LogStreamName string `json:"logStreamName"`
			Timestamp     int64  `json:"timestamp"`
			Message       string `json:"message"`
		}
		if err := json.Unmarshal(out.DeadLetters, &list); err != nil {
			return err
		}
		for _, d := range list {
			fmt.Printf("%s %s %s\n", time.UnixMilli(d.Timestamp).UTC().Format(stamp), d.LogStreamName, d.Message)
		}
	case server.DeadFindings:
		var list []server.DeadFinding
		if err := json.Unmarshal(out.DeadLetters, &list); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tACCOUNT\tLEVEL\tRULE\tEVENTS\tDESTINATION")
		for _, d := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", time.Unix(0, int64(d.Time*1e9)).UTC().Format(stamp), d.AccountId, d.Level,
				oneLine(d.RuleTitle), strings.Join(d.EventIds, ","), d.Destination)
		}
		tw.Flush()
	case server.DeadTrailNotifications:
		var list []server.DeadNotification
		if err := json.Unmarshal(out.DeadLetters, &list); err != nil {
			return err
		}
		for _, d := range list {
			fmt.Printf("%s %s %s s3://%s/%s\n", d.TopicArn, d.AccountId, d.TrailName, d.S3BucketName, strings.Join(d.S3ObjectKeys, ","))
		}
	}
	return nil
}
