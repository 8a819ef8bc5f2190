package awsapi

import (
	"encoding/json"
	"errors"
	"testing"
)

// typesModel exercises every shape type and constraint the service models use.
const typesModel = `{
 "operations": {"Op": {"input": {"shape": "In"}}, "NoInput": {}},
 "shapes": {
  "In": {"type": "structure", "required": ["Req", "Query"], "members": {
   "Req": {"shape": "Str"}, "Int": {"shape": "Int"}, "Long": {"shape": "Long"}, "Dbl": {"shape": "Dbl"},
   "Bool": {"shape": "Bool"}, "Blob": {"shape": "Blob"}, "Time": {"shape": "Time"}, "Names": {"shape": "Names"},
   "Tags": {"shape": "Tags"}, "Nested": {"shape": "Nested"}, "Renamed": {"shape": "Int", "locationName": "renamed"},
   "Query": {"shape": "Str", "location": "querystring", "locationName": "q"}}},
  "Str": {"type": "string", "min": 1, "max": 5, "pattern": "[a-z]*"},
  "Int": {"type": "integer", "min": 1, "max": 50},
  "Long": {"type": "long"},
  "Dbl": {"type": "double", "min": 0.5},
  "Bool": {"type": "boolean"},
  "Blob": {"type": "blob", "max": 3},
  "Time": {"type": "timestamp"},
  "Names": {"type": "list", "member": {"shape": "Str"}, "max": 2},
  "Tags": {"type": "map", "key": {"shape": "Str"}, "value": {"shape": "Str"}, "max": 2},
  "Nested": {"type": "map", "key": {"shape": "Any"}, "value": {"shape": "Names"}},
  "Any": {"type": "string"}
 }}`

const (
	cloudTrail = iota
	logs
	cloudTrailData
	types
)

func testModels(t testing.TB) []*Model {
	tm, err := LoadModel([]byte(typesModel))
	if err != nil {
		t.Fatal(err)
	}
	return []*Model{cloudTrail: CloudTrailModel(), logs: LogsModel(), cloudTrailData: CloudTrailDataModel(), types: tm}
}

const (
	serialization = "SerializationException"
	invalidParam  = "InvalidParameterException"
)

