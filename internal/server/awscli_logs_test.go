package server_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestAWSCLILogs drives the CloudWatch Logs API with the real AWS CLI, only
// --endpoint-url changed: groups, streams, events, filters.
func TestAWSCLILogs(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("the AWS CLI is not installed")
	}
	e := start(t)
	run, mustRun := e.awsCLI(t)
	mustRun("logs", "create-log-group", "--log-group-name", "/aws/cloudtrail/cli")
	if _, stderr, err := run("logs", "create-log-group", "--log-group-name", "/aws/cloudtrail/cli"); err == nil || !strings.Contains(stderr, "ResourceAlreadyExistsException") {
		t.Fatalf("duplicate: %v %s", err, stderr)
	}
	mustRun("logs", "put-retention-policy", "--log-group-name", "/aws/cloudtrail/cli", "--retention-in-days", "7")
	mustRun("logs", "create-log-stream", "--log-group-name", "/aws/cloudtrail/cli", "--log-stream-name", "s")
	now := time.Now().UnixMilli()
	events, _ := json.Marshal([]map[string]any{
		{"timestamp": now, "message": string(userRecord("cli-1", "alice", "DeleteBucket", "10.1.1.1"))},
		{"timestamp": now + 1, "message": string(userRecord("cli-2", "bob", "DeleteBucket", "10.1.1.2"))},
	})
	mustRun("logs", "put-log-events", "--log-group-name", "/aws/cloudtrail/cli", "--log-stream-name", "s", "--log-events", string(events))
	found := mustRun("logs", "filter-log-events", "--log-group-name", "/aws/cloudtrail/cli", "--filter-pattern", `{ $.userIdentity.userName = "alice" }`)
	if evs, _ := found["events"].([]any); len(evs) != 1 || !strings.Contains(evs[0].(map[string]any)["message"].(string), `"cli-1"`) {
		t.Fatalf("filter-log-events: %v", found)
	}
	got := mustRun("logs", "get-log-events", "--log-group-name", "/aws/cloudtrail/cli", "--log-stream-name", "s", "--start-from-head")
	if evs, _ := got["events"].([]any); len(evs) != 2 {
		t.Fatalf("get-log-events: %v", got)
	}
	mustRun("logs", "put-metric-filter", "--log-group-name", "/aws/cloudtrail/cli", "--filter-name", "RootAccountUsage",
		"--filter-pattern", `{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }`,
		"--metric-transformations", "metricName=RootAccountUsageCount,metricNamespace=CloudTrailMetrics,metricValue=1")
	mf := mustRun("logs", "describe-metric-filters", "--log-group-name", "/aws/cloudtrail/cli")
	if list, _ := mf["metricFilters"].([]any); len(list) != 1 {
		t.Fatalf("describe-metric-filters: %v", mf)
	}
	tm := mustRun("logs", "test-metric-filter", "--filter-pattern", `{ $.eventName = "Delete*" }`, "--log-event-messages", `{"eventName":"DeleteTrail"}`, `{"eventName":"GetObject"}`)
	if m, _ := tm["matches"].([]any); len(m) != 1 {
		t.Fatalf("test-metric-filter: %v", tm)
	}
	groups := mustRun("logs", "describe-log-groups")
	if list, _ := groups["logGroups"].([]any); len(list) != 1 || list[0].(map[string]any)["retentionInDays"] != float64(7) {
		t.Fatalf("describe-log-groups: %v", groups)
	}
	mustRun("logs", "delete-metric-filter", "--log-group-name", "/aws/cloudtrail/cli", "--filter-name", "RootAccountUsage")
	mustRun("logs", "delete-log-group", "--log-group-name", "/aws/cloudtrail/cli")
}
