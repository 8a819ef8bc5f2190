package filterpattern

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// CloudTrail records as CloudWatch Logs receives them, one JSON object per event.
var (
	lambdaInvoke   = mustRead("lambda_invoke.json")         // data event by an assumed role (seed 000)
	describeTrails = mustRead("describe_trails.json")       // IAM user alice in the console (seed 003)
	consoleLogin   = mustRead("console_login_failure.json") // failed console sign-in by bob
)

func mustRead(name string) string {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		panic(err)
	}
	return strings.TrimSpace(string(b))
}

// Small events for the type rules and for AWS's documented examples.
const (
	typed = `{"latency": 50, "status": "404", "ratio": 1e3, "neg": -2.5, "flag": true, "off": false, "nothing": null,
		"list": [1, "two", {"id": 3}], "nested": [[0, 1, 2], [4, 5, 6]], "cluster.name": "c", "dup": 1, "dup": 2,
		"esc": "say \"hi\" \u00e9\ud83d\ude00", "a\u0062": 1, "empty": "", "obj": {}}`
	compound = `{"user": {"id": 1, "email": "ana@example.com"},
		"users": [{"id": 2, "email": "ben@example.com"}, {"id": 3, "email": "cy@example.com"}],
		"actions": ["GET", "PUT", "DELETE"], "coordinates": [[0, 1, 2], [4, 5, 6], [7, 8, 9]]}`
	apache      = `127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534`
	apacheHTML  = `127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534`
	lineGet     = `INFO 09/25/2014 12:00:00 GET /service/resource/67 1200`
	linePost    = `INFO 09/25/2014 12:00:01 POST /service/resource/67/part/111 1310`
	lineWarning = `WARNING 09/25/2014 12:00:02 Invalid user request`
	lineError   = `ERROR 09/25/2014 12:00:02 Failed to process request`
)

type matchTest struct {
	name    string
	pattern string
	message string
	want    bool
}

