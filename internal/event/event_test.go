package event

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/fixture"
)

var defaults = Defaults{Account: "123456789012", Region: "us-east-1", Now: time.Unix(1700000000, 0), NewID: func() string { return "generated-id" }}

func TestFixturesRoundTrip(t *testing.T) {
	recs := fixture.Records(t)
	if len(recs) < 566 {
		t.Fatalf("got %d fixture records, want at least 566", len(recs))
	}
	for i, raw := range recs {
		r, err := Normalize(raw, defaults)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if d := fixture.SameMeaning(raw, r.Raw); d != "" {
			t.Fatalf("record %d: %s", i, d)
		}
		back, err := Decode(Encode(nil, &r))
		if err != nil {
			t.Fatalf("record %d: decode: %v", i, err)
		}
		if string(back.Raw) != string(r.Raw) || back.Meta.EventID != r.Meta.EventID || back.Meta.EventTime != r.Meta.EventTime {
			t.Fatalf("record %d: stored form did not round-trip", i)
		}
		// Normalising twice changes nothing: fill-ins are stable.
		again, err := Normalize(r.Raw, defaults)
		if err != nil || string(again.Raw) != string(r.Raw) {
			t.Fatalf("record %d: second normalisation changed the record (%v)", i, err)
		}
	}
}

func TestNormalizeFills(t *testing.T) {
	r, err := Normalize([]byte(`{ "eventTime": "2024-05-06T07:08:09Z", "eventName": "PutItem",
		"userIdentity": {"type":"AssumedRole","arn":"arn:aws:sts::123456789012:assumed-role/r/sess","accessKeyId":"ASIAX"} }`), defaults)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(r.Raw, &m); err != nil {
		t.Fatalf("%s: %v", r.Raw, err)
	}
	want := map[string]any{"eventID": "generated-id", "eventVersion": DefaultEventVersion, "recipientAccountId": "123456789012",
		"awsRegion": "us-east-1", "eventType": "AwsApiCall", "eventCategory": "Management", "managementEvent": true}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if strings.ContainsAny(string(r.Raw), "\n\t") {
		t.Errorf("not compacted: %s", r.Raw)
	}
	if r.Meta.Username != "sess" || r.Meta.AccessKeyID != "ASIAX" || r.Meta.ReadOnly != -1 {
		t.Errorf("meta = %+v", r.Meta)
	}
	if got := time.Unix(0, r.Meta.EventTime).UTC().Format(time.RFC3339); got != "2024-05-06T07:08:09Z" {
		t.Errorf("eventTime = %s", got)
	}
}

func TestNormalizeDerivesCategory(t *testing.T) {
	for _, tc := range []struct{ in, cat string }{
		{`{"eventTime":"2024-01-01T00:00:00Z","managementEvent":false}`, CategoryData},
		{`{"eventTime":"2024-01-01T00:00:00Z","eventType":"AwsVpceEvent"}`, CategoryNetworkActivity},
		{`{"eventTime":"2024-01-01T00:00:00Z","eventType":"AwsCloudTrailInsight","insightDetails":{"eventSource":"s3.amazonaws.com","eventName":"DeleteBucket"}}`, CategoryInsight},
		{`{"eventTime":"2024-01-01T00:00:00Z"}`, CategoryManagement},
	} {
		r, err := Normalize([]byte(tc.in), defaults)
		if err != nil {
			t.Fatal(err)
		}
		if r.Meta.Category != tc.cat || !strings.Contains(string(r.Raw), `"eventCategory":"`+tc.cat+`"`) {
			t.Errorf("%s: category %s, raw %s", tc.in, r.Meta.Category, r.Raw)
		}
	}
}

