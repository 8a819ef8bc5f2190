package cloudtrail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/selector"
	"github.com/opentrail/opentrail/internal/trail"
)

const (
	acctA = "123456789012"
	acctB = "210987654321"
)

var (
	eastA = auth.Caller{Account: acctA, Region: "us-east-1"}
	westA = auth.Caller{Account: acctA, Region: "us-west-2"}
	ohioA = auth.Caller{Account: acctA, Region: "us-east-2"}
	eastB = auth.Caller{Account: acctB, Region: "us-east-1"}
)

// testClock is the service's clock; tests move it forward.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 890e6, time.UTC)

func newTestService(t *testing.T) (*Service, *testClock) {
	t.Helper()
	db, err := kv.Open(t.TempDir(), kv.Options{CacheBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clock := &testClock{t: t0}
	return New(db, nil, nil, slog.New(slog.DiscardHandler), Options{Now: clock.Now}), clock
}

// ---- the service model, to check responses against ----

type modelRef struct {
	Shape string `json:"shape"`
}

type modelShape struct {
	Type    string              `json:"type"`
	Members map[string]modelRef `json:"members"`
	Member  modelRef            `json:"member"`
	Enum    []string            `json:"enum"`
}

var testModel = sync.OnceValues(func() (m struct {
	Operations map[string]struct {
		Output modelRef `json:"output"`
	} `json:"operations"`
	Shapes map[string]modelShape `json:"shapes"`
}, err error) {
	b, err := os.ReadFile("../awsapi/models/cloudtrail.service-2.json")
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(b, &m)
})

// shapeProblems lists where v, a decoded JSON response, differs from the model
// shape: unknown members, wrong JSON types, values outside an enum.
func shapeProblems(at, shape string, v any) []string {
	m, _ := testModel()
	s, ok := m.Shapes[shape]
	if !ok {
		return []string{fmt.Sprintf("%s: unknown shape %s", at, shape)}
	}
	bad := func(want string) []string {
		return []string{fmt.Sprintf("%s: want %s (%s), got %T %v", at, want, shape, v, v)}
	}
	switch s.Type {
	case "structure":
		obj, ok := v.(map[string]any)
		if !ok {
			return bad("object")
		}
		var out []string
		for k, mv := range obj {
			ref, ok := s.Members[k]
			if !ok {
				out = append(out, fmt.Sprintf("%s: member %s is not in %s", at, k, shape))
				continue
			}
			if mv == nil {
				out = append(out, fmt.Sprintf("%s.%s: null; omit absent members", at, k))
				continue
			}
			out = append(out, shapeProblems(at+"."+k, ref.Shape, mv)...)
		}
		return out
	case "list":
		list, ok := v.([]any)
		if !ok {
			return bad("array")
		}
		var out []string
		for i, e := range list {
			out = append(out, shapeProblems(fmt.Sprintf("%s[%d]", at, i), s.Member.Shape, e)...)
		}
		return out
	case "string":
		str, ok := v.(string)
		if !ok {
			return bad("string")
		}
		if len(s.Enum) > 0 && !slices.Contains(s.Enum, str) {
			return bad(fmt.Sprintf("one of %v", s.Enum))
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return bad("boolean")
		}
	case "timestamp":
		if _, ok := v.(float64); !ok {
			return bad("epoch seconds number")
		}
	case "integer", "long":
		if f, ok := v.(float64); !ok || f != math.Trunc(f) {
			return bad("integer")
		}
	}
	return nil
}

// do runs op and, on success, checks the response against the model's output
// shape and returns it decoded.
func do(t *testing.T, s *Service, c auth.Caller, op, body string) (map[string]any, error) {
	t.Helper()
	out, err := s.Handle(context.Background(), c, op, []byte(body))
	if err != nil {
		var ae *awsapi.Error
		if !errors.As(err, &ae) {
			t.Fatalf("%s %s: not an *awsapi.Error: %v", op, body, err)
		}
		return nil, err
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatalf("%s: marshal response: %v", op, err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: response %s is not a JSON object: %v", op, b, err)
	}
	m, err := testModel()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range shapeProblems(op, m.Operations[op].Output.Shape, v) {
		t.Errorf("%s response %s: %s", op, b, p)
	}
	return v, nil
}

// ok is do for a call that must succeed; it also checks that body is a request
// the server would let through model validation.
func ok(t *testing.T, s *Service, c auth.Caller, op, body string) map[string]any {
	t.Helper()
	if err := awsapi.CloudTrailModel().Validate(op, []byte(body)); err != nil {
		t.Fatalf("%s %s: body fails model validation: %v", op, body, err)
	}
	v, err := do(t, s, c, op, body)
	if err != nil {
		t.Fatalf("%s %s: %v", op, body, err)
	}
	return v
}

// fails runs op, which must fail with code and a message containing msg.
func fails(t *testing.T, s *Service, c auth.Caller, op, body, code, msg string) {
	t.Helper()
	_, err := do(t, s, c, op, body)
	var ae *awsapi.Error
	if !errors.As(err, &ae) {
		t.Fatalf("%s %s: want %s, got success", op, body, code)
	}
	if ae.Code != code || !strings.Contains(ae.Message, msg) {
		t.Fatalf("%s %s:\n got %s: %s\nwant %s containing %q", op, body, ae.Code, ae.Message, code, msg)
	}
}

// sameJSON compares got (decoded) with the JSON text want.
func sameJSON(t *testing.T, what string, got any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad want: %v", what, err)
	}
	gb, _ := json.Marshal(got)
	var g any
	_ = json.Unmarshal(gb, &g)
	if !reflect.DeepEqual(g, w) {
		wb, _ := json.Marshal(w)
		t.Errorf("%s:\n got %s\nwant %s", what, gb, wb)
	}
}

func arn(region, account, name string) string {
	return fmt.Sprintf("arn:aws:cloudtrail:%s:%s:trail/%s", region, account, name)
}

func create(t *testing.T, s *Service, c auth.Caller, name string, extra string) map[string]any {
	t.Helper()
	body := fmt.Sprintf(`{"Name":%q,"S3BucketName":"my-bucket"%s}`, name, extra)
	return ok(t, s, c, "CreateTrail", body)
}

// ---- tests ----

func TestTrailLifecycle(t *testing.T) {
	s, clock := newTestService(t)
	c := ohioA
	myARN := arn("us-east-2", acctA, "my-trail")

	// The documented output of "aws cloudtrail create-trail --name my-trail --s3-bucket-name my-bucket".
	got := create(t, s, c, "my-trail", "")
	sameJSON(t, "CreateTrail", got, `{"IncludeGlobalServiceEvents":true,"Name":"my-trail","TrailARN":"`+myARN+`",
		"LogFileValidationEnabled":false,"IsMultiRegionTrail":false,"IsOrganizationTrail":false,"S3BucketName":"my-bucket"}`)

	wantTrail := `{"Name":"my-trail","S3BucketName":"my-bucket","IncludeGlobalServiceEvents":true,"IsMultiRegionTrail":false,
		"HomeRegion":"us-east-2","TrailARN":"` + myARN + `","LogFileValidationEnabled":false,"HasCustomEventSelectors":false,
		"HasInsightSelectors":false,"IsOrganizationTrail":false}`
	for _, name := range []string{"my-trail", myARN} {
		sameJSON(t, "GetTrail "+name, ok(t, s, c, "GetTrail", `{"Name":"`+name+`"}`), `{"Trail":`+wantTrail+`}`)
	}
	sameJSON(t, "DescribeTrails", ok(t, s, c, "DescribeTrails", `{}`), `{"trailList":[`+wantTrail+`]}`)

	// CreateTrail does not start logging.
	sameJSON(t, "GetTrailStatus new", ok(t, s, c, "GetTrailStatus", `{"Name":"my-trail"}`), `{"IsLogging":false,
		"LatestDeliveryAttemptTime":"","LatestNotificationAttemptTime":"","LatestNotificationAttemptSucceeded":"",
		"LatestDeliveryAttemptSucceeded":"","TimeLoggingStarted":"","TimeLoggingStopped":""}`)

	sameJSON(t, "StartLogging", ok(t, s, c, "StartLogging", `{"Name":"my-trail"}`), `{}`)
	sameJSON(t, "GetTrailStatus started", ok(t, s, c, "GetTrailStatus", `{"Name":"`+myARN+`"}`), `{"IsLogging":true,
		"StartLoggingTime":1741064767.89,"LatestDeliveryAttemptTime":"","LatestNotificationAttemptTime":"",
		"LatestNotificationAttemptSucceeded":"","LatestDeliveryAttemptSucceeded":"","TimeLoggingStarted":"2025-03-04T05:06:07Z",
		"TimeLoggingStopped":""}`)

	// Starting a logging trail again keeps its start time.
	clock.Set(t0.Add(time.Minute))
	ok(t, s, c, "StartLogging", `{"Name":"my-trail"}`)
	if st := ok(t, s, c, "GetTrailStatus", `{"Name":"my-trail"}`); st["StartLoggingTime"] != 1741064767.89 {
		t.Errorf("second StartLogging moved StartLoggingTime to %v", st["StartLoggingTime"])
	}

	clock.Set(t0.Add(time.Hour))
	sameJSON(t, "StopLogging", ok(t, s, c, "StopLogging", `{"Name":"my-trail"}`), `{}`)
	sameJSON(t, "GetTrailStatus stopped", ok(t, s, c, "GetTrailStatus", `{"Name":"my-trail"}`), `{"IsLogging":false,
		"StartLoggingTime":1741064767.89,"StopLoggingTime":1741068367.89,"LatestDeliveryAttemptTime":"",
		"LatestNotificationAttemptTime":"","LatestNotificationAttemptSucceeded":"","LatestDeliveryAttemptSucceeded":"",
		"TimeLoggingStarted":"2025-03-04T05:06:07Z","TimeLoggingStopped":"2025-03-04T06:06:07Z"}`)

	sameJSON(t, "UpdateTrail", ok(t, s, c, "UpdateTrail", `{"Name":"my-trail","IsMultiRegionTrail":true,"EnableLogFileValidation":true,"S3KeyPrefix":"p/q"}`),
		`{"IncludeGlobalServiceEvents":true,"Name":"my-trail","TrailARN":"`+myARN+`","LogFileValidationEnabled":true,
		"IsMultiRegionTrail":true,"IsOrganizationTrail":false,"S3BucketName":"my-bucket","S3KeyPrefix":"p/q"}`)

	sameJSON(t, "DeleteTrail", ok(t, s, c, "DeleteTrail", `{"Name":"my-trail"}`), `{}`)
	fails(t, s, c, "GetTrail", `{"Name":"my-trail"}`, "TrailNotFoundException", "Unknown trail: "+myARN+" for the user: "+acctA)
	fails(t, s, c, "DeleteTrail", `{"Name":"my-trail"}`, "TrailNotFoundException", "Unknown trail")
	sameJSON(t, "DescribeTrails after delete", ok(t, s, c, "DescribeTrails", `{}`), `{"trailList":[]}`)

	// A trail created again under the same name starts afresh.
	create(t, s, c, "my-trail", "")
	if v := ok(t, s, c, "GetTrailStatus", `{"Name":"my-trail"}`); v["IsLogging"] != false || v["StartLoggingTime"] != nil {
		t.Errorf("recreated trail has old status %v", v)
	}
}

func TestCreateTrailValidation(t *testing.T) {
	tags51 := make([]string, 51)
	for i := range tags51 {
		tags51[i] = fmt.Sprintf(`{"Key":"k%d","Value":"v"}`, i)
	}
	tests := []struct {
		name, body, code, msg string
	}{
		{"name too short", `{"Name":"ab","S3BucketName":"my-bucket"}`, "InvalidTrailNameException", "3 to 128 characters long; it has 2"},
		{"name too long", `{"Name":"` + strings.Repeat("a", 129) + `","S3BucketName":"my-bucket"}`, "InvalidTrailNameException", "it has 129"},
		{"name bad character", `{"Name":"my trail","S3BucketName":"my-bucket"}`, "InvalidTrailNameException", `character ' ' at position 2`},
		{"name non-ASCII", `{"Name":"tráil","S3BucketName":"my-bucket"}`, "InvalidTrailNameException", `character 'á'`},
		{"name starts with hyphen", `{"Name":"-trail","S3BucketName":"my-bucket"}`, "InvalidTrailNameException", "start with a letter or a digit"},
		{"name ends with period", `{"Name":"trail.","S3BucketName":"my-bucket"}`, "InvalidTrailNameException", "end with a letter or a digit"},
		{"name my-_namespace", `{"Name":"my-_namespace","S3BucketName":"my-bucket"}`, "InvalidTrailNameException", `"-_" at position 2`},
		{"name my--namespace", `{"Name":"my--namespace","S3BucketName":"my-bucket"}`, "InvalidTrailNameException", `"--" at position 2`},
		{"name IP address", `{"Name":"192.168.5.4","S3BucketName":"my-bucket"}`, "InvalidTrailNameException", "IP address"},
		{"name is an ARN", `{"Name":"` + arn("us-east-1", acctA, "x") + `","S3BucketName":"my-bucket"}`, "InvalidTrailNameException", `character ':'`},
		{"bucket missing", `{"Name":"trail"}`, "InvalidS3BucketNameException", "required"},
		{"bucket uppercase", `{"Name":"trail","S3BucketName":"My-Bucket"}`, "InvalidS3BucketNameException", `character 'M' at position 0`},
		{"bucket too short", `{"Name":"trail","S3BucketName":"ab"}`, "InvalidS3BucketNameException", "3 to 63"},
		{"bucket adjacent periods", `{"Name":"trail","S3BucketName":"my..bucket"}`, "InvalidS3BucketNameException", "two adjacent periods"},
		{"bucket IP", `{"Name":"trail","S3BucketName":"10.0.0.1"}`, "InvalidS3BucketNameException", "IP address"},
		{"bucket ends with hyphen", `{"Name":"trail","S3BucketName":"bucket-"}`, "InvalidS3BucketNameException", "begin and end"},
		{"prefix too long", `{"Name":"trail","S3BucketName":"my-bucket","S3KeyPrefix":"` + strings.Repeat("p", 201) + `"}`, "InvalidS3PrefixException", "201 characters long; the maximum is 200"},
		{"sns name", `{"Name":"trail","S3BucketName":"my-bucket","SnsTopicName":"my topic"}`, "InvalidSnsTopicNameException", "1 to 256"},
		{"sns ARN", `{"Name":"trail","S3BucketName":"my-bucket","SnsTopicName":"arn:aws:sqs:us-east-1:123456789012:q"}`, "InvalidSnsTopicNameException", "not a valid topic ARN"},
		{"kms", `{"Name":"trail","S3BucketName":"my-bucket","KmsKeyId":"not-a-key"}`, "InvalidKmsKeyIdException", "not-a-key"},
		{"log group without role", `{"Name":"trail","S3BucketName":"my-bucket","CloudWatchLogsLogGroupArn":"arn:aws:logs:us-east-1:123456789012:log-group:g:*"}`,
			"InvalidCloudWatchLogsRoleArnException", "specify a role ARN as well as a log group"},
		{"role without log group", `{"Name":"trail","S3BucketName":"my-bucket","CloudWatchLogsRoleArn":"arn:aws:iam::123456789012:role/r"}`,
			"InvalidCloudWatchLogsLogGroupArnException", "specify a log group as well as a role ARN"},
		{"log group not an ARN", `{"Name":"trail","S3BucketName":"my-bucket","CloudWatchLogsLogGroupArn":"g","CloudWatchLogsRoleArn":"arn:aws:iam::123456789012:role/r"}`,
			"InvalidCloudWatchLogsLogGroupArnException", "not a log group ARN"},
		{"log group of another account", `{"Name":"trail","S3BucketName":"my-bucket","CloudWatchLogsLogGroupArn":"arn:aws:logs:us-east-1:210987654321:log-group:g:*","CloudWatchLogsRoleArn":"arn:aws:iam::123456789012:role/r"}`,
			"InvalidCloudWatchLogsLogGroupArnException", "belongs to account 210987654321"},
		{"role not a role", `{"Name":"trail","S3BucketName":"my-bucket","CloudWatchLogsLogGroupArn":"arn:aws:logs:us-east-1:123456789012:log-group:g","CloudWatchLogsRoleArn":"arn:aws:iam::123456789012:user/u"}`,
			"InvalidCloudWatchLogsRoleArnException", "not an IAM role ARN"},
		{"multi-Region without global events", `{"Name":"trail","S3BucketName":"my-bucket","IsMultiRegionTrail":true,"IncludeGlobalServiceEvents":false}`,
			"InvalidParameterCombinationException", "must include global service events"},
		{"organization trail", `{"Name":"trail","S3BucketName":"my-bucket","IsOrganizationTrail":true}`, "OrganizationsNotInUseException", "IsOrganizationTrail"},
		{"51 tags", `{"Name":"trail","S3BucketName":"my-bucket","TagsList":[` + strings.Join(tags51, ",") + `]}`, "TagsLimitExceededException", "51 tags"},
		{"duplicate tag keys", `{"Name":"trail","S3BucketName":"my-bucket","TagsList":[{"Key":"a","Value":"1"},{"Key":"a","Value":"2"}]}`, "InvalidTagParameterException", `repeats the key "a"`},
		{"tag key too long", `{"Name":"trail","S3BucketName":"my-bucket","TagsList":[{"Key":"` + strings.Repeat("k", 129) + `"}]}`, "InvalidTagParameterException", "1 to 128"},
		{"tag value too long", `{"Name":"trail","S3BucketName":"my-bucket","TagsList":[{"Key":"k","Value":"` + strings.Repeat("v", 257) + `"}]}`, "InvalidTagParameterException", "at most 256"},
	}
	s, _ := newTestService(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { fails(t, s, eastA, "CreateTrail", tc.body, tc.code, tc.msg) })
	}
	if v := ok(t, s, eastA, "ListTrails", `{}`); len(v["Trails"].([]any)) != 0 {
		t.Errorf("failed creates left trails: %v", v)
	}

	for _, name := range []string{"abc", "My_Trail-1", "a.b.c", "1.2.3", "1.2.3.4.5", "999.1.1.1", strings.Repeat("x", 128)} {
		t.Run("valid name "+name[:min(len(name), 12)], func(t *testing.T) {
			create(t, s, eastA, name, "")
			ok(t, s, eastA, "DeleteTrail", `{"Name":"`+name+`"}`)
		})
	}
}

func TestCreateTrailSettings(t *testing.T) {
	s, _ := newTestService(t)
	got := create(t, s, westA, "full", `,"S3KeyPrefix":"logs","SnsTopicName":"topic","IsMultiRegionTrail":true,
		"EnableLogFileValidation":true,"KmsKeyId":"12345678-1234-1234-1234-123456789012",
		"CloudWatchLogsLogGroupArn":"arn:aws:logs:us-west-2:123456789012:log-group:ct:*",
		"CloudWatchLogsRoleArn":"arn:aws:iam::123456789012:role/ct","IsOrganizationTrail":false,
		"TagsList":[{"Key":"team","Value":"audit"}]`)
	sameJSON(t, "CreateTrail", got, `{"Name":"full","S3BucketName":"my-bucket","S3KeyPrefix":"logs","SnsTopicName":"topic",
		"SnsTopicARN":"arn:aws:sns:us-west-2:123456789012:topic","IncludeGlobalServiceEvents":true,"IsMultiRegionTrail":true,
		"TrailARN":"`+arn("us-west-2", acctA, "full")+`","LogFileValidationEnabled":true,
		"CloudWatchLogsLogGroupArn":"arn:aws:logs:us-west-2:123456789012:log-group:ct:*",
		"CloudWatchLogsRoleArn":"arn:aws:iam::123456789012:role/ct",
		"KmsKeyId":"arn:aws:kms:us-west-2:123456789012:key/12345678-1234-1234-1234-123456789012","IsOrganizationTrail":false}`)

	tests := []struct{ in, want string }{
		{`"SnsTopicName":"arn:aws:sns:eu-west-1:123456789012:other"`, `"SnsTopicName":"other","SnsTopicARN":"arn:aws:sns:eu-west-1:123456789012:other"`},
		{`"KmsKeyId":"alias/MyAlias"`, `"KmsKeyId":"arn:aws:kms:us-west-2:123456789012:alias/MyAlias"`},
		{`"KmsKeyId":"arn:aws:kms:us-east-2:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab"`, `"KmsKeyId":"arn:aws:kms:us-east-2:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab"`},
		{`"IncludeGlobalServiceEvents":false`, `"IncludeGlobalServiceEvents":false`},
	}
	for i, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			name := fmt.Sprintf("trail%d", i)
			got := create(t, s, westA, name, ","+tc.in)
			var want map[string]any
			if err := json.Unmarshal([]byte("{"+tc.want+"}"), &want); err != nil {
				t.Fatal(err)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("CreateTrail with %s: %s = %v, want %v", tc.in, k, got[k], v)
				}
			}
			ok(t, s, westA, "DeleteTrail", `{"Name":"`+name+`"}`)
		})
	}
}

