package sigma

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/fixture"
)

// benchRules returns the 33 shared rules plus 67 generated from the fixture
// records' own event names and sources: indexed rules, rules the index cannot
// narrow (nested fields, cidr, regular expressions, keywords, JSON text) and
// correlations, 100 in all.
func benchRules(b *testing.B, recs []json.RawMessage) []*Rule {
	rules := loadRules(b)
	type pair struct{ name, source string }
	seen := map[pair]bool{}
	var pairs []pair
	for _, raw := range recs {
		var r struct{ EventName, EventSource string }
		_ = json.Unmarshal(raw, &r)
		p := pair{r.EventName, r.EventSource}
		if p.name != "" && !seen[p] {
			seen[p] = true
			pairs = append(pairs, p)
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int { return strings.Compare(a.name, b.name) })
	var text strings.Builder
	n := 0
	add := func(det string) {
		n++
		fmt.Fprintf(&text, "title: generated %d\nid: gen-%d\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n%slevel: medium\n---\n", n, n, indent(det, "    "))
	}
	for i := 0; i < 30; i++ {
		p := pairs[(i*7)%len(pairs)]
		q := pairs[(i*7+3)%len(pairs)]
		add(fmt.Sprintf("selection:\n    eventSource: %q\n    eventName: [%q, %q]\nfilter:\n    userIdentity.type: Root\ncondition: selection and not filter", p.source, p.name, q.name))
	}
	for i := 0; i < 12; i++ {
		p := pairs[(i*11)%len(pairs)]
		add(fmt.Sprintf("selection:\n    eventSource: %q\n    eventName|startswith: %q\n    userAgent|contains: ['aws-cli', 'Boto3', 'console']\ncondition: selection", p.source, p.name[:min(4, len(p.name))]))
	}
	unindexed := []string{
		"selection:\n    userIdentity.type: Root\n    userIdentity.invokedBy: null\ncondition: selection",
		"selection:\n    sourceIPAddress|cidr: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16]\n    errorCode: AccessDenied\ncondition: selection",
		"selection:\n    userAgent|re|i: '(kali|parrot|pentoo)'\ncondition: selection",
		"selection:\n    requestParameters|contains: 'AdministratorAccess'\ncondition: selection",
		"selection:\n    errorCode|contains: ['Unauthorized', 'AccessDenied', 'Forbidden']\n    userIdentity.type: AssumedRole\ncondition: selection",
		"keywords:\n    - 'AKIA'\n    - 'trufflehog'\ncondition: keywords",
		"selection:\n    resources.ARN|contains: ':secret:'\ncondition: selection",
		"selection:\n    tlsDetails.tlsVersion: ['TLSv1', 'TLSv1.1']\ncondition: selection",
		"selection:\n    userIdentity.sessionContext.attributes.mfaAuthenticated: 'false'\n    eventName|startswith: ['Delete', 'Put']\ncondition: selection",
		"selection:\n    readOnly: false\n    userIdentity.arn|endswith: ':root'\ncondition: selection",
		"selection:\n    requestParameters.policyDocument|contains|all: ['\"Effect\":\"Allow\"', '\"Action\":\"*\"']\ncondition: selection",
		"selection:\n    eventType: AwsConsoleSignIn\n    additionalEventData.MFAUsed: 'No'\ncondition: selection",
		"selection:\n    userAgent|contains: ['python-requests', 'curl/', 'Go-http-client']\ncondition: selection",
		"selection:\n    sourceIPAddress|cidr: ['2001:db8::/32']\ncondition: selection",
		"sel_a:\n    eventName|endswith: ['Policy', 'PolicyVersion']\nsel_b:\n    eventSource: iam.amazonaws.com\ncondition: all of sel_*",
		"selection:\n    eventName|re: '^(Stop|Delete)Logging$'\ncondition: selection",
		"selection:\n    errorMessage|contains: 'not authorized'\ncondition: selection",
		"selection:\n    vpcEndpointId|exists: true\n    userIdentity.accountId|fieldref: recipientAccountId\ncondition: not selection",
		"selection:\n    eventName|contains: 'Secret'\n    eventSource: secretsmanager.amazonaws.com\ncondition: selection",
		"selection:\n    requestParameters.ipPermissions.items.ipRanges.items.cidrIp: '0.0.0.0/0'\ncondition: selection",
	}
	for _, d := range unindexed {
		add(d)
	}
	corrs := []string{
		"type: event_count\n    rules: [gen-1, gen-2, gen-3]\n    group-by: [userIdentity.arn]\n    timespan: 10m\n    condition: {gte: 5}",
		"type: value_count\n    rules: [gen-43]\n    group-by: [sourceIPAddress]\n    timespan: 1h\n    condition: {gte: 3, field: userIdentity.arn}",
		"type: temporal\n    rules: [gen-4, gen-5]\n    group-by: [userIdentity.arn]\n    timespan: 30m",
		"type: temporal_ordered\n    rules: [gen-6, gen-7]\n    group-by: [recipientAccountId]\n    timespan: 1h",
		"type: event_count\n    rules: [gen-47]\n    group-by: [userIdentity.arn]\n    timespan: 5m\n    condition: {gte: 10}\n    generate: true",
	}
	for i, c := range corrs {
		fmt.Fprintf(&text, "title: correlation %d\nid: corr-%d\ncorrelation:\n    %s\nlevel: high\n---\n", i, i, c)
	}
	gen, errs := ParseFile("bench.yml", []byte(text.String()))
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	rules = append(rules, gen...)
	if len(rules) != 100 {
		b.Fatalf("%d rules, want 100", len(rules))
	}
	return rules
}

// BenchmarkEval evaluates 100 rules (with correlation state) over the fixture
// records; events/s is per core with -cpu 1.
func BenchmarkEval(b *testing.B) {
	recs := fixture.Records(b)
	s, errs := NewSet(benchRules(b, recs))
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	st := NewState()
	size := 0
	for _, r := range recs {
		size += len(r)
	}
	b.SetBytes(int64(size / len(recs)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	matches := 0
	for i := 0; i < b.N; i++ {
		ev, err := NewEvent(recs[i%len(recs)])
		if err != nil {
			b.Fatal(err)
		}
		matches += len(s.Eval(ev, st))
	}
	reportCPU(b, cpu0)
	b.ReportMetric(float64(matches)/float64(b.N), "matches/event")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports events per second of wall time and per second of CPU time
// (garbage collection included): on a shared machine the second is the figure
// that says what one core does.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	}
}

// BenchmarkNewEvent is the cost of preparing a record alone.
func BenchmarkNewEvent(b *testing.B) {
	recs := fixture.Records(b)
	b.ReportAllocs()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := NewEvent(recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu0)
}
