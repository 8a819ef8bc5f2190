package sigma

import (
	"strings"
	"testing"
	"time"
)

// record is a CloudTrail record with a member of every JSON type, nested
// objects, arrays of objects and of strings, and text for the modifiers.
const record = `{"eventVersion":"1.08","eventID":"e1","eventTime":"2024-05-01T10:20:30Z",` +
	`"eventName":"CreateUser","eventSource":"iam.amazonaws.com","awsRegion":"us-east-1",` +
	`"sourceIPAddress":"192.0.2.10","userAgent":"S3 Browser 9.1 https://s3browser.com",` +
	`"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice","userName":"alice",` +
	`"sessionContext":{"sessionIssuer":{"type":"Role"}}},` +
	`"requestParameters":{"userName":"alice","enable":false,"count":42,"ratio":0.5,"strNum":"17",` +
	`"tags":[{"key":"env","value":"prod"},{"key":"team","value":"sec"}],` +
	`"layers":["arn:aws:lambda:us-east-1:1:layer:x:1","arn:aws:lambda:us-east-1:1:layer:y:2"],` +
	`"policyDocument":"{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\"}",` +
	`"path":"C:\\Temp\\a*b?c","cmd":"net user /add bob","cmd2":"net user -add bob",` +
	`"blob":"eHhjbWQgL2Mgd2hvYW1pIC9hbGw=","wideBlob":"dwBoAG8AYQBtAGkA","empty":"","dotted.key":"yes",` +
	`"multi":"line one\nline two","ipv6":"2001:db8::1"},` +
	`"responseElements":null,"readOnly":false,"recipientAccountId":"111122223333",` +
	`"resources":[{"ARN":"arn:aws:iam::111122223333:user/alice","type":"AWS::IAM::User"},{"ARN":"arn:aws:s3:::b"}]}`

type matchTest struct {
	name string
	det  string // the detection section, without the "detection:" line
	rec  string // "" for record
	want bool
}

