package logs

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestMetricFilterCardinality reproduces issue 11 §2: a metric filter whose
// dimension takes its value from the events made one series per distinct
// value (50,000 values made a 6.9 MB /metrics page). Past 1,000 combinations
// the filter is disabled, as CloudWatch Logs does, visibly in
// DescribeMetricFilters and MetricSamples, across a restart, until it is put again.
func TestMetricFilterCardinality(t *testing.T) {
	dir := t.TempDir()
	now := func() time.Time { return time.UnixMilli(1_800_000_000_000) }
	n := open(t, dir, now, &recorder{})
	n.call(t, "CreateLogGroup", map[string]any{"logGroupName": "g"})
	n.call(t, "CreateLogStream", map[string]any{"logGroupName": "g", "logStreamName": "s"})
	put := map[string]any{"logGroupName": "g", "filterName": "by-user", "filterPattern": `{ $.user = * }`,
		"metricTransformations": []any{map[string]any{"metricName": "Calls", "metricNamespace": "App", "metricValue": "1",
			"dimensions": map[string]any{"User": "$.user"}}}}
	n.call(t, "PutMetricFilter", put)
	send := func(from, to int) {
		var evs []map[string]any
		for i := from; i < to; i++ {
			evs = append(evs, map[string]any{"timestamp": 1_800_000_000_000 - 1000, "message": fmt.Sprintf(`{"user":"u%d"}`, i)})
		}
		n.call(t, "PutLogEvents", map[string]any{"logGroupName": "g", "logStreamName": "s", "logEvents": evs})
	}
	send(0, 1000)
	if s := n.svc.MetricSamples(); len(s) != 1000 || s[0].Disabled {
		t.Fatalf("1,000 combinations: %d samples, disabled %v", len(s), s[0].Disabled)
	}
	send(1000, 1500)
	check := func(when string) {
		t.Helper()
		s := n.svc.MetricSamples()
		if len(s) != 1 || !s[0].Disabled || len(s[0].Dims) != 0 {
			t.Fatalf("%s: samples %d, want one disabled sample", when, len(s))
		}
		mfs := n.call(t, "DescribeMetricFilters", map[string]any{"logGroupName": "g"})["metricFilters"].([]any)
		reason, _ := mfs[0].(map[string]any)["disabledReason"].(string)
		if !strings.Contains(reason, "more than 1000 distinct value combinations") {
			t.Fatalf("%s: DescribeMetricFilters = %v", when, mfs)
		}
	}
	check("after 1,500 values")
	n.close()
	n = open(t, dir, now, &recorder{})
	defer n.close()
	check("after a restart")

	// Putting it again enables it, counting from zero.
	n.call(t, "PutMetricFilter", put)
	send(0, 3)
	if s := n.svc.MetricSamples(); len(s) != 3 || s[0].Disabled {
		t.Fatalf("put again: %d samples", len(s))
	}
}
