package dest

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// seedPayload is a payload CloudWatch Logs really sent a subscribed Lambda
// (published with seed 003's walkthrough): the reference for field order and
// encoding.
const seedPayload = `H4sIAAAAAAAAAH1TYU/bMBD9L/7ctHHsOG2+ebSwiI4hWmCCIuQkbmctibPYoXSo/33npAXEJtQPcX3v3rt7d35BpTRGbORyV0sUoylf8sdvs8WCn83QAOltJRu4Dn1GGGWE+tEErgu9OWt0W0NkJLZmlBW6zW0jVDEy22evO/WwhW2kKD8wPJ44/NKhHkXtVbqxP6Uw1sOQZNrUZI2qrdLVqSqsbAyK79FclGkuerp3+d6FtmqtMuHg6KHTnD3JyrqkF6RykCYEh/DzQ4onLKARjaKIsRBHGBMaEOKODGNMSehHdByFPh5TSsdQjFVgjxUldIrpmIUApcz3/cHRNqB/WSHpFG+gUihiheIVwkM/XKHBCrVGNkkOUWV3EAGsBaM7TMK/XUO0g9WNqjJViyLJuxhPpjwJbu8ury/mV3c3PIzm7LZDiqZXgG8M1sdKlHH83tzYSY5EXqpKGZiE1b2EyDLdVvYg8D7jGIaOzuXuWMEi4ckPQsnyO/+6OCf89Jy/dnQhyr6Hf2UMsIALJ7qy8tn2LQtrG5W2Vpr+f7kWvIWRgyswONkLrkVhZEeRwYzdOKcQ60KBjyPPDzx/vMQ0pkFM2N0K7feAVdWT/iXzL7sOaNSmUtVQlOKPrsCdYaZLAA4OE1qq8r+EYUwd4RG20G2T9cC3xf5IegS/WjGVbm1T2a2l6T3dmiu5Oe5Ea7wtLJMX9D51Isklz/MGLOu3JiRDHPlD92WTV7f5BnQ+6Q9gjfzdAvelaKAc92QOu+ZqcRXOYUZwdf+w78Cm1pWRs0KW7qVAoGqL4o0mmXZqlLE08CeZJ6WfexhL5qURnPJwTSbp2u3O+M2IQ5IM0oDkAdjLQuLRScC8cUakR0mayknE1lEQviUtj4+Bbw2v1YkoikM/8BoUAPgnW7tH+4f9X23arOvBBAAA`

// seedRecord is the CloudTrail record inside seedPayload.
const seedRecord = `{"eventVersion":"1.05","userIdentity":{"type":"IAMUser","principalId":"AIDAI2WZPUNLRZVA57L6W","arn":"arn:aws:iam::506364634079:user/administrator","accountId":"506364634079","accessKeyId":"ASIAIX343TOAHSK3AFKA","userName":"administrator","sessionContext":{"attributes":{"mfaAuthenticated":"false","creationDate":"2017-02-08T14:42:36Z"}},"invokedBy":"signin.amazonaws.com"},"eventTime":"2017-02-08T14:45:46Z","eventSource":"cloudtrail.amazonaws.com","eventName":"DescribeTrails","awsRegion":"us-west-2","sourceIPAddress":"153.170.153.69","userAgent":"signin.amazonaws.com","requestParameters":{"trailNameList":[]},"responseElements":null,"requestID":"466b209c-ee0d-11e6-b70d-d5f39bf34078","eventID":"e2b23d27-0653-4926-8c3e-43bbe976f725","eventType":"AwsApiCall","recipientAccountId":"506364634079"}`

func seedBatch() *Batch {
	return &Batch{
		Owner:               "506364634079",
		Region:              "ap-northeast-1",
		LogGroup:            "/aws/cloudtrail/swx-trail",
		LogStream:           "506364634079_CloudTrail_ap-northeast-1",
		SubscriptionFilters: []string{"LambdaStream_CloudTrail-Notification"},
		Events: []LogEvent{{
			ID:        "33151510541962474777665171134233651761114350748750184448",
			Timestamp: 1486565146000,
			Message:   seedRecord,
		}},
	}
}

