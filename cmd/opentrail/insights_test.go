package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/opentrail/opentrail/internal/archive/archivetest"
	"github.com/opentrail/opentrail/internal/insights"
)

// TestInsightsFromImport imports eight days of steady calls, a burst of
// CreateUser calls and a burst of AccessDenied errors from a CloudTrail
// archive into a server whose trail has Insights, and reads the Insights
// events back through aws-sdk-go-v2 and the AWS CLI (LookupEvents,
// ListInsightsMetricData) and from the trail's CloudTrail-Insight files.
func TestInsightsFromImport(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "buckets", "ins-logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	srv := startServerBinary(t, bin, dir, "--delivery-interval", "200ms")
	ct, cw := srv.client().cloudTrail(), srv.client().logs()
	ctx := t.Context()
	const group = "/aws/cloudtrail/ins-trail"
	if _, err := cw.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)}); err != nil {
		t.Fatal(err)
	}
	if _, err := ct.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("ins-trail"), S3BucketName: aws.String("ins-logs"),
		CloudWatchLogsLogGroupArn: aws.String("arn:aws:logs:us-east-1:123456789012:log-group:" + group + ":*"),
		CloudWatchLogsRoleArn:     aws.String("arn:aws:iam::123456789012:role/CloudTrail_CloudWatchLogs_Role")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ct.StartLogging(ctx, &cloudtrail.StartLoggingInput{Name: aws.String("ins-trail")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ct.PutInsightSelectors(ctx, &cloudtrail.PutInsightSelectorsInput{TrailName: aws.String("ins-trail"),
		InsightSelectors: []types.InsightSelector{{InsightType: types.InsightTypeApiCallRateInsight}, {InsightType: types.InsightTypeApiErrorRateInsight}}}); err != nil {
		t.Fatal(err)
	}

	// The archive: one file per six hours, ending a day ago (one-minute metrics reach back 15 days).
	start := time.Now().UTC().Add(-9 * 24 * time.Hour).Truncate(time.Hour)
	burst := start.Add(8 * 24 * time.Hour)
	end := burst.Add(40 * time.Minute)
	root := t.TempDir()
	var file [][]byte
	fileStart := start
	flush := func() {
		if len(file) == 0 {
			return
		}
		key := fmt.Sprintf("AWSLogs/123456789012/CloudTrail/us-east-1/%s/123456789012_CloudTrail_us-east-1_%s_%016d.json.gz",
			fileStart.Format("2006/01/02"), fileStart.Format("20060102T1504Z"), fileStart.Unix())
		archivetest.WriteLogFile(t, root, key, file...)
		file = file[:0]
	}
	n := 0
	add := func(ts time.Time, source, name, user, ua, code string, readOnly bool) {
		if ts.Sub(fileStart) >= 6*time.Hour {
			flush()
			fileStart = ts.Truncate(6 * time.Hour)
		}
		n++
		r := map[string]any{"eventVersion": "1.08", "eventTime": ts.Format(time.RFC3339), "eventSource": source, "eventName": name,
			"awsRegion": "us-east-1", "recipientAccountId": "123456789012", "eventID": fmt.Sprintf("imp-%07d", n), "eventType": "AwsApiCall",
			"userIdentity": map[string]any{"type": "IAMUser", "arn": user, "accountId": "123456789012"},
			"userAgent":    ua, "readOnly": readOnly, "managementEvent": true, "eventCategory": "Management"}
		if code != "" {
			r["errorCode"] = code
		}
		b, _ := json.Marshal(r)
		file = append(file, b)
	}
	const alice, mallory = "arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/mallory"
	i := 0
	for ts := start; ts.Before(end); ts = ts.Add(time.Minute) {
		i++
		if i%5 == 0 { // steady: CreateUser, RunInstances, ListBuckets and its occasional error
			for range 1 + i%2 {
				add(ts, "iam.amazonaws.com", "CreateUser", alice, "aws-cli/2.15.0", "", false)
			}
			for range i % 3 {
				add(ts.Add(10*time.Second), "ec2.amazonaws.com", "RunInstances", alice, "aws-cli/2.15.0", "", false)
			}
			if i%7 == 0 {
				add(ts.Add(20*time.Second), "s3.amazonaws.com", "ListBuckets", alice, "aws-cli/2.15.0", "AccessDenied", true)
			}
			add(ts.Add(30*time.Second), "s3.amazonaws.com", "ListBuckets", alice, "aws-cli/2.15.0", "", true)
		}
		if !ts.Before(burst) && ts.Before(burst.Add(10*time.Minute)) {
			for j := range 30 {
				add(ts.Add(time.Duration(j)*time.Second), "iam.amazonaws.com", "CreateUser", mallory, "Boto3/1.34.0", "", false)
			}
			for j := range 25 {
				add(ts.Add(time.Duration(j)*time.Second+time.Second/2), "s3.amazonaws.com", "ListBuckets", mallory, "Boto3/1.34.0", "AccessDenied", true)
			}
		}
	}
	flush()
	t.Setenv("OPENTRAIL_ROOT_ACCESS_KEY_ID", srv.keyID)
	t.Setenv("OPENTRAIL_ROOT_SECRET_ACCESS_KEY", srv.secret)
	var out bytes.Buffer
	// One request at a time: these sparse files put half a day in one request,
	// more than the detector's backfill grace waits for out-of-order requests.
	if err := importMain([]string{"--server", srv.endpoint, "--state", filepath.Join(t.TempDir(), "state.json"),
		"--quiet", "--workers", "1", "--concurrency", "1", root}, &out); err != nil {
		t.Fatalf("import: %v\n%s", err, out.String())
	}
	t.Logf("imported %d records: %s", n, strings.TrimSpace(out.String()))

	// LookupEvents (aws-sdk-go-v2): a Start and an End for each burst, nothing else.
	var events []types.Event
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		res, err := ct.LookupEvents(ctx, &cloudtrail.LookupEventsInput{EventCategory: types.EventCategoryInsight})
		if err != nil {
			t.Fatal(err)
		}
		if events = res.Events; len(events) >= 4 {
			break
		}
	}
	found := map[string]insights.Insight{}
	for _, e := range events {
		in, err := insights.ParseRecord([]byte(aws.ToString(e.CloudTrailEvent)))
		if err != nil {
			t.Fatal(err)
		}
		found[in.Series.Name+"/"+in.State] = in
	}
	if len(events) != 4 || len(found) != 4 {
		t.Fatalf("LookupEvents insight: %d events %v, want a Start and an End for CreateUser and ListBuckets", len(events), found)
	}
	for _, name := range []string{"CreateUser", "ListBuckets"} {
		s, e := found[name+"/Start"], found[name+"/End"]
		if s.SharedID == "" || s.SharedID != e.SharedID || !s.Time.Equal(burst) || !e.Time.Equal(burst.Add(10*time.Minute)) || e.InsightDuration != 10 {
			t.Errorf("%s: Start %+v\nEnd %+v", name, s, e)
		}
		if u := e.Attributions[0].Insight; len(u) == 0 || u[0].Value != mallory {
			t.Errorf("%s: userIdentityArn attribution %+v", name, u)
		}
	}
	if in := found["ListBuckets/Start"]; in.Series.InsightType() != insights.ErrorRate || in.Series.ErrorCode != "AccessDenied" {
		t.Errorf("ListBuckets insight is %s %q, want ApiErrorRateInsight AccessDenied", in.Series.InsightType(), in.Series.ErrorCode)
	}

	// ListInsightsMetricData (aws-sdk-go-v2): one-minute counts around the burst.
	from, to := burst.Add(-2*time.Minute), burst.Add(12*time.Minute)
	md, err := ct.ListInsightsMetricData(ctx, &cloudtrail.ListInsightsMetricDataInput{EventSource: aws.String("s3.amazonaws.com"),
		EventName: aws.String("ListBuckets"), InsightType: types.InsightTypeApiErrorRateInsight, ErrorCode: aws.String("AccessDenied"),
		Period: aws.Int32(60), DataType: types.InsightsMetricDataTypeFillWithZeros, StartTime: &from, EndTime: &to})
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Values) != 14 || len(md.Timestamps) != 14 || md.Values[2] < 25 || md.Values[11] < 25 || md.Values[12] > 1 || !md.Timestamps[2].Equal(burst) {
		t.Fatalf("ListInsightsMetricData: %v at %v", md.Values, md.Timestamps)
	}

	// The trail's log group has them too, for metric filters and subscriptions.
	var logged int
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && logged < 4; time.Sleep(300 * time.Millisecond) {
		res, err := cw.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group),
			FilterPattern: aws.String(`{ $.eventType = "AwsCloudTrailInsight" }`)})
		if err != nil {
			t.Fatal(err)
		}
		logged = len(res.Events)
	}
	if logged != 4 {
		t.Errorf("log group %s holds %d Insights events, want 4", group, logged)
	}

	// Delivery: the four events in CloudTrail-Insight files, none in CloudTrail files.
	var delivered, misplaced int
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && delivered < 4; time.Sleep(300 * time.Millisecond) {
		delivered, misplaced = countInsightFiles(t, filepath.Join(dir, "buckets", "ins-logs"))
	}
	if delivered != 4 || misplaced != 0 {
		t.Fatalf("delivered %d Insights events to CloudTrail-Insight files and %d to CloudTrail files; want 4 and 0", delivered, misplaced)
	}

	// The AWS CLI reads the same.
	awsRun := func(args ...string) map[string]any {
		t.Helper()
		if _, err := exec.LookPath("aws"); err != nil {
			if os.Getenv("OPENTRAIL_REQUIRE_SERVERS") == "1" {
				t.Fatal("the AWS CLI is not installed")
			}
			t.Skip("the AWS CLI is not installed")
		}
		cmd := exec.Command("aws", append(args, "--endpoint-url", srv.endpoint, "--region", "us-east-1", "--output", "json")...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+srv.keyID, "AWS_SECRET_ACCESS_KEY="+srv.secret,
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=")
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("aws %v: %v", args, err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("aws %v: %v\n%s", args, err, b)
		}
		return m
	}
	if got := awsRun("cloudtrail", "lookup-events", "--event-category", "insight"); len(got["Events"].([]any)) != 4 {
		t.Errorf("aws cloudtrail lookup-events --event-category insight: %v", got)
	}
	got := awsRun("cloudtrail", "list-insights-metric-data", "--event-source", "iam.amazonaws.com", "--event-name", "CreateUser",
		"--insight-type", "ApiCallRateInsight", "--period", "300", "--data-type", "NonZeroData",
		"--start-time", burst.Format(time.RFC3339), "--end-time", burst.Add(10*time.Minute).Format(time.RFC3339))
	if v, _ := got["Values"].([]any); len(v) != 2 || v[0].(float64) < 150 {
		t.Errorf("aws cloudtrail list-insights-metric-data: %v", got)
	}
}

// countInsightFiles counts the Insights events in the CloudTrail-Insight files
// under dir (named as AWS names them) and those in ordinary log files.
func countInsightFiles(t *testing.T, dir string) (delivered, misplaced int) {
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir // the folder backend's metadata
		}
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json.gz") {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		var f struct{ Records []struct{ EventType string } }
		if err := json.NewDecoder(zr).Decode(&f); err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		insightFile := strings.HasPrefix(rel, "AWSLogs/123456789012/CloudTrail-Insight/us-east-1/") &&
			strings.Contains(filepath.Base(rel), "123456789012_CloudTrail-Insight_us-east-1_")
		for _, r := range f.Records {
			switch {
			case r.EventType == "AwsCloudTrailInsight" && insightFile:
				delivered++
			case r.EventType == "AwsCloudTrailInsight" || insightFile:
				misplaced++
			}
		}
		return nil
	})
	return delivered, misplaced
}
