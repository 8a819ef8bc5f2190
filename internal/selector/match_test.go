package selector

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// Events used by the matching tables.
var (
	mgmtRead  = Event{Category: CategoryManagement, Source: "ec2.amazonaws.com", Name: "DescribeInstances", Type: "AwsApiCall", ReadOnly: true, ManagementEvent: true}
	mgmtWrite = Event{Category: CategoryManagement, Source: "ec2.amazonaws.com", Name: "RunInstances", Type: "AwsApiCall", ManagementEvent: true}
	mgmtKMS   = Event{Category: CategoryManagement, Source: "kms.amazonaws.com", Name: "Decrypt", Type: "AwsApiCall", ReadOnly: true, ManagementEvent: true}
	mgmtRDS   = Event{Category: CategoryManagement, Source: "rdsdata.amazonaws.com", Name: "ExecuteStatement", Type: "AwsApiCall", ManagementEvent: true}
	// Management record without eventCategory (written before eventVersion 1.08).
	mgmtOld = Event{Source: "iam.amazonaws.com", Name: "CreateUser", ManagementEvent: true}

	// Seed 000: a VPC Lambda Invoke data event.
	lambdaInvoke = Event{Category: CategoryData, Source: "lambda.amazonaws.com", Name: "Invoke", Type: "AwsApiCall",
		UserARN:   "arn:aws:sts::123456789012:assumed-role/some-role/some-user",
		Resources: []Resource{{Type: TypeLambdaFunction, ARN: "arn:aws:lambda:ap-northeast-1:123456789012:function:vpc-lambda-1"}}}

	s3Get     = s3Event("GetObject", true, "amzn-s3-demo-bucket1", "example-images/cat.png")
	s3Put     = s3Event("PutObject", false, "amzn-s3-demo-bucket1", "docs/a.txt")
	s3Other   = s3Event("GetObject", true, "amzn-s3-demo-bucket10", "example-images/cat.png")
	s3Logs    = s3Event("PutObject", false, "trail-logs", "AWSLogs/1.json.gz")
	s3China   = Event{Category: CategoryData, Source: "s3.amazonaws.com", Name: "GetObject", ReadOnly: true, Resources: []Resource{{Type: TypeS3Object, ARN: "arn:aws-cn:s3:::b/k"}}}
	ddbPut    = Event{Category: CategoryData, Source: "dynamodb.amazonaws.com", Name: "PutItem", Resources: []Resource{{Type: TypeDynamoDBTable, ARN: "arn:aws:dynamodb:us-east-1:123456789012:table/Music"}}}
	ddbStream = Event{Category: CategoryData, Source: "dynamodb.amazonaws.com", Name: "GetRecords", ReadOnly: true, Resources: []Resource{
		{Type: "AWS::DynamoDB::Stream", ARN: "arn:aws:dynamodb:us-east-1:123456789012:table/Music/stream/2024-01-01T00:00:00.000"},
		{Type: TypeDynamoDBTable, ARN: "arn:aws:dynamodb:us-east-1:123456789012:table/Music"}}}
	snsPublish = Event{Category: CategoryData, Source: "sns.amazonaws.com", Name: "Publish", Resources: []Resource{{Type: "AWS::SNS::Topic", ARN: "arn:aws:sns:us-east-1:123456789012:t"}}}

	// Seed 001 / CloudTrail record facts: a VPC endpoint policy denial.
	netEC2Denied = Event{Category: CategoryNetworkActivity, Source: "ec2.amazonaws.com", Name: "DescribeInstances", Type: "AwsVpceEvent",
		ErrorCode: VpceAccessDenied, VPCEndpointID: "vpce-EXAMPLE08c1b6b9b7"}
	netEC2OK     = Event{Category: CategoryNetworkActivity, Source: "ec2.amazonaws.com", Name: "DescribeInstances", Type: "AwsVpceEvent", VPCEndpointID: "vpce-EXAMPLE08c1b6b9b7"}
	netKMSDenied = Event{Category: CategoryNetworkActivity, Source: "kms.amazonaws.com", Name: "ListKeys", Type: "AwsVpceEvent", ErrorCode: VpceAccessDenied, VPCEndpointID: "vpce-1"}

	insight  = Event{Category: CategoryInsight, Type: "AwsCloudTrailInsight"}
	external = Event{Category: CategoryActivityAuditLog, Type: "ActivityLog", Source: "partner.example"}
)

