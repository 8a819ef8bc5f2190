package proxy

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var classifyTests = []struct {
	name, method, url, target, auth, body, ctype string
	service, op, akid, region                    string
	proto                                        int
}{
	{name: "json 1.0 short target", method: "POST", url: "/", target: "DynamoDB_20120810.GetItem",
		auth:    "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20240101/eu-west-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00",
		service: "dynamodb", op: "GetItem", akid: "AKIAEXAMPLE", region: "eu-west-1", proto: protoJSON},
	{name: "json 1.1 long target", method: "POST", url: "/", target: "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents",
		auth:    "AWS4-HMAC-SHA256 Credential=AKIAX/20240101/us-east-1/cloudtrail/aws4_request,SignedHeaders=host,Signature=00",
		service: "cloudtrail", op: "LookupEvents", akid: "AKIAX", region: "us-east-1", proto: protoJSON},
	{name: "unsigned target", method: "POST", url: "/", target: "DynamoDB_20120810.Scan", service: "dynamodb", op: "Scan", proto: protoJSON},
	{name: "query in form", method: "POST", url: "/", body: "Action=SendMessage&MessageBody=hi&Version=2012-11-05", ctype: "application/x-www-form-urlencoded; charset=utf-8",
		auth:    "AWS4-HMAC-SHA256 Credential=AKIAQ/20240101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=00",
		service: "sqs", op: "SendMessage", akid: "AKIAQ", region: "us-east-1", proto: protoQuery},
	{name: "query in URL, presigned", method: "GET", url: "/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Credential=AKIAP%2F20240101%2Fus-east-1%2Fsts%2Faws4_request",
		service: "sts", op: "GetCallerIdentity", akid: "AKIAP", region: "us-east-1", proto: protoQuery},
	{name: "s3 get object", method: "GET", url: "/bucket/a/b.txt",
		auth:    "AWS4-HMAC-SHA256 Credential=AKIAS/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
		service: "s3", op: "GetObject", akid: "AKIAS", region: "us-east-1", proto: protoREST},
	{name: "s3 list v2", method: "GET", url: "/bucket?list-type=2&prefix=a",
		auth:    "AWS4-HMAC-SHA256 Credential=AKIAS/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
		service: "s3", op: "ListObjectsV2", akid: "AKIAS", region: "us-east-1", proto: protoREST},
	{name: "s3 create bucket", method: "PUT", url: "/bucket",
		auth:    "AWS4-HMAC-SHA256 Credential=AKIAS/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
		service: "s3", op: "CreateBucket", akid: "AKIAS", region: "us-east-1", proto: protoREST},
	{name: "s3 bucket tagging", method: "PUT", url: "/bucket?tagging",
		auth:    "AWS4-HMAC-SHA256 Credential=AKIAS/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
		service: "s3", op: "PutBucketTagging", akid: "AKIAS", region: "us-east-1", proto: protoREST},
	{name: "s3 head object", method: "HEAD", url: "/bucket/k",
		auth:    "AWS4-HMAC-SHA256 Credential=AKIAS/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
		service: "s3", op: "HeadObject", akid: "AKIAS", region: "us-east-1", proto: protoREST},
	{name: "s3 delete objects", method: "POST", url: "/bucket?delete",
		auth:    "AWS4-HMAC-SHA256 Credential=AKIAS/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
		service: "s3", op: "DeleteObjects", akid: "AKIAS", region: "us-east-1", proto: protoREST},
	{name: "sigv4a", method: "GET", url: "/bucket/k",
		auth:    "AWS4-ECDSA-P256-SHA256 Credential=AKIAA/20240101/s3/aws4_request, SignedHeaders=host, Signature=00",
		service: "s3", op: "GetObject", akid: "AKIAA", region: "", proto: protoREST},
	{name: "rest fallback", method: "GET", url: "/2015-03-31/functions/f",
		auth:    "AWS4-HMAC-SHA256 Credential=AKIAL/20240101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00",
		service: "lambda", op: "GET /functions", akid: "AKIAL", region: "us-east-1", proto: protoREST},
}