var matchTests = []matchTest{
	// Maps are AND, lists of values OR, lists of maps OR.
	{"map and", "sel:\n  eventName: CreateUser\n  eventSource: iam.amazonaws.com\ncondition: sel", "", true},
	{"map and one fails", "sel:\n  eventName: CreateUser\n  eventSource: s3.amazonaws.com\ncondition: sel", "", false},
	{"value list or", "sel:\n  eventName: [DeleteUser, CreateUser]\ncondition: sel", "", true},
	{"value list none", "sel:\n  eventName: [DeleteUser, GetUser]\ncondition: sel", "", false},
	{"list of maps or", "sel:\n  - eventName: DeleteUser\n  - eventSource: iam.amazonaws.com\ncondition: sel", "", true},
	{"list of maps none", "sel:\n  - eventName: DeleteUser\n  - eventSource: s3.amazonaws.com\ncondition: sel", "", false},
	{"case-insensitive", "sel:\n  eventName: createuser\ncondition: sel", "", true},
	{"cased", "sel:\n  eventName|cased: createuser\ncondition: sel", "", false},
	{"cased exact", "sel:\n  eventName|cased: CreateUser\ncondition: sel", "", true},
	{"unicode case", "sel:\n  a: ÉTÉ\ncondition: sel", `{"a":"été"}`, true},

	// Nested fields, arrays, JSON text.
	{"nested", "sel:\n  userIdentity.sessionContext.sessionIssuer.type: Role\ncondition: sel", "", true},
	{"array of objects any element", "sel:\n  requestParameters.tags.value: sec\ncondition: sel", "", true},
	{"array of objects no element", "sel:\n  requestParameters.tags.value: dev\ncondition: sel", "", false},
	{"array of strings element", "sel:\n  requestParameters.layers|endswith: 'layer:y:2'\ncondition: sel", "", true},
	{"array as JSON text", "sel:\n  requestParameters.layers|contains: '\",\"'\ncondition: sel", "", true},
	{"object as JSON text", "sel:\n  requestParameters|contains: '\"userName\":\"alice\"'\ncondition: sel", "", true},
	{"object contains star", "sel:\n  requestParameters.layers|contains: '*'\ncondition: sel", "", true},
	{"absent contains star", "sel:\n  requestParameters.nothing|contains: '*'\ncondition: sel", "", false},
	{"string holding JSON", "sel:\n  requestParameters.policyDocument|contains|all: ['\"Allow\"', 's3:GetObject']\ncondition: sel", "", true},
	{"dotted key", "sel:\n  requestParameters.dotted.key: 'yes'\ncondition: sel", "", true},
	{"resources array", "sel:\n  resources.type: 'AWS::IAM::User'\ncondition: sel", "", true},

	// Types.
	{"bool as text", "sel:\n  requestParameters.enable: 'false'\ncondition: sel", "", true},
	{"bool yaml", "sel:\n  requestParameters.enable: false\ncondition: sel", "", true},
	{"bool other", "sel:\n  requestParameters.enable: 'true'\ncondition: sel", "", false},
	{"number as text", "sel:\n  requestParameters.count: 42\ncondition: sel", "", true},
	{"number as text wildcard", "sel:\n  requestParameters.count: '4*'\ncondition: sel", "", true},
	{"number float", "sel:\n  requestParameters.ratio: 0.5\ncondition: sel", "", true},
	{"empty string", "sel:\n  requestParameters.empty: ''\ncondition: sel", "", true},
	{"empty string not absent", "sel:\n  requestParameters.nothing: ''\ncondition: sel", "", false},

	// null.
	{"null absent", "sel:\n  errorCode: null\ncondition: sel", "", true},
	{"null is null", "sel:\n  responseElements: null\ncondition: sel", "", true},
	{"null present", "sel:\n  eventName: null\ncondition: sel", "", false},
	{"null in list", "sel:\n  errorCode: [AccessDenied, null]\ncondition: sel", "", true},
	{"string null is not null", "sel:\n  responseElements: 'null'\ncondition: sel", "", false},
	{"not null", "sel:\n  errorCode: null\ncondition: not sel", "", false},

	// Wildcards and escapes.
	{"star", "sel:\n  eventName: Create*\ncondition: sel", "", true},
	{"star middle", "sel:\n  userAgent: 'S3*9.1*com'\ncondition: sel", "", true},
	{"star middle order", "sel:\n  userAgent: 'S3*com*9.1'\ncondition: sel", "", false},
	{"question", "sel:\n  eventName: Creat?User\ncondition: sel", "", true},
	{"question needs one", "sel:\n  eventName: CreateUse?r\ncondition: sel", "", false},
	{"question unicode", "sel:\n  a: 'caf?'\ncondition: sel", `{"a":"café"}`, true},
	{"escaped star literal", `sel:
  requestParameters.path: 'C:\Temp\a\*b\?c'
condition: sel`, "", true},
	{"escaped star is not wildcard", `sel:
  requestParameters.path: 'C:\Temp\a\*bXc'
condition: sel`, "", false},
	{"escaped backslash", `sel:
  requestParameters.path|startswith: 'C:\\Temp\\'
condition: sel`, "", true},
	{"escaped backslash then wildcard", `sel:
  a: 'x\\*'
condition: sel`, `{"a":"x\\yz"}`, true},
	{"escaped star not matching other", `sel:
  a: 'x\*'
condition: sel`, `{"a":"xy"}`, false},

	{"fold partial overlap", "sel:\n  a|contains: aab\ncondition: sel", `{"a":"AAAB"}`, true},
	{"fold non-letter second try", "sel:\n  a|contains: '-z'\ncondition: sel", `{"a":"x-y x-Z"}`, true},
	{"fold non-letter at end", "sel:\n  a|contains: 'y-'\ncondition: sel", `{"a":"x-Y-"}`, true},
	{"fold non-letter absent", "sel:\n  a|contains: 'y-q'\ncondition: sel", `{"a":"x-Y-"}`, false},
	{"fold non-ascii text ascii pattern", "sel:\n  a|endswith: 'e'\ncondition: sel", `{"a":"été"}`, false},

	{"fold letters first at end", "sel:\n  a|contains: 'ab'\ncondition: sel", `{"a":"xxxaAB"}`, true},
	{"fold letters upper then lower", "sel:\n  a|contains: 'abc'\ncondition: sel", `{"a":"AbxaBC"}`, true},
	{"fold letters too short", "sel:\n  a|contains: 'abc'\ncondition: sel", `{"a":"AB"}`, false},
	{"re i non-ascii literal", "sel:\n  a|re|i: 'ÉTÉ'\ncondition: sel", `{"a":"un été"}`, true},

	// Keywords.
	{"keyword", "keywords:\n  - s3browser\ncondition: keywords", "", true},
	{"keyword list or", "keywords:\n  - nothing-here\n  - ALICE\ncondition: keywords", "", true},
	{"keyword none", "keywords:\n  - nothing-here\ncondition: keywords", "", false},
	{"keyword scalar", "keywords: 'user/alice'\ncondition: keywords", "", true},
	{"keyword wildcard", "keywords:\n  - 'S3 Browser*s3browser'\ncondition: keywords", "", true},
	{"keyword map all", "keywords:\n  '|all': [alice, s3browser]\ncondition: keywords", "", true},
	{"keyword map all one missing", "keywords:\n  '|all': [alice, nobody]\ncondition: keywords", "", false},
	{"keyword map re", "keywords:\n  '|re': '\"userName\":\"al[a-z]+\"'\ncondition: keywords", "", true},
	{"keyword with fields", "keywords:\n  - alice\nsel:\n  eventName: CreateUser\ncondition: keywords and sel", "", true},

	// Modifiers.
	{"contains", "sel:\n  userAgent|contains: browser\ncondition: sel", "", true},
	{"contains miss", "sel:\n  userAgent|contains: chrome\ncondition: sel", "", false},
	{"startswith", "sel:\n  userAgent|startswith: s3 b\ncondition: sel", "", true},
	{"startswith miss", "sel:\n  userAgent|startswith: browser\ncondition: sel", "", false},
	{"endswith", "sel:\n  userAgent|endswith: .COM\ncondition: sel", "", true},
	{"endswith miss", "sel:\n  userAgent|endswith: s3\ncondition: sel", "", false},
	{"contains all", "sel:\n  userAgent|contains|all: [S3, Browser, '9.1']\ncondition: sel", "", true},
	{"contains all one missing", "sel:\n  userAgent|contains|all: [S3, Chrome]\ncondition: sel", "", false},
	{"all single", "sel:\n  userAgent|contains|all: Browser\ncondition: sel", "", true},
	{"contains wildcard inside", "sel:\n  userAgent|contains: 'Browser*https'\ncondition: sel", "", true},
	{"re", "sel:\n  userAgent|re: '^S3 Browser [0-9.]+ '\ncondition: sel", "", true},
	{"re case-sensitive", "sel:\n  userAgent|re: '^s3 browser'\ncondition: sel", "", false},
	{"re i", "sel:\n  userAgent|re|i: '^s3 browser'\ncondition: sel", "", true},
	{"re partial", "sel:\n  userAgent|re: 'Browser'\ncondition: sel", "", true},
	{"re m", "sel:\n  requestParameters.multi|re|m: '^line two$'\ncondition: sel", "", true},
	{"re without m", "sel:\n  requestParameters.multi|re: '^line two$'\ncondition: sel", "", false},
	{"re s", "sel:\n  requestParameters.multi|re|s: 'one.line'\ncondition: sel", "", true},
	{"re without s", "sel:\n  requestParameters.multi|re: 'one.line'\ncondition: sel", "", false},
	{"re i alternation", "sel:\n  userAgent|re|i: '(KALI|browser)'\ncondition: sel", "", true},
	{"re required literal absent", "sel:\n  userAgent|re: 'x(ab|cd)+y'\ncondition: sel", "", false},
	{"re required literal present", "sel:\n  a|re: 'x(ab|cd)+y'\ncondition: sel", `{"a":"--xcdaby--"}`, true},
	{"re i folds beyond lowercase", "sel:\n  a|re|i: 'SS'\ncondition: sel", `{"a":"ſs"}`, true},
	{"re list", "sel:\n  eventName|re: ['^Delete', '^Create']\ncondition: sel", "", true},
	{"cidr v4", "sel:\n  sourceIPAddress|cidr: 192.0.2.0/24\ncondition: sel", "", true},
	{"cidr v4 miss", "sel:\n  sourceIPAddress|cidr: 198.51.100.0/24\ncondition: sel", "", false},
	{"cidr v6", "sel:\n  requestParameters.ipv6|cidr: '2001:db8::/32'\ncondition: sel", "", true},
	{"cidr v6 miss", "sel:\n  requestParameters.ipv6|cidr: '2001:db9::/32'\ncondition: sel", "", false},
	{"cidr v4 list", "sel:\n  sourceIPAddress|cidr: [10.0.0.0/8, 192.0.2.8/29]\ncondition: sel", "", true},
	{"cidr not an address", "sel:\n  eventName|cidr: 10.0.0.0/8\ncondition: sel", "", false},
	{"cidr mapped v4 in v6", "sel:\n  a|cidr: 192.0.2.0/24\ncondition: sel", `{"a":"::ffff:192.0.2.1"}`, true},
	{"base64", "sel:\n  requestParameters.blob: eHhjbWQgL2Mgd2hvYW1pIC9hbGw=\ncondition: sel", "", true},
	{"base64 modifier", "sel:\n  requestParameters.blob|base64: 'xxcmd /c whoami /all'\ncondition: sel", "", true},
	{"base64 modifier is cased", "sel:\n  requestParameters.blob|base64: 'XXCMD /c whoami /all'\ncondition: sel", "", false},
	{"base64offset contains 0", "sel:\n  requestParameters.blob|base64offset|contains: 'xxcmd'\ncondition: sel", "", true},
	{"base64offset contains 1", "sel:\n  requestParameters.blob|base64offset|contains: 'xcmd /c'\ncondition: sel", "", true},
	{"base64offset contains 2", "sel:\n  requestParameters.blob|base64offset|contains: 'cmd /c whoami'\ncondition: sel", "", true},
	{"base64offset miss", "sel:\n  requestParameters.blob|base64offset|contains: 'powershell'\ncondition: sel", "", false},
	{"wide base64", "sel:\n  requestParameters.wideBlob|wide|base64: whoami\ncondition: sel", "", true},
	{"utf16le base64", "sel:\n  requestParameters.wideBlob|utf16le|base64: whoami\ncondition: sel", "", true},
	{"utf16be base64 differs", "sel:\n  requestParameters.wideBlob|utf16be|base64: whoami\ncondition: sel", "", false},
	{"windash slash", "sel:\n  requestParameters.cmd|windash|contains: ' -add '\ncondition: sel", "", true},
	{"windash dash", "sel:\n  requestParameters.cmd2|windash|contains: ' /add '\ncondition: sel", "", true},
	{"windash miss", "sel:\n  requestParameters.cmd|windash|contains: ' -del '\ncondition: sel", "", false},
	{"windash en dash", "sel:\n  a|windash: '-enc x'\ncondition: sel", `{"a":"\u2013enc x"}`, true},
	{"windash each independently", "sel:\n  a|windash|contains: '-a -b'\ncondition: sel", `{"a":"x /a \u2014b"}`, true},
	{"windash not inside a word", "sel:\n  a|windash: 'x-y'\ncondition: sel", `{"a":"x/y"}`, false},
	{"windash cased pattern", "sel:\n  a|windash|cased: '-Enc'\ncondition: sel", `{"a":"/enc"}`, false},
	{"neq", "sel:\n  eventName|neq: DeleteUser\ncondition: sel", "", true},
	{"neq equal", "sel:\n  eventName|neq: createuser\ncondition: sel", "", false},
	{"neq list", "sel:\n  eventName|neq: [DeleteUser, CreateUser]\ncondition: sel", "", false},
	{"neq absent", "sel:\n  errorCode|neq: AccessDenied\ncondition: sel", "", false},
	{"neq number", "sel:\n  requestParameters.count|neq: 42.0\ncondition: sel", "", false},
	{"neq number differs", "sel:\n  requestParameters.count|neq: 41\ncondition: sel", "", true},
	{"neq contains", "sel:\n  userAgent|neq|contains: chrome\ncondition: sel", "", true},
	{"neq fieldref", "sel:\n  requestParameters.userName|neq|fieldref: eventName\ncondition: sel", "", true},
	{"neq fieldref equal", "sel:\n  requestParameters.userName|neq|fieldref: userIdentity.userName\ncondition: sel", "", false},
	{"exists true", "sel:\n  userIdentity.arn|exists: true\ncondition: sel", "", true},
	{"exists true absent", "sel:\n  errorCode|exists: true\ncondition: sel", "", false},
	{"exists false absent", "sel:\n  errorCode|exists: false\ncondition: sel", "", true},
	{"exists false present", "sel:\n  eventName|exists: false\ncondition: sel", "", false},
	{"gt", "sel:\n  requestParameters.count|gt: 41\ncondition: sel", "", true},
	{"gt equal", "sel:\n  requestParameters.count|gt: 42\ncondition: sel", "", false},
	{"gte", "sel:\n  requestParameters.count|gte: 42\ncondition: sel", "", true},
	{"lt", "sel:\n  requestParameters.count|lt: 42.5\ncondition: sel", "", true},
	{"lte", "sel:\n  requestParameters.ratio|lte: 0.5\ncondition: sel", "", true},
	{"lt miss", "sel:\n  requestParameters.ratio|lt: 0.5\ncondition: sel", "", false},
	{"gt numeric string", "sel:\n  requestParameters.strNum|gt: 9\ncondition: sel", "", true},
	{"gt not a number", "sel:\n  eventName|gt: 1\ncondition: sel", "", false},
	{"fieldref", "sel:\n  requestParameters.userName|fieldref: userIdentity.userName\ncondition: sel", "", true},
	{"fieldref differs", "sel:\n  requestParameters.userName|fieldref: eventName\ncondition: sel", "", false},
	{"fieldref contains", "sel:\n  userIdentity.arn|fieldref|contains: requestParameters.userName\ncondition: sel", "", true},
	{"fieldref endswith", "sel:\n  userIdentity.arn|fieldref|endswith: userIdentity.userName\ncondition: sel", "", true},
	{"fieldref startswith miss", "sel:\n  userIdentity.arn|fieldref|startswith: userIdentity.userName\ncondition: sel", "", false},
	{"fieldref absent", "sel:\n  eventName|fieldref: nothing\ncondition: sel", "", false},
	{"hour", "sel:\n  eventTime|hour: 10\ncondition: sel", "", true},
	{"minute miss", "sel:\n  eventTime|minute: 21\ncondition: sel", "", false},
	{"month", "sel:\n  eventTime|month: 5\ncondition: sel", "", true},

	// Conditions.
	{"and", "a:\n  eventName: CreateUser\nb:\n  eventSource: iam.amazonaws.com\ncondition: a and b", "", true},
	{"or", "a:\n  eventName: X\nb:\n  eventSource: iam.amazonaws.com\ncondition: a or b", "", true},
	{"not", "a:\n  eventName: X\ncondition: not a", "", true},
	{"and not", "a:\n  eventName: CreateUser\nf:\n  userIdentity.type: IAMUser\ncondition: a and not f", "", false},
	{"precedence and over or", "a:\n  eventName: X\nb:\n  eventName: Y\nc:\n  eventName: CreateUser\ncondition: a and b or c", "", true},
	{"precedence and over or 2", "a:\n  eventName: X\nb:\n  eventName: Y\nc:\n  eventName: CreateUser\ncondition: c or a and b", "", true},
	{"precedence not over and", "a:\n  eventName: X\nc:\n  eventName: CreateUser\ncondition: not a and c", "", true},
	{"parentheses", "a:\n  eventName: X\nb:\n  eventName: Y\nc:\n  eventName: CreateUser\ncondition: (a or c) and not b", "", true},
	{"parentheses change meaning", "a:\n  eventName: X\nb:\n  eventName: Y\nc:\n  eventName: CreateUser\ncondition: a and (b or c)", "", false},
	{"1 of pattern", "sel_a:\n  eventName: X\nsel_b:\n  eventName: CreateUser\ncondition: 1 of sel_*", "", true},
	{"1 of pattern none", "sel_a:\n  eventName: X\nsel_b:\n  eventName: Y\ncondition: 1 of sel_*", "", false},
	{"all of pattern", "sel_a:\n  eventName: CreateUser\nsel_b:\n  eventSource: iam.amazonaws.com\nother:\n  eventName: X\ncondition: all of sel_*", "", true},
	{"all of pattern one fails", "sel_a:\n  eventName: CreateUser\nsel_b:\n  eventSource: X\ncondition: all of sel_*", "", false},
	{"1 of them", "a:\n  eventName: X\nb:\n  eventName: CreateUser\ncondition: 1 of them", "", true},
	{"all of them", "a:\n  eventName: X\nb:\n  eventName: CreateUser\ncondition: all of them", "", false},
	{"all of them skips underscore", "a:\n  eventName: CreateUser\n_b:\n  eventName: X\ncondition: all of them", "", true},
	{"2 of", "a:\n  eventName: CreateUser\nb:\n  eventSource: iam.amazonaws.com\nc:\n  eventName: X\ncondition: 2 of them", "", true},
	{"not 1 of", "f1:\n  eventName: X\nf2:\n  eventName: Y\ncondition: not 1 of f*", "", true},
	{"condition list or", "a:\n  eventName: X\nb:\n  eventName: CreateUser\ncondition:\n  - a\n  - b", "", true},
	{"operators any case", "a:\n  eventName: X\nb:\n  eventName: CreateUser\ncondition: a OR NOT a AND b", "", true},

	// Fixed bugs.
	// A rule with an exact eventName and a pre-filter on it must still
	// compare case-insensitively (the index is lowercased on both sides).
	{"prefilter case", "sel:\n  eventName: CREATEUSER\ncondition: sel", "", true},
	// neq on eventName must not be taken as the names the rule needs.
	{"prefilter neq", "sel:\n  eventName|neq: DeleteUser\ncondition: sel", "", true},
	// Pre-filtering must not drop a rule whose condition negates the name.
	{"prefilter not", "sel:\n  eventName: DeleteUser\ncondition: not sel", "", true},
	// A record that is only an array member deep with nulls.
	// A path crossing an array: an element without the member is null there.
	{"null in one element", "sel:\n  a.b: null\ncondition: sel", `{"a":[{"b":"x"},{}]}`, true},
	{"null in no element", "sel:\n  a.b: null\ncondition: sel", `{"a":[{"b":"x"},{"b":"y"}]}`, false},
	{"exists in no element", "sel:\n  a.b|exists: true\ncondition: sel", `{"a":[{},{}]}`, false},
	{"exists in one element", "sel:\n  a.b|exists: true\ncondition: sel", `{"a":[{},{"b":1}]}`, true},
	{"null element", "sel:\n  a.b: x\ncondition: sel", `{"a":[null,{"b":"x"}]}`, true},
}

