package selector

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// advancedCase is one NormalizeAdvanced table entry. in is the
// AdvancedEventSelectors member of the request; store selects the event data
// store rules. wantErr lists fragments the message must contain; an empty
// wantErr means the selectors are valid and must come back unchanged.
type advancedCase struct {
	name    string
	store   bool
	in      string
	wantErr []string
}

// Network activity selector from seed 001 (console template "Log network
// activity access denied events", ec2 event source).
const seed001NetworkDenied = `[{"Name":"VPCE access denied","FieldSelectors":[
	{"Field":"eventCategory","Equals":["NetworkActivity"]},
	{"Field":"eventSource","Equals":["ec2.amazonaws.com"]},
	{"Field":"errorCode","Equals":["VpceAccessDenied"]}]}]`

// Seed 000's Lambda data events, written as an advanced selector.
const seed000Lambda = `[{"Name":"Lambda data events","FieldSelectors":[
	{"Field":"eventCategory","Equals":["Data"]},
	{"Field":"resources.type","Equals":["AWS::Lambda::Function"]}]}]`

// Seed 001's selector after switching the trail to advanced selectors.
const seed001Management = `[{"Name":"管理イベントセレクター","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]}]`

// From "How CloudTrail evaluates multiple conditions for a field".
const docMultiCondition = `[{"Name":"S3Select","FieldSelectors":[
	{"Field":"eventCategory","Equals":["Data"]},
	{"Field":"resources.type","Equals":["AWS::S3::Object"]},
	{"Field":"resources.ARN",
	 "Equals":["arn:aws:s3:::amzn-s3-demo-bucket/object1"],
	 "StartsWith":["arn:aws:s3:::amzn-s3-demo-bucket/"],
	 "EndsWith":["object3"],
	 "NotStartsWith":["arn:aws:s3:::amzn-s3-demo-bucket/deselect"],
	 "NotEndsWith":["object5"],
	 "NotEquals":["arn:aws:s3:::amzn-s3-demo-bucket/object6"]}]}]`

// From "Logging network activity events": management events plus several sources.
const docManagementAndNetwork = `[
	{"Name":"Log all management events","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]},
	{"Name":"cloudtrail","FieldSelectors":[{"Field":"eventCategory","Equals":["NetworkActivity"]},{"Field":"eventSource","Equals":["cloudtrail.amazonaws.com"]}]},
	{"Name":"ec2","FieldSelectors":[{"Field":"eventCategory","Equals":["NetworkActivity"]},{"Field":"eventSource","Equals":["ec2.amazonaws.com"]}]},
	{"Name":"kms","FieldSelectors":[{"Field":"eventCategory","Equals":["NetworkActivity"]},{"Field":"eventSource","Equals":["kms.amazonaws.com"]}]},
	{"Name":"s3","FieldSelectors":[{"Field":"eventCategory","Equals":["NetworkActivity"]},{"Field":"eventSource","Equals":["s3.amazonaws.com"]}]},
	{"Name":"secrets","FieldSelectors":[{"Field":"eventCategory","Equals":["NetworkActivity"]},{"Field":"eventSource","Equals":["secretsmanager.amazonaws.com"]}]}]`

// sel builds a one-selector input from field selector JSON.
func sel(fields ...string) string {
	return `[{"FieldSelectors":[` + strings.Join(fields, ",") + `]}]`
}

const (
	fsMgmt = `{"Field":"eventCategory","Equals":["Management"]}`
	fsData = `{"Field":"eventCategory","Equals":["Data"]}`
	fsNet  = `{"Field":"eventCategory","Equals":["NetworkActivity"]}`
	typeS3 = `{"Field":"resources.type","Equals":["AWS::S3::Object"]}`
	srcKMS = `{"Field":"eventSource","Equals":["kms.amazonaws.com"]}`
)