func TestTrailNamesAndQuota(t *testing.T) {
	s, _ := newTestService(t)

	// Single-Region trails of one name may live in several Regions.
	create(t, s, eastA, "same", "")
	create(t, s, westA, "same", "")
	fails(t, s, eastA, "CreateTrail", `{"Name":"same","S3BucketName":"my-bucket"}`, "TrailAlreadyExistsException",
		"Trail same already exists for customer: "+acctA)
	// Another account has its own names.
	create(t, s, eastB, "same", "")

	// A multi-Region trail's name is taken in every Region.
	fails(t, s, ohioA, "CreateTrail", `{"Name":"same","S3BucketName":"my-bucket","IsMultiRegionTrail":true}`, "TrailAlreadyExistsException", "already exists")
	create(t, s, ohioA, "global", `,"IsMultiRegionTrail":true`)
	fails(t, s, eastA, "CreateTrail", `{"Name":"global","S3BucketName":"my-bucket"}`, "TrailAlreadyExistsException", "already exists")
	fails(t, s, eastA, "UpdateTrail", `{"Name":"same","IsMultiRegionTrail":true}`, "InvalidParameterCombinationException",
		"a trail named same already exists in us-west-2")

	// us-east-1 now holds "same" and the shadow of "global": three more fit.
	for i := range 3 {
		create(t, s, eastA, fmt.Sprintf("east%d", i), "")
	}
	fails(t, s, eastA, "CreateTrail", `{"Name":"east3","S3BucketName":"my-bucket"}`, "MaximumNumberOfTrailsExceededException",
		"User: "+acctA+" already has 5 trails in us-east-1.")
	// A multi-Region trail would appear in the full us-east-1 too.
	fails(t, s, westA, "CreateTrail", `{"Name":"global2","S3BucketName":"my-bucket","IsMultiRegionTrail":true}`,
		"MaximumNumberOfTrailsExceededException", "in us-east-1")
	create(t, s, westA, "west1", "")
	fails(t, s, westA, "UpdateTrail", `{"Name":"west1","IsMultiRegionTrail":true}`, "MaximumNumberOfTrailsExceededException", "in us-east-1")
	// Account B's Region is not full.
	create(t, s, eastB, "bbb", "")

	// Making the multi-Region trail single-Region frees a place in us-east-1.
	ok(t, s, ohioA, "UpdateTrail", `{"Name":"global","IsMultiRegionTrail":false}`)
	create(t, s, eastA, "east3", "")
}

