package selector

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// basicCase is one NormalizeBasic table entry. in is the EventSelectors member of
// a PutEventSelectors request; want is the normalized JSON, or wantErr lists
// fragments the error message must contain (index, field, value, expectation).
type basicCase struct {
	name    string
	in      string
	want    string
	wantErr []string
}

var basicCases = []basicCase{
	// Defaults.
	{name: "defaults filled", in: `[{}]`,
		want: `[{"ReadWriteType":"All","IncludeManagementEvents":true,"DataResources":[],"ExcludeManagementEventSources":[]}]`},
	{name: "explicit values kept",
		in:   `[{"ReadWriteType":"WriteOnly","IncludeManagementEvents":true,"ExcludeManagementEventSources":["kms.amazonaws.com","rdsdata.amazonaws.com"]}]`,
		want: `[{"ReadWriteType":"WriteOnly","IncludeManagementEvents":true,"DataResources":[],"ExcludeManagementEventSources":["kms.amazonaws.com","rdsdata.amazonaws.com"]}]`},
	// Seed 001: the selector the blog author put back, echoed by AWS with both lists empty.
	{name: "seed 001 put-event-selectors echo",
		in:   `[{"ReadWriteType": "All","IncludeManagementEvents": true}]`,
		want: `[{"ReadWriteType":"All","IncludeManagementEvents":true,"DataResources":[],"ExcludeManagementEventSources":[]}]`},
	// Seed 000: a trail that logs Lambda data events only.
	{name: "seed 000 lambda data events only",
		in:   `[{"ReadWriteType":"All","IncludeManagementEvents":false,"DataResources":[{"Type":"AWS::Lambda::Function","Values":["arn:aws:lambda"]}]}]`,
		want: `[{"ReadWriteType":"All","IncludeManagementEvents":false,"DataResources":[{"Type":"AWS::Lambda::Function","Values":["arn:aws:lambda"]}],"ExcludeManagementEventSources":[]}]`},

	// Selector count.
	{name: "no selectors", in: `[]`, wantErr: []string{"EventSelectors", "between 1 and 5"}},
	{name: "six selectors", in: `[{},{},{},{},{},{}]`, wantErr: []string{"at most 5 event selectors", "has 6"}},
	{name: "five selectors", in: `[{},{},{},{},{}]`,
		want: "[" + strings.Repeat(`{"ReadWriteType":"All","IncludeManagementEvents":true,"DataResources":[],"ExcludeManagementEventSources":[]},`, 4) +
			`{"ReadWriteType":"All","IncludeManagementEvents":true,"DataResources":[],"ExcludeManagementEventSources":[]}]`},

	// ReadWriteType.
	{name: "read-only lowercase", in: `[{"ReadWriteType":"read-only"}]`,
		wantErr: []string{"Value read-only for ReadWriteType is invalid.", "EventSelectors[0].ReadWriteType", "ReadOnly, WriteOnly or All"}},
	{name: "readonly wrong case", in: `[{},{"ReadWriteType":"readonly"}]`, wantErr: []string{"EventSelectors[1].ReadWriteType", "readonly"}},

	// ExcludeManagementEventSources.
	{name: "exclude unknown source", in: `[{"ExcludeManagementEventSources":["kms.amazonaws.com","s3.amazonaws.com"]}]`,
		wantErr: []string{"Value s3.amazonaws.com for ExcludeManagementEventSources is invalid.", "EventSelectors[0].ExcludeManagementEventSources[1]",
			"kms.amazonaws.com or rdsdata.amazonaws.com"}},

	// IncludeManagementEvents false needs data resources.
	{name: "nothing selected", in: `[{"IncludeManagementEvents":false}]`,
		wantErr: []string{"When includeManagementEvents is false, DataResources must not be empty", "EventSelectors[0]"}},
	{name: "nothing selected second", in: `[{},{"IncludeManagementEvents":false,"DataResources":[]}]`,
		wantErr: []string{"EventSelectors[1]"}},

	// DataResources.Type.
	{name: "type missing", in: `[{"DataResources":[{"Values":["arn:aws:s3"]}]}]`,
		wantErr: []string{"EventSelectors[0].DataResources[0].Type is required", "AWS::S3::Object"}},
	{name: "type not basic", in: `[{"DataResources":[{"Type":"AWS::SNS::Topic","Values":["arn:aws:sns"]}]}]`,
		wantErr: []string{"Value AWS::SNS::Topic for DataResources.Type is invalid.", "EventSelectors[0].DataResources[0].Type", "advanced event selectors"}},
	{name: "type wrong case", in: `[{"DataResources":[{"Type":"AWS::S3::object","Values":["arn:aws:s3"]}]}]`,
		wantErr: []string{"AWS::S3::object"}},
	{name: "values missing", in: `[{"DataResources":[{"Type":"AWS::S3::Object"}]}]`,
		wantErr: []string{"EventSelectors[0].DataResources[0].Values must contain at least one"}},

	// S3 values.
	{name: "s3 all buckets", in: `[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3"]}]}]`,
		want: `[{"ReadWriteType":"All","IncludeManagementEvents":true,"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3"]}],"ExcludeManagementEventSources":[]}]`},
	{name: "s3 bucket and prefix", in: `[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::amzn-s3-demo-bucket1/","arn:aws:s3:::amzn-s3-demo-bucket1/example-images","arn:aws-cn:s3:::b.c-d/"]}]}]`,
		want: `[{"ReadWriteType":"All","IncludeManagementEvents":true,"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::amzn-s3-demo-bucket1/","arn:aws:s3:::amzn-s3-demo-bucket1/example-images","arn:aws-cn:s3:::b.c-d/"]}],"ExcludeManagementEventSources":[]}]`},
	// Messages AWS is known to return for these values (aws-samples/aws-security-reference-architecture-examples#335 and others).
	{name: "s3 wildcard bucket", in: `[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::*"]}]}]`,
		wantErr: []string{"Value arn:aws:s3:::* for DataResources.Values is invalid.", "EventSelectors[0].DataResources[0].Values[0]", "wildcards are not supported"}},
	{name: "s3 wildcard bucket and key", in: `[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::*/*"]}]}]`,
		wantErr: []string{"Value arn:aws:s3:::*/* for DataResources.Values is invalid."}},
	{name: "s3 empty bucket", in: `[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::/"]}]}]`,
		wantErr: []string{"Value arn:aws:s3:::/ for DataResources.Values is invalid."}},
	{name: "s3 bucket without slash", in: `[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::amzn-s3-demo-bucket1"]}]}]`,
		wantErr: []string{"Value arn:aws:s3:::amzn-s3-demo-bucket1 for DataResources.Values is invalid.", "arn:<partition>:s3:::<bucket>/"}},
	{name: "s3 bare bucket name", in: `[{"DataResources":[{"Type":"AWS::S3::Object","Values":["secure-infra-logs/"]}]}]`,
		wantErr: []string{"Value secure-infra-logs/ for DataResources.Values is invalid."}},
	{name: "s3 prefix wildcard bucket", in: `[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::cg-*/*"]}]}]`,
		wantErr: []string{"arn:aws:s3:::cg-*/*"}},
	{name: "s3 trailing colon", in: `[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:"]}]}]`,
		wantErr: []string{"Value arn:aws:s3: for DataResources.Values"}},
	{name: "s3 value for lambda type", in: `[{"DataResources":[{"Type":"AWS::Lambda::Function","Values":["arn:aws:s3"]}]}]`,
		wantErr: []string{"Value arn:aws:s3 for DataResources.Values is invalid.", "arn:<partition>:lambda"}},

	// Lambda values.
	{name: "lambda exact", in: `[{"DataResources":[{"Type":"AWS::Lambda::Function","Values":["arn:aws:lambda:us-west-2:111111111111:function:helloworld"]}]}]`,
		want: `[{"ReadWriteType":"All","IncludeManagementEvents":true,"DataResources":[{"Type":"AWS::Lambda::Function","Values":["arn:aws:lambda:us-west-2:111111111111:function:helloworld"]}],"ExcludeManagementEventSources":[]}]`},
	{name: "lambda wildcard", in: `[{"DataResources":[{"Type":"AWS::Lambda::Function","Values":["arn:aws:lambda:*"]}]}]`,
		wantErr: []string{"Value arn:aws:lambda:* for DataResources.Values is invalid.", "exact function ARN"}},
	{name: "lambda short account", in: `[{"DataResources":[{"Type":"AWS::Lambda::Function","Values":["arn:aws:lambda:us-west-2:1111:function:f"]}]}]`,
		wantErr: []string{"arn:aws:lambda:us-west-2:1111:function:f"}},
	{name: "lambda qualified", in: `[{"DataResources":[{"Type":"AWS::Lambda::Function","Values":["arn:aws:lambda:us-west-2:111111111111:function:f:$LATEST"]}]}]`,
		wantErr: []string{"function:f:$LATEST"}},

	// DynamoDB values.
	{name: "dynamodb all and exact", in: `[{"DataResources":[{"Type":"AWS::DynamoDB::Table","Values":["arn:aws:dynamodb","arn:aws:dynamodb:us-east-1:123456789012:table/Music"]}]}]`,
		want: `[{"ReadWriteType":"All","IncludeManagementEvents":true,"DataResources":[{"Type":"AWS::DynamoDB::Table","Values":["arn:aws:dynamodb","arn:aws:dynamodb:us-east-1:123456789012:table/Music"]}],"ExcludeManagementEventSources":[]}]`},
	{name: "dynamodb table wildcard", in: `[{"DataResources":[{"Type":"AWS::DynamoDB::Table","Values":["arn:aws:dynamodb:us-east-1:123456789012:table/*"]}]}]`,
		wantErr: []string{"table/* for DataResources.Values is invalid.", "arn:<partition>:dynamodb:<region>:<account>:table/<name>"}},

	// The 250 data resource limit.
	{name: "250 data resources", in: manyS3(250, 1)},
	{name: "251 data resources over selectors", in: manyS3(251, 3), wantErr: []string{"at most 250 data resources", "has 251"}},
	{name: "all-resources values not counted", in: manyS3(250, 1, "arn:aws:s3")},
}