func s3Event(name string, readOnly bool, bucket, key string) Event {
	return Event{Category: CategoryData, Source: "s3.amazonaws.com", Name: name, Type: "AwsApiCall", ReadOnly: readOnly,
		Resources: []Resource{
			{Type: TypeS3Object, ARN: "arn:aws:s3:::" + bucket + "/" + key},
			{Type: "AWS::S3::Bucket", ARN: "arn:aws:s3:::" + bucket},
		}}
}

type matchCase struct {
	name string
	ev   Event
	want bool
}

type matchTable struct {
	name     string
	basic    string // EventSelectors JSON, normalized before compiling
	advanced string // AdvancedEventSelectors JSON
	store    bool
	cases    []matchCase
}

var matchTables = []matchTable{
	{name: "no selectors", cases: []matchCase{
		{"management read", mgmtRead, true}, {"management write", mgmtWrite, true}, {"kms", mgmtKMS, true},
		{"old record", mgmtOld, true}, {"data", s3Get, false}, {"network", netEC2Denied, false},
		{"insight", insight, false}, {"external", external, false},
	}},
	{name: "basic default", basic: `[{"ReadWriteType":"All","IncludeManagementEvents":true,"DataResources":[]}]`, cases: []matchCase{
		{"management read", mgmtRead, true}, {"management write", mgmtWrite, true}, {"data", s3Get, false},
		{"network", netEC2Denied, false}, {"insight", insight, false},
	}},
	{name: "basic read only", basic: `[{"ReadWriteType":"ReadOnly"}]`, cases: []matchCase{
		{"read", mgmtRead, true}, {"write", mgmtWrite, false},
	}},
	{name: "basic write only", basic: `[{"ReadWriteType":"WriteOnly"}]`, cases: []matchCase{
		{"read", mgmtRead, false}, {"write", mgmtWrite, true},
	}},
	{name: "basic exclude kms", basic: `[{"ExcludeManagementEventSources":["kms.amazonaws.com"]}]`, cases: []matchCase{
		{"kms", mgmtKMS, false}, {"rds", mgmtRDS, true}, {"ec2", mgmtRead, true},
	}},
	{name: "basic exclude both", basic: `[{"ExcludeManagementEventSources":["kms.amazonaws.com","rdsdata.amazonaws.com"]}]`, cases: []matchCase{
		{"kms", mgmtKMS, false}, {"rds", mgmtRDS, false}, {"ec2", mgmtRead, true},
	}},
	// One selector excluding KMS does not stop another from taking it.
	{name: "basic exclusion is per selector", basic: `[{"ExcludeManagementEventSources":["kms.amazonaws.com"]},{"ReadWriteType":"ReadOnly"}]`, cases: []matchCase{
		{"kms read", mgmtKMS, true}, {"rds write", mgmtRDS, true},
	}},
	{name: "seed 000 lambda only", basic: `[{"ReadWriteType":"All","IncludeManagementEvents":false,"DataResources":[{"Type":"AWS::Lambda::Function","Values":["arn:aws:lambda"]}]}]`,
		cases: []matchCase{
			{"invoke", lambdaInvoke, true}, {"management", mgmtRead, false}, {"s3", s3Get, false},
		}},
	{name: "basic lambda exact", basic: `[{"DataResources":[{"Type":"AWS::Lambda::Function","Values":["arn:aws:lambda:ap-northeast-1:123456789012:function:vpc-lambda"]}]}]`,
		cases: []matchCase{
			// Lambda function ARNs are exact: vpc-lambda does not select vpc-lambda-1.
			{"other function", lambdaInvoke, false},
			{"named function", withARN(lambdaInvoke, 0, "arn:aws:lambda:ap-northeast-1:123456789012:function:vpc-lambda"), true},
		}},
	{name: "basic s3 all", basic: `[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3"]}]}]`, cases: []matchCase{
		{"get", s3Get, true}, {"put", s3Put, true}, {"other partition", s3China, false}, {"lambda", lambdaInvoke, false},
		{"sns", snsPublish, false}, {"management", mgmtRead, true},
	}},
	{name: "basic s3 bucket", basic: `[{"IncludeManagementEvents":false,"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::amzn-s3-demo-bucket1/"]}]}]`,
		cases: []matchCase{
			{"in bucket", s3Get, true}, {"write in bucket", s3Put, true},
			{"bucket whose name extends it", s3Other, false}, {"other bucket", s3Logs, false},
			{"bucket-level resource only", Event{Category: CategoryData, Resources: []Resource{{Type: "AWS::S3::Bucket", ARN: "arn:aws:s3:::amzn-s3-demo-bucket1"}}}, false},
		}},
	{name: "basic s3 prefix read only", basic: `[{"ReadWriteType":"ReadOnly","DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::amzn-s3-demo-bucket1/example-images"]}]}]`,
		cases: []matchCase{
			{"read under prefix", s3Get, true},
			{"write under prefix", s3Event("PutObject", false, "amzn-s3-demo-bucket1", "example-images/dog.png"), false},
			{"read elsewhere", s3Event("GetObject", true, "amzn-s3-demo-bucket1", "docs/a.txt"), false},
		}},
	{name: "basic dynamodb", basic: `[{"DataResources":[{"Type":"AWS::DynamoDB::Table","Values":["arn:aws:dynamodb:us-east-1:123456789012:table/Music"]}]}]`,
		cases: []matchCase{
			{"put item", ddbPut, true}, {"stream read carries the table", ddbStream, true},
			{"other table", withARN(ddbPut, 0, "arn:aws:dynamodb:us-east-1:123456789012:table/Musicals"), false},
		}},
	{name: "basic many exact values", basic: manyLambda(40), cases: []matchCase{
		{"last", withARN(lambdaInvoke, 0, "arn:aws:lambda:us-east-1:123456789012:function:f39"), true},
		{"absent", withARN(lambdaInvoke, 0, "arn:aws:lambda:us-east-1:123456789012:function:f40"), false},
	}},

	// Advanced selectors.
	{name: "seed 001 network access denied", advanced: seed001NetworkDenied, cases: []matchCase{
		{"ec2 denied", netEC2Denied, true}, {"ec2 allowed", netEC2OK, false}, {"kms denied", netKMSDenied, false},
		{"management", mgmtRead, false}, {"data", s3Get, false},
	}},
	{name: "seed 001 management", advanced: seed001Management, cases: []matchCase{
		{"read", mgmtRead, true}, {"write", mgmtWrite, true}, {"old record", mgmtOld, true}, {"network", netEC2Denied, false},
	}},
	{name: "seed 000 lambda advanced", advanced: seed000Lambda, cases: []matchCase{
		{"invoke", lambdaInvoke, true}, {"s3", s3Get, false}, {"management", mgmtWrite, false},
	}},
	// The six outcomes AWS lists in "How CloudTrail evaluates multiple conditions for a field".
	{name: "doc multiple conditions", advanced: docMultiCondition, cases: []matchCase{
		{"object1 equals", s3Event("GetObject", true, "amzn-s3-demo-bucket", "object1"), true},
		{"object2 starts with", s3Event("GetObject", true, "amzn-s3-demo-bucket", "object2"), true},
		{"object3 ends with", s3Event("GetObject", true, "amzn-s3-demo-bucket1", "object3"), true},
		{"deselectObject4", s3Event("GetObject", true, "amzn-s3-demo-bucket", "deselectObject4"), false},
		{"object5", s3Event("GetObject", true, "amzn-s3-demo-bucket", "object5"), false},
		{"object6", s3Event("GetObject", true, "amzn-s3-demo-bucket", "object6"), false},
		{"no positive match", s3Event("GetObject", true, "elsewhere", "x"), false},
	}},
	{name: "doc management and network", advanced: docManagementAndNetwork, cases: []matchCase{
		{"management", mgmtWrite, true}, {"ec2 network", netEC2OK, true}, {"kms network", netKMSDenied, true},
		{"lambda network", Event{Category: CategoryNetworkActivity, Source: "lambda.amazonaws.com"}, false}, {"data", s3Get, false},
	}},
	// resources.type and resources.ARN bind to the same resource: the bucket-level
	// resource of an S3 object event must not satisfy the exclusion.
	{name: "exclude trail bucket", advanced: sel(fsData, typeS3, `{"Field":"resources.ARN","NotStartsWith":["arn:aws:s3:::trail-logs/"]}`), cases: []matchCase{
		{"trail bucket", s3Logs, false}, {"other bucket", s3Get, true},
	}},
	{name: "resource type binds", advanced: sel(fsData, `{"Field":"resources.type","Equals":["AWS::DynamoDB::Table"]}`,
		`{"Field":"resources.ARN","EndsWith":["/Music"]}`), cases: []matchCase{
		{"table event", ddbPut, true}, {"stream event with table resource", ddbStream, true},
		{"only stream resource", Event{Category: CategoryData, Resources: ddbStream.Resources[:1]}, false},
	}},
	{name: "event name filter", advanced: sel(fsData, typeS3, `{"Field":"eventName","Equals":["PutObject","DeleteObject"]}`), cases: []matchCase{
		{"put", s3Put, true}, {"get", s3Get, false},
	}},
	{name: "management exclude kms", advanced: sel(fsMgmt, `{"Field":"eventSource","NotEquals":["kms.amazonaws.com"]}`), cases: []matchCase{
		{"kms", mgmtKMS, false}, {"rds", mgmtRDS, true}, {"ec2", mgmtRead, true},
	}},
	{name: "management write only", advanced: sel(fsMgmt, `{"Field":"readOnly","Equals":["false"]}`), cases: []matchCase{
		{"read", mgmtRead, false}, {"write", mgmtWrite, true},
	}},
	{name: "data read only", advanced: sel(fsData, typeS3, `{"Field":"readOnly","Equals":["true"]}`), cases: []matchCase{
		{"get", s3Get, true}, {"put", s3Put, false},
	}},
	{name: "console sessions excluded", advanced: sel(fsData, typeS3, `{"Field":"sessionCredentialFromConsole","NotEquals":["true"]}`), cases: []matchCase{
		{"sdk", s3Get, true}, {"console", withConsole(s3Get), false},
	}},
	{name: "console sessions only", advanced: sel(fsData, typeS3, `{"Field":"sessionCredentialFromConsole","Equals":["true"]}`), cases: []matchCase{
		{"sdk", s3Get, false}, {"console", withConsole(s3Get), true},
	}},
	{name: "user identity", advanced: sel(fsData, `{"Field":"resources.type","Equals":["AWS::Lambda::Function"]}`,
		`{"Field":"userIdentity.arn","NotStartsWith":["arn:aws:sts::123456789012:assumed-role/some-role/"]}`), cases: []matchCase{
		{"excluded role", lambdaInvoke, false}, {"other caller", withUser(lambdaInvoke, "arn:aws:iam::123456789012:user/alice"), true},
	}},
	{name: "event type", advanced: sel(fsData, typeS3, `{"Field":"eventType","NotEquals":["AwsServiceEvent"]}`), cases: []matchCase{
		{"api call", s3Get, true}, {"service event", withType(s3Get, "AwsServiceEvent"), false},
	}},
	{name: "network endpoint", advanced: sel(fsNet, `{"Field":"eventSource","Equals":["ec2.amazonaws.com"]}`, `{"Field":"vpcEndpointId","StartsWith":["vpce-EXAMPLE"]}`), cases: []matchCase{
		{"that endpoint", netEC2OK, true}, {"kms", netKMSDenied, false},
	}},
	{name: "store insight", store: true, advanced: sel(`{"Field":"eventCategory","Equals":["Insight"]}`), cases: []matchCase{
		{"insight", insight, true}, {"management", mgmtRead, false},
	}},
	{name: "store external events", store: true, advanced: sel(`{"Field":"eventCategory","Equals":["ActivityAuditLog"]}`), cases: []matchCase{
		{"external", external, true}, {"insight", insight, false},
	}},
	{name: "store management event name", store: true, advanced: sel(fsMgmt, `{"Field":"eventName","StartsWith":["Run"]}`), cases: []matchCase{
		{"run instances", mgmtWrite, true}, {"describe", mgmtRead, false},
	}},
}

