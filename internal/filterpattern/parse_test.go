package filterpattern

import (
	"errors"
	"strings"
	"testing"
)

type parseTest struct {
	name    string
	input   string
	kind    Kind
	want    string // canonical String(); "" with kind MatchAll
	wantPos int    // for errors: byte offset
	wantErr string // for errors: substring of the message
}

// parseTests are the valid patterns, one or more per syntax form. The AWS doc
// examples are quoted as the doc writes them.
var parseTests = []parseTest{
	{name: "empty", input: "", kind: MatchAll},
	{name: "blank", input: " \t\n ", kind: MatchAll},

	// Unstructured terms.
	{name: "term", input: "ERROR", kind: Terms, want: "ERROR"},
	{name: "terms", input: "ERROR  ARGUMENTS", kind: Terms, want: "ERROR ARGUMENTS"},
	{name: "optional terms", input: "?ERROR ?ARGUMENTS", kind: Terms, want: "?ERROR ?ARGUMENTS"},
	{name: "phrase", input: `"INTERNAL SERVER ERROR"`, kind: Terms, want: `"INTERNAL SERVER ERROR"`},
	{name: "exclude", input: "ERROR -ARGUMENTS", kind: Terms, want: "ERROR -ARGUMENTS"},
	{name: "exclude with space", input: `"ERROR" - "Exiting"`, kind: Terms, want: "ERROR -Exiting"},
	{name: "optional phrase", input: `?"clean up" ?xyz`, kind: Terms, want: `?"clean up" ?xyz`},
	{name: "match everything", input: `" "`, kind: Terms, want: `" "`},
	{name: "quoted plain term unquoted", input: `"ERROR"`, kind: Terms, want: `ERROR`},
	{name: "term with punctuation", input: `ERROR: [grpc]`, kind: Terms, want: `"ERROR:" "[grpc]"`},
	{name: "escaped quote", input: `"say \"hi\""`, kind: Terms, want: `"say \"hi\""`},
	{name: "backslash kept", input: `"C:\temp"`, kind: Terms, want: `"C:\temp"`},
	{name: "trailing backslash", input: `"a\\"`, kind: Terms, want: `"a\\"`},
	{name: "unicode term", input: "エラー", kind: Terms, want: `"エラー"`},
	{name: "percent inside term", input: "100%", kind: Terms, want: `"100%"`},
	{name: "percent starting later term", input: "printf %d", kind: Terms, want: `printf "%d"`},
	{name: "question mark inside term", input: "why?", kind: Terms, want: `"why?"`},
	{name: "regex", input: "%AUTHORIZED%", kind: Terms, want: "%AUTHORIZED%"},
	{name: "regex ip", input: `%\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}%`, kind: Terms, want: `%\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}%`},
	{name: "regex alternation with space", input: "%^starting|^initializing|^shutting down%", kind: Terms, want: "%^starting|^initializing|^shutting down%"},
	{name: "regex classes", input: "%[Ee]rror|[Ff]ail%", kind: Terms, want: "%[Ee]rror|[Ff]ail%"},
	{name: "regex large repetition", input: "%[a-z]{1,1000}x{1000}%", kind: Terms, want: "%[a-z]{1,1000}x{1000}%"},
	{name: "regex repetition forms", input: "%a{3,5}b{2}c{1,}d{,4}e{ 1 , 2 }%", kind: Terms, want: "%a{3,5}b{2}c{1,}d{,4}e{ 1 , 2 }%"},
	{name: "regex hex escape", input: `%\x3A\x28%`, kind: Terms, want: `%\x3A\x28%`},
	{name: "regex escaped brackets", input: `%\[.\]%`, kind: Terms, want: `%\[.\]%`},
	{name: "regex negated class", input: "%abcc|ab[^c]$%", kind: Terms, want: "%abcc|ab[^c]$%"},

	// JSON.
	{name: "json string", input: `{ $.eventType = "UpdateTrail" }`, kind: JSON, want: `{ $.eventType = UpdateTrail }`},
	{name: "json unquoted", input: `{$.userIdentity.userName=alice}`, kind: JSON, want: `{ $.userIdentity.userName = alice }`},
	{name: "json unquoted unicode (seed 003)", input: `{ $.userIdentity.userName = 対象のユーザー名}`, kind: JSON, want: `{ $.userIdentity.userName = "対象のユーザー名" }`},
	{name: "json unquoted dotted", input: `{ ($.eventSource = kms.amazonaws.com) && (($.eventName=DisableKey)||($.eventName=ScheduleKeyDeletion)) }`, kind: JSON,
		want: `{ $.eventSource = "kms.amazonaws.com" && ($.eventName = DisableKey || $.eventName = ScheduleKeyDeletion) }`},
	{name: "json ne wildcard", input: `{ $.sourceIPAddress != 123.123.* }`, kind: JSON, want: `{ $.sourceIPAddress != "123.123.*" }`},
	{name: "json wildcard both ends", input: `{ $.errorCode = "*UnauthorizedOperation" || $.errorCode = "AccessDenied*" }`, kind: JSON,
		want: `{ $.errorCode = *UnauthorizedOperation || $.errorCode = AccessDenied* }`},
	{name: "json star", input: `{ $.latency = * }`, kind: JSON, want: `{ $.latency = "*" }`},
	{name: "json quoted number stays string", input: `{ $.status = "400" }`, kind: JSON, want: `{ $.status = "400" }`},
	{name: "json array index", input: `{ $.arrayKey[0] = "value" }`, kind: JSON, want: `{ $.arrayKey[0] = value }`},
	{name: "json object in array", input: `{ $.objectList[1].id = 2 }`, kind: JSON, want: `{ $.objectList[1].id = 2 }`},
	{name: "json nested arrays", input: `{ $.coordinates[0][1] = nonmatch }`, kind: JSON, want: `{ $.coordinates[0][1] = nonmatch }`},
	{name: "json index leading zero", input: `{ $.a[007] = 1 }`, kind: JSON, want: `{ $.a[7] = 1 }`},
	{name: "json array wildcard regex", input: `{ $.arrayKey[*] = %val.{2}% }`, kind: JSON, want: `{ $.arrayKey[*] = %val.{2}% }`},
	{name: "json root wildcard", input: `{ $.* = %111\.111\.111\.1[0-9]{1,2}% }`, kind: JSON, want: `{ $.* = %111\.111\.111\.1[0-9]{1,2}% }`},
	{name: "json dot wildcard", input: `{ $.resources.*.type = "AWS::Lambda::Function" }`, kind: JSON, want: `{ $.resources[*].type = "AWS::Lambda::Function" }`},
	{name: "json bracket key", input: `{ $.['cluster.name'] = "c" }`, kind: JSON, want: `{ $.['cluster.name'] = c }`},
	{name: "json bracket key no dot", input: `{ $['cluster.name'] = "c" }`, kind: JSON, want: `{ $.['cluster.name'] = c }`},
	{name: "json bracket plain key", input: `{ $.['eventName'] = x }`, kind: JSON, want: `{ $.eventName = x }`},
	{name: "json bracket key escapes", input: `{ $.a['it\'s'] = x }`, kind: JSON, want: `{ $.a.['it\'s'] = x }`},
	{name: "json regex", input: `{ $.eventType = %Trail% }`, kind: JSON, want: `{ $.eventType = %Trail% }`},
	{name: "json is null", input: `{ $.SomeObject IS NULL }`, kind: JSON, want: `{ $.SomeObject IS NULL }`},
	{name: "json is true lower", input: `{ $.ThisFlag is true }`, kind: JSON, want: `{ $.ThisFlag IS TRUE }`},
	{name: "json is false", input: `{ $.readOnly IS FALSE }`, kind: JSON, want: `{ $.readOnly IS FALSE }`},
	{name: "json not exists", input: `{ $.SomeOtherObject NOT EXISTS }`, kind: JSON, want: `{ $.SomeOtherObject NOT EXISTS }`},
	{name: "json numeric ops", input: `{ $.bandwidth > 75 && $.latency < 50 && $.refreshRate >= 60 && $.responseTime <= 5 && $.errorCode != 500 }`, kind: JSON,
		want: `{ $.bandwidth > 75 && $.latency < 50 && $.refreshRate >= 60 && $.responseTime <= 5 && $.errorCode != 500 }`},
	{name: "json exponents", input: `{ $.number[0] = 1e-3 || $.number[0] != 1e+3 || $.numbers[0] < 10e3 || $.x = -1.5E2 || $.latency > +1000 }`, kind: JSON,
		want: `{ $.number[0] = 1e-3 || $.number[0] != 1e+3 || $.numbers[0] < 10e3 || $.x = -1.5E2 || $.latency > +1000 }`},
	{name: "json decimal", input: `{ $.processes[4].averageRuntime <= 55.5 }`, kind: JSON, want: `{ $.processes[4].averageRuntime <= 55.5 }`},
	{name: "json precedence", input: `{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }`, kind: JSON,
		want: `{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }`},
	{name: "json parens kept where needed", input: `{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch) && $.actions[2] = nomatch }`, kind: JSON,
		want: `{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch) && $.actions[2] = nomatch }`},
	{name: "json redundant parens dropped", input: `{ ((($.a = 1))) && (($.b = 2 && $.c = 3)) }`, kind: JSON, want: `{ $.a = 1 && $.b = 2 && $.c = 3 }`},
	{name: "json cis root", input: `{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }`, kind: JSON,
		want: `{ $.userIdentity.type = Root && $.userIdentity.invokedBy NOT EXISTS && $.eventType != AwsServiceEvent }`},
	{name: "json name with dash", input: `{ $.requestParameters.x-amz-acl = "public-read" }`, kind: JSON, want: `{ $.requestParameters.x-amz-acl = "public-read" }`},
	{name: "json value with dollar", input: `{ $.additionalEventData.functionVersion = "*:$LATEST" }`, kind: JSON, want: `{ $.additionalEventData.functionVersion = "*:$LATEST" }`},
	{name: "json two regexes", input: `{ $.a = %x% && $.b != %y% }`, kind: JSON, want: `{ $.a = %x% && $.b != %y% }`},
	{name: "json three wildcards", input: `{ $.a[*] = 1 || $.b[*] = 2 || $.* = 3 }`, kind: JSON, want: `{ $.a[*] = 1 || $.b[*] = 2 || $.* = 3 }`},
	{name: "json trailing space", input: "  { $.a = b }  \n", kind: JSON, want: `{ $.a = b }`},

	// Space-delimited.
	{name: "fields", input: "[ip, user, username, timestamp, request, status_code, bytes]", kind: SpaceDelimited,
		want: "[ip, user, username, timestamp, request, status_code, bytes]"},
	{name: "fields conditions", input: "[ip=%127\\.0\\.0\\.[1-9]%, user, username, timestamp, request =*.html*, status_code = 4*, bytes]", kind: SpaceDelimited,
		want: `[ip = %127\.0\.0\.[1-9]%, user, username, timestamp, request = "*.html*", status_code = 4*, bytes]`},
	{name: "fields ellipsis", input: "[..., status_code, bytes]", kind: SpaceDelimited, want: "[..., status_code, bytes]"},
	{name: "fields ellipsis last", input: "[ip, user, ...]", kind: SpaceDelimited, want: "[ip, user, ...]"},
	{name: "fields numeric", input: "[ip, user, username, timestamp, request, status_code, bytes > 1000]", kind: SpaceDelimited,
		want: "[ip, user, username, timestamp, request, status_code, bytes > 1000]"},
	{name: "fields or", input: "[ip, user, username, timestamp, request =*.html*, status_code = 404 || status_code = 410, bytes]", kind: SpaceDelimited,
		want: `[ip, user, username, timestamp, request = "*.html*", status_code = 404 || status_code = 410, bytes]`},
	{name: "fields and", input: "[w1!=ERROR && w1!=WARNING, w2]", kind: SpaceDelimited, want: "[w1 != ERROR && w1 != WARNING, w2]"},
	{name: "fields and or", input: "[a = 1 && a != 2 || a = 5, b]", kind: SpaceDelimited, want: "[a = 1 && a != 2 || a = 5, b]"},
	{name: "fields case-insensitive names (AWS doc example)", input: "[w1=ERROR || W1=WARNING, w2]", kind: SpaceDelimited, want: "[w1 = ERROR || W1 = WARNING, w2]"},
	{name: "fields trailing comma (AWS doc example)", input: "[..., request=*.html*, status_code=4*,]", kind: SpaceDelimited,
		want: `[..., request = "*.html*", status_code = 4*, ]`},
	{name: "fields empty", input: "[a,,b]", kind: SpaceDelimited, want: "[a, , b]"},
	{name: "fields quoted values", input: `[date, time, tag="rh-sched*", x01=throttling, x02="jobs.", ..., x10=Len, x11=of, x12=job, x13="queue*",  length]`, kind: SpaceDelimited,
		want: `[date, time, tag = "rh-sched*", x01 = throttling, x02 = "jobs.", ..., x10 = Len, x11 = of, x12 = job, x13 = queue*, length]`},
	{name: "fields regex url", input: "[logLevel, date, time, method, url=%/service/resource/[0-9]+$%, response_time]", kind: SpaceDelimited,
		want: "[logLevel, date, time, method, url = %/service/resource/[0-9]+$%, response_time]"},
	{name: "fields exponent", input: "[a >= 1e3, b]", kind: SpaceDelimited, want: "[a >= 1e3, b]"},
	{name: "limit counts characters", input: `"` + strings.Repeat("é", 1022) + `"`, kind: Terms, want: `"` + strings.Repeat("é", 1022) + `"`},

	// Fixed bugs.
	// The field parser read a field's name, peeked at the operator and backed up
	// two tokens with a one-token lookahead, so every condition failed with
	// "expected field name".
	{name: "field name before operator kept", input: "[a = 1]", kind: SpaceDelimited, want: "[a = 1]"},
}