var matchTests = []matchTest{
	{"match all", "", "anything", true},
	{"match all empty event", "  ", "", true},

	// Terms: case-sensitive substring search.
	{"term", "ERROR", "[ERROR 400] BAD REQUEST", true},
	{"term inside word", "ERROR", "Exiting with ERRORCODE: -1", true},
	{"term case", "ERROR", "rpc error", false},
	{"terms all", "ERROR ARGUMENTS", "[ERROR 419] MISSING ARGUMENTS", true},
	{"terms all missing one", "ERROR ARGUMENTS", "[ERROR 400] BAD REQUEST", false},
	{"optional any", "?ERROR ?ARGUMENTS", "[WARN] MISSING ARGUMENTS", true},
	{"optional none", "?ERROR ?ARGUMENTS", "[INFO] fine", false},
	{"optional ignored with required", "?ERROR ?ARGUMENTS REQUEST", "[INFO] REQUEST FAILED", true},
	{"optional ignored required missing", "?ERROR ?ARGUMENTS REQUEST", "[ERROR] MISSING ARGUMENTS", false},
	{"optional ignored with exclude", "?ERROR -WARN", "[INFO] fine", true},
	{"phrase", `"INTERNAL SERVER ERROR"`, "[ERROR 500] INTERNAL SERVER ERROR", true},
	{"phrase order", `"INTERNAL SERVER ERROR"`, "INTERNAL ERROR SERVER", false},
	{"optional phrase", `?"clean up" ?xyz`, "map clean up", true},
	{"optional phrase no", `?"clean up" ?xyz`, "map is cleaned up", false},
	{"optional term", `?"clean up" ?xyz`, "xyz will do", true},
	{"exclude", "ERROR -ARGUMENTS", "[ERROR 400] BAD REQUEST", true},
	{"exclude hit", "ERROR -ARGUMENTS", "[ERROR 419] MISSING ARGUMENTS", false},
	{"exclude only", "-DEBUG", "INFO x", true},
	{"exclude spaced (old AWS doc)", `"ERROR" - "Exiting"`, "Exiting with ERRORCODE: -1", false},
	{"blank phrase", `" "`, "nospace", true},
	{"blank phrase empty event", `" "`, "", true},
	{"term wildcard", "ERR*", "ERROR", true},
	{"term only stars", "*", "x", true},
	{"punctuation phrase", `"ERROR][grpc"`, "2025-03-28 [ERROR][grpc] failed", true},
	{"punctuation phrase no", `"ERROR][grpc"`, "[ERROR] [grpc]", false},
	{"escaped quote term", `"say \"hi\""`, `he said: say "hi"`, true},
	{"term in cloudtrail", "Invoke", lambdaInvoke, true},
	{"term not in cloudtrail", "ERROR", lambdaInvoke, false},
	{"terms cloudtrail exclude", `"lambda.amazonaws.com" -DescribeTrails`, lambdaInvoke, true},

	// Standalone regex.
	{"regex", "%AUTHORIZED%", "[ERROR 401] UNAUTHORIZED REQUEST", true},
	{"regex no", "%AUTHORIZED%", "[OK] fine", false},
	{"regex start anchor", "%^[hc]at%", "hat trick", true},
	{"regex start anchor no", "%^[hc]at%", "the cat", false},
	{"regex end anchor", "%[hc]at$%", "the cat", true},
	{"regex optional", "%colou?r%", "color", true},
	{"regex optional 2", "%colou?r%", "colour", true},
	{"regex repetition", "%a{3,5}%", "xaaay", true},
	{"regex repetition short", "%a{3,5}%", "aa", false},
	{"regex open min", "%xa{,2}y%", "xy", true},
	{"regex alternation", "%gra|ey%", "grey", true},
	{"regex alternation anchors", "%^starting|^initializing|^shutting down%", "shutting down now", true},
	{"regex alternation anchors no", "%^starting|^initializing|^shutting down%", "skipping initializing", false},
	{"regex unescaped dot", "%10.10.0.1%", "10010,051", true},
	{"regex escaped dot", `%10\.10\.0\.1%`, "10010,051", false},
	{"regex ip in record", `%\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}%`, lambdaInvoke, true},
	{"regex hex", `%\x3A%`, "a:b", true},
	{"regex word class", `%^\w+$%`, "abc_1", true},
	{"regex non-word", `%\W%`, "abc_1", false},
	{"regex case", "%invoke%", lambdaInvoke, false},

	// JSON on CloudTrail records.
	{"user name", `{ $.userIdentity.userName = "alice" }`, describeTrails, true},
	{"user name unquoted", `{ $.userIdentity.userName = alice }`, describeTrails, true},
	{"user name other", `{ $.userIdentity.userName = "alice" }`, consoleLogin, false},
	{"user name absent", `{ $.userIdentity.userName = "alice" }`, lambdaInvoke, false},
	{"and", `{ $.eventSource = lambda.amazonaws.com && $.eventName = Invoke }`, lambdaInvoke, true},
	{"prefix wildcard", `{ $.eventName = Inv* }`, lambdaInvoke, true},
	{"suffix wildcard", `{ $.eventName = *voke }`, lambdaInvoke, true},
	{"both wildcards", `{ $.eventName = *nvo* }`, lambdaInvoke, true},
	{"inner star is literal", `{ $.eventName = I*e }`, lambdaInvoke, false},
	{"ne wildcard", `{ $.sourceIPAddress != 123.123.* }`, lambdaInvoke, true},
	{"ne wildcard hit", `{ $.sourceIPAddress != 1.2.* }`, lambdaInvoke, false},
	{"array element", `{ $.resources[0].type = "AWS::Lambda::Function" }`, lambdaInvoke, true},
	{"array out of range", `{ $.resources[1].type = * }`, lambdaInvoke, false},
	{"array wildcard regex", `{ $.resources[*].ARN = %vpc-lambda-1$% }`, lambdaInvoke, true},
	{"root wildcard regex", `{ $.* = %^1\.2\.3\.4$% }`, lambdaInvoke, true},
	{"value with dollar", `{ $.additionalEventData.functionVersion = "*:$LATEST" }`, lambdaInvoke, true},
	{"is null", `{ $.responseElements IS NULL }`, lambdaInvoke, true},
	{"is null object", `{ $.responseElements IS NULL }`, consoleLogin, false},
	{"is false", `{ $.readOnly IS FALSE }`, lambdaInvoke, true},
	{"is true no", `{ $.readOnly IS TRUE }`, lambdaInvoke, false},
	{"is true", `{ $.managementEvent IS TRUE }`, consoleLogin, true},
	{"not exists", `{ $.errorCode NOT EXISTS }`, lambdaInvoke, true},
	{"not exists present", `{ $.errorMessage NOT EXISTS }`, consoleLogin, false},
	{"not exists null is present", `{ $.responseElements NOT EXISTS }`, lambdaInvoke, false},
	{"not exists below string", `{ $.requestParameters.functionName.foo NOT EXISTS }`, lambdaInvoke, true},
	{"invokedBy exists", `{ $.userIdentity.invokedBy NOT EXISTS }`, describeTrails, false},
	{"cis console login failures", `{ ($.eventName = ConsoleLogin) && ($.errorMessage = "Failed authentication") }`, consoleLogin, true},
	{"cis console login without mfa", `{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") }`, consoleLogin, true},
	{"cis root usage", `{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }`, consoleLogin, false},
	{"cis unauthorized", `{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") }`, lambdaInvoke, false},
	{"cis kms", `{ ($.eventSource = kms.amazonaws.com) && (($.eventName=DisableKey)||($.eventName=ScheduleKeyDeletion)) }`, lambdaInvoke, false},
	{"account id is a string", `{ $.recipientAccountId = 123456789012 }`, lambdaInvoke, false},
	{"account id quoted", `{ $.recipientAccountId = "123456789012" }`, lambdaInvoke, true},
	{"account id wildcard", `{ $.recipientAccountId = 1234* }`, lambdaInvoke, true},
	{"version string vs number", `{ $.eventVersion > 1 }`, lambdaInvoke, false},
	{"object never compares", `{ $.userIdentity = * }`, lambdaInvoke, false},
	{"object never differs", `{ $.userIdentity != "x" }`, lambdaInvoke, false},
	{"array never compares", `{ $.resources = 1 }`, lambdaInvoke, false},
	{"array never differs", `{ $.resources != 1 }`, lambdaInvoke, false},
	{"nested tls", `{ $.tlsDetails.tlsVersion = "TLSv1.3" }`, consoleLogin, true},
	{"or", `{ $.eventName = Nope || $.eventName = DescribeTrails }`, describeTrails, true},

	// JSON type rules.
	{"number eq", `{ $.latency = 50 }`, typed, true},
	{"number eq decimal", `{ $.latency = 50.0 }`, typed, true},
	{"number eq exponent", `{ $.latency = 5e1 }`, typed, true},
	{"number ge", `{ $.latency >= 50 }`, typed, true},
	{"number gt", `{ $.latency > 50 }`, typed, false},
	{"number lt", `{ $.latency < 51 }`, typed, true},
	{"number le", `{ $.latency <= 49 }`, typed, false},
	{"number ne same", `{ $.latency != 50 }`, typed, false},
	{"number ne", `{ $.latency != 49 }`, typed, true},
	{"number plus sign", `{ $.latency > +10 }`, typed, true},
	{"number vs quoted", `{ $.latency = "50" }`, typed, false},
	{"number star", `{ $.latency = * }`, typed, true},
	{"number quoted star", `{ $.latency = "*" }`, typed, true},
	{"number prefix", `{ $.latency = 5* }`, typed, true},
	{"number regex", `{ $.latency = %^5% }`, typed, true},
	{"string vs number", `{ $.status = 404 }`, typed, false},
	{"string ne number", `{ $.status != 404 }`, typed, false},
	{"string quoted", `{ $.status = "404" }`, typed, true},
	{"string wildcard", `{ $.status = 4* }`, typed, true},
	{"string gt", `{ $.status > 400 }`, typed, false},
	{"exponent value", `{ $.ratio = 1000 }`, typed, true},
	{"exponent literal", `{ $.ratio = 1e3 }`, typed, true},
	{"negative", `{ $.neg < -2 }`, typed, true},
	{"bool is true", `{ $.flag IS TRUE }`, typed, true},
	{"bool is false", `{ $.off IS FALSE }`, typed, true},
	{"bool is false no", `{ $.flag IS FALSE }`, typed, false},
	{"bool vs string", `{ $.flag = true }`, typed, false},
	{"bool star", `{ $.flag = * }`, typed, false},
	{"null", `{ $.nothing IS NULL }`, typed, true},
	{"null star", `{ $.nothing = * }`, typed, false},
	{"null exists", `{ $.nothing NOT EXISTS }`, typed, false},
	{"missing is null", `{ $.missing IS NULL }`, typed, false},
	{"missing ne", `{ $.missing != "x" }`, typed, false},
	{"empty string star", `{ $.empty = * }`, typed, true},
	{"empty string eq", `{ $.empty = "" }`, typed, true},
	{"list index string", `{ $.list[1] = two }`, typed, true},
	{"list index object", `{ $.list[2].id = 3 }`, typed, true},
	{"list any number", `{ $.list[*] = 1 }`, typed, true},
	{"list any string", `{ $.list[*] = two }`, typed, true},
	{"list any ne", `{ $.list[*] != 1 }`, typed, false},
	{"list any ne other", `{ $.list[*] != 7 }`, typed, true},
	{"list not exists wildcard", `{ $.list[*].nope NOT EXISTS }`, typed, true},
	{"list exists wildcard", `{ $.list[*].id NOT EXISTS }`, typed, false},
	{"nested index", `{ $.nested[1][2] = 6 }`, typed, true},
	{"array is not a value", `{ $.nested[0] = 0 }`, typed, false},
	{"index on number", `{ $.latency[0] = 50 }`, typed, false},
	{"key on array", `{ $.list.id = 3 }`, typed, false},
	{"bracket key", `{ $.['cluster.name'] = c }`, typed, true},
	{"dotted path is not the key", `{ $.cluster.name = c }`, typed, false},
	{"duplicate key last wins", `{ $.dup = 2 }`, typed, true},
	{"duplicate key first loses", `{ $.dup = 1 }`, typed, false},
	{"escaped string", `{ $.esc = "say \"hi\" é😀" }`, typed, true},
	{"escaped key", `{ $.ab = 1 }`, typed, true},
	{"empty object", `{ $.obj NOT EXISTS }`, typed, false},
	{"wildcard over object", `{ $.* = c }`, typed, true},
	{"wildcard over scalar", `{ $.latency[*] = 50 }`, typed, false},

	// JSON compound conditions, as in AWS's examples.
	{"compound and", `{ ($.user.id = 1) && ($.users[0].email = "ben@example.com") }`, compound, true},
	{"compound or of and", `{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }`, compound, false},
	{"compound precedence", `{ $.user.email = "ana@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }`, compound, true},
	{"compound parens", `{ ($.user.email = "ana@example.com" || $.coordinates[0][1] = nonmatch) && $.actions[2] = nomatch }`, compound, false},
	{"compound coordinates", `{ $.coordinates[2][0] = 7 && $.actions[1] = PUT }`, compound, true},

	// JSON patterns on events that are not JSON objects.
	{"plain text", `{ $.a NOT EXISTS }`, "plain text", false},
	{"empty event", `{ $.a NOT EXISTS }`, "", false},
	{"array event", `{ $.a NOT EXISTS }`, `[1, 2]`, false},
	{"string event", `{ $.a NOT EXISTS }`, `"x"`, false},
	{"trailing garbage", `{ $.a = 1 }`, `{"a": 1} x`, false},
	{"two objects", `{ $.a = 1 }`, `{"a": 1}{"a": 1}`, false},
	{"prefixed object", `{ $.a = 1 }`, `INFO {"a": 1}`, false},
	{"surrounding space", `{ $.a = 1 }`, " \n{\"a\": 1}\t ", true},
	{"invalid json", `{ $.a = 1 }`, `{"a": 01}`, false},
	{"terms on json", `"\"eventName\":\"Invoke\""`, lambdaInvoke, true},

	// Space-delimited.
	{"fields", "[ip, user, username, timestamp, request, status_code, bytes]", apache, true},
	{"fields status", "[ip, user, username, timestamp, request, status_code = 200, bytes]", apache, true},
	{"fields status no", "[ip, user, username, timestamp, request, status_code = 404, bytes]", apache, false},
	{"fields wildcard and number", "[ip, user, username, timestamp, request, status_code = 2*, bytes > 1000]", apache, true},
	{"fields number no", "[ip, user, username, timestamp, request, status_code = 2*, bytes > 2000]", apache, false},
	{"fields ellipsis", "[..., status_code, bytes]", apache, true},
	{"fields ellipsis conditions", "[..., request = *gif*, status_code = 2*, bytes]", apache, true},
	{"fields ellipsis conditions no", "[..., request = *html*, status_code = 2*, bytes]", apache, false},
	{"fields trailing ellipsis", "[ip, user, ...]", apache, true},
	{"fields middle ellipsis", "[ip, ..., bytes = 1534]", apache, true},
	{"fields regex", `[ip=%127\.0\.0\.[1-9]%, ...]`, apache, true},
	{"fields or", "[ip, user, username, timestamp, request, status_code = 200 || status_code = 404, bytes]", apache, true},
	{"fields and", "[ip, user, username, timestamp, request, status_code != 200 && status_code != 404, bytes]", apache, false},
	{"fields bracketed", `[ip, user, username, timestamp = "10/Oct/2000:13:25:15 -0700", ...]`, apache, true},
	{"fields quoted", `[ip, user, username, timestamp, request = "GET /apache_pb.gif HTTP/1.0", ...]`, apache, true},
	{"fields dash", `[ip, user != "-", ...]`, apache, false},
	{"fields too many", "[a, b, c, d, e, f, g, h]", apache, false},
	{"fields last takes rest", "[ip, user, username]", apache, true},
	{"fields last takes rest cond", "[ip, user, username = frank]", apache, false},
	{"fields trailing comma (AWS doc example)", "[..., request=*.html*, status_code=4*,]", apacheHTML, true},
	{"words first", "[w1=ERROR, w2]", lineError, true},
	{"words first no", "[w1=ERROR, w2]", lineWarning, false},
	{"words one field", "[w1=ERROR]", lineError, false},
	{"words or", "[w1=ERROR || W1=WARNING, w2]", lineWarning, true},
	{"words or no", "[w1=ERROR || w1=WARNING, w2]", lineGet, false},
	{"words and", "[w1!=ERROR && w1!=WARNING, w2]", lineGet, true},
	{"words and no", "[w1!=ERROR && w1!=WARNING, w2]", lineError, false},
	{"url top level", "[logLevel, date, time, method, url=%/service/resource/[0-9]+$%, response_time]", lineGet, true},
	{"url top level no", "[logLevel, date, time, method, url=%/service/resource/[0-9]+$%, response_time]", linePost, false},
	{"url child", "[logLevel, date, time, method, url=%/service/resource/[0-9]+/part/[0-9]+$%, response_time]", linePost, true},
	{"number vs word", "[a, b > 5]", "x abc", false},
	{"number ne vs word", "[a, b != 5]", "x abc", false},
	{"number exponent", "[a = 1e3, b]", "1000 x", true},
	{"number decimal", "[a = 1000, b]", "1000.0 x", true},
	{"empty line", "[a]", "", false},
	{"empty line ellipsis", "[...]", "", true},
	{"empty field", "[a, , c = z]", "x y z", true},
	{"unterminated quote", `[x, y = "b c"]`, `a "b c`, true},
	{"tabs and runs of spaces", "[a, b = y, c]", "x \t  y   z", true},
	{"on json", `[..., last = *}]`, `{"a": 1, "b": 2}`, true},
}

