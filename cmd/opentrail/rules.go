package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"

	"github.com/opentrail/opentrail/internal/archive"
	"github.com/opentrail/opentrail/internal/detect"
	"github.com/opentrail/opentrail/internal/objstore"
)

const rulesUsage = `usage:
  opentrail rules check PATH...
      parse Sigma rules (files, or folders read recursively for *.yml/*.yaml);
      print file:line:col for every error and exit 1 if there is one
  opentrail rules test [flags] PATH... (--logs DIR|s3://bucket/prefix | --eds ID)
      backtest: evaluate the rules over CloudTrail log files or an event data
      store and print the matches per rule
  opentrail rules list [flags]
      the rules a running server has loaded, their status and matches
`

// edsIDRE is an event data store ID, the last part of its ARN.
var edsIDRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,128}$`)

// errRulesUsage is returned for a command line that names no subcommand.
var errRulesUsage = errors.New("give a subcommand: check, test or list")

func runRules(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(os.Stderr, rulesUsage)
		return errRulesUsage
	}
	switch args[0] {
	case "check":
		return rulesCheck(args[1:], os.Stdout)
	case "test":
		return rulesTest(args[1:])
	case "list":
		return rulesList(args[1:])
	}
	fmt.Fprint(os.Stderr, rulesUsage)
	return fmt.Errorf("unknown subcommand %q", args[0])
}

// rulesCheck parses the rules under paths and reports every problem.
func rulesCheck(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("rules check", flag.ExitOnError)
	fs.Parse(args)
	if fs.NArg() == 0 {
		return errors.New("rules check: give at least one rule file or folder")
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
	fs := flag.NewFlagSet("rules test", flag.ExitOnError)
	logs := fs.String("logs", "", "CloudTrail log files: a folder or s3://bucket/prefix")
	eds := fs.String("eds", "", "event data store ID or ARN on a running server (needs a reader key)")
	since := fs.String("since", "", "only events from this long ago (e.g. 720h) or this time (RFC 3339)")
	endpoint := fs.String("endpoint", env("http://127.0.0.1:4590", "OPENTRAIL_ENDPOINT"), "with --eds: the OpenTrail server URL")
	region := fs.String("region", env("us-east-1", "OPENTRAIL_REGION"), "with --eds: region of the event data store")
	s3Endpoint := fs.String("s3-endpoint", env("", "OPENTRAIL_S3_ENDPOINT"), "with --logs s3://...: the S3-compatible service")
	s3Region := fs.String("s3-region", env("us-east-1", "OPENTRAIL_S3_REGION"), "region of the S3 service")
	s3PathStyle := fs.Bool("s3-path-style", true, "address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT")
	show := fs.Bool("show", false, "also print every finding as a JSON line")
	workers := fs.Int("workers", runtime.NumCPU(), "log files decoded and evaluated in parallel")
	quiet := fs.Bool("quiet", false, "no statistics on stderr")
	fs.Parse(args)
	if fs.NArg() == 0 || (*logs == "") == (*eds == "") {
		fmt.Fprint(os.Stderr, rulesUsage)
		return errors.New("rules test: give rule paths and one of --logs or --eds")
	}
	var start time.Time
	if *since != "" {
		t, err := parseWhen(*since)
		if err != nil {
			return fmt.Errorf("--since: %w", err)
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
		var s3 objstore.Store
		if strings.HasPrefix(*logs, "s3://") {
			s3, err = objstore.NewS3(ctx, objstore.S3Config{Endpoint: *s3Endpoint, Region: *s3Region, PathStyle: *s3PathStyle,
				AccessKeyID: os.Getenv("OPENTRAIL_S3_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("OPENTRAIL_S3_SECRET_ACCESS_KEY")})
			if err != nil {
				return fmt.Errorf("--s3-endpoint: %w", err)
			}
		}
		a, aerr := archive.Open(ctx, *logs, s3)
		if aerr != nil {
			return aerr
		}
		total, bytes, err = detect.BacktestLogs(ctx, rs, a, archive.Filter{Start: start}, *workers, onFinding,
			func(err error) { fmt.Fprintf(os.Stderr, "rules test: skip %v\n", err) })
	} else {
		c, cerr := newClient(*endpoint, *region, false)
		if cerr != nil {
			return cerr
		}
		total, err = backtestEDS(ctx, rs, c.cloudTrail(), *eds, start, onFinding)
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

// backtestEDS evaluates rs over an event data store's records, read through a
// Lake query ordered by event time.
func backtestEDS(ctx context.Context, rs *detect.RuleSet, ct *cloudtrail.Client, eds string, start time.Time, onFinding func(*detect.Finding)) (*detect.Backtest, error) {
	id := eds
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		id = id[i+1:]
	}
	if !edsIDRE.MatchString(id) {
		return nil, fmt.Errorf("--eds %q: expected an event data store ID or ARN", eds)
	}
	sql := "SELECT eventJson FROM " + id
	if !start.IsZero() {
		sql += " WHERE eventTime >= '" + start.UTC().Format("2006-01-02 15:04:05") + "'"
	}
	sql += " ORDER BY eventTime"
	started, err := ct.StartQuery(ctx, &cloudtrail.StartQueryInput{QueryStatement: aws.String(sql)})
	if err != nil {
		return nil, err
	}
	qid := aws.ToString(started.QueryId)
	delay := 50 * time.Millisecond
	for {
		desc, err := ct.DescribeQuery(ctx, &cloudtrail.DescribeQueryInput{QueryId: aws.String(qid)})
		if err != nil {
			return nil, err
		}
		st := string(desc.QueryStatus)
		if st == "FINISHED" {
			break
		}
		if st != "QUEUED" && st != "RUNNING" {
			return nil, fmt.Errorf("query %s %s: %s", qid, st, aws.ToString(desc.ErrorMessage))
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			ct.CancelQuery(context.Background(), &cloudtrail.CancelQueryInput{QueryId: aws.String(qid)})
			return nil, ctx.Err()
		}
		delay = min(2*delay, time.Second)
	}
	bt := detect.NewBacktest(rs)
	bt.OnFinding = onFinding
	var next *string
	for {
		page, err := ct.GetQueryResults(ctx, &cloudtrail.GetQueryResultsInput{QueryId: aws.String(qid), NextToken: next})
		if err != nil {
			return nil, err
		}
		for _, row := range page.QueryResultRows {
			for _, col := range row {
				for _, v := range col {
					bt.Eval(detect.Prepare([]byte(v)))
				}
			}
		}
		if next = page.NextToken; next == nil {
			return bt, nil
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
	fs := flag.NewFlagSet("rules list", flag.ExitOnError)
	endpoint := fs.String("endpoint", env("http://127.0.0.1:4590", "OPENTRAIL_ENDPOINT"), "OpenTrail server URL")
	region := fs.String("region", env("us-east-1", "OPENTRAIL_REGION"), "region to sign requests for")
	fs.Parse(args)
	c, err := newClient(*endpoint, *region, false)
	if err != nil {
		return err
	}
	var out struct{ Rules []detect.RuleStatus }
	if err := c.post(context.Background(), "/v1/rules", []byte("{}"), &out); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MATCHES\tLEVEL\tRULE\tSTATUS\tFILE")
	for _, r := range out.Rules {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s:%d\n", r.Matches, r.Level, r.ID, oneLine(r.Status), r.File, r.Line)
	}
	return tw.Flush()
}