func TestClassify(t *testing.T) {
	for _, tc := range classifyTests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.url, strings.NewReader(tc.body))
			if tc.target != "" {
				r.Header.Set("X-Amz-Target", tc.target)
			}
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			if tc.ctype != "" {
				r.Header.Set("Content-Type", tc.ctype)
			}
			c := classify(r, []byte(tc.body))
			if c.Service != tc.service || c.Op != tc.op || c.AccessKeyID != tc.akid || c.Region != tc.region || c.Protocol != tc.proto {
				t.Errorf("got service %q op %q akid %q region %q proto %d", c.Service, c.Op, c.AccessKeyID, c.Region, c.Protocol)
			}
		})
	}
}

func FuzzClassify(f *testing.F) {
	for _, tc := range classifyTests {
		f.Add(tc.method, tc.url, tc.target, tc.auth, tc.body, tc.ctype)
	}
	f.Fuzz(func(t *testing.T, method, target, xtarget, auth, body, ctype string) {
		r, err := http.NewRequest("GET", "http://h/", nil)
		if err != nil {
			return
		}
		r.Method = method
		if u, err := r.URL.Parse(target); err == nil {
			r.URL = u
		}
		r.Host = "bucket.s3.us-east-1.amazonaws.com"
		r.Header.Set("X-Amz-Target", xtarget)
		r.Header.Set("Authorization", auth)
		r.Header.Set("Content-Type", ctype)
		c := classify(r, []byte(body)) // must not panic
		spec := compile(specFor(c.Service))
		if tree, err := parseJSON([]byte(body)); err == nil {
			resourceARNs(spec.serviceSpec, &c, tree, "123456789012")
			pc := paramContext{spec: spec, red: &redactor{mode: RedactHMAC, key: []byte("k")}, schema: func(string) []string { return []string{"id"} }}
			out := pc.transform(tree).appendJSON(nil, false)
			if _, err := parseJSON(out); err != nil {
				t.Fatalf("transform produced invalid JSON %q from %q: %v", out, body, err)
			}
		}
	})
}