// deleteBucketRecord is a failed call by a user, with characters that
// encoders like to escape.
const deleteBucketRecord = `{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::111122223333:user/alice","accountId":"111122223333","userName":"alice"},"eventTime":"2024-05-01T12:00:00Z","eventSource":"s3.amazonaws.com","eventName":"DeleteBucket","awsRegion":"eu-west-1","sourceIPAddress":"203.0.113.7","userAgent":"aws-cli/2.15.0 <md/arch#x86_64> & more","errorCode":"AccessDenied","requestParameters":{"bucketName":"logs"},"eventID":"0c6a4b2e-1111-2222-3333-444455556666","recipientAccountId":"111122223333"}`

func decodePayload(t *testing.T, body []byte) []byte {
	t.Helper()
	var ev map[string]map[string]string
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatalf("payload is not JSON: %v: %s", err, body)
	}
	if len(ev) != 1 || len(ev["awslogs"]) != 1 {
		t.Fatalf("payload has other keys than awslogs.data: %s", body)
	}
	z, err := base64.StdEncoding.DecodeString(ev["awslogs"]["data"])
	if err != nil {
		t.Fatalf("data is not standard base64: %v", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatalf("data is not gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

func TestPayloadMatchesCloudWatchLogs(t *testing.T) {
	want := decodePayload(t, []byte(`{"awslogs":{"data":"`+seedPayload+`"}}`))
	body, err := Payload(seedBatch())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(body, []byte(`{"awslogs":{"data":"H4sIAAAAAAAAA`)) {
		t.Errorf("payload does not start like AWS's (gzip header mtime 0, OS 0): %.60s", body)
	}
	if got := decodePayload(t, body); !bytes.Equal(got, want) {
		t.Errorf("DATA_MESSAGE differs from CloudWatch Logs'\n got: %s\nwant: %s", got, want)
	}
}

func TestDataMessage(t *testing.T) {
	tests := []struct {
		name string
		b    *Batch
		want string
	}{
		{"html characters are not escaped", &Batch{Owner: "111122223333", LogGroup: "g", LogStream: "s", SubscriptionFilters: []string{"f"},
			Events: []LogEvent{{ID: "1", Timestamp: 2, Message: `a<b>&"c"` + "\n\u00e9"}}},
			`{"messageType":"DATA_MESSAGE","owner":"111122223333","logGroup":"g","logStream":"s","subscriptionFilters":["f"],"logEvents":[{"id":"1","timestamp":2,"message":"a<b>&\"c\"\né"}]}`},
		{"nil filters and events are empty arrays", &Batch{Owner: "1", LogGroup: "g", LogStream: "s"},
			`{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":[],"logEvents":[]}`},
		{"account-level policy", &Batch{Owner: "1", LogGroup: "g", LogStream: "s", SubscriptionFilters: []string{"p"}, PolicyLevel: "ACCOUNT_LEVEL_POLICY",
			Events: []LogEvent{{ID: "9", Timestamp: 1, Message: "m"}}},
			`{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":["p"],"logEvents":[{"id":"9","timestamp":1,"message":"m"}],"policyLevel":"ACCOUNT_LEVEL_POLICY"}`},
		{"several events keep their order", &Batch{Owner: "1", LogGroup: "g", LogStream: "s", SubscriptionFilters: []string{"a", "b"},
			Events: []LogEvent{{ID: "2", Timestamp: 5, Message: "x"}, {ID: "1", Timestamp: 4, Message: "y"}}},
			`{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":["a","b"],"logEvents":[{"id":"2","timestamp":5,"message":"x"},{"id":"1","timestamp":4,"message":"y"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DataMessage(tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			body, err := Payload(tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if dec := decodePayload(t, body); string(dec) != tt.want {
				t.Errorf("payload decodes to %s", dec)
			}
			if dec, err := DecodePayload(body); err != nil || string(dec) != tt.want {
				t.Errorf("DecodePayload = %s, %v", dec, err)
			}
		})
	}
	if _, err := Payload(nil); err == nil {
		t.Error("Payload(nil) succeeded")
	}
}

func TestRecords(t *testing.T) {
	b := &Batch{Events: []LogEvent{
		{Message: ` {"eventName": "A", "x": [1, 2]} `},
		{Message: "not json <&>"},
		{Message: "42"},
		{Message: `{"broken":`},
	}}
	got, err := Records(b)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Records":[{"eventName":"A","x":[1,2]},"not json <&>",42,"{\"broken\":"]}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if !strings.Contains(string(got), `"Records"`) {
		t.Error("no Records key")
	}
}
