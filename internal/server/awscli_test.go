package server_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestAWSCLI drives OpenTrail with the real AWS CLI (v1, botocore): the same
// commands a user runs against CloudTrail, with only --endpoint-url changed.
func TestAWSCLI(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("the AWS CLI is not installed")
	}
	e := start(t)
	run, mustRun := e.awsCLI(t)

	e.buckets("cli-bucket")
	created := mustRun("cloudtrail", "create-trail", "--name", "cli-trail", "--s3-bucket-name", "cli-bucket", "--is-multi-region-trail")
	if created["TrailARN"] != "arn:aws:cloudtrail:us-east-1:123456789012:trail/cli-trail" || created["IsMultiRegionTrail"] != true {
		t.Fatalf("create-trail: %v", created)
	}
	mustRun("cloudtrail", "start-logging", "--name", "cli-trail")
	status := mustRun("cloudtrail", "get-trail-status", "--name", "cli-trail")
	if status["IsLogging"] != true {
		t.Fatalf("get-trail-status: %v", status)
	}
	trails := mustRun("cloudtrail", "describe-trails")
	if list, _ := trails["trailList"].([]any); len(list) != 1 {
		t.Fatalf("describe-trails: %v", trails)
	}
	mustRun("cloudtrail", "put-event-selectors", "--trail-name", "cli-trail", "--advanced-event-selectors",
		`[{"Name":"Log S3 data events","FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]}]}]`)
	sel := mustRun("cloudtrail", "get-event-selectors", "--trail-name", "cli-trail")
	if adv, _ := sel["AdvancedEventSelectors"].([]any); len(adv) != 1 {
		t.Fatalf("get-event-selectors: %v", sel)
	}

	// Errors come back as the CLI expects them: the code and message on stderr, exit status 254 (v1: 255).
	_, stderr, err := run("cloudtrail", "get-trail", "--name", "no-such-trail")
	if err == nil || !strings.Contains(stderr, "TrailNotFoundException") {
		t.Fatalf("get-trail of a missing trail: %v %s", err, stderr)
	}

	// Our own calls are in event history, found the way a user finds them.
	ev := mustRun("cloudtrail", "lookup-events", "--lookup-attributes", "AttributeKey=EventName,AttributeValue=CreateTrail")
	events, _ := ev["Events"].([]any)
	if len(events) != 1 {
		t.Fatalf("lookup-events: %v", ev)
	}
	first := events[0].(map[string]any)
	var rec map[string]any
	if err := json.Unmarshal([]byte(first["CloudTrailEvent"].(string)), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["eventName"] != "CreateTrail" || !strings.HasPrefix(rec["userAgent"].(string), "aws-cli/") || first["ReadOnly"] != "false" {
		t.Fatalf("CreateTrail record: %v", first)
	}
	// The CLI's own pagination (it follows NextToken) returns every event once.
	all := mustRun("cloudtrail", "lookup-events", "--page-size", "2")
	seen := map[string]bool{}
	for _, x := range all["Events"].([]any) {
		id := x.(map[string]any)["EventId"].(string)
		if seen[id] {
			t.Fatalf("event %s listed twice across pages", id)
		}
		seen[id] = true
	}
	if len(seen) < 7 {
		t.Fatalf("paged lookup-events returned %d events", len(seen))
	}
	mustRun("cloudtrail", "stop-logging", "--name", "cli-trail")
	mustRun("cloudtrail", "delete-trail", "--name", "cli-trail")
}

// awsCLI returns functions that run the AWS CLI against the node as root:
// run answers the JSON output, stderr and the exit error; mustRun fails the
// test on an error.
func (e *env) awsCLI(t *testing.T) (run func(args ...string) (map[string]any, string, error), mustRun func(args ...string) map[string]any) {
	run = func(args ...string) (map[string]any, string, error) {
		cmd := exec.Command("aws", append(args, "--endpoint-url", e.url, "--region", "us-east-1", "--output", "json")...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+rootID, "AWS_SECRET_ACCESS_KEY="+rootSecret,
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		var m map[string]any
		if len(strings.TrimSpace(string(out))) > 0 {
			if jerr := json.Unmarshal(out, &m); jerr != nil {
				t.Fatalf("aws %v: output is not JSON: %s", args, out)
			}
		}
		return m, stderr.String(), err
	}
	mustRun = func(args ...string) map[string]any {
		t.Helper()
		m, stderr, err := run(args...)
		if err != nil {
			t.Fatalf("aws %v: %v: %s", args, err, stderr)
		}
		return m
	}
	return run, mustRun
}
