package filterpattern

import (
	"testing"
)

// benchPatterns are subscription filters of the kind OpenTrail evaluates for
// every CloudTrail record: most of them do not match.
var benchPatterns = []string{
	`{ $.userIdentity.userName = "alice" }`,
	`{ $.eventName = Invoke }`,
	`{ $.eventSource = lambda.amazonaws.com && $.readOnly IS FALSE }`,
	`{ ($.eventName = ConsoleLogin) && ($.errorMessage = "Failed authentication") }`,
	`{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }`,
	`{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") }`,
	`{ $.resources[*].ARN = "*:function:vpc-lambda-1" }`,
	`{ $.sourceIPAddress != 1.2.* }`,
}

func mustParse(b *testing.B, s string) *Pattern {
	p, err := Parse(s)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkMatchJSONParsed measures one JSON pattern against an event whose
// JSON is already parsed: the cost each further filter adds to a record.
func BenchmarkMatchJSONParsed(b *testing.B) {
	b.Run("simple", func(b *testing.B) {
		p := mustParse(b, `{ $.userIdentity.sessionContext.sessionIssuer.userName = "some-role" }`)
		ev := NewEvent([]byte(lambdaInvoke))
		if !p.Match(ev) {
			b.Fatal("no match")
		}
		b.ReportAllocs()
		for b.Loop() {
			p.Match(ev)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "matches/s")
	})
	b.Run("mix", func(b *testing.B) {
		ps := make([]*Pattern, len(benchPatterns))
		for i, s := range benchPatterns {
			ps[i] = mustParse(b, s)
		}
		ev := NewEvent([]byte(lambdaInvoke))
		ps[0].Match(ev)
		b.ReportAllocs()
		for b.Loop() {
			for _, p := range ps {
				p.Match(ev)
			}
		}
		b.ReportMetric(float64(b.N*len(ps))/b.Elapsed().Seconds(), "matches/s")
	})
}

// BenchmarkParseAndMatch includes preparing the event and parsing its JSON
// (the 1.5 KB Lambda Invoke record), then evaluating one or all patterns.
func BenchmarkParseAndMatch(b *testing.B) {
	msg := []byte(lambdaInvoke)
	b.Run("one", func(b *testing.B) {
		p := mustParse(b, `{ $.userIdentity.userName = "alice" }`)
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for b.Loop() {
			p.Match(NewEvent(msg))
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("mix", func(b *testing.B) {
		ps := make([]*Pattern, len(benchPatterns))
		for i, s := range benchPatterns {
			ps[i] = mustParse(b, s)
		}
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for b.Loop() {
			ev := NewEvent(msg)
			for _, p := range ps {
				p.Match(ev)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

// BenchmarkMatchOther covers the other kinds on an already prepared event.
func BenchmarkMatchOther(b *testing.B) {
	for _, bm := range []struct{ name, pattern, msg string }{
		{"terms", `Invoke -DescribeTrails "lambda.amazonaws.com"`, lambdaInvoke},
		{"regex", `%vpc-lambda-\d+%`, lambdaInvoke},
		{"delimited", `[ip, user, username, timestamp, request = *gif*, status_code = 2*, bytes > 1000]`, apache},
	} {
		b.Run(bm.name, func(b *testing.B) {
			p := mustParse(b, bm.pattern)
			ev := NewEvent([]byte(bm.msg))
			p.Match(ev)
			b.ReportAllocs()
			for b.Loop() {
				p.Match(ev)
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	for _, bm := range []struct{ name, pattern string }{
		{"simple", `{ $.userIdentity.userName = "alice" }`},
		{"compound", benchPatterns[4]},
		{"regex", `{ $.* = %111\.111\.111\.1[0-9]{1,2}% }`},
		{"delimited", `[ip, user, username, timestamp, request =*.html*, status_code = 404 || status_code = 410, bytes]`},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(bm.pattern); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