func TestShadowTrails(t *testing.T) {
	s, _ := newTestService(t)
	globalARN := arn("us-east-1", acctA, "global")
	create(t, s, eastA, "global", `,"IsMultiRegionTrail":true`)
	create(t, s, eastA, "local", "")
	create(t, s, westA, "westy", "")

	t.Run("reads", func(t *testing.T) {
		for _, name := range []string{"global", globalARN} {
			v := ok(t, s, westA, "GetTrail", `{"Name":"`+name+`"}`)
			trail := v["Trail"].(map[string]any)
			if trail["HomeRegion"] != "us-east-1" || trail["TrailARN"] != globalARN {
				t.Errorf("GetTrail %s in us-west-2 = %v", name, trail)
			}
			ok(t, s, westA, "GetTrailStatus", `{"Name":"`+name+`"}`)
			ok(t, s, westA, "GetEventSelectors", `{"TrailName":"`+name+`"}`)
		}
		// A single-Region trail is not seen from another Region, by name or ARN.
		fails(t, s, westA, "GetTrail", `{"Name":"local"}`, "TrailNotFoundException",
			"Unknown trail: "+arn("us-west-2", acctA, "local")+" for the user: "+acctA)
		fails(t, s, westA, "GetTrail", `{"Name":"`+arn("us-east-1", acctA, "local")+`"}`, "TrailNotFoundException",
			"Unknown trail: "+arn("us-east-1", acctA, "local"))
	})

	names := func(v map[string]any) []string {
		var out []string
		for _, tr := range v["trailList"].([]any) {
			out = append(out, tr.(map[string]any)["Name"].(string))
		}
		sort.Strings(out)
		return out
	}
	t.Run("DescribeTrails", func(t *testing.T) {
		tests := []struct {
			body string
			want []string
		}{
			{`{}`, []string{"global", "westy"}},
			{`{"includeShadowTrails":true}`, []string{"global", "westy"}},
			{`{"includeShadowTrails":false}`, []string{"westy"}},
			{`{"trailNameList":[]}`, []string{"global", "westy"}},
			// Names match trails homed here only; other Regions' trails need their ARN.
			{`{"trailNameList":["global","westy","local","nope"]}`, []string{"westy"}},
			{`{"trailNameList":["` + globalARN + `","` + arn("us-east-1", acctA, "local") + `"]}`, []string{"global", "local"}},
			{`{"trailNameList":["` + globalARN + `"],"includeShadowTrails":false}`, nil},
			{`{"trailNameList":["westy","westy","` + arn("us-west-2", acctA, "westy") + `"]}`, []string{"westy"}},
			{`{"trailNameList":["` + arn("us-east-1", acctB, "global") + `"]}`, nil},
		}
		for _, tc := range tests {
			if got := names(ok(t, s, westA, "DescribeTrails", tc.body)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("DescribeTrails %s in us-west-2 = %v, want %v", tc.body, got, tc.want)
			}
		}
		fails(t, s, westA, "DescribeTrails", `{"trailNameList":["a"]}`, "InvalidTrailNameException", "3 to 128")
		fails(t, s, westA, "DescribeTrails", `{"trailNameList":["arn:aws:cloudtrail:us-east-1:1:trail/x"]}`, "CloudTrailARNInvalidException", "not a valid trail ARN")
	})

	t.Run("ListTrails", func(t *testing.T) {
		sameJSON(t, "ListTrails", ok(t, s, westA, "ListTrails", `{}`), `{"Trails":[
			{"TrailARN":"`+globalARN+`","Name":"global","HomeRegion":"us-east-1"},
			{"TrailARN":"`+arn("us-east-1", acctA, "local")+`","Name":"local","HomeRegion":"us-east-1"},
			{"TrailARN":"`+arn("us-west-2", acctA, "westy")+`","Name":"westy","HomeRegion":"us-west-2"}]}`)
	})

	t.Run("changes only in the home Region", func(t *testing.T) {
		ops := []struct{ op, body string }{
			{"UpdateTrail", `{"Name":%q,"EnableLogFileValidation":true}`},
			{"DeleteTrail", `{"Name":%q}`},
			{"StartLogging", `{"Name":%q}`},
			{"StopLogging", `{"Name":%q}`},
			{"PutEventSelectors", `{"TrailName":%q,"EventSelectors":[{"ReadWriteType":"All"}]}`},
			{"PutInsightSelectors", `{"TrailName":%q,"InsightSelectors":[{"InsightType":"ApiCallRateInsight"}]}`},
		}
		for _, o := range ops {
			for _, name := range []string{"global", globalARN} {
				fails(t, s, westA, o.op, fmt.Sprintf(o.body, name), "InvalidHomeRegionException",
					"Trail "+globalARN+" was created in us-east-1 and is a shadow trail in us-west-2: call "+o.op+" in us-east-1")
			}
			// The same calls work at home.
			if o.op != "DeleteTrail" {
				ok(t, s, eastA, o.op, fmt.Sprintf(o.body, "global"))
			}
		}
		if v := ok(t, s, westA, "GetTrail", `{"Name":"global"}`); v["Trail"].(map[string]any)["HasInsightSelectors"] != true {
			t.Errorf("shadow trail does not show the home trail's settings: %v", v)
		}
		ok(t, s, eastA, "DeleteTrail", `{"Name":"global"}`)
		fails(t, s, westA, "GetTrail", `{"Name":"global"}`, "TrailNotFoundException", "Unknown trail")
	})
}