// parseErrorTests are patterns AWS rejects, or that do not parse, with the byte
// offset each error must carry.
var parseErrorTests = []parseTest{
	{name: "unterminated phrase", input: `ERROR "abc`, wantPos: 6, wantErr: "unterminated quoted string"},
	{name: "prefix without term", input: `ERROR -`, wantPos: 7, wantErr: "expected term after '-'"},
	{name: "double prefix", input: `??a`, wantPos: 1, wantErr: "expected term after '?'"},
	{name: "regex not alone", input: `%a% ERROR`, wantPos: 4, wantErr: "regular expression must be the whole pattern"},
	{name: "regex after term", input: `ERROR %a%`, wantPos: 6, wantErr: "regular expression must be the whole pattern"},
	{name: "regex bang", input: `%something!%`, wantPos: 10, wantErr: `character '!' is not supported`},
	{name: "regex parens", input: `%(a|b)c%`, wantPos: 1, wantErr: "parentheses are not supported"},
	{name: "regex non-ascii hex escape", input: `%caf\xc3\xa9%`, wantPos: 4, wantErr: `\xc3 is not an ASCII character`},
	{name: "regex multibyte raw", input: "%café%", wantPos: 4, wantErr: "multi-byte characters are not supported"},
	{name: "regex unterminated", input: ` %abc`, wantPos: 1, wantErr: "unterminated regular expression"},
	{name: "regex empty", input: `%%`, wantPos: 1, wantErr: "empty regular expression"},
	{name: "regex trailing backslash", input: `%ab\%`, wantPos: 3, wantErr: `ends with '\'`},
	{name: "regex bad escape", input: `%\b%`, wantPos: 1, wantErr: `unsupported escape sequence \b`},
	{name: "regex bad hex", input: `%\x4%`, wantPos: 1, wantErr: "two hexadecimal digits"},
	{name: "regex non-ascii hex", input: `%\xff%`, wantPos: 1, wantErr: "not an ASCII character"},
	{name: "regex bad repetition", input: `%a{x}%`, wantPos: 2, wantErr: "invalid repetition"},
	{name: "regex empty repetition", input: `%a{,}%`, wantPos: 2, wantErr: "invalid repetition"},
	{name: "regex reversed repetition", input: `%a{5,3}%`, wantPos: 2, wantErr: "minimum is above maximum"},
	{name: "regex huge repetition", input: `%a{1001}%`, wantPos: 2, wantErr: "bounds are numbers up to 1000"},
	{name: "regex too complex", input: "%" + strings.Repeat("[a-z]{1,1000}", 6) + "%", wantPos: 1, wantErr: "too complex"},
	{name: "regex nested repetition", input: "%a{1000}{1000}%", wantPos: 1, wantErr: "invalid nested repetition operator"},
	{name: "regex missing argument", input: `%*a%`, wantPos: 1, wantErr: "missing argument to repetition operator"},
	{name: "regex unclosed class", input: `%[abc%`, wantPos: 5, wantErr: "missing ']'"},
	{name: "regex stray brace", input: `%a}%`, wantPos: 2, wantErr: "unmatched '}'"},
	{name: "regex quote", input: `{ $.a = %"x"% }`, wantPos: 9, wantErr: `character '"' is not supported`},

	{name: "json unclosed", input: `{ $.a = 1`, wantPos: 9, wantErr: "expected '&&', '||' or '}'"},
	{name: "json empty", input: `{ }`, wantPos: 2, wantErr: "expected a property selector"},
	{name: "json missing value", input: `{ $.eventName = }`, wantPos: 16, wantErr: "expected value after '='"},
	{name: "json double equals", input: `{ $.a == 1 }`, wantPos: 7, wantErr: "expected value after '='"},
	{name: "json bang", input: `{ $.a ! 1 }`, wantPos: 6, wantErr: "expected '=' after '!'"},
	{name: "json single amp", input: `{ $.a = 1 & $.b = 2 }`, wantPos: 10, wantErr: `expected "&&"`},
	{name: "json single pipe", input: `{ $.a = 1 | $.b = 2 }`, wantPos: 10, wantErr: `expected "||"`},
	{name: "json no selector", input: `{ eventName = x }`, wantPos: 2, wantErr: "expected a property selector"},
	{name: "json bare root", input: `{ $ = x }`, wantPos: 3, wantErr: "expected '.' and a property name after '$'"},
	{name: "json root index", input: `{ $[0] = x }`, wantPos: 3, wantErr: "array index must follow a property"},
	{name: "json root star", input: `{ $[*] = x }`, wantPos: 3, wantErr: "array index must follow a property"},
	{name: "json empty name", input: `{ $. = x }`, wantPos: 4, wantErr: "expected property name after '.'"},
	{name: "json bad index", input: `{ $.a[x] = 1 }`, wantPos: 6, wantErr: "expected array index"},
	{name: "json unclosed index", input: `{ $.a[1 = 1 }`, wantPos: 7, wantErr: "expected ']' after array index"},
	{name: "json huge index", input: `{ $.a[99999999999] = 1 }`, wantPos: 5, wantErr: "too large"},
	{name: "json unclosed key", input: `{ $.['a = 1 }`, wantPos: 3, wantErr: "unterminated quoted property name"},
	{name: "json two wildcards in selector", input: `{ $.a[*].b[*] = 1 }`, wantPos: 10, wantErr: "at most 1 wildcard"},
	{name: "json four wildcards", input: `{ $.a[*] = 1 || $.b[*] = 2 || $.c[*] = 3 || $.d[*] = 4 }`, wantPos: 47, wantErr: "at most 3 wildcard selectors"},
	{name: "json three regexes", input: `{ $.a = %x% && $.b = %y% && $.c = %z% }`, wantPos: 34, wantErr: "at most 2 regular expressions"},
	{name: "json gt string", input: `{ $.latency > fast }`, wantPos: 14, wantErr: "expected number after '>'"},
	{name: "json gt quoted", input: `{ $.latency >= "5" }`, wantPos: 15, wantErr: "expected number after '>='"},
	{name: "json gt star", input: `{ $.latency < * }`, wantPos: 14, wantErr: "expected number after '<'"},
	{name: "json lt regex", input: `{ $.latency < %5% }`, wantPos: 14, wantErr: "expected number after '<'"},
	{name: "json is not", input: `{ $.a IS NOT NULL }`, wantPos: 9, wantErr: "IS NOT is not supported"},
	{name: "json exists", input: `{ $.a EXISTS }`, wantPos: 6, wantErr: "EXISTS is not supported"},
	{name: "json is what", input: `{ $.a IS EMPTY }`, wantPos: 9, wantErr: "expected NULL, TRUE or FALSE after IS"},
	{name: "json not what", input: `{ $.a NOT NULL }`, wantPos: 10, wantErr: "expected EXISTS after NOT"},
	{name: "json no operator", input: `{ $.a }`, wantPos: 6, wantErr: "expected a comparison operator"},
	{name: "json unclosed paren", input: `{ ($.a = 1 }`, wantPos: 11, wantErr: "expected '&&', '||' or ')'"},
	{name: "json extra paren", input: `{ $.a = 1) }`, wantPos: 9, wantErr: "expected '&&', '||' or '}'"},
	{name: "json trailing text", input: `{ $.a = 1 } x`, wantPos: 12, wantErr: "after the end of the pattern"},
	{name: "json dangling and", input: `{ $.a = 1 && }`, wantPos: 13, wantErr: "expected a property selector"},
	{name: "json bad char", input: "{ $.a = 1 ; }", wantPos: 10, wantErr: `expected '&&', '||' or '}', found ";"`},
	{name: "json unterminated string", input: `{ $.a = "x }`, wantPos: 8, wantErr: "unterminated quoted string"},
	{name: "json unterminated regex", input: `{ $.a = %x }`, wantPos: 8, wantErr: "unterminated regular expression"},
	{name: "json deep parens", input: "{ " + strings.Repeat("(", 101) + "$.a = 1" + strings.Repeat(")", 101) + " }", wantPos: 102, wantErr: "nested more than 100"},

	{name: "fields empty brackets", input: `[]`, wantPos: 1, wantErr: "expected field name"},
	{name: "fields unclosed", input: `[a, b`, wantPos: 5, wantErr: "expected ',' or ']'"},
	{name: "fields two ellipses", input: `[..., a, ...]`, wantPos: 9, wantErr: "at most one '...'"},
	{name: "fields duplicate", input: `[a, b, A]`, wantPos: 7, wantErr: `duplicate field name "A"`},
	{name: "fields cross-field condition (awsdocs issue 21)", input: `[ip, user, username, timestamp, request, status_code = 4* && bytes > 1000]`, wantPos: 61,
		wantErr: `condition on "bytes" inside field "status_code"`},
	{name: "fields missing value", input: `[a =, b]`, wantPos: 4, wantErr: "expected value after '='"},
	{name: "fields gt word", input: `[a > big]`, wantPos: 5, wantErr: "expected number after '>'"},
	{name: "fields bad name", input: `[a.b, c]`, wantPos: 1, wantErr: `invalid field name "a.b"`},
	{name: "fields three regexes", input: `[a=%1%, b=%2%, c=%3%]`, wantPos: 17, wantErr: "at most 2 regular expressions"},
	{name: "fields bang value", input: `[w1=!ERROR, w2]`, wantPos: 4, wantErr: "expected '=' after '!'"},
	{name: "fields stray op", input: `[= 1]`, wantPos: 1, wantErr: "expected field name"},
	{name: "fields text after", input: `[a] b`, wantPos: 4, wantErr: "after the end of the pattern"},

	{name: "invalid utf8", input: "ERROR \xff", wantPos: 6, wantErr: "invalid UTF-8"},
	{name: "too long", input: strings.Repeat("a", 1025), wantPos: 1024, wantErr: "1025 characters long; the limit is 1024"},
	{name: "too long multibyte", input: strings.Repeat("é", 1025), wantPos: 2048, wantErr: "1025 characters long"},

	// Fixed bugs.
	// FuzzParse stalled on bounded repetitions: 78 copies of [a-z]{1,1000} fit in
	// 1024 characters, took 80 ms to compile and 10 ms to run on a 100 KB event.
	{name: "repetition blow-up", input: "%" + strings.Repeat("[a-z]{1,1000}", 78) + "%", wantPos: 1, wantErr: "too complex"},
}

