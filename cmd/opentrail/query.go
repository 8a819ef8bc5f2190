package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
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
)

const queryAbout = `Runs SQL on a running server (StartQuery, then GetQueryResults), or with --logs
straight over CloudTrail log files (.json.gz) in a folder or S3 prefix, as the
table cloudtrail_logs.

With --eds ID, the SQL may write $EDS, or the table name eds after FROM or JOIN,
for the event data store.`

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
	fs := newFlags("opentrail query", "[flags] 'SQL'", queryAbout,
		"opentrail query --eds 0a1b2c3d 'SELECT eventName, count(*) FROM eds GROUP BY 1'\n"+
			"opentrail query --logs ./AWSLogs 'SELECT count(*) FROM cloudtrail_logs'")
	cf := addClientFlags(fs, "region of the event data store")
	eds := fs.String("eds", "", "event data store ID or ARN that $EDS (or the table name eds) stands for")
	output := fs.enum("output", "table", []string{"table", "json", "csv"}, "output format; json prints one object per row")
	maxWait := fs.Duration("max-wait", 10*time.Minute, "cancel the query if it has not finished after this long (0 = wait forever)")
	logs := fs.String("logs", "", "query CloudTrail log files in this folder or s3://bucket/prefix instead of a server")
	s3f := addS3Flags(fs, "with --logs s3://...: ")
	quiet := fs.Bool("quiet", false, "no progress or statistics on stderr")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(1, "the SQL as one argument"); err != nil {
		return err
	}
	sql := fs.Arg(0)
	progress := io.Writer(os.Stderr)
	if *quiet {
		progress = io.Discard
	}
	ctx := context.Background()
	if *logs != "" {
		s3, err := s3f.storeFor(ctx, *logs)
		if err != nil {
			return err
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
	c, err := cf.connect(ctx, false)
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