func TestAccountIsolation(t *testing.T) {
	s, _ := newTestService(t)
	create(t, s, eastA, "secret", `,"TagsList":[{"Key":"k","Value":"v"}]`)
	aARN := arn("us-east-1", acctA, "secret")

	for _, name := range []string{"secret", aARN} {
		for _, op := range []string{"GetTrail", "GetTrailStatus", "DeleteTrail", "StartLogging", "StopLogging", "UpdateTrail"} {
			fails(t, s, eastB, op, `{"Name":"`+name+`"}`, "TrailNotFoundException", "for the user: "+acctB)
		}
		fails(t, s, eastB, "GetEventSelectors", `{"TrailName":"`+name+`"}`, "TrailNotFoundException", "Unknown trail")
		fails(t, s, eastB, "PutEventSelectors", `{"TrailName":"`+name+`","EventSelectors":[{}]}`, "TrailNotFoundException", "Unknown trail")
		fails(t, s, eastB, "GetInsightSelectors", `{"TrailName":"`+name+`"}`, "TrailNotFoundException", "Unknown trail")
	}
	fails(t, s, eastB, "AddTags", `{"ResourceId":"`+aARN+`","TagsList":[{"Key":"x"}]}`, "ResourceNotFoundException", aARN)
	fails(t, s, eastB, "RemoveTags", `{"ResourceId":"`+aARN+`","TagsList":[{"Key":"k"}]}`, "ResourceNotFoundException", aARN)
	fails(t, s, eastB, "ListTags", `{"ResourceIdList":["`+aARN+`"]}`, "ResourceNotFoundException", aARN)
	sameJSON(t, "ListTrails B", ok(t, s, eastB, "ListTrails", `{}`), `{"Trails":[]}`)
	sameJSON(t, "DescribeTrails B", ok(t, s, eastB, "DescribeTrails", `{"trailNameList":["secret","`+aARN+`"]}`), `{"trailList":[]}`)

	// Nothing B did touched A's trail.
	if v := ok(t, s, eastA, "ListTags", `{"ResourceIdList":["`+aARN+`"]}`); len(v["ResourceTagList"].([]any)[0].(map[string]any)["TagsList"].([]any)) != 1 {
		t.Errorf("A's tags changed: %v", v)
	}
	ok(t, s, eastA, "GetTrail", `{"Name":"secret"}`)
}

func TestTrailRefErrors(t *testing.T) {
	s, _ := newTestService(t)
	create(t, s, eastA, "trail", "")
	tests := []struct{ name, code, msg string }{
		{"ab", "InvalidTrailNameException", "3 to 128"},
		{"my--trail", "InvalidTrailNameException", "next to each other"},
		{"arn:aws:cloudtrail:us-east-1:123456789012:trail/", "CloudTrailARNInvalidException", "not a valid trail ARN"},
		{"arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/x", "CloudTrailARNInvalidException", "not a valid trail ARN"},
		{"arn:aws:cloudtrail:us-east-1:12345:trail/trail", "CloudTrailARNInvalidException", "not a valid trail ARN"},
		{"arn:aws-cn:cloudtrail:us-east-1:123456789012:trail/trail", "CloudTrailARNInvalidException", "arn:aws:cloudtrail"},
		{"arn:aws:cloudtrail:us-east-1:123456789012:trail/a--b", "CloudTrailARNInvalidException", "next to each other"},
		{"arn:aws:cloudtrail:us-east-1:123456789012:trail/missing", "TrailNotFoundException", "Unknown trail: arn:aws:cloudtrail:us-east-1:123456789012:trail/missing for the user: 123456789012"},
	}
	fails(t, s, eastA, "GetTrail", `{"Name":1}`, "SerializationException", "")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fails(t, s, eastA, "GetTrail", `{"Name":"`+tc.name+`"}`, tc.code, tc.msg)
			fails(t, s, eastA, "StartLogging", `{"Name":"`+tc.name+`"}`, tc.code, tc.msg)
		})
	}
}