// validateCases also seed FuzzValidate.
var validateCases = []struct {
	name  string
	model int
	op    string
	body  string
	code  string // "" = valid
	field string
	msg   string // exact message; "" = not checked
}{
	// CloudTrail
	{name: "lookup events valid", model: cloudTrail, op: "LookupEvents",
		body: `{"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"ConsoleLogin"}],"StartTime":1700000000,"EndTime":1700000100.25,"MaxResults":50,"EventCategory":"insight","NextToken":"abc"}`},
	{name: "empty body is {}", model: cloudTrail, op: "DescribeTrails", body: ``},
	{name: "whitespace body is {}", model: cloudTrail, op: "DescribeTrails", body: " \n"},
	{name: "lower-case members", model: cloudTrail, op: "DescribeTrails", body: `{"trailNameList":["t1"],"includeShadowTrails":false}`},
	{name: "create trail valid", model: cloudTrail, op: "CreateTrail", body: `{"Name":"t1","S3BucketName":"b"}`},
	{name: "unknown members ignored", model: cloudTrail, op: "LookupEvents", body: `{"Bogus":{"x":[1]},"MaxResults":5}`},
	{name: "null is absent", model: cloudTrail, op: "LookupEvents", body: `{"MaxResults":null}`},
	{name: "max results 51", model: cloudTrail, op: "LookupEvents", body: `{"MaxResults":51}`,
		code: invalidParam, field: "MaxResults",
		msg: "1 validation error detected: Value '51' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 50"},
	{name: "max results 0", model: cloudTrail, op: "LookupEvents", body: `{"MaxResults":0}`,
		code: invalidParam, field: "MaxResults",
		msg: "1 validation error detected: Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1"},
	{name: "create trail missing bucket", model: cloudTrail, op: "CreateTrail", body: `{"Name":"t1"}`,
		code: invalidParam, field: "S3BucketName",
		msg: "1 validation error detected: Value null at 's3BucketName' failed to satisfy constraint: Member must not be null"},
	{name: "create trail empty", model: cloudTrail, op: "CreateTrail", body: `{}`,
		code: invalidParam, field: "Name",
		msg: "2 validation errors detected: Value null at 'name' failed to satisfy constraint: Member must not be null; " +
			"Value null at 's3BucketName' failed to satisfy constraint: Member must not be null"},
	{name: "attribute key not in enum", model: cloudTrail, op: "LookupEvents",
		body: `{"LookupAttributes":[{"AttributeKey":"Colour","AttributeValue":"red"}]}`,
		code: invalidParam, field: "LookupAttributes[0].AttributeKey",
		msg: "1 validation error detected: Value 'Colour' at 'lookupAttributes.1.member.attributeKey' failed to satisfy constraint: " +
			"Member must satisfy enum value set: [EventId, EventName, ReadOnly, Username, ResourceType, ResourceName, EventSource, AccessKeyId]"},
	{name: "nested required member", model: cloudTrail, op: "LookupEvents",
		body: `{"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"x"},{"AttributeKey":"EventName"}]}`,
		code: invalidParam, field: "LookupAttributes[1].AttributeValue",
		msg: "1 validation error detected: Value null at 'lookupAttributes.2.member.attributeValue' failed to satisfy constraint: Member must not be null"},
	{name: "nested empty value", model: cloudTrail, op: "LookupEvents",
		body: `{"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":""}]}`,
		code: invalidParam, field: "LookupAttributes[0].AttributeValue",
		msg: "1 validation error detected: Value '' at 'lookupAttributes.1.member.attributeValue' failed to satisfy constraint: Member must have length greater than or equal to 1"},
	{name: "number as string", model: cloudTrail, op: "LookupEvents", body: `{"MaxResults":"5"}`,
		code: serialization, field: "MaxResults", msg: "STRING_VALUE can not be converted to an Integer (member 'maxResults')."},
	{name: "object where list", model: cloudTrail, op: "LookupEvents", body: `{"LookupAttributes":{}}`,
		code: serialization, field: "LookupAttributes", msg: "Start of structure or map found where not expected (member 'lookupAttributes')."},
	{name: "string where boolean", model: cloudTrail, op: "DescribeTrails", body: `{"includeShadowTrails":"yes"}`,
		code: serialization, field: "includeShadowTrails"},
	{name: "number where string in list", model: cloudTrail, op: "DescribeTrails", body: `{"trailNameList":["a",7]}`,
		code: serialization, field: "trailNameList[1]", msg: "NUMBER_VALUE can not be converted to a String (member 'trailNameList.2.member')."},
	{name: "timestamp as string", model: cloudTrail, op: "LookupEvents", body: `{"StartTime":"2024-01-01T00:00:00Z"}`,
		code: serialization, field: "StartTime", msg: "STRING_VALUE can not be converted to a Timestamp (member 'startTime')."},
	{name: "timestamp as fractional number", model: cloudTrail, op: "LookupEvents", body: `{"StartTime":1.7e9}`},
	{name: "malformed json", model: cloudTrail, op: "LookupEvents", body: `{"MaxResults":}`, code: serialization},
	{name: "truncated json", model: cloudTrail, op: "LookupEvents", body: `{"MaxResults":5`, code: serialization},
	{name: "trailing data", model: cloudTrail, op: "LookupEvents", body: `{} {}`, code: serialization},
	{name: "body is a list", model: cloudTrail, op: "LookupEvents", body: `[]`, code: serialization,
		msg: "Start of list found where not expected."},
	{name: "body is null", model: cloudTrail, op: "LookupEvents", body: `null`, code: serialization},
	{name: "unknown operation", model: cloudTrail, op: "PutLogEvents", body: `{}`, code: "UnknownOperationException"},

	// CloudWatch Logs
	{name: "logs valid", model: logs, op: "PutLogEvents",
		body: `{"logGroupName":"g","logStreamName":"s","logEvents":[{"timestamp":1700000000000,"message":"hi"}]}`},
	{name: "logs missing events", model: logs, op: "PutLogEvents", body: `{"logGroupName":"g","logStreamName":"s"}`,
		code: invalidParam, field: "logEvents"},
	{name: "logs map key", model: logs, op: "TagLogGroup", body: `{"logGroupName":"g","tags":{"":"v"}}`,
		code: invalidParam, field: "tags",
		msg: "1 validation error detected: Value '{=v}' at 'tags' failed to satisfy constraint: Map keys must satisfy constraint: " +
			`[Member must have length less than or equal to 128, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: ^([\p{L}\p{Z}\p{N}_.:/=+\-@]+)$]`},

	// CloudTrail Data (rest-json): query-string members are not in the body.
	{name: "data valid without query members", model: cloudTrailData, op: "PutAuditEvents",
		body: `{"auditEvents":[{"id":"e-1","eventData":"{}"}]}`},
	{name: "data empty list", model: cloudTrailData, op: "PutAuditEvents", body: `{"auditEvents":[]}`,
		code: invalidParam, field: "auditEvents",
		msg: "1 validation error detected: Value '[]' at 'auditEvents' failed to satisfy constraint: Member must have length greater than or equal to 1"},
	{name: "data id pattern", model: cloudTrailData, op: "PutAuditEvents", body: `{"auditEvents":[{"id":"e 1","eventData":"{}"}]}`,
		code: invalidParam, field: "auditEvents[0].id",
		msg: "1 validation error detected: Value 'e 1' at 'auditEvents.1.member.id' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[-_A-Za-z0-9]+$"},

	// Every type and constraint.
	{name: "types valid", model: types, op: "Op",
		body: `{"Req":"abc","Int":50,"Long":9223372036854775807,"Dbl":0.5,"Bool":true,"Blob":"AAEC","Time":1.5,` +
			`"Names":["a","b"],"Tags":{"k":"v"},"Nested":{"ANY KEY":["x"]},"renamed":1}`},
	{name: "two violations of one value", model: types, op: "Op", body: `{"Req":"TOOLONG"}`,
		code: invalidParam, field: "Req",
		msg: "2 validation errors detected: Value 'TOOLONG' at 'req' failed to satisfy constraint: Member must have length less than or equal to 5; " +
			"Value 'TOOLONG' at 'req' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-z]*"},
	{name: "fraction for integer", model: types, op: "Op", body: `{"Req":"a","Int":1.5}`,
		code: serialization, field: "Int", msg: "NUMBER_VALUE 1.5 can not be converted to an Integer (member 'int')."},
	{name: "integer out of range", model: types, op: "Op", body: `{"Req":"a","Int":2147483648}`, code: serialization, field: "Int"},
	{name: "long in exponent form", model: types, op: "Op", body: `{"Req":"a","Long":1e3}`, code: serialization, field: "Long"},
	{name: "double below min", model: types, op: "Op", body: `{"Req":"a","Dbl":0.25}`, code: invalidParam, field: "Dbl",
		msg: "1 validation error detected: Value '0.25' at 'dbl' failed to satisfy constraint: Member must have value greater than or equal to 0.5"},
	{name: "double out of range", model: types, op: "Op", body: `{"Req":"a","Dbl":1e999}`, code: serialization, field: "Dbl"},
	{name: "string for boolean", model: types, op: "Op", body: `{"Req":"a","Bool":"true"}`, code: serialization, field: "Bool",
		msg: "STRING_VALUE can not be converted to a Boolean (member 'bool')."},
	{name: "boolean for string", model: types, op: "Op", body: `{"Req":false}`, code: serialization, field: "Req",
		msg: "FALSE_VALUE can not be converted to a String (member 'req')."},
	{name: "list for string", model: types, op: "Op", body: `{"Req":["a"]}`, code: serialization, field: "Req"},
	{name: "blob not base64", model: types, op: "Op", body: `{"Req":"a","Blob":"not base64!"}`, code: serialization, field: "Blob"},
	{name: "blob too long", model: types, op: "Op", body: `{"Req":"a","Blob":"AAECAw=="}`, code: invalidParam, field: "Blob"},
	{name: "list too long", model: types, op: "Op", body: `{"Req":"a","Names":["a","b","c"]}`, code: invalidParam, field: "Names",
		msg: "1 validation error detected: Value '[a, b, c]' at 'names' failed to satisfy constraint: Member must have length less than or equal to 2"},
	{name: "list element", model: types, op: "Op", body: `{"Req":"a","Names":["a","TOOLONG"]}`, code: invalidParam, field: "Names[1]"},
	{name: "null list element", model: types, op: "Op", body: `{"Req":"a","Names":["a",null]}`, code: invalidParam, field: "Names[1]",
		msg: "1 validation error detected: Value null at 'names.2.member' failed to satisfy constraint: Member must not be null"},
	{name: "map value", model: types, op: "Op", body: `{"Req":"a","Tags":{"k":"V"}}`, code: invalidParam, field: "Tags",
		msg: "1 validation error detected: Value '{k=V}' at 'tags' failed to satisfy constraint: Map value must satisfy constraint: " +
			"[Member must have length less than or equal to 5, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [a-z]*]"},
	{name: "map too big", model: types, op: "Op", body: `{"Req":"a","Tags":{"a":"a","b":"b","c":"c"}}`, code: invalidParam, field: "Tags"},
	{name: "map of lists", model: types, op: "Op", body: `{"Req":"a","Nested":{"k":["TOOLONG"]}}`, code: invalidParam, field: "Nested[k][0]",
		msg: "2 validation errors detected: Value 'TOOLONG' at 'nested.k.1.member' failed to satisfy constraint: Member must have length less than or equal to 5; " +
			"Value 'TOOLONG' at 'nested.k.1.member' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-z]*"},
	{name: "location name is the JSON key", model: types, op: "Op", body: `{"Req":"a","Renamed":"x","renamed":"x"}`,
		code: serialization, field: "renamed"},
	{name: "operation without input", model: types, op: "NoInput", body: `{"anything":1}`},
	{name: "operation without input still needs an object", model: types, op: "NoInput", body: `1`, code: serialization},
}