var advancedCases = []advancedCase{
	// Valid selectors.
	{name: "seed 001 network access denied", in: seed001NetworkDenied},
	{name: "seed 001 management", in: seed001Management},
	{name: "seed 000 lambda", in: seed000Lambda},
	{name: "doc multiple conditions", in: docMultiCondition},
	{name: "doc management and network", in: docManagementAndNetwork},
	{name: "management exclude kms and rds", in: sel(fsMgmt, `{"Field":"eventSource","NotEquals":["kms.amazonaws.com","rdsdata.amazonaws.com"]}`, `{"Field":"readOnly","Equals":["false"]}`)},
	{name: "data all fields", in: sel(fsData, typeS3,
		`{"Field":"eventName","Equals":["PutObject","DeleteObject"]}`,
		`{"Field":"resources.ARN","NotStartsWith":["arn:aws:s3:::amzn-s3-demo-bucket/"]}`,
		`{"Field":"eventSource","Equals":["s3.amazonaws.com"]}`,
		`{"Field":"eventType","NotEquals":["AwsServiceEvent"]}`,
		`{"Field":"readOnly","Equals":["true"]}`,
		`{"Field":"sessionCredentialFromConsole","NotEquals":["true"]}`,
		`{"Field":"userIdentity.arn","NotStartsWith":["arn:aws:sts::123456789012:assumed-role/bucket-scanner-role"]}`)},
	{name: "data resource type outside basic three", in: sel(fsData, `{"Field":"resources.type","Equals":["AWS::DynamoDB::Stream"]}`)},
	{name: "data star in object key is literal", in: sel(fsData, typeS3, `{"Field":"resources.ARN","StartsWith":["arn:aws:s3:::b/dir*"],"EndsWith":["*.tmp"]}`)},
	{name: "network all optional fields", in: sel(fsNet, srcKMS,
		`{"Field":"eventName","StartsWith":["List"]}`,
		`{"Field":"errorCode","Equals":["VpceAccessDenied"]}`,
		`{"Field":"vpcEndpointId","Equals":["vpce-example8c1b6b9b7"]}`,
		`{"Field":"userIdentity.arn","EndsWith":[":root"]}`)},
	{name: "name at limit", in: `[{"Name":"` + strings.Repeat("n", MaxNameLen) + `","FieldSelectors":[` + fsMgmt + `]}]`},
	{name: "empty name", in: `[{"Name":"","FieldSelectors":[` + fsMgmt + `]}]`},
	{name: "value at length limit", in: sel(fsData, typeS3, `{"Field":"eventName","Equals":["`+strings.Repeat("x", MaxValueLen)+`"]}`)},
	{name: "500 values", in: sel(fsData, typeS3, `{"Field":"eventName","Equals":`+values(498)+`}`)},

	// Shape of the request.
	{name: "no selectors", in: `[]`, wantErr: []string{"AdvancedEventSelectors must contain at least one"}},
	{name: "no field selectors", in: `[{"Name":"x","FieldSelectors":[]}]`, wantErr: []string{"AdvancedEventSelectors[0].FieldSelectors must contain at least one"}},
	{name: "name too long", in: `[{"Name":"` + strings.Repeat("n", MaxNameLen+1) + `","FieldSelectors":[` + fsMgmt + `]}]`,
		wantErr: []string{"AdvancedEventSelectors[0].Name is 1001 characters", "maximum is 1000"}},
	{name: "501 values", in: sel(fsData, typeS3, `{"Field":"eventName","Equals":`+values(499)+`}`),
		wantErr: []string{"501 values", "maximum is 500"}},
	{name: "values counted across selectors", in: `[{"FieldSelectors":[` + fsData + `,` + typeS3 + `,{"Field":"eventName","Equals":` + values(300) + `}]},` +
		`{"FieldSelectors":[` + fsData + `,` + typeS3 + `,{"Field":"eventName","NotEquals":` + values(197) + `}]}]`,
		wantErr: []string{"501 values"}},

	// Field names and operators.
	{name: "unknown field", in: sel(fsMgmt, `{"Field":"eventcategory","Equals":["Management"]}`),
		wantErr: []string{"Value eventcategory for Field is invalid", "AdvancedEventSelectors[0].FieldSelectors[1].Field", "eventCategory"}},
	{name: "empty field", in: sel(fsMgmt, `{"Field":"","Equals":["x"]}`), wantErr: []string{"AdvancedEventSelectors[0].FieldSelectors[1].Field is required", "eventName"}},
	{name: "duplicate field", in: sel(fsData, typeS3, `{"Field":"eventName","Equals":["A"]}`, `{"Field":"eventName","Equals":["B"]}`),
		wantErr: []string{"FieldSelectors[3]", "eventName already appears in FieldSelectors[2]"}},
	{name: "no operator", in: sel(fsData, typeS3, `{"Field":"eventName"}`),
		wantErr: []string{"AdvancedEventSelectors[0].FieldSelectors[2] (eventName) has no operator", "Equals"}},
	{name: "empty operator list", in: sel(fsData, typeS3, `{"Field":"eventName","StartsWith":[]}`),
		wantErr: []string{"AdvancedEventSelectors[0].FieldSelectors[2].StartsWith is empty"}},
	{name: "empty value", in: sel(fsData, typeS3, `{"Field":"eventName","NotEquals":["Get",""]}`),
		wantErr: []string{"FieldSelectors[2].NotEquals[1] is 0 characters", "1 to 2048"}},
	{name: "newline value", in: sel(fsData, typeS3, `{"Field":"eventName","NotEquals":["\n"]}`),
		wantErr: []string{"FieldSelectors[2].NotEquals[0]"}},
	{name: "value too long", in: sel(fsData, typeS3, `{"Field":"eventName","Equals":["`+strings.Repeat("x", MaxValueLen+1)+`"]}`),
		wantErr: []string{"Equals[0] is 2049 characters"}},

	// eventCategory.
	{name: "category missing", in: sel(srcKMS), wantErr: []string{"AdvancedEventSelectors[0] has no eventCategory", "Management, Data or NetworkActivity"}},
	{name: "category not equals", in: sel(`{"Field":"eventCategory","NotEquals":["Data"]}`),
		wantErr: []string{"operator NotEquals is not supported for eventCategory", "use Equals"}},
	{name: "category two values", in: sel(`{"Field":"eventCategory","Equals":["Management","Data"]}`),
		wantErr: []string{"Equals has 2 values", "exactly one"}},
	{name: "category unknown", in: sel(`{"Field":"eventCategory","Equals":["management"]}`),
		wantErr: []string{"Value management for eventCategory is invalid", "FieldSelectors[0].Equals[0]", "Management, Data or NetworkActivity"}},
	{name: "category insight on trail", in: sel(`{"Field":"eventCategory","Equals":["Insight"]}`),
		wantErr: []string{"Value Insight for eventCategory is invalid for a trail", "event data stores"}},

	// readOnly.
	{name: "readOnly starts with", in: sel(fsMgmt, `{"Field":"readOnly","StartsWith":["t"]}`), wantErr: []string{"operator StartsWith is not supported for readOnly"}},
	{name: "readOnly bad value", in: sel(fsMgmt, `{"Field":"readOnly","Equals":["True"]}`),
		wantErr: []string{"Value True for readOnly is invalid", "FieldSelectors[1].Equals[0]", "true or false"}},

	// Data events.
	{name: "data without resources.type", in: sel(fsData, `{"Field":"eventName","Equals":["GetObject"]}`),
		wantErr: []string{"AdvancedEventSelectors[0] has no resources.type", "required when eventCategory is Data"}},
	{name: "resources.type starts with", in: sel(fsData, `{"Field":"resources.type","StartsWith":["AWS::S3"]}`),
		wantErr: []string{"operator StartsWith is not supported for resources.type"}},
	{name: "resources.type two values", in: sel(fsData, `{"Field":"resources.type","Equals":["AWS::S3::Object","AWS::Lambda::Function"]}`),
		wantErr: []string{"Equals has 2 values", "one advanced event selector per resource type"}},
	{name: "resources.type unknown", in: sel(fsData, `{"Field":"resources.type","Equals":["AWS::S3::Bucket"]}`),
		wantErr: []string{"Value AWS::S3::Bucket for resources.type is invalid", "FieldSelectors[1].Equals[0]"}},
	{name: "resources.type on management", in: sel(fsMgmt, typeS3),
		wantErr: []string{"field resources.type is not supported when eventCategory is Management on a trail", "eventCategory, eventSource and readOnly"}},
	{name: "errorCode on data", in: sel(fsData, typeS3, `{"Field":"errorCode","Equals":["VpceAccessDenied"]}`),
		wantErr: []string{"field errorCode is not supported when eventCategory is Data"}},
	{name: "vpcEndpointId on data", in: sel(fsData, typeS3, `{"Field":"vpcEndpointId","Equals":["vpce-1"]}`),
		wantErr: []string{"field vpcEndpointId is not supported"}},
	{name: "resources.ARN equals not an ARN", in: sel(fsData, typeS3, `{"Field":"resources.ARN","Equals":["amzn-s3-demo-bucket/key"]}`),
		wantErr: []string{"Value amzn-s3-demo-bucket/key for resources.ARN is invalid", "FieldSelectors[2].Equals[0]", "complete resource ARN"}},
	{name: "resources.ARN partial with equals", in: sel(fsData, typeS3, `{"Field":"resources.ARN","NotEquals":["arn:aws:s3"]}`),
		wantErr: []string{"NotEquals needs a complete resource ARN", "StartsWith"}},
	{name: "resources.ARN wildcard bucket", in: sel(fsData, typeS3, `{"Field":"resources.ARN","StartsWith":["arn:aws:s3:::*"]}`),
		wantErr: []string{"selectors do not support wildcards"}},
	{name: "resources.ARN wildcard account", in: sel(fsData, `{"Field":"resources.type","Equals":["AWS::Lambda::Function"]}`, `{"Field":"resources.ARN","Equals":["arn:aws:lambda:us-east-1:*:function:f"]}`),
		wantErr: []string{"wildcards"}},
	{name: "resources.ARN only star", in: sel(fsData, typeS3, `{"Field":"resources.ARN","EndsWith":["*"]}`),
		wantErr: []string{"Value * for resources.ARN is invalid"}},
	{name: "eventName wildcard", in: sel(fsData, typeS3, `{"Field":"eventName","StartsWith":["Get*"]}`),
		wantErr: []string{"Value Get* for eventName is invalid", "FieldSelectors[2].StartsWith[0]", "wildcards"}},
	{name: "console session starts with", in: sel(fsData, typeS3, `{"Field":"sessionCredentialFromConsole","StartsWith":["t"]}`),
		wantErr: []string{"operator StartsWith is not supported for sessionCredentialFromConsole", "Equals or NotEquals"}},
	{name: "console session false", in: sel(fsData, typeS3, `{"Field":"sessionCredentialFromConsole","Equals":["false"]}`),
		wantErr: []string{"Value false for sessionCredentialFromConsole is invalid", "expected true"}},

	// Management events on trails.
	{name: "management eventName on trail", in: sel(fsMgmt, `{"Field":"eventName","Equals":["CreateTrail"]}`),
		wantErr: []string{"field eventName is not supported when eventCategory is Management on a trail"}},
	{name: "management eventSource equals", in: sel(fsMgmt, srcKMS),
		wantErr: []string{"operator Equals is not supported for eventSource for management events on a trail", "use NotEquals"}},
	{name: "management eventSource other", in: sel(fsMgmt, `{"Field":"eventSource","NotEquals":["s3.amazonaws.com"]}`),
		wantErr: []string{"Value s3.amazonaws.com for eventSource is invalid", "kms.amazonaws.com or rdsdata.amazonaws.com"}},

	// Network activity events.
	{name: "network without eventSource", in: sel(fsNet, `{"Field":"errorCode","Equals":["VpceAccessDenied"]}`),
		wantErr: []string{"AdvancedEventSelectors[0] has no eventSource", "required when eventCategory is NetworkActivity"}},
	{name: "network two sources", in: sel(fsNet, `{"Field":"eventSource","Equals":["kms.amazonaws.com","ec2.amazonaws.com"]}`),
		wantErr: []string{"Equals has 2 values", "one advanced event selector per event source"}},
	{name: "network source starts with", in: sel(fsNet, `{"Field":"eventSource","StartsWith":["kms"]}`),
		wantErr: []string{"operator StartsWith is not supported for eventSource for network activity events"}},
	{name: "network source unsupported", in: sel(fsNet, `{"Field":"eventSource","Equals":["iam.amazonaws.com"]}`),
		wantErr: []string{"Value iam.amazonaws.com for eventSource is invalid", "FieldSelectors[1].Equals[0]", "kms.amazonaws.com"}},
	{name: "network errorCode other", in: sel(fsNet, srcKMS, `{"Field":"errorCode","Equals":["AccessDenied"]}`),
		wantErr: []string{"Value AccessDenied for errorCode is invalid", "expected VpceAccessDenied"}},
	{name: "network errorCode not equals", in: sel(fsNet, srcKMS, `{"Field":"errorCode","NotEquals":["VpceAccessDenied"]}`),
		wantErr: []string{"operator NotEquals is not supported for errorCode"}},
	{name: "network readOnly", in: sel(fsNet, srcKMS, `{"Field":"readOnly","Equals":["true"]}`),
		wantErr: []string{"field readOnly is not supported when eventCategory is NetworkActivity"}},

	// Event data stores.
	{name: "store insight", store: true, in: sel(`{"Field":"eventCategory","Equals":["Insight"]}`)},
	{name: "store activity audit log", store: true, in: sel(`{"Field":"eventCategory","Equals":["ActivityAuditLog"]}`)},
	{name: "store management fields", store: true, in: sel(fsMgmt, `{"Field":"eventName","StartsWith":["Create"]}`,
		`{"Field":"eventSource","Equals":["s3.amazonaws.com"]}`, `{"Field":"eventType","Equals":["AwsApiCall"]}`,
		`{"Field":"sessionCredentialFromConsole","Equals":["true"]}`, `{"Field":"userIdentity.arn","StartsWith":["arn:aws:iam::"]}`)},
	{name: "store insight with eventName", store: true, in: sel(`{"Field":"eventCategory","Equals":["Insight"]}`, `{"Field":"eventName","Equals":["x"]}`),
		wantErr: []string{"field eventName is not supported when eventCategory is Insight on an event data store", "supported fields are eventCategory"}},
	{name: "store network userIdentity", store: true, in: sel(fsNet, srcKMS, `{"Field":"userIdentity.arn","Equals":["arn:aws:iam::123456789012:root"]}`),
		wantErr: []string{"field userIdentity.arn is not supported when eventCategory is NetworkActivity on an event data store"}},
	{name: "store unknown category", store: true, in: sel(`{"Field":"eventCategory","Equals":["Foo"]}`),
		wantErr: []string{"Value Foo for eventCategory is invalid", "ActivityAuditLog"}},
}