func TestUpdateTrail(t *testing.T) {
	s, _ := newTestService(t)
	create(t, s, eastA, "trail", `,"S3KeyPrefix":"pre","SnsTopicName":"topic","KmsKeyId":"alias/k",
		"CloudWatchLogsLogGroupArn":"arn:aws:logs:us-east-1:123456789012:log-group:g:*","CloudWatchLogsRoleArn":"arn:aws:iam::123456789012:role/r"`)
	cw := `"CloudWatchLogsLogGroupArn":"arn:aws:logs:us-east-1:123456789012:log-group:g:*","CloudWatchLogsRoleArn":"arn:aws:iam::123456789012:role/r"`
	tests := []struct {
		name, body string
		code, msg  string   // the error, if the update fails
		want       string   // members of the response, as a JSON object
		absent     []string // members the response must not have
	}{
		{name: "nothing", body: `{"Name":"trail"}`,
			want: `{"S3KeyPrefix":"pre","SnsTopicName":"topic","SnsTopicARN":"arn:aws:sns:us-east-1:123456789012:topic",` + cw + `}`},
		{name: "bucket", body: `{"Name":"trail","S3BucketName":"other-bucket"}`, want: `{"S3BucketName":"other-bucket"}`},
		{name: "empty bucket", body: `{"Name":"trail","S3BucketName":""}`, code: "InvalidS3BucketNameException", msg: "3 to 63"},
		{name: "validation and KMS key", body: `{"Name":"trail","EnableLogFileValidation":true,"KmsKeyId":"arn:aws:kms:us-east-1:123456789012:key/k1"}`,
			want: `{"LogFileValidationEnabled":true,"KmsKeyId":"arn:aws:kms:us-east-1:123456789012:key/k1"}`},
		{name: "clear prefix, topic and key", body: `{"Name":"trail","S3KeyPrefix":"","SnsTopicName":"","KmsKeyId":""}`,
			want: `{"S3BucketName":"other-bucket",` + cw + `}`, absent: []string{"S3KeyPrefix", "SnsTopicName", "SnsTopicARN", "KmsKeyId"}},
		{name: "clear log group only", body: `{"Name":"trail","CloudWatchLogsLogGroupArn":""}`,
			code: "InvalidCloudWatchLogsLogGroupArnException", msg: "specify a log group as well as a role ARN"},
		{name: "clear CloudWatch Logs", body: `{"Name":"trail","CloudWatchLogsLogGroupArn":"","CloudWatchLogsRoleArn":""}`,
			want: `{"IsOrganizationTrail":false}`, absent: []string{"CloudWatchLogsLogGroupArn", "CloudWatchLogsRoleArn"}},
		{name: "global events off", body: `{"Name":"trail","IncludeGlobalServiceEvents":false}`, want: `{"IncludeGlobalServiceEvents":false}`},
		{name: "multi-Region without global events", body: `{"Name":"trail","IsMultiRegionTrail":true}`,
			code: "InvalidParameterCombinationException", msg: "must include global service events"},
		{name: "multi-Region with global events", body: `{"Name":"trail","IsMultiRegionTrail":true,"IncludeGlobalServiceEvents":true}`,
			want: `{"IsMultiRegionTrail":true,"IncludeGlobalServiceEvents":true}`},
		// Turning both off in one call works (terraform-provider-aws hit a CloudTrail bug here once).
		{name: "both off at once", body: `{"Name":"trail","IsMultiRegionTrail":false,"IncludeGlobalServiceEvents":false}`,
			want: `{"IsMultiRegionTrail":false,"IncludeGlobalServiceEvents":false}`},
		{name: "organization", body: `{"Name":"trail","IsOrganizationTrail":true}`, code: "OrganizationsNotInUseException", msg: "organization"},
		{name: "prefix too long", body: `{"Name":"trail","S3KeyPrefix":"` + strings.Repeat("é", 201) + `"}`, code: "InvalidS3PrefixException", msg: "201"},
		{name: "unknown trail", body: `{"Name":"nope"}`, code: "TrailNotFoundException", msg: "trail/nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.code != "" {
				fails(t, s, eastA, "UpdateTrail", tc.body, tc.code, tc.msg)
				return
			}
			got := ok(t, s, eastA, "UpdateTrail", tc.body)
			var want map[string]any
			if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
				t.Fatal(err)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("UpdateTrail response %s = %v, want %v", k, got[k], v)
				}
			}
			for _, k := range tc.absent {
				if v, ok := got[k]; ok {
					t.Errorf("UpdateTrail response has %s = %v", k, v)
				}
			}
			// GetTrail shows what UpdateTrail returned.
			tr := ok(t, s, eastA, "GetTrail", `{"Name":"trail"}`)["Trail"].(map[string]any)
			for k, v := range got {
				if !reflect.DeepEqual(tr[k], v) {
					t.Errorf("GetTrail %s = %v, UpdateTrail said %v", k, tr[k], v)
				}
			}
			if len(tr) != len(got)+3 {
				t.Errorf("GetTrail has %d members, UpdateTrail %d (+ HomeRegion, HasCustomEventSelectors, HasInsightSelectors)", len(tr), len(got))
			}
		})
	}
	tr := ok(t, s, eastA, "GetTrail", `{"Name":"trail"}`)["Trail"].(map[string]any)
	for _, k := range []string{"S3KeyPrefix", "SnsTopicName", "SnsTopicARN", "KmsKeyId", "CloudWatchLogsLogGroupArn", "CloudWatchLogsRoleArn"} {
		if v, ok := tr[k]; ok {
			t.Errorf("cleared %s is still %v", k, v)
		}
	}
}