func TestValidate(t *testing.T) {
	models := testModels(t)
	for _, tt := range validateCases {
		t.Run(tt.name, func(t *testing.T) {
			err := models[tt.model].Validate(tt.op, []byte(tt.body))
			if tt.code == "" {
				if err != nil {
					t.Fatalf("Validate(%s, %s) = %v, want nil", tt.op, tt.body, err)
				}
				return
			}
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("Validate(%s, %s) = %v, want *Error %s", tt.op, tt.body, err, tt.code)
			}
			if ae.Code != tt.code || ae.Field != tt.field || ae.Status != 400 {
				t.Errorf("got code %s field %q status %d, want %s %q 400 (%s)", ae.Code, ae.Field, ae.Status, tt.code, tt.field, ae.Message)
			}
			if tt.msg != "" && ae.Message != tt.msg {
				t.Errorf("message:\n got %s\nwant %s", ae.Message, tt.msg)
			}
		})
	}
}

func FuzzValidate(f *testing.F) {
	for _, tt := range validateCases {
		f.Add(uint8(tt.model), tt.op, []byte(tt.body))
	}
	models := testModels(f)
	f.Fuzz(func(t *testing.T, which uint8, op string, body []byte) {
		m := models[int(which)%len(models)]
		err := m.Validate(op, body)
		if err == nil {
			// What was accepted is accepted again after a decode/encode round trip.
			doc, err := decodeBody(body)
			if err != nil {
				t.Fatalf("accepted body does not decode: %v", err)
			}
			again, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Validate(op, again); err != nil {
				t.Fatalf("round trip of accepted %q as %s rejected: %v", body, again, err)
			}
			return
		}
		var ae *Error
		if !errors.As(err, &ae) {
			t.Fatalf("non-AWS error %v", err)
		}
		switch ae.Code {
		case serialization, "UnknownOperationException":
		case invalidParam:
			if ae.Field == "" {
				t.Fatalf("InvalidParameterException without Field: %v", ae)
			}
		default:
			t.Fatalf("unexpected code %s", ae.Code)
		}
		if ae.Status != 400 || ae.Message == "" {
			t.Fatalf("bad error %+v", ae)
		}
	})
}