func manyLambda(n int) string {
	vals := make([]string, n)
	for i := range vals {
		vals[i] = "arn:aws:lambda:us-east-1:123456789012:function:f" + itoa(i)
	}
	b, _ := json.Marshal([]EventSelector{{DataResources: []DataResource{{Type: TypeLambdaFunction, Values: vals}}}})
	return string(b)
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func withARN(ev Event, i int, arn string) Event {
	ev.Resources = append([]Resource(nil), ev.Resources...)
	ev.Resources[i].ARN = arn
	return ev
}

func withConsole(ev Event) Event        { ev.SessionCredentialFromConsole = true; return ev }
func withUser(ev Event, a string) Event { ev.UserARN = a; return ev }
func withType(ev Event, t string) Event { ev.Type = t; return ev }

func TestMatch(t *testing.T) {
	for _, tab := range matchTables {
		t.Run(tab.name, func(t *testing.T) {
			m := compileTable(t, tab)
			for _, tc := range tab.cases {
				t.Run(tc.name, func(t *testing.T) {
					ev := tc.ev
					if got := m.Match(&ev); got != tc.want {
						t.Errorf("Match = %v, want %v", got, tc.want)
					}
				})
			}
		})
	}
}

func compileTable(t testing.TB, tab matchTable) *Matcher {
	t.Helper()
	var basic []EventSelector
	var advanced []AdvancedEventSelector
	var err error
	switch {
	case tab.basic != "":
		if err := json.Unmarshal([]byte(tab.basic), &basic); err != nil {
			t.Fatal(err)
		}
		if basic, err = NormalizeBasic(basic); err != nil {
			t.Fatalf("NormalizeBasic: %v", err)
		}
	case tab.advanced != "":
		if err := json.Unmarshal([]byte(tab.advanced), &advanced); err != nil {
			t.Fatal(err)
		}
		normalize := NormalizeAdvanced
		if tab.store {
			normalize = NormalizeAdvancedStore
		}
		if advanced, err = normalize(advanced); err != nil {
			t.Fatalf("normalize: %v", err)
		}
	}
	m, err := Compile(basic, advanced)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return m
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name     string
		basic    []EventSelector
		advanced []AdvancedEventSelector
		want     string
	}{
		{name: "both kinds", basic: DefaultBasic(), advanced: []AdvancedEventSelector{}, want: "both basic and advanced"},
		{name: "unknown read write type", basic: []EventSelector{{ReadWriteType: "Sometimes"}}, want: "Sometimes"},
		{name: "unknown data type", basic: []EventSelector{{DataResources: []DataResource{{Type: "AWS::SNS::Topic"}}}}, want: "AWS::SNS::Topic"},
		{name: "unknown field", advanced: []AdvancedEventSelector{{FieldSelectors: []AdvancedFieldSelector{
			{Field: FieldEventCategory, Equals: []string{CategoryData}}, {Field: "requestParameters.bucketName", Equals: []string{"b"}}}}},
			want: "requestParameters.bucketName"},
		{name: "no category", advanced: []AdvancedEventSelector{{FieldSelectors: []AdvancedFieldSelector{{Field: FieldEventName, Equals: []string{"x"}}}}},
			want: "AdvancedEventSelectors[0]: no eventCategory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.basic, tc.advanced)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Compile error = %v, want one mentioning %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "selector: compile") {
				t.Errorf("error %q does not name the package and operation", err)
			}
		})
	}
	if _, err := Compile(DefaultBasic(), []AdvancedEventSelector{}); !errors.Is(err, ErrBothSelectorKinds) {
		t.Errorf("Compile(basic, advanced) = %v, want ErrBothSelectorKinds", err)
	}
}