// ruleText wraps a detection section into a CloudTrail rule.
func ruleText(det string) string {
	return "title: test\nid: 00000000-0000-0000-0000-000000000001\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n" +
		indent(det, "  ") + "level: low\n"
}

func indent(s, by string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(by + l + "\n")
	}
	return b.String()
}

func TestMatch(t *testing.T) {
	for _, tt := range matchTests {
		t.Run(tt.name, func(t *testing.T) {
			rules, errs := ParseFile("test.yml", []byte(ruleText(tt.det)))
			if len(errs) > 0 {
				t.Fatalf("parse: %v", errs)
			}
			s, errs := NewSet(rules)
			if len(errs) > 0 {
				t.Fatalf("set: %v", errs)
			}
			rec := tt.rec
			if rec == "" {
				rec = record
			}
			ev, err := NewEvent([]byte(rec))
			if err != nil {
				t.Fatal(err)
			}
			got := len(s.Eval(ev, nil)) == 1
			if got != tt.want {
				t.Errorf("match = %v, want %v\n%s", got, tt.want, tt.det)
			}
			// The same answer without the pre-filter index.
			if got2 := rules[0].det.match(ev); got2 != tt.want {
				t.Errorf("unindexed match = %v, want %v", got2, tt.want)
			}
		})
	}
}