func TestEventSelectors(t *testing.T) {
	s, _ := newTestService(t)
	create(t, s, eastA, "trail", "")
	trailARN := arn("us-east-1", acctA, "trail")

	sameJSON(t, "fresh", ok(t, s, eastA, "GetEventSelectors", `{"TrailName":"trail"}`),
		`{"TrailARN":"`+trailARN+`","EventSelectors":[{"ReadWriteType":"All","IncludeManagementEvents":true,"DataResources":[]}]}`)

	basic := `{"TrailName":"trail","EventSelectors":[{"ReadWriteType":"WriteOnly","DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::mybucket/prefix"]}]}]}`
	wantBasic := `{"TrailARN":"` + trailARN + `","EventSelectors":[{"ReadWriteType":"WriteOnly","IncludeManagementEvents":true,
		"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::mybucket/prefix"]}],"ExcludeManagementEventSources":[]}]}`
	sameJSON(t, "PutEventSelectors basic", ok(t, s, eastA, "PutEventSelectors", basic), wantBasic)
	sameJSON(t, "GetEventSelectors basic", ok(t, s, eastA, "GetEventSelectors", `{"TrailName":"`+trailARN+`"}`), wantBasic)
	if v := ok(t, s, eastA, "GetTrail", `{"Name":"trail"}`); v["Trail"].(map[string]any)["HasCustomEventSelectors"] != true {
		t.Errorf("HasCustomEventSelectors after PutEventSelectors: %v", v)
	}

	advanced := `{"TrailName":"trail","AdvancedEventSelectors":[{"Name":"mgmt","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]},
		{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::Lambda::Function"]}]}]}`
	wantAdvanced := `{"TrailARN":"` + trailARN + `","AdvancedEventSelectors":[{"Name":"mgmt","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]},
		{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::Lambda::Function"]}]}]}`
	sameJSON(t, "PutEventSelectors advanced", ok(t, s, eastA, "PutEventSelectors", advanced), wantAdvanced)
	// Advanced selectors replace the basic ones…
	sameJSON(t, "GetEventSelectors advanced", ok(t, s, eastA, "GetEventSelectors", `{"TrailName":"trail"}`), wantAdvanced)
	// …and basic ones replace advanced ones.
	ok(t, s, eastA, "PutEventSelectors", basic)
	sameJSON(t, "GetEventSelectors basic again", ok(t, s, eastA, "GetEventSelectors", `{"TrailName":"trail"}`), wantBasic)

	tests := []struct{ name, body, code, msg string }{
		{"both kinds", `{"TrailName":"trail","EventSelectors":[{}],"AdvancedEventSelectors":[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]}]}`,
			"InvalidEventSelectorsException", "either EventSelectors or AdvancedEventSelectors"},
		{"neither kind", `{"TrailName":"trail"}`, "InvalidEventSelectorsException", "either EventSelectors or AdvancedEventSelectors"},
		{"null is absent", `{"TrailName":"trail","EventSelectors":null,"AdvancedEventSelectors":null}`, "InvalidEventSelectorsException", "not both and not neither"},
		{"empty basic", `{"TrailName":"trail","EventSelectors":[]}`, "InvalidEventSelectorsException", "between 1 and 5"},
		{"six basic", `{"TrailName":"trail","EventSelectors":[{},{},{},{},{},{}]}`, "InvalidEventSelectorsException", "at most 5"},
		{"bad ReadWriteType", `{"TrailName":"trail","EventSelectors":[{"ReadWriteType":"read-only"}]}`, "InvalidEventSelectorsException", "Value read-only for ReadWriteType is invalid"},
		{"S3 wildcard", `{"TrailName":"trail","EventSelectors":[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::*/*"]}]}]}`,
			"InvalidEventSelectorsException", "Value arn:aws:s3:::*/* for DataResources.Values is invalid."},
		{"empty advanced", `{"TrailName":"trail","AdvancedEventSelectors":[]}`, "InvalidEventSelectorsException", "at least one"},
		{"advanced without eventCategory", `{"TrailName":"trail","AdvancedEventSelectors":[{"FieldSelectors":[{"Field":"eventName","Equals":["x"]}]}]}`,
			"InvalidEventSelectorsException", "eventCategory"},
		{"selectors checked before the trail", `{"TrailName":"nope","EventSelectors":[]}`, "InvalidEventSelectorsException", "between 1 and 5"},
		{"unknown trail", `{"TrailName":"nope","EventSelectors":[{}]}`, "TrailNotFoundException", "trail/nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { fails(t, s, eastA, "PutEventSelectors", tc.body, tc.code, tc.msg) })
	}
	// Failed calls changed nothing.
	sameJSON(t, "GetEventSelectors after failures", ok(t, s, eastA, "GetEventSelectors", `{"TrailName":"trail"}`), wantBasic)
}

func TestInsightSelectors(t *testing.T) {
	s, _ := newTestService(t)
	create(t, s, eastA, "trail", "")
	trailARN := arn("us-east-1", acctA, "trail")

	fails(t, s, eastA, "GetInsightSelectors", `{"TrailName":"trail"}`, "InsightNotEnabledException", trailARN)

	both := `{"TrailName":"trail","InsightSelectors":[{"InsightType":"ApiErrorRateInsight"},{"InsightType":"ApiCallRateInsight"}]}`
	want := `{"TrailARN":"` + trailARN + `","InsightSelectors":[{"InsightType":"ApiErrorRateInsight"},{"InsightType":"ApiCallRateInsight"}]}`
	sameJSON(t, "PutInsightSelectors", ok(t, s, eastA, "PutInsightSelectors", both), want)
	sameJSON(t, "GetInsightSelectors", ok(t, s, eastA, "GetInsightSelectors", `{"TrailName":"`+trailARN+`"}`), want)
	if v := ok(t, s, eastA, "GetTrail", `{"Name":"trail"}`); v["Trail"].(map[string]any)["HasInsightSelectors"] != true {
		t.Errorf("HasInsightSelectors: %v", v)
	}

	// An empty list turns Insights off.
	sameJSON(t, "PutInsightSelectors []", ok(t, s, eastA, "PutInsightSelectors", `{"TrailName":"trail","InsightSelectors":[]}`),
		`{"TrailARN":"`+trailARN+`","InsightSelectors":[]}`)
	fails(t, s, eastA, "GetInsightSelectors", `{"TrailName":"trail"}`, "InsightNotEnabledException", "does not have Insights enabled")
	if v := ok(t, s, eastA, "GetTrail", `{"Name":"trail"}`); v["Trail"].(map[string]any)["HasInsightSelectors"] != false {
		t.Errorf("HasInsightSelectors after turning Insights off: %v", v)
	}

	tests := []struct{ name, body, code, msg string }{
		{"bad type", `{"TrailName":"trail","InsightSelectors":[{"InsightType":"ApiRateInsight"}]}`, "InvalidInsightSelectorsException", `"ApiRateInsight" is not valid`},
		{"missing type", `{"TrailName":"trail","InsightSelectors":[{}]}`, "InvalidInsightSelectorsException", "InsightSelectors[0].InsightType"},
		{"duplicate type", `{"TrailName":"trail","InsightSelectors":[{"InsightType":"ApiCallRateInsight"},{"InsightType":"ApiCallRateInsight"}]}`,
			"InvalidInsightSelectorsException", "repeats InsightType ApiCallRateInsight"},
		{"bad category", `{"TrailName":"trail","InsightSelectors":[{"InsightType":"ApiCallRateInsight","EventCategories":["Insight"]}]}`,
			"InvalidInsightSelectorsException", `EventCategories[0] "Insight"`},
		{"duplicate category", `{"TrailName":"trail","InsightSelectors":[{"InsightType":"ApiCallRateInsight","EventCategories":["Management","Management"]}]}`,
			"InvalidInsightSelectorsException", "lists Management twice"},
		{"data events not logged", `{"TrailName":"trail","InsightSelectors":[{"InsightType":"ApiErrorRateInsight","EventCategories":["Data"]}]}`,
			"InvalidInsightSelectorsException", "needs a trail that logs data events"},
		{"event data store", `{"EventDataStore":"arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/x","InsightsDestination":"y12","InsightSelectors":[]}`,
			"UnsupportedOperationException", "event data stores"},
		{"trail and event data store", `{"TrailName":"trail","EventDataStore":"eds","InsightSelectors":[]}`, "InvalidParameterCombinationException", "TrailName cannot be used"},
		{"no target", `{"InsightSelectors":[]}`, "InvalidParameterCombinationException", "Specify TrailName"},
		{"unknown trail", `{"TrailName":"nope","InsightSelectors":[]}`, "TrailNotFoundException", "trail/nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { fails(t, s, eastA, "PutInsightSelectors", tc.body, tc.code, tc.msg) })
	}
	fails(t, s, eastA, "GetInsightSelectors", `{}`, "InvalidParameterCombinationException", "Specify TrailName")
	fails(t, s, eastA, "GetInsightSelectors", `{"EventDataStore":"eds"}`, "UnsupportedOperationException", "event data stores")

	// What the trail logs decides which Insights it may have.
	t.Run("read-only management events", func(t *testing.T) {
		ok(t, s, eastA, "PutEventSelectors", `{"TrailName":"trail","EventSelectors":[{"ReadWriteType":"ReadOnly"}]}`)
		fails(t, s, eastA, "PutInsightSelectors", `{"TrailName":"trail","InsightSelectors":[{"InsightType":"ApiCallRateInsight"}]}`,
			"InvalidInsightSelectorsException", "ApiCallRateInsight on Management events needs a trail that logs write management events")
		ok(t, s, eastA, "PutInsightSelectors", `{"TrailName":"trail","InsightSelectors":[{"InsightType":"ApiErrorRateInsight"}]}`)
	})
	t.Run("advanced write-only management and data events", func(t *testing.T) {
		ok(t, s, eastA, "PutEventSelectors", `{"TrailName":"trail","AdvancedEventSelectors":[
			{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"readOnly","Equals":["false"]}]},
			{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]}]}]}`)
		sameJSON(t, "with categories", ok(t, s, eastA, "PutInsightSelectors",
			`{"TrailName":"trail","InsightSelectors":[{"InsightType":"ApiCallRateInsight","EventCategories":["Management","Data"]}]}`),
			`{"TrailARN":"`+trailARN+`","InsightSelectors":[{"InsightType":"ApiCallRateInsight","EventCategories":["Management","Data"]}]}`)
	})
	t.Run("no management events", func(t *testing.T) {
		ok(t, s, eastA, "PutEventSelectors", `{"TrailName":"trail","EventSelectors":[{"IncludeManagementEvents":false,"DataResources":[{"Type":"AWS::Lambda::Function","Values":["arn:aws:lambda"]}]}]}`)
		fails(t, s, eastA, "PutInsightSelectors", `{"TrailName":"trail","InsightSelectors":[{"InsightType":"ApiErrorRateInsight"}]}`,
			"InvalidInsightSelectorsException", "read or write management events")
		ok(t, s, eastA, "PutInsightSelectors", `{"TrailName":"trail","InsightSelectors":[{"InsightType":"ApiErrorRateInsight","EventCategories":["Data"]}]}`)
	})
}

func TestTags(t *testing.T) {
	s, _ := newTestService(t)
	create(t, s, eastA, "trail", `,"TagsList":[{"Key":"Name","Value":"Alice"},{"Key":"Location","Value":"Ohio"}]`)
	create(t, s, eastA, "other", "")
	trailARN, otherARN := arn("us-east-1", acctA, "trail"), arn("us-east-1", acctA, "other")
	list := `{"ResourceIdList":["` + trailARN + `","` + otherARN + `"]}`

	sameJSON(t, "ListTags", ok(t, s, eastA, "ListTags", list), `{"ResourceTagList":[
		{"ResourceId":"`+trailARN+`","TagsList":[{"Key":"Name","Value":"Alice"},{"Key":"Location","Value":"Ohio"}]},
		{"ResourceId":"`+otherARN+`","TagsList":[]}]}`)

	sameJSON(t, "AddTags", ok(t, s, eastA, "AddTags", `{"ResourceId":"`+trailARN+`","TagsList":[{"Key":"Name","Value":"Bob"},{"Key":"flag"}]}`), `{}`)
	sameJSON(t, "RemoveTags", ok(t, s, eastA, "RemoveTags", `{"ResourceId":"`+trailARN+`","TagsList":[{"Key":"Location"},{"Key":"absent"}]}`), `{}`)
	sameJSON(t, "ListTags after changes", ok(t, s, eastA, "ListTags", `{"ResourceIdList":["`+trailARN+`"]}`), `{"ResourceTagList":[
		{"ResourceId":"`+trailARN+`","TagsList":[{"Key":"Name","Value":"Bob"},{"Key":"flag"}]}]}`)

	// 50 tags fit, the 51st does not.
	var add []string
	for i := range 48 {
		add = append(add, fmt.Sprintf(`{"Key":"k%02d","Value":"v"}`, i))
	}
	ok(t, s, eastA, "AddTags", `{"ResourceId":"`+trailARN+`","TagsList":[`+strings.Join(add, ",")+`]}`)
	fails(t, s, eastA, "AddTags", `{"ResourceId":"`+trailARN+`","TagsList":[{"Key":"one-too-many"}]}`, "TagsLimitExceededException", "51 tags")
	ok(t, s, eastA, "AddTags", `{"ResourceId":"`+trailARN+`","TagsList":[{"Key":"k00","Value":"overwritten"}]}`)

	tests := []struct{ name, op, body, code, msg string }{
		{"duplicate keys", "AddTags", `{"ResourceId":"` + otherARN + `","TagsList":[{"Key":"a"},{"Key":"a"}]}`, "InvalidTagParameterException", "unique"},
		{"empty key", "AddTags", `{"ResourceId":"` + otherARN + `","TagsList":[{"Key":""}]}`, "InvalidTagParameterException", "1 to 128"},
		{"long value", "AddTags", `{"ResourceId":"` + otherARN + `","TagsList":[{"Key":"a","Value":"` + strings.Repeat("ü", 257) + `"}]}`, "InvalidTagParameterException", "at most 256"},
		{"name, not ARN", "AddTags", `{"ResourceId":"trail","TagsList":[{"Key":"a"}]}`, "CloudTrailARNInvalidException", "not an ARN"},
		{"CloudTrail ARN without a resource type", "AddTags", `{"ResourceId":"arn:aws:cloudtrail:us-east-1:123456789012:trail","TagsList":[{"Key":"a"}]}`, "CloudTrailARNInvalidException", "not a valid CloudTrail ARN"},
		{"S3 ARN", "AddTags", `{"ResourceId":"arn:aws:s3:::bucket","TagsList":[{"Key":"a"}]}`, "ResourceTypeNotSupportedException", "not a CloudTrail resource"},
		{"event data store", "AddTags", `{"ResourceId":"arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/abc","TagsList":[{"Key":"a"}]}`, "EventDataStoreNotFoundException", "eventdatastore/abc"},
		{"channel", "RemoveTags", `{"ResourceId":"arn:aws:cloudtrail:us-east-1:123456789012:channel/abc","TagsList":[{"Key":"a"}]}`, "ChannelNotFoundException", "channel/abc"},
		{"dashboard", "ListTags", `{"ResourceIdList":["arn:aws:cloudtrail:us-east-1:123456789012:dashboard/d"]}`, "ResourceNotFoundException", "dashboard/d"},
		{"other resource type", "AddTags", `{"ResourceId":"arn:aws:cloudtrail:us-east-1:123456789012:query/abc","TagsList":[{"Key":"a"}]}`, "ResourceTypeNotSupportedException", "query"},
		{"other Region", "AddTags", `{"ResourceId":"` + arn("us-west-2", acctA, "trail") + `","TagsList":[{"Key":"a"}]}`, "CloudTrailARNInvalidException", "names Region us-west-2, but this request was made in us-east-1"},
		{"bad trail ARN", "ListTags", `{"ResourceIdList":["arn:aws:cloudtrail:us-east-1:123456789012:trail/a--b"]}`, "CloudTrailARNInvalidException", "not a valid trail ARN"},
		{"unknown trail", "ListTags", `{"ResourceIdList":["` + trailARN + `","` + arn("us-east-1", acctA, "nope") + `"]}`, "ResourceNotFoundException", "trail/nope"},
		{"21 resources", "ListTags", `{"ResourceIdList":[` + strings.Repeat(`"`+trailARN+`",`, 20) + `"` + trailARN + `"]}`, "InvalidParameterException", "21 resource IDs; the maximum is 20"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { fails(t, s, eastA, tc.op, tc.body, tc.code, tc.msg) })
	}

	t.Run("shadow trail tags are managed at home", func(t *testing.T) {
		create(t, s, eastA, "global", `,"IsMultiRegionTrail":true`)
		g := arn("us-east-1", acctA, "global")
		fails(t, s, westA, "AddTags", `{"ResourceId":"`+g+`","TagsList":[{"Key":"a"}]}`, "CloudTrailARNInvalidException", "home Region")
		ok(t, s, eastA, "AddTags", `{"ResourceId":"`+g+`","TagsList":[{"Key":"a"}]}`)
	})

	t.Run("pagination", func(t *testing.T) {
		s.tagPage = 1
		defer func() { s.tagPage = 0 }()
		var ids []string
		for _, id := range []string{trailARN, otherARN, trailARN} {
			ids = append(ids, `"`+id+`"`)
		}
		idList := `"ResourceIdList":[` + strings.Join(ids, ",") + `]`
		var got []string
		token := ""
		for page := 0; ; page++ {
			body := "{" + idList + token + "}"
			v := ok(t, s, eastA, "ListTags", body)
			for _, rt := range v["ResourceTagList"].([]any) {
				got = append(got, rt.(map[string]any)["ResourceId"].(string))
			}
			next, more := v["NextToken"].(string)
			if !more {
				break
			}
			if page > 5 {
				t.Fatal("ListTags does not stop")
			}
			if page == 0 {
				fails(t, s, eastA, "ListTags", `{"ResourceIdList":["`+trailARN+`"],"NextToken":"`+next+`"}`, "InvalidTokenException", "this ResourceIdList")
			}
			token = `,"NextToken":"` + next + `"`
		}
		if want := []string{trailARN, otherARN, trailARN}; !reflect.DeepEqual(got, want) {
			t.Errorf("ListTags pages = %v, want %v", got, want)
		}
		fails(t, s, eastA, "ListTags", "{"+idList+`,"NextToken":"garbage!"}`, "InvalidTokenException", "NextToken")
	})
}

func TestListTrailsPagination(t *testing.T) {
	s, _ := newTestService(t)
	s.trailPage = 2
	var want []string
	for _, c := range []auth.Caller{eastA, westA, ohioA} {
		for _, name := range []string{"b-trail", "a-trail"} {
			create(t, s, c, name, "")
			want = append(want, arn(c.Region, acctA, name))
		}
	}
	create(t, s, eastB, "b-only", "")
	sort.Strings(want)

	var got []string
	body := `{}`
	for pages := 1; ; pages++ {
		v := ok(t, s, westA, "ListTrails", body)
		trails := v["Trails"].([]any)
		if len(trails) > 2 {
			t.Fatalf("page %d has %d trails", pages, len(trails))
		}
		for _, tr := range trails {
			m := tr.(map[string]any)
			got = append(got, m["TrailARN"].(string))
			if !strings.Contains(m["TrailARN"].(string), ":"+m["HomeRegion"].(string)+":") {
				t.Errorf("HomeRegion %v does not match %v", m["HomeRegion"], m["TrailARN"])
			}
		}
		next, more := v["NextToken"].(string)
		if !more {
			if pages != 3 {
				t.Errorf("%d pages, want 3", pages)
			}
			break
		}
		body = `{"NextToken":"` + next + `"}`
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ListTrails pages =\n%v\nwant\n%v", got, want)
	}
	for _, bad := range []string{"x", "e30", "!!"} {
		fails(t, s, westA, "ListTrails", `{"NextToken":"`+bad+`"}`, "InvalidNextTokenException", "NextToken")
	}
}

func TestDeliveryStatus(t *testing.T) {
	s, clock := newTestService(t)
	create(t, s, eastA, "trail", "")
	ok(t, s, eastA, "StartLogging", `{"Name":"trail"}`)
	at := t0.Add(5 * time.Minute)
	clock.Set(at)

	updates := []trail.DeliveryUpdate{
		{Kind: trail.DeliveryLogFile, Time: at},
		{Kind: trail.DeliveryDigest, Time: at.Add(time.Second)},
		{Kind: trail.DeliveryNotification, Time: at.Add(2 * time.Second), Err: "AuthorizationError"},
		{Kind: trail.DeliveryCloudWatchLogs, Time: at.Add(3 * time.Second)},
		{Kind: trail.DeliveryLogFile, Time: at.Add(time.Minute), Err: "AccessDenied"},
	}
	for _, u := range updates {
		if err := s.RecordDelivery(acctA, "us-east-1", "trail", u); err != nil {
			t.Fatal(err)
		}
	}
	sameJSON(t, "GetTrailStatus", ok(t, s, eastA, "GetTrailStatus", `{"Name":"trail"}`), `{"IsLogging":true,
		"StartLoggingTime":1741064767.89,"TimeLoggingStarted":"2025-03-04T05:06:07Z","TimeLoggingStopped":"",
		"LatestDeliveryTime":1741065067.89,"LatestDeliveryError":"AccessDenied",
		"LatestDeliveryAttemptTime":"2025-03-04T05:12:07Z","LatestDeliveryAttemptSucceeded":"2025-03-04T05:11:07Z",
		"LatestDigestDeliveryTime":1741065068.89,
		"LatestNotificationError":"AuthorizationError","LatestNotificationAttemptTime":"2025-03-04T05:11:09Z",
		"LatestNotificationAttemptSucceeded":"",
		"LatestCloudWatchLogsDeliveryTime":1741065070.89}`)

	// A success clears the error.
	if err := s.RecordDelivery(acctA, "us-east-1", "trail", trail.DeliveryUpdate{Kind: trail.DeliveryLogFile, Time: at.Add(2 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if v := ok(t, s, eastA, "GetTrailStatus", `{"Name":"trail"}`); v["LatestDeliveryError"] != nil || v["LatestDeliveryTime"] != 1741065187.89 {
		t.Errorf("after a successful delivery: %v", v)
	}

	err := s.RecordDelivery(acctA, "us-east-1", "gone", trail.DeliveryUpdate{Kind: trail.DeliveryLogFile, Time: at})
	if !errors.Is(err, trail.ErrNotFound) {
		t.Errorf("RecordDelivery for a missing trail = %v, want trail.ErrNotFound", err)
	}
	if err := s.RecordDelivery(acctA, "us-east-1", "trail", trail.DeliveryUpdate{Time: at}); err == nil {
		t.Error("RecordDelivery without a kind succeeded")
	}
}

func TestTrailsForDelivery(t *testing.T) {
	s, _ := newTestService(t)
	create(t, s, westA, "data", `,"S3KeyPrefix":"pre","IsMultiRegionTrail":true,"EnableLogFileValidation":true`)
	create(t, s, eastA, "mgmt", "")
	create(t, s, eastB, "other", "")
	ok(t, s, westA, "StartLogging", `{"Name":"data"}`)
	ok(t, s, westA, "PutEventSelectors", `{"TrailName":"data","EventSelectors":[{"IncludeManagementEvents":false,
		"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::logs/"]}]}]}`)
	ok(t, s, eastA, "PutInsightSelectors", `{"TrailName":"mgmt","InsightSelectors":[{"InsightType":"ApiCallRateInsight"}]}`)

	trails, err := s.Trails(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tc := range trails {
		got = append(got, tc.ARN)
	}
	want := []string{arn("us-east-1", acctA, "mgmt"), arn("us-west-2", acctA, "data"), arn("us-east-1", acctB, "other")}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Trails = %v, want %v", got, want)
	}

	data, mgmt := trails[1], trails[0]
	if !data.Logging || !data.LoggingSince.Equal(t0) || !data.MultiRegion || data.HomeRegion != "us-west-2" ||
		data.S3BucketName != "my-bucket" || data.S3KeyPrefix != "pre" || !data.LogFileValidation || mgmt.Logging {
		t.Errorf("Trails: data = %+v, mgmt = %+v", data, mgmt)
	}
	if !reflect.DeepEqual(mgmt.InsightTypes, []string{"ApiCallRateInsight"}) {
		t.Errorf("mgmt InsightTypes = %v", mgmt.InsightTypes)
	}
	getObject := &selector.Event{Category: selector.CategoryData, Source: "s3.amazonaws.com", Name: "GetObject", ReadOnly: true,
		Resources: []selector.Resource{{Type: "AWS::S3::Object", ARN: "arn:aws:s3:::logs/a.txt"}}}
	runInstances := &selector.Event{ManagementEvent: true, Source: "ec2.amazonaws.com", Name: "RunInstances"}
	for _, m := range []struct {
		trail trail.Config
		ev    *selector.Event
		want  bool
	}{
		{data, getObject, true}, {data, runInstances, false}, {mgmt, getObject, false}, {mgmt, runInstances, true},
	} {
		if got := m.trail.Matcher.Match(m.ev); got != m.want {
			t.Errorf("%s takes %s: %v, want %v", m.trail.Name, m.ev.Name, got, m.want)
		}
	}
}

// Concurrent CreateTrail calls must not break the quota or name uniqueness.
func TestConcurrentCreate(t *testing.T) {
	s, _ := newTestService(t)
	var wg sync.WaitGroup
	errs := make([]error, 12)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("trail-%d", i%8) // some names twice
			_, errs[i] = s.Handle(context.Background(), eastA, "CreateTrail", []byte(`{"Name":"`+name+`","S3BucketName":"my-bucket"}`))
		}()
	}
	wg.Wait()
	created := 0
	for _, err := range errs {
		var ae *awsapi.Error
		switch {
		case err == nil:
			created++
		case errors.As(err, &ae) && (ae.Code == "MaximumNumberOfTrailsExceededException" || ae.Code == "TrailAlreadyExistsException"):
		default:
			t.Errorf("CreateTrail: %v", err)
		}
	}
	v := ok(t, s, eastA, "DescribeTrails", `{}`)
	if n := len(v["trailList"].([]any)); n != maxTrailsPerRegion || created != maxTrailsPerRegion {
		t.Errorf("%d trails exist and %d creates succeeded, want %d", n, created, maxTrailsPerRegion)
	}
}

// The response check in do must catch what it is there to catch.
func TestShapeProblems(t *testing.T) {
	tests := []struct {
		shape, json string
		want        int
	}{
		{"GetTrailResponse", `{"Trail":{"Name":"x","IsMultiRegionTrail":true}}`, 0},
		{"GetTrailResponse", `{"Trail":{"Name":"x","Bogus":1}}`, 1},
		{"GetTrailResponse", `{"Trail":{"IsMultiRegionTrail":"true"}}`, 1},
		{"GetTrailResponse", `{"Trail":{"Name":null}}`, 1},
		{"GetTrailStatusResponse", `{"StartLoggingTime":"2025-01-01T00:00:00Z"}`, 1},
		{"GetTrailStatusResponse", `{"StartLoggingTime":1.5,"TimeLoggingStarted":""}`, 0},
		{"GetEventSelectorsResponse", `{"EventSelectors":[{"ReadWriteType":"Everything"}]}`, 1},
		{"DescribeTrailsResponse", `{"TrailList":[]}`, 1},
	}
	for _, tc := range tests {
		var v any
		if err := json.Unmarshal([]byte(tc.json), &v); err != nil {
			t.Fatal(err)
		}
		if got := shapeProblems(tc.shape, tc.shape, v); len(got) != tc.want {
			t.Errorf("shapeProblems(%s, %s) = %q, want %d problems", tc.shape, tc.json, got, tc.want)
		}
	}
}

func TestTrailOpsRegistered(t *testing.T) {
	for _, op := range []string{"CreateTrail", "GetTrail", "DescribeTrails", "ListTrails", "UpdateTrail", "DeleteTrail",
		"StartLogging", "StopLogging", "GetTrailStatus", "PutEventSelectors", "GetEventSelectors", "PutInsightSelectors",
		"GetInsightSelectors", "AddTags", "RemoveTags", "ListTags"} {
		if _, ok := trailOps[op]; !ok {
			t.Errorf("%s is not in trailOps", op)
		}
		if !awsapi.CloudTrailModel().HasOperation(op) {
			t.Errorf("%s is not in the model", op)
		}
	}
}
