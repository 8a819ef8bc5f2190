package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"

	"github.com/opentrail/opentrail/internal/lake"
	"github.com/opentrail/opentrail/internal/objstore"
)

const queryUsage = `usage: opentrail query [flags] 'SQL'

Runs SQL on a running server (StartQuery, then GetQueryResults), or with --logs
straight over CloudTrail log files (.json.gz) in a folder or S3 prefix, as the
table cloudtrail_logs.

With --eds ID, the SQL may write $EDS, or the table name eds after FROM or JOIN,
for the event data store: opentrail query --eds 0a1b... 'SELECT count(*) FROM eds'.

flags:
`

// edsTableRE finds the table name eds after FROM or JOIN.
var edsTableRE = regexp.MustCompile(`(?i)\b(FROM|JOIN)(\s+)eds\b`)

// expandEDS puts the event data store id into sql where it writes $EDS or
// the table name eds.
func expandEDS(sql, id string) string {
	if strings.Contains(sql, "$EDS") {
		return strings.ReplaceAll(sql, "$EDS", id)
	}
	return edsTableRE.ReplaceAllString(sql, "${1}${2}"+id)
}

func runQuery(args []string) error {
	fs := flag.NewFlagSet("query", flag.ExitOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), queryUsage); fs.PrintDefaults() }
	endpoint := fs.String("endpoint", env("http://127.0.0.1:4590", "OPENTRAIL_ENDPOINT"), "OpenTrail server URL")
	region := fs.String("region", env("us-east-1", "OPENTRAIL_REGION"), "region of the event data store")
	eds := fs.String("eds", "", "event data store ID or ARN that $EDS (or the table name eds) stands for")
	output := fs.String("output", "table", "table, json (one object per row) or csv")
	maxWait := fs.Duration("max-wait", 10*time.Minute, "cancel the query if it has not finished after this long (0 = wait forever)")
	logs := fs.String("logs", "", "query CloudTrail log files in this folder or s3://bucket/prefix instead of a server")
	s3Endpoint := fs.String("s3-endpoint", env("", "OPENTRAIL_S3_ENDPOINT"), "with --logs s3://...: the S3-compatible service (credentials: OPENTRAIL_S3_ACCESS_KEY_ID/OPENTRAIL_S3_SECRET_ACCESS_KEY, else the AWS default chain)")
	s3Region := fs.String("s3-region", env("us-east-1", "OPENTRAIL_S3_REGION"), "region of the S3 service")
	s3PathStyle := fs.Bool("s3-path-style", true, "address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT")
	quiet := fs.Bool("quiet", false, "no progress or statistics on stderr")
	fs.Parse(args)
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("give the SQL as one argument")
	}
	switch *output {
	case "table", "json", "csv":
	default:
		return fmt.Errorf("--output %q: want table, json or csv", *output)
	}
	sql := fs.Arg(0)
	progress := io.Writer(os.Stderr)
	if *quiet {
		progress = io.Discard
	}
	ctx := context.Background()
	if *logs != "" {
		var s3 objstore.Store
		if strings.HasPrefix(*logs, "s3://") {
			st, err := objstore.NewS3(ctx, objstore.S3Config{Endpoint: *s3Endpoint, Region: *s3Region, PathStyle: *s3PathStyle,
				AccessKeyID: os.Getenv("OPENTRAIL_S3_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("OPENTRAIL_S3_SECRET_ACCESS_KEY")})
			if err != nil {
				return fmt.Errorf("--s3-endpoint: %w", err)
			}
			s3 = st
		}
		if *maxWait > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, *maxWait)
			defer cancel()
		}
		start := time.Now()
		res, err := queryLogs(ctx, *logs, s3, sql, lake.Options{QueryTimeout: *maxWait})
		if err != nil {
			return err
		}
		if err := printRows(os.Stdout, *output, res.Columns, res.Rows); err != nil {
			return err
		}
		fmt.Fprintf(progress, "%d rows, %d bytes scanned, %s\n", len(res.Rows), res.BytesScanned, time.Since(start).Round(time.Millisecond))
		return nil
	}
	if *eds != "" {
		sql = expandEDS(sql, *eds)
	}
	c, err := newClient(*endpoint, *region, false)
	if err != nil {
		return err
	}
	return queryServer(ctx, c.cloudTrail(), sql, *output, *maxWait, progress)
}