// manyS3 builds selectors holding n bucket values spread over k selectors, plus extra values in the first.
func manyS3(n, k int, extra ...string) string {
	vals := make([][]string, k)
	for i := 0; i < n; i++ {
		vals[i%k] = append(vals[i%k], fmt.Sprintf("arn:aws:s3:::bucket-%03d/", i))
	}
	vals[0] = append(vals[0], extra...)
	sel := make([]EventSelector, k)
	for i := range sel {
		sel[i].DataResources = []DataResource{{Type: TypeS3Object, Values: vals[i]}}
	}
	b, _ := json.Marshal(sel)
	return string(b)
}

func TestNormalizeBasic(t *testing.T) {
	for _, tc := range basicCases {
		t.Run(tc.name, func(t *testing.T) {
			var in []EventSelector
			if err := json.Unmarshal([]byte(tc.in), &in); err != nil {
				t.Fatalf("bad test input: %v", err)
			}
			got, err := NormalizeBasic(in)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("NormalizeBasic succeeded, want error containing %q", tc.wantErr)
				}
				for _, frag := range tc.wantErr {
					if !strings.Contains(err.Error(), frag) {
						t.Errorf("error %q does not mention %q", err, frag)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("NormalizeBasic: %v", err)
			}
			if tc.want != "" {
				b, _ := json.Marshal(got)
				if string(b) != tc.want {
					t.Errorf("got  %s\nwant %s", b, tc.want)
				}
			}
			again, err := NormalizeBasic(got)
			if err != nil {
				t.Fatalf("normalizing the output again: %v", err)
			}
			if a, b := mustJSON(t, again), mustJSON(t, got); a != b {
				t.Errorf("second normalization changed the selectors:\n%s\n%s", a, b)
			}
			if _, err := Compile(got, nil); err != nil {
				t.Errorf("Compile: %v", err)
			}
		})
	}
}

func TestNormalizeBasicDoesNotAlias(t *testing.T) {
	in := []EventSelector{{DataResources: []DataResource{{Type: TypeS3Object, Values: []string{"arn:aws:s3:::b/"}}}}}
	out, err := NormalizeBasic(in)
	if err != nil {
		t.Fatal(err)
	}
	out[0].DataResources[0].Values[0] = "changed"
	if in[0].DataResources[0].Values[0] != "arn:aws:s3:::b/" {
		t.Error("NormalizeBasic output shares Values with its input")
	}
}

func TestDefaultBasicJSON(t *testing.T) {
	const want = `[{"ReadWriteType":"All","IncludeManagementEvents":true,"DataResources":[]}]`
	if got := mustJSON(t, DefaultBasic()); got != want {
		t.Errorf("DefaultBasic marshals as %s, want %s", got, want)
	}
	// A fresh trail's selectors pass validation unchanged apart from the
	// ExcludeManagementEventSources echo.
	if _, err := NormalizeBasic(DefaultBasic()); err != nil {
		t.Errorf("NormalizeBasic(DefaultBasic()): %v", err)
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
