package archivetest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/fixture"
)

// BenchAccount is the account of BenchArchive's records and files.
const BenchAccount = "123456789012"

// BenchArchive writes files log files of 1,000 records each in AWS's layout
// under a temporary folder and returns it and its compressed size: a third
// seed 000's Lambda Invokes (20 functions, 8 ENIs), the rest the fixture's
// management events. query --logs (lake) and rules test --logs (detect) are
// measured on it, so that their figures compare.
func BenchArchive(b testing.TB, files int) (string, int64) {
	root := b.TempDir()
	mgmt := FixtureRecords(b)
	var size int64
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for f := range files {
		var recs [][]byte
		for i := range 1000 {
			if i%3 == 0 {
				recs = append(recs, LambdaInvoke(fmt.Sprintf("fn-%d", i%20), fmt.Sprintf("eni-%017x", i%8), fmt.Sprintf("%08d-0000-0000-0000-%012d", f, i), base.Add(time.Duration(f)*time.Minute)))
			} else {
				recs = append(recs, mgmt[(f*1000+i)%len(mgmt)])
			}
		}
		at := base.Add(time.Duration(f) * 5 * time.Minute)
		key := fmt.Sprintf("AWSLogs/%s/CloudTrail/us-east-1/%s/%s_CloudTrail_us-east-1_%s_%016d.json.gz", BenchAccount, at.Format("2006/01/02"),
			BenchAccount, at.Format("20060102T1504Z"), f)
		WriteLogFile(b, root, key, recs...)
		st, err := os.Stat(filepath.Join(root, filepath.FromSlash(key)))
		if err != nil {
			b.Fatal(err)
		}
		size += st.Size()
	}
	return root, size
}

// FixtureRecords are the fixture's records that have an eventTime, their
// bytes kept but for recipientAccountId, which is BenchAccount.
func FixtureRecords(t testing.TB) [][]byte {
	var out [][]byte
	for _, r := range fixture.Records(t) {
		var m map[string]any
		if err := json.Unmarshal(r, &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m["eventTime"]; !ok {
			continue
		}
		s := string(r)
		if a, ok := m["recipientAccountId"].(string); ok && a != BenchAccount {
			s = strings.Replace(s, `"recipientAccountId":"`+a+`"`, `"recipientAccountId":"`+BenchAccount+`"`, 1)
		}
		out = append(out, []byte(s))
	}
	return out
}

// LambdaInvoke is seed 000's Lambda Invoke data event (eni "" for a function
// outside a VPC: no customerEniId).
func LambdaInvoke(fn, eni, id string, at time.Time) []byte {
	add := `null`
	if eni != "" {
		add = `{"customerEniId":"` + eni + `","functionVersion":"arn:aws:lambda:ap-northeast-1:123456789012:function:` + fn + `:$LATEST"}`
	}
	return []byte(`{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"ABCDEFGHIJKLMNOPQRST:some-user","arn":"arn:aws:sts::123456789012:assumed-role/some-role/some-user","accountId":"123456789012","accessKeyId":"ABCDEFGHIJKLMNOPQRST","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"ABCDEFGHIJKLMNOPQRST","arn":"arn:aws:iam::123456789012:role/some-role","accountId":"123456789012","userName":"some-role"},"attributes":{"creationDate":"2021-12-04T03:12:23Z","mfaAuthenticated":"true"}}},` +
		`"eventTime":"` + at.UTC().Format(time.RFC3339) + `","eventSource":"lambda.amazonaws.com","eventName":"Invoke","awsRegion":"ap-northeast-1","sourceIPAddress":"1.2.3.4","userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/96.0.4664.55 Safari/537.36",` +
		`"requestParameters":{"functionName":"arn:aws:lambda:ap-northeast-1:123456789012:function:` + fn + `","invocationType":"RequestResponse","logType":"Tail","contentType":"application/json"},"responseElements":null,` +
		`"additionalEventData":` + add + `,"requestID":"11bdbfa8-940e-491a-ba4c-7fcd85993886","eventID":"` + id + `","readOnly":false,` +
		`"resources":[{"accountId":"123456789012","type":"AWS::Lambda::Function","ARN":"arn:aws:lambda:ap-northeast-1:123456789012:function:` + fn + `"}],` +
		`"eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"123456789012","eventCategory":"Data"}`)
}