// queryServer runs sql through StartQuery, waits for it with progress on
// stderr, and prints every page of its results.
func queryServer(ctx context.Context, ct *cloudtrail.Client, sql, output string, maxWait time.Duration, progress io.Writer) error {
	started, err := ct.StartQuery(ctx, &cloudtrail.StartQueryInput{QueryStatement: aws.String(sql)})
	if err != nil {
		return err
	}
	id := aws.ToString(started.QueryId)
	begin := time.Now()
	delay, last := 50*time.Millisecond, ""
	var desc *cloudtrail.DescribeQueryOutput
	for {
		desc, err = ct.DescribeQuery(ctx, &cloudtrail.DescribeQueryInput{QueryId: aws.String(id)})
		if err != nil {
			return err
		}
		st := string(desc.QueryStatus)
		if st != "QUEUED" && st != "RUNNING" {
			break
		}
		if st != last {
			fmt.Fprintf(progress, "query %s: %s\n", id, st)
			last = st
		}
		if maxWait > 0 && time.Since(begin) > maxWait {
			ct.CancelQuery(ctx, &cloudtrail.CancelQueryInput{QueryId: aws.String(id)})
			return fmt.Errorf("query %s still %s after %s; cancelled it (raise --max-wait to wait longer)", id, st, maxWait)
		}
		time.Sleep(delay)
		delay = min(delay*2, time.Second)
	}
	if st := string(desc.QueryStatus); st != "FINISHED" {
		return fmt.Errorf("query %s %s: %s", id, st, aws.ToString(desc.ErrorMessage))
	}
	var cols []string
	var rows [][]*string
	var next *string
	for {
		page, err := ct.GetQueryResults(ctx, &cloudtrail.GetQueryResultsInput{QueryId: aws.String(id), NextToken: next})
		if err != nil {
			return err
		}
		for _, row := range page.QueryResultRows {
			vals := make([]*string, len(row))
			for i, col := range row {
				for k, v := range col { // one column per map
					if len(rows) == 0 && len(cols) < len(row) {
						cols = append(cols, k)
					}
					vals[i] = aws.String(v)
				}
			}
			rows = append(rows, vals)
		}
		if next = page.NextToken; next == nil {
			break
		}
	}
	if err := printRows(os.Stdout, output, cols, rows); err != nil {
		return err
	}
	if s := desc.QueryStatistics; s != nil {
		fmt.Fprintf(progress, "%d rows, %d bytes scanned, %d ms (query %s)\n", len(rows), aws.ToInt64(s.BytesScanned), aws.ToInt32(s.ExecutionTimeInMillis), id)
	}
	return nil
}

// printRows writes rows as an aligned table, JSON lines or CSV. A nil value
// is SQL NULL: empty in a table or CSV, null in JSON.
func printRows(w io.Writer, output string, cols []string, rows [][]*string) error {
	str := func(v *string) string {
		if v == nil {
			return ""
		}
		return *v
	}
	switch output {
	case "json":
		for _, row := range rows {
			var b strings.Builder
			b.WriteByte('{')
			for i, c := range cols {
				if i > 0 {
					b.WriteByte(',')
				}
				k, _ := json.Marshal(c)
				v, _ := json.Marshal(row[i])
				b.Write(k)
				b.WriteByte(':')
				b.Write(v)
			}
			b.WriteString("}\n")
			if _, err := io.WriteString(w, b.String()); err != nil {
				return err
			}
		}
		return nil
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write(cols)
		rec := make([]string, len(cols))
		for _, row := range rows {
			for i := range cols {
				rec[i] = str(row[i])
			}
			cw.Write(rec)
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	for _, row := range rows {
		vals := make([]string, len(cols))
		for i := range cols {
			// Tabs and newlines inside a value would break the columns.
			vals[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(str(row[i]))
		}
		fmt.Fprintln(tw, strings.Join(vals, "\t"))
	}
	return tw.Flush()
}