func TestRedactHMAC(t *testing.T) {
	spec := compile(specFor("dynamodb"))
	red := &redactor{mode: RedactHMAC, key: []byte("0123456789abcdef")}
	pc := paramContext{spec: spec, red: red, schema: func(string) []string { return nil }}
	run := func(body string) string {
		tree, err := parseJSON([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return string(pc.transform(tree).appendJSON(nil, false))
	}
	a := run(`{"TableName":"t","Item":{"id":{"S":"1"},"v":{"M":{"b":{"N":"2"},"a":{"S":"x"}}}}}`)
	b := run(`{"TableName":"t","Item":{"id":{"S":"1"},"v":{"M":{"a":{"S":"x"},"b":{"N":"2"}}}}}`)
	if a != b {
		t.Errorf("equal values (members in another order) differ:\n%s\n%s", a, b)
	}
	if !strings.Contains(a, `"hmac-sha256:`) || strings.Contains(a, `"x"`) {
		t.Errorf("values not HMAC'd: %s", a)
	}
	c := run(`{"TableName":"t","Item":{"id":{"S":"1"},"v":{"S":"y"}}}`)
	if c == a {
		t.Error("different values gave the same HMAC")
	}
}

var policyErrors = []struct{ name, doc, want string }{
	{"unknown top member", `{"Version":"2012-10-17","Statment":[]}`, `line 1 col 25: Statment: unknown member`},
	{"bad effect", "{\"Statement\":[\n {\"Effect\":\"Allo\",\"Action\":\"dynamodb:*\"}]}", `line 2 col 18: Statement[0].Effect: is "Allo"; want Allow or Deny`},
	{"bad action", `{"Statement":{"Effect":"Allow","Action":"GetItem"}}`, `Statement.Action[0]: "GetItem" is not shaped like service:Operation`},
	{"condition", `{"Statement":[{"Effect":"Allow","Action":"*","Condition":{}}]}`, `Statement[0].Condition: is not supported`},
	{"no action", `{"Statement":[{"Effect":"Allow"}]}`, `Statement[0].Action: is missing`},
	{"bad principal", `{"Statement":[{"Effect":"Allow","Action":"*","Principal":"me"}]}`, `Statement[0].Principal: a string Principal must be "*"`},
	{"bad version", `{"Version":"2020","Statement":[{"Effect":"Allow","Action":"*"}]}`, `Version: is "2020"`},
	{"no statement", `{"Version":"2012-10-17"}`, `Statement: is missing or empty`},
	{"malformed", `{"Statement":[`, `malformed JSON`},
	{"duplicate", `{"Statement":[{"Effect":"Allow","Effect":"Deny","Action":"*"}]}`, `malformed JSON`},
	{"empty list", `{"Statement":[{"Effect":"Allow","Action":[]}]}`, `Statement[0].Action: is an empty list`},
}

func TestParsePolicyErrors(t *testing.T) {
	for _, tc := range policyErrors {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestPolicyEvaluate(t *testing.T) {
	p, err := ParsePolicy([]byte(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":["AKIAGOOD*","arn:aws:iam::123456789012:user/bob"]},"Action":["dynamodb:Get*","dynamodb:Query"],"Resource":"arn:aws:dynamodb:*:*:table/app-*"},
		{"Effect":"Allow","Principal":"*","NotAction":"dynamodb:Delete*","Resource":"arn:aws:dynamodb:*:*:table/open"},
		{"Effect":"Deny","Principal":"*","Action":"dynamodb:GetItem","Resource":"arn:aws:dynamodb:*:*:table/app-secret"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	tbl := func(n string) string { return "arn:aws:dynamodb:us-east-1:123456789012:table/" + n }
	for _, tc := range []struct {
		who    []string
		action string
		res    []string
		want   decision
	}{
		{[]string{"AKIAGOOD1"}, "dynamodb:GetItem", []string{tbl("app-users")}, allowed},
		{[]string{"AKIAGOOD1"}, "dynamodb:getitem", []string{tbl("app-users")}, allowed},
		{[]string{"AKIAOTHER", "arn:aws:iam::123456789012:user/bob"}, "dynamodb:Query", []string{tbl("app-x")}, allowed},
		{[]string{"AKIAOTHER"}, "dynamodb:Query", []string{tbl("app-x")}, implicitDeny},
		{[]string{"AKIAGOOD1"}, "dynamodb:PutItem", []string{tbl("app-users")}, implicitDeny},
		{[]string{"AKIAGOOD1"}, "dynamodb:GetItem", []string{tbl("app-secret")}, explicitDeny},
		{[]string{"AKIAANY"}, "dynamodb:PutItem", []string{tbl("open")}, allowed},
		{[]string{"AKIAANY"}, "dynamodb:DeleteItem", []string{tbl("open")}, implicitDeny},
		{[]string{"AKIAGOOD1"}, "dynamodb:GetItem", []string{tbl("app-users"), tbl("other")}, implicitDeny},
		{[]string{"AKIAGOOD1"}, "dynamodb:ListTables", nil, implicitDeny},
	} {
		if got := p.Evaluate(tc.who, tc.action, tc.res); got != tc.want {
			t.Errorf("Evaluate(%v, %s, %v) = %d, want %d", tc.who, tc.action, tc.res, got, tc.want)
		}
	}
}

func FuzzParsePolicy(f *testing.F) {
	for _, tc := range policyErrors {
		f.Add(tc.doc)
	}
	f.Add(`{"Version":"2012-10-17","Statement":[{"Sid":"a","Effect":"Deny","Principal":{"AWS":"AKIA*"},"Action":["dynamodb:*"],"Resource":["arn:aws:dynamodb:*:*:table/?"]}]}`)
	f.Fuzz(func(t *testing.T, doc string) {
		p, err := ParsePolicy([]byte(doc)) // must not panic
		if err != nil {
			return
		}
		for _, s := range p.Statements {
			if s.Effect != "Allow" && s.Effect != "Deny" || len(s.Principal) == 0 || len(s.Resource) == 0 {
				t.Fatalf("accepted an incomplete statement %+v", s)
			}
		}
		p.Evaluate([]string{"AKIA1"}, "dynamodb:GetItem", []string{"arn:aws:dynamodb:us-east-1:1:table/t"})
	})
}

func TestSpoolTornTailAndRecovery(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(dir, 1<<20, discard)
	if err != nil {
		t.Fatal(err)
	}
	recs := [][]byte{[]byte(`{"a":1}`), []byte(`{"b":2}`)}
	if err := s.append(recs, 0); err != nil {
		t.Fatal(err)
	}
	// A crash mid-write: half a frame after the acknowledged ones.
	seq := s.activeSeg.seq
	f, err := os.OpenFile(filepath.Join(dir, filepathName(seq)), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{50, 0, 0, 0, 1, 2, 3, 4, '{', '"'})
	f.Close()
	// The process dies without closing the spool; a new one opens the directory.
	s2, err := openSpool(dir, 1<<20, discard)
	if err != nil {
		t.Fatal(err)
	}
	seg, ok := s2.oldest()
	if !ok {
		t.Fatal("recovered spool has no segment")
	}
	got, err := s2.read(seg)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got[0]) != `{"a":1}` || string(got[1]) != `{"b":2}` {
		t.Fatalf("recovered %q", got)
	}
	if err := s2.remove(seg); err != nil {
		t.Fatal(err)
	}
	if used, _ := s2.size(); used != 0 {
		t.Errorf("used = %d after removing the only segment", used)
	}
	// A flipped bit is detected by the CRC.
	if recs, rest := decodeFrames([]byte{1, 0, 0, 0, 0, 0, 0, 0, 'x'}); len(recs) != 0 || rest != 9 {
		t.Errorf("corrupt frame accepted: %q %d", recs, rest)
	}
}

func filepathName(seq uint64) string { return filepath.Base((&spool{}).path(seq)) }

var discard = slogDiscard()

// fillARN replaced a strings.Replacer built per call (a hot spot under load);
// it must fill templates exactly as that Replacer did.
func FuzzFillARN(f *testing.F) {
	for _, tmpl := range []string{
		"arn:aws:dynamodb:{region}:{account}:table/{value}", "{value}", "arn:aws:s3:::{bucket}/{key}",
		"arn:aws:s3:::{bucket}", "", "{", "{{value}}", "{valu", "}{key}{", "{region}{region}x{unknown}",
	} {
		f.Add(tmpl, "us-east-1", "123456789012", "b", "k/{value}", "Music")
	}
	f.Fuzz(func(t *testing.T, tmpl, region, account, bucket, key, value string) {
		want := strings.NewReplacer("{region}", region, "{account}", account, "{bucket}", bucket, "{key}", key, "{value}", value).Replace(tmpl)
		if got := fillARN(tmpl, region, account, bucket, key, value); got != want {
			t.Fatalf("fillARN(%q) = %q, want %q", tmpl, got, want)
		}
	})
}

// TestCipherSuiteNames: tlsDetails names suites as CloudTrail's records do,
// OpenSSL's names up to TLS 1.2 and IANA's for TLS 1.3.
func TestCipherSuiteNames(t *testing.T) {
	for id, want := range map[uint16]string{
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: "ECDHE-RSA-AES128-GCM-SHA256",
		tls.TLS_AES_128_GCM_SHA256:                "TLS_AES_128_GCM_SHA256",
		tls.TLS_AES_256_GCM_SHA384:                "TLS_AES_256_GCM_SHA384",
	} {
		if got := cipherSuiteName(id); got != want {
			t.Errorf("%#04x: got %s, want %s", id, got, want)
		}
	}
}