func TestNormalizeRejects(t *testing.T) {
	for _, tc := range []struct{ in, field, msg string }{
		{`[]`, "", "must be a JSON object"},
		{`{"eventTime":"2024-01-01T00:00:00Z"`, "", "not valid JSON"},
		{`{}`, "eventTime", "is required"},
		{`{"eventTime":17}`, "eventTime", "must be a JSON string, not a number"},
		{`{"eventTime":"yesterday"}`, "eventTime", "not an RFC 3339 time"},
		{`{"eventTime":"2024-01-01T00:00:00Z","readOnly":"true"}`, "readOnly", "must be a JSON boolean"},
		{`{"eventTime":"2024-01-01T00:00:00Z","managementEvent":1}`, "managementEvent", "must be a JSON boolean"},
		{`{"eventTime":"2024-01-01T00:00:00Z","recipientAccountId":"12345"}`, "recipientAccountId", "12-digit"},
		{`{"eventTime":"2024-01-01T00:00:00Z","awsRegion":"US East"}`, "awsRegion", "region name"},
		{`{"eventTime":"2024-01-01T00:00:00Z","eventCategory":"Other"}`, "eventCategory", "not one of"},
		{`{"eventTime":"2024-01-01T00:00:00Z","eventID":""}`, "eventID", "printable"},
		{`{"eventTime":"2024-01-01T00:00:00Z","userIdentity":"root"}`, "userIdentity", "must be a JSON object"},
		{`{"eventTime":"2024-01-01T00:00:00Z","userIdentity":{"userName":5}}`, "userIdentity.userName", "must be a JSON string"},
		{`{"eventTime":"2024-01-01T00:00:00Z","resources":{}}`, "resources", "must be a JSON array"},
		{`{"eventTime":"2024-01-01T00:00:00Z","requestParameters":"x=1"}`, "requestParameters", "object or null"},
		{`{"eventTime":"2024-01-01T00:00:00Z","eventTime":"2024-01-01T00:00:00Z"}`, "", "duplicate"},
		{`{"eventTime":"2024-01-01T00:00:00Z"} {}`, "", "after the record"},
		{`{"eventTime":"2024-01-01T00:00:00Z","sessionCredentialFromConsole":true}`, "sessionCredentialFromConsole", "must be a JSON string"},
		{"{\"eventTime\":\"2024-01-01T00:00:00Z\",\"errorCode\":\"\xff\"}", "errorCode", "UTF-8"},
		{`{"eventTime":"2024-01-01T00:00:00Z","x":"` + strings.Repeat("a", MaxRecordBytes) + `"}`, "", "the limit is"},
	} {
		t.Run(tc.in[:min(len(tc.in), 60)], func(t *testing.T) {
			_, err := Normalize([]byte(tc.in), defaults)
			fe, ok := err.(*FieldError)
			if !ok {
				t.Fatalf("err = %v, want *FieldError", err)
			}
			if fe.Field != tc.field && !(tc.field == "" && tc.msg == "duplicate") {
				t.Errorf("field = %q, want %q (%v)", fe.Field, tc.field, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %q, want it to mention %q", err, tc.msg)
			}
		})
	}
}

func FuzzNormalize(f *testing.F) {
	for _, raw := range fixture.Records(f)[:40] {
		f.Add([]byte(raw))
	}
	f.Add([]byte(`{"eventTime":"2024-01-01T00:00:00Z","resources":[{"ARN":"a","type":"t"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := Normalize(raw, defaults)
		if err != nil {
			return
		}
		if !json.Valid(r.Raw) {
			t.Fatalf("accepted record became invalid JSON: %s", r.Raw)
		}
		back, err := Decode(Encode(nil, &r))
		if err != nil || string(back.Raw) != string(r.Raw) {
			t.Fatalf("stored form did not round-trip: %v", err)
		}
		if d := fixture.SameMeaning(raw, r.Raw); d != "" {
			t.Fatalf("meaning changed: %s", d)
		}
	})
}

func FuzzDecode(f *testing.F) {
	r, _ := Normalize([]byte(`{"eventTime":"2024-01-01T00:00:00Z","resources":[{"ARN":"a","type":"t"}]}`), defaults)
	f.Add(Encode(nil, &r))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = Decode(b) })
}

func BenchmarkNormalize(b *testing.B) {
	raw := fixture.Records(b)[563] // the seed's Lambda Invoke data event
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		r, err := Normalize(raw, defaults)
		if err != nil {
			b.Fatal(err)
		}
		_ = Encode(nil, &r)
	}
}

// FuzzInsignificantSpace holds hasInsignificantSpace to the plain byte loop.
func FuzzInsignificantSpace(f *testing.F) {
	for _, s := range []string{`{"a":"b c"}`, `{"a": 1}`, `{"a":"\" "}`, `{"a":"\\"}`, `{"a":"\\\" x"} `, `["\\\\", 1 ]`, "{\"a\":\t1}", `"x\"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := false
		inString := false
		for i := 0; i < len(b); i++ {
			switch c := b[i]; {
			case inString && c == '\\':
				i++
			case c == '"':
				inString = !inString
			case !inString && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
				want = true
			}
			if want {
				break
			}
		}
		if got := hasInsignificantSpace(b); got != want {
			t.Fatalf("%q: %v, want %v", b, got, want)
		}
	})
}