// values returns a JSON list of n distinct event names.
func values(n int) string {
	v := make([]string, n)
	for i := range v {
		v[i] = fmt.Sprintf("Event%03d", i)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func TestNormalizeAdvanced(t *testing.T) {
	for _, tc := range advancedCases {
		t.Run(tc.name, func(t *testing.T) {
			var in []AdvancedEventSelector
			if err := json.Unmarshal([]byte(tc.in), &in); err != nil {
				t.Fatalf("bad test input: %v", err)
			}
			normalize := NormalizeAdvanced
			if tc.store {
				normalize = NormalizeAdvancedStore
			}
			got, err := normalize(in)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("succeeded, want error containing %q", tc.wantErr)
				}
				for _, frag := range tc.wantErr {
					if !strings.Contains(err.Error(), frag) {
						t.Errorf("error %q does not mention %q", err, frag)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("%v", err)
			}
			if !reflect.DeepEqual(got, in) {
				t.Errorf("normalization changed valid selectors:\ngot  %s\nwant %s", mustJSON(t, got), mustJSON(t, in))
			}
			if _, err := Compile(nil, got); err != nil {
				t.Errorf("Compile: %v", err)
			}
		})
	}
}

func TestNormalizeAdvancedDoesNotAlias(t *testing.T) {
	var in []AdvancedEventSelector
	if err := json.Unmarshal([]byte(seed001NetworkDenied), &in); err != nil {
		t.Fatal(err)
	}
	out, err := NormalizeAdvanced(in)
	if err != nil {
		t.Fatal(err)
	}
	*out[0].Name = "changed"
	out[0].FieldSelectors[1].Equals[0] = "changed"
	if *in[0].Name != "VPCE access denied" || in[0].FieldSelectors[1].Equals[0] != "ec2.amazonaws.com" {
		t.Error("NormalizeAdvanced output shares memory with its input")
	}
}

// Trails accept a subset of what event data stores accept: every selector valid
// for a trail is valid for a store, except userIdentity.arn on network activity.
func TestTrailRulesWithinStoreRules(t *testing.T) {
	for _, tc := range advancedCases {
		if tc.store || len(tc.wantErr) > 0 || strings.Contains(tc.in, "userIdentity.arn") && strings.Contains(tc.in, "NetworkActivity") {
			continue
		}
		var in []AdvancedEventSelector
		if err := json.Unmarshal([]byte(tc.in), &in); err != nil {
			t.Fatal(err)
		}
		if _, err := NormalizeAdvancedStore(in); err != nil {
			t.Errorf("%s: valid for a trail but not for a store: %v", tc.name, err)
		}
	}
}