func TestParse(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse(tt.input)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.input, err)
			}
			if p.Kind() != tt.kind {
				t.Errorf("Kind() = %v, want %v", p.Kind(), tt.kind)
			}
			if got := p.String(); got != tt.want {
				t.Errorf("String():\n got %s\nwant %s", got, tt.want)
			}
			checkRoundTrip(t, p)
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range parseErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse(tt.input)
			if err == nil {
				t.Fatalf("Parse(%q) = %s, want error %q", tt.input, p, tt.wantErr)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is %T, want *SyntaxError", err, err)
			}
			if se.Pos != tt.wantPos || !strings.Contains(se.Msg, tt.wantErr) {
				t.Errorf("Parse(%q):\n got pos %d %q\nwant pos %d %q", tt.input, se.Pos, se.Msg, tt.wantPos, tt.wantErr)
			}
		})
	}
}

// checkRoundTrip verifies that the canonical form parses to a pattern that
// prints the same.
func checkRoundTrip(t *testing.T, p *Pattern) {
	t.Helper()
	s := p.String()
	q, err := parse(s, 1<<20)
	if err != nil {
		t.Fatalf("canonical form %q does not parse: %v", s, err)
	}
	if q.String() != s || q.Kind() != p.Kind() {
		t.Fatalf("round trip: %q (%v) became %q (%v)", s, p.Kind(), q.String(), q.Kind())
	}
}