// Compile accepts what Normalize would not have produced (stored selectors from
// older versions, a hand-edited store) and still matches sensibly.
func TestCompileUnnormalized(t *testing.T) {
	m, err := Compile(nil, []AdvancedEventSelector{{FieldSelectors: []AdvancedFieldSelector{
		{Field: FieldEventCategory, NotEquals: []string{CategoryData}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Match(&mgmtRead) || !m.Match(&netEC2OK) || m.Match(&s3Get) {
		t.Error("eventCategory NotEquals Data should take everything but data events")
	}
	// Basic selectors with nil defaults behave like the filled-in ones.
	m, err = Compile([]EventSelector{{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Match(&mgmtRead) || !m.Match(&mgmtWrite) || m.Match(&s3Get) {
		t.Error("an empty basic selector should take all management events only")
	}
}

func TestMatchNil(t *testing.T) {
	var m *Matcher
	if m.Match(&mgmtRead) {
		t.Error("nil matcher matched")
	}
	m, _ = Compile(nil, nil)
	if m.Match(nil) {
		t.Error("nil event matched")
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	for _, tab := range benchTables() {
		m := compileTable(t, tab)
		ev := s3Get
		if n := testing.AllocsPerRun(100, func() { m.Match(&ev) }); n != 0 {
			t.Errorf("%s: Match allocates %v times per call", tab.name, n)
		}
	}
}

// benchTables are typical trails: the default, a basic trail logging two buckets,
// and an advanced trail with management events, S3 writes outside the log bucket,
// Lambda invocations and network activity denials.
func benchTables() []matchTable {
	return []matchTable{
		{name: "default"},
		{name: "basic", basic: `[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::amzn-s3-demo-bucket1/","arn:aws:s3:::amzn-s3-demo-bucket2/"]}]},
			{"IncludeManagementEvents":false,"DataResources":[{"Type":"AWS::Lambda::Function","Values":["arn:aws:lambda"]}]}]`},
		{name: "advanced", advanced: `[
			{"Name":"management","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"eventSource","NotEquals":["kms.amazonaws.com","rdsdata.amazonaws.com"]}]},
			{"Name":"s3 writes","FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},
				{"Field":"readOnly","Equals":["false"]},{"Field":"resources.ARN","NotStartsWith":["arn:aws:s3:::trail-logs/"]}]},
			{"Name":"s3 reads of one bucket","FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},
				{"Field":"eventName","Equals":["GetObject","HeadObject"]},{"Field":"resources.ARN","StartsWith":["arn:aws:s3:::amzn-s3-demo-bucket1/"]}]},
			{"Name":"lambda","FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::Lambda::Function"]}]},
			{"Name":"vpce denied","FieldSelectors":[{"Field":"eventCategory","Equals":["NetworkActivity"]},{"Field":"eventSource","Equals":["kms.amazonaws.com"]},
				{"Field":"errorCode","Equals":["VpceAccessDenied"]}]}]`},
	}
}

// BenchmarkMatch measures one Match call on a mix of events for typical trails.
func BenchmarkMatch(b *testing.B) {
	events := []Event{mgmtRead, mgmtWrite, mgmtKMS, s3Get, s3Put, s3Logs, lambdaInvoke, ddbPut, netKMSDenied, netEC2OK}
	for _, tab := range benchTables() {
		b.Run(tab.name, func(b *testing.B) {
			m := compileTable(b, tab)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m.Match(&events[i])
				if i++; i == len(events) {
					i = 0
				}
			}
		})
	}
}