func TestEventValues(t *testing.T) {
	ev, err := NewEvent([]byte(record))
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID() != "e1" || !ev.Time().Equal(time.Date(2024, 5, 1, 10, 20, 30, 0, time.UTC)) {
		t.Errorf("ID %q Time %v", ev.ID(), ev.Time())
	}
	for _, tt := range []struct{ field, want string }{
		{"eventName", "CreateUser"},
		{"userIdentity.sessionContext.sessionIssuer.type", "Role"},
		{"requestParameters.tags.key", "env|team"},
		{"requestParameters.layers", `["arn:aws:lambda:us-east-1:1:layer:x:1","arn:aws:lambda:us-east-1:1:layer:y:2"]`},
		{"requestParameters.count", "42"},
		{"requestParameters.enable", "false"},
		{"responseElements", "null"},
		{"requestParameters.dotted.key", "yes"},
		{"userIdentity.nothing", ""},
		{"resources.type", "AWS::IAM::User"},
	} {
		if got := strings.Join(ev.Values(tt.field), "|"); got != tt.want {
			t.Errorf("Values(%s) = %q, want %q", tt.field, got, tt.want)
		}
	}
	for _, bad := range []string{``, `[]`, `{"a":}`, `{"a":1} x`, `{"eventTime":"yesterday"}`} {
		if _, err := NewEvent([]byte(bad)); err == nil {
			t.Errorf("NewEvent(%q) accepted", bad)
		}
	}
}