func TestSyntaxErrorFormat(t *testing.T) {
	tests := []struct {
		input string
		want  string
	}{
		{`{ $.eventName = }`, "filterpattern: 1:17: expected value after '=', found \"}\""},
		{"{ $.a = 1 &&\n  $.b = }", "filterpattern: 2:9: expected value after '=', found \"}\""},
		{"ERROR \"x", "filterpattern: 1:7: unterminated quoted string"},
	}
	for _, tt := range tests {
		t.Run(tt.input, func(t *testing.T) {
			_, err := Parse(tt.input)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Parse(%q) error = %v, want %s", tt.input, err, tt.want)
			}
		})
	}
}

// TestCanonicalLongerThanLimit documents that String can exceed MaxLength: the
// canonical form adds spaces and quotes.
func TestCanonicalLongerThanLimit(t *testing.T) {
	in := "{" + strings.Repeat("$.a=b.c||", 112) + "$.a=b.c}"
	if len(in) > MaxLength {
		t.Fatalf("input is %d bytes", len(in))
	}
	p, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.String()) <= MaxLength {
		t.Fatalf("canonical form is %d bytes; the test wants one over the limit", len(p.String()))
	}
	if _, err := Parse(p.String()); err == nil || !strings.Contains(err.Error(), "the limit is 1024") {
		t.Errorf("Parse(canonical) error = %v, want the length error", err)
	}
	checkRoundTrip(t, p)
}