func TestMatch(t *testing.T) {
	for _, tt := range matchTests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse(tt.pattern)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.pattern, err)
			}
			if got := p.Match(NewEvent([]byte(tt.message))); got != tt.want {
				t.Errorf("Parse(%q).Match(%.60q) = %v, want %v", tt.pattern, tt.message, got, tt.want)
			}
			// The canonical form must match the same way.
			q, err := Parse(p.String())
			if err != nil {
				t.Fatalf("Parse(%q): %v", p.String(), err)
			}
			if got := q.Match(NewEvent([]byte(tt.message))); got != tt.want {
				t.Errorf("canonical %q: Match = %v, want %v", p.String(), got, tt.want)
			}
		})
	}
}

func TestValue(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		message string
		ref     string
		want    string
		ok      bool
	}{
		{"json number", `{ $.latency = * }`, typed, "$.latency", "50", true},
		{"json string", `{ $.latency = * }`, typed, "$.status", "404", true},
		{"json exponent kept", `{ $.latency = * }`, typed, "$.ratio", "1e3", true},
		{"json bool", `{ $.latency = * }`, typed, "$.flag", "true", true},
		{"json null", `{ $.latency = * }`, typed, "$.nothing", "", false},
		{"json object", `{ $.latency = * }`, typed, "$.list[2]", "", false},
		{"json missing", `{ $.latency = * }`, typed, "$.missing", "", false},
		{"json wildcard first", `{ $.latency = * }`, typed, "$.list[*]", "1", true},
		{"json bracket", `{ $.latency = * }`, typed, "$.['cluster.name']", "c", true},
		{"json invalid ref", `{ $.latency = * }`, typed, "latency", "", false},
		{"json invalid ref 2", `{ $.latency = * }`, typed, "$.", "", false},
		{"json ref with trailing text", `{ $.latency = * }`, typed, "$.latency x", "", false},
		{"json not json", `{ $.latency = * }`, "latency 50", "$.latency", "", false},
		{"cloudtrail user", `{ $.eventName = * }`, describeTrails, "$.userIdentity.userName", "alice", true},
		{"cloudtrail nested", `{ $.eventName = * }`, lambdaInvoke, "$.userIdentity.sessionContext.sessionIssuer.userName", "some-role", true},
		{"cloudtrail array", `{ $.eventName = * }`, lambdaInvoke, "$.resources[0].type", "AWS::Lambda::Function", true},
		{"fields named", "[ip, user, username, timestamp, request, status_code, bytes]", apache, "$bytes", "1534", true},
		{"fields quoted", "[ip, user, username, timestamp, request, status_code, bytes]", apache, "$request", "GET /apache_pb.gif HTTP/1.0", true},
		{"fields bracketed", "[ip, user, username, timestamp, request, status_code, bytes]", apache, "$timestamp", "10/Oct/2000:13:25:15 -0700", true},
		{"fields name case", "[ip, user, username, timestamp, request, status_code, bytes]", apache, "$BYTES", "1534", true},
		{"fields position", "[ip, user, username, timestamp, request, status_code, bytes]", apache, "$7", "1534", true},
		{"fields position zero", "[ip, user, username, timestamp, request, status_code, bytes]", apache, "$0", "", false},
		{"fields position past end", "[ip, user, username, timestamp, request, status_code, bytes]", apache, "$8", "", false},
		{"fields unknown", "[ip, user, username, timestamp, request, status_code, bytes]", apache, "$size", "", false},
		{"fields no dollar", "[ip, user, username, timestamp, request, status_code, bytes]", apache, "bytes", "", false},
		{"fields signed position", "[ip, user, username, timestamp, request, status_code, bytes]", apache, "$+1", "", false},
		{"ellipsis position", "[..., status_code, bytes]", apache, "$1", "127.0.0.1", true},
		{"ellipsis position 4", "[..., status_code, bytes]", apache, "$4", "10/Oct/2000:13:25:15 -0700", true},
		{"ellipsis name", "[..., status_code, bytes]", apache, "$status_code", "200", true},
		{"ellipsis trailing comma", "[..., request=*.html*, status_code=4*,]", apacheHTML, "$7", "1534", true},
		{"rest of line", "[w1, w2]", lineError, "$w2", "09/25/2014 12:00:02 Failed to process request", true},
		{"rest of line position", "[w1, w2]", lineError, "$2", "09/25/2014 12:00:02 Failed to process request", true},
		{"too few fields", "[a, b, c]", "x y", "$a", "", false},
		{"terms", "ERROR", "ERROR 5", "$1", "", false},
		{"match all", "", `{"a": 1}`, "$.a", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse(tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			ev := NewEvent([]byte(tt.message))
			for range 2 { // the second call uses the cached reference
				got, ok := p.Value(ev, tt.ref)
				if got != tt.want || ok != tt.ok {
					t.Errorf("Value(%q) = %q, %v; want %q, %v", tt.ref, got, ok, tt.want, tt.ok)
				}
			}
		})
	}
}

// TestEventShared checks that one Event serves many patterns from many
// goroutines, parsing once (run with -race).
func TestEventShared(t *testing.T) {
	ev := NewEvent([]byte(lambdaInvoke))
	patterns := []string{
		`{ $.eventName = Invoke }`,
		`{ $.userIdentity.type = AssumedRole && $.readOnly IS FALSE }`,
		`[first, ...]`,
		`Invoke`,
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for _, s := range patterns {
				p, err := Parse(s)
				if err != nil {
					t.Error(err)
					return
				}
				if !p.Match(ev) {
					t.Errorf("%s does not match", s)
				}
				if _, ok := p.Value(ev, "$.eventName"); ok != (p.Kind() == JSON) {
					t.Errorf("%s: Value ok = %v", s, ok)
				}
			}
		})
	}
	wg.Wait()
}

func TestNewEventCopies(t *testing.T) {
	msg := []byte(`{"a": "x"}`)
	ev := NewEvent(msg)
	copy(msg, `{"a": "y"}`)
	p, _ := Parse(`{ $.a = x }`)
	if !p.Match(ev) {
		t.Error("the event changed with the caller's buffer")
	}
}
