package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"

	"github.com/opentrail/opentrail/internal/archive"
	"github.com/opentrail/opentrail/internal/detect"
)

// rulesCommands are opentrail rules' subcommands.
var rulesCommands = []command{
	{"check", "parse Sigma rules and print file:line:col for every error", func(a []string) error { return rulesCheck(a, os.Stdout) }},
	{"test", "backtest Sigma rules over CloudTrail log files or an event data store", rulesTest},
	{"list", "the rules a running server has loaded, their status and matches", rulesList},
}

// edsIDRE is an event data store ID, the last part of its ARN.
var edsIDRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,128}$`)

// rulesCheck parses the rules under paths and reports every problem.
func rulesCheck(args []string, w io.Writer) error {
	fs := newFlags("opentrail rules check", "PATH...", "Parses Sigma rules (files, or folders read recursively for *.yml and *.yaml) "+
		"as serve --rules loads them, prints file:line:col for every error and a summary, and fails if there is an error.",
		"opentrail rules check ./rules")
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("give at least one rule file or folder")
	}
	rs := detect.Load(fs.Args())
	ok, na := 0, 0
	for _, st := range rs.Statuses() {
		switch st.Status {
		case detect.StatusOK:
			ok++
		case detect.StatusNotApplicable:
			na++
			fmt.Fprintf(w, "%s:%d: rule %s is not for AWS CloudTrail (logsource); it will not run\n", st.File, st.Line, st.ID)
		default:
			msg := st.Status
			if !strings.HasPrefix(msg, st.File) {
				msg = fmt.Sprintf("%s:%d: %s", st.File, st.Line, msg)
			}
			fmt.Fprintln(w, msg)
		}
	}
	fmt.Fprintf(w, "%d rules ok, %d not applicable, %d errors\n", ok, na, rs.Errors())
	if rs.Errors() > 0 {
		return fmt.Errorf("%d errors", rs.Errors())
	}
	return nil
}

// rulesTest backtests rules over log files or an event data store.
func rulesTest(args []string) error {
	fs := newFlags("opentrail rules test", "[flags] PATH... (--logs DIR|s3://bucket/prefix | --eds ID)",
		"Backtests Sigma rules: evaluates them over CloudTrail log files (decoded and evaluated on every core) or over an "+
			"event data store's records (a Lake query through the server), and prints the matches per rule.",
		"opentrail rules test --logs ./AWSLogs ./rules")
	cf := addClientFlags(fs, "with --eds: region of the event data store")
	logs := fs.String("logs", "", "CloudTrail log files: a folder or s3://bucket/prefix")
	eds := fs.String("eds", "", "event data store ID or ARN on a running server (needs a reader key)")
	since := fs.String("start-time", "", "only events at or after this time (RFC 3339, or a duration ago such as 720h)")
	s3f := addS3Flags(fs, "with --logs s3://...: ")
	show := fs.Bool("show", false, "also print every finding as a JSON line")
	workers := fs.Int("workers", 0, "log files decoded and evaluated in parallel (default: number of CPUs)")
	pageRows := fs.Int("page-rows", edsPageRows, "with --eds: records read per Lake query")
	quiet := fs.Bool("quiet", false, "no statistics on stderr")
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 || (*logs == "") == (*eds == "") {
		return usagef("give rule paths and one of --logs or --eds")
	}
	if *pageRows < 1 {
		return usagef("--page-rows: want at least 1, got %d", *pageRows)
	}
	var start time.Time
	if *since != "" {
		t, err := parseWhen(*since)
		if err != nil {
			return usagef("--start-time: %v", err)
		}
		start = t
	}
	rs := detect.Load(fs.Args())
	for _, st := range rs.Statuses() {
		if st.Status != detect.StatusOK && st.Status != detect.StatusNotApplicable {
			fmt.Fprintf(os.Stderr, "%s:%d: %s\n", st.File, st.Line, st.Status)
		}
	}
	// A backtest's live heap is a few files' records: collecting less often
	// costs little memory and saves about a sixth of the CPU (BenchmarkBacktestLogs).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if rs.Running() == 0 {
		return errors.New("rules test: no rule to run")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var onFinding func(*detect.Finding)
	if *show {
		enc := json.NewEncoder(os.Stdout)
		onFinding = func(f *detect.Finding) { enc.Encode(f) }
	}
	begin := time.Now()
	var total *detect.Backtest
	var bytes int64
	var err error
	if *logs != "" {
		s3, serr := s3f.storeFor(ctx, *logs)
		if serr != nil {
			return serr
		}
		a, aerr := archive.Open(ctx, *logs, s3)
		if aerr != nil {
			return aerr
		}
		total, bytes, err = detect.BacktestLogs(ctx, rs, a, archive.Filter{Start: start}, *workers, onFinding,
			func(err error) { fmt.Fprintf(os.Stderr, "rules test: skip %v\n", err) })
	} else {
		c, cerr := cf.connect(ctx, false)
		if cerr != nil {
			return cerr
		}
		total, err = backtestEDS(ctx, rs, c.cloudTrail(), *eds, start, *pageRows, onFinding)
	}
	if err != nil {
		return err
	}
	printBacktest(os.Stdout, rs, total)
	if !*quiet {
		el := time.Since(begin)
		fmt.Fprintf(os.Stderr, "%d events (%d unreadable), %d rules, %s", total.Events, total.Unreadable, rs.Running(), el.Round(time.Millisecond))
		if bytes > 0 {
			fmt.Fprintf(os.Stderr, ", %.1f MB/s of JSON", float64(bytes)/1e6/el.Seconds())
		}
		fmt.Fprintln(os.Stderr)
	}
	return nil
}

// edsPageRows is how many records one Lake query of rules test --eds reads
// by default: about 15 MB of CloudTrail records, well under the result size a
// node keeps (64 MiB).
const edsPageRows = 10000

// backtestEDS evaluates rs over an event data store's records from start, in
// event time order, read through Lake queries of at most pageRows records
// each: a query's results are bounded, a store is not. Each query resumes
// after the last record of the one before, by (eventTime, eventID).
func backtestEDS(ctx context.Context, rs *detect.RuleSet, ct *cloudtrail.Client, eds string, start time.Time, pageRows int,
	onFinding func(*detect.Finding)) (*detect.Backtest, error) {
	id := eds
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		id = id[i+1:]
	}
	if !edsIDRE.MatchString(id) {
		return nil, fmt.Errorf("--eds %q: expected an event data store ID or ARN", eds)
	}
	bt := detect.NewBacktest(rs)
	bt.OnFinding = onFinding
	var lastTime, lastID string // the last record read; lastTime "" before the first
	for {
		n := 0
		err := edsQuery(ctx, ct, edsPageSQL(id, start, lastTime, lastID, pageRows), func(row []string) {
			bt.Eval(detect.Prepare([]byte(row[0])))
			lastID, lastTime = row[1], row[2]
			n++
		})
		var big *edsResultTooLarge
		switch {
		case errors.As(err, &big) && n == 0 && pageRows > 1:
			pageRows = max(1, pageRows/4) // records far larger than CloudTrail's usual 1-2 KB
			continue
		case err != nil:
			return nil, err
		case n < pageRows:
			return bt, nil
		}
	}
}

// edsPageSQL selects the next pageRows records of store id at or after start
// and after (lastTime, lastID), with what the next query resumes after.
func edsPageSQL(id string, start time.Time, lastTime, lastID string, pageRows int) string {
	var where []string
	if !start.IsZero() {
		where = append(where, "eventTime >= TIMESTAMP '"+start.UTC().Format("2006-01-02 15:04:05.999999")+"'")
	}
	if lastTime != "" {
		t, i := "TIMESTAMP "+sqlString(lastTime), sqlString(lastID)
		where = append(where, "(eventTime > "+t+" OR eventTime = "+t+" AND eventID > "+i+")")
	}
	sql := "SELECT eventJson, eventID, CAST(eventTime AS VARCHAR) FROM " + id
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	return sql + " ORDER BY eventTime, eventID LIMIT " + strconv.Itoa(pageRows)
}

func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// edsResultTooLarge is a Lake query that failed because its result was larger
// than the node keeps.
type edsResultTooLarge struct{ msg string }

func (e *edsResultTooLarge) Error() string { return e.msg }

// edsQuery runs sql through the server's Lake and calls fn with each result
// row's values, in order, page by page.
func edsQuery(ctx context.Context, ct *cloudtrail.Client, sql string, fn func(row []string)) error {
	started, err := ct.StartQuery(ctx, &cloudtrail.StartQueryInput{QueryStatement: aws.String(sql)})
	if err != nil {
		return err
	}
	qid := aws.ToString(started.QueryId)
	delay := 20 * time.Millisecond
	for {
		desc, err := ct.DescribeQuery(ctx, &cloudtrail.DescribeQueryInput{QueryId: aws.String(qid)})
		if err != nil {
			return err
		}
		st := string(desc.QueryStatus)
		if st == "FINISHED" {
			break
		}
		if st != "QUEUED" && st != "RUNNING" {
			msg := fmt.Sprintf("query %s %s: %s", qid, st, aws.ToString(desc.ErrorMessage))
			if strings.Contains(aws.ToString(desc.ErrorMessage), "result is larger than") {
				return &edsResultTooLarge{msg}
			}
			return errors.New(msg)
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			ct.CancelQuery(context.Background(), &cloudtrail.CancelQueryInput{QueryId: aws.String(qid)})
			return ctx.Err()
		}
		delay = min(2*delay, time.Second)
	}
	var next *string
	for {
		page, err := ct.GetQueryResults(ctx, &cloudtrail.GetQueryResultsInput{QueryId: aws.String(qid), NextToken: next})
		if err != nil {
			return err
		}
		for _, cols := range page.QueryResultRows {
			row := make([]string, len(cols))
			for i, col := range cols {
				for _, v := range col { // one column name to its value
					row[i] = v
				}
			}
			fn(row)
		}
		if next = page.NextToken; next == nil {
			return nil
		}
	}
}

// printBacktest writes the matches per running rule, most first.
func printBacktest(w io.Writer, rs *detect.RuleSet, bt *detect.Backtest) {
	type row struct {
		st detect.RuleStatus
		n  int64
	}
	var rows []row
	for _, st := range rs.Statuses() {
		if st.Status == detect.StatusOK {
			rows = append(rows, row{st, bt.Matches[st.ID]})
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].n > rows[j].n })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MATCHES\tLEVEL\tRULE\tTITLE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.n, r.st.Level, r.st.ID, oneLine(r.st.Title))
	}
	tw.Flush()
}

// rulesList prints the rules a running server has loaded.
func rulesList(args []string) error {
	fs := newFlags("opentrail rules list", "[flags]", "Lists the detection rules a running server has loaded (serve --rules), "+
		"with their status and how often each matched the caller's account since the server started.",
		"opentrail rules list")
	cf := addClientFlags(fs, "region to sign requests for")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(0, "no arguments"); err != nil {
		return err
	}
	ctx := context.Background()
	c, err := cf.connect(ctx, false)
	if err != nil {
		return err
	}
	var out struct{ Rules []detect.RuleStatus }
	if err := c.post(ctx, "/v1/rules", []byte("{}"), &out); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MATCHES\tLEVEL\tRULE\tSTATUS\tFILE")
	for _, r := range out.Rules {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s:%d\n", r.Matches, r.Level, r.ID, oneLine(r.Status), r.File, r.Line)
	}
	return tw.Flush()
}
