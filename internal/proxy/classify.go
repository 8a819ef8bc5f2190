package proxy

import (
	"net/http"
	"net/url"
	"strings"
)

// Protocols the proxy tells apart.
const (
	protoUnknown = iota
	protoJSON    // X-Amz-Target: awsJson1_0 / awsJson1_1
	protoQuery   // Action=...: awsQuery / ec2Query
	protoREST    // method + path: restJson1 / restXml
)

// call is what the proxy learns about a request before forwarding it.
type call struct {
	Service     string // SigV4 signing name, e.g. dynamodb
	Region      string
	AccessKeyID string
	Op          string // eventName
	Protocol    int
	Bucket, Key string     // REST S3 addressing
	Query       url.Values // query-protocol parameters (form or URL), REST query
}

// signature extracts the signing name, region and access key ID from a SigV4
// (or SigV4a) Authorization header or a presigned URL's X-Amz-Credential.
func signature(r *http.Request) (service, region, akid string) {
	var cred string
	if h := r.Header.Get("Authorization"); h != "" {
		i := strings.Index(h, "Credential=")
		if i < 0 {
			return "", "", ""
		}
		cred = h[i+len("Credential="):]
		if j := strings.IndexAny(cred, ", "); j >= 0 {
			cred = cred[:j]
		}
	} else {
		cred = r.URL.Query().Get("X-Amz-Credential")
	}
	parts := strings.Split(cred, "/")
	switch {
	case len(parts) == 5 && parts[4] == "aws4_request": // AKID/date/region/service/aws4_request
		return parts[3], parts[2], parts[0]
	case len(parts) == 4 && parts[3] == "aws4_request": // SigV4a: AKID/date/service/aws4_request
		region = r.Header.Get("X-Amz-Region-Set")
		if region == "" {
			region = r.URL.Query().Get("X-Amz-Region-Set")
		}
		if i := strings.IndexByte(region, ','); i >= 0 {
			region = region[:i]
		}
		return parts[2], region, parts[0]
	}
	return "", "", ""
}

// classify fills the call from the request line and headers, and from body,
// the first bytes of the body (form-encoded query-protocol requests carry
// Action there).
func classify(r *http.Request, body []byte) call {
	c := call{}
	c.Service, c.Region, c.AccessKeyID = signature(r)
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		c.Protocol = protoJSON
		c.Op = t[strings.LastIndexByte(t, '.')+1:]
		if c.Service == "" {
			// No signature: guess the service from the target prefix (DynamoDB_20120810 → dynamodb).
			pre := t[:max(strings.LastIndexByte(t, '.'), 0)]
			pre = pre[strings.LastIndexByte(pre, '.')+1:]
			if i := strings.IndexByte(pre, '_'); i > 0 {
				pre = pre[:i]
			}
			c.Service = strings.ToLower(pre)
		}
		return c
	}
	q := r.URL.Query()
	if a := q.Get("Action"); a != "" {
		c.Protocol, c.Op, c.Query = protoQuery, a, q
		return c
	}
	if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") != "" {
			c.Protocol, c.Op, c.Query = protoQuery, form.Get("Action"), form
			return c
		}
	}
	c.Protocol, c.Query = protoREST, q
	spec := specFor(c.Service)
	if spec.REST == "s3" {
		c.Bucket, c.Key = s3Address(r)
		c.Op = s3Operation(r.Method, c.Bucket, c.Key, q, r.Header)
		return c
	}
	c.Op = restFallbackName(r.Method, r.URL.Path)
	return c
}

// restFallbackName names a REST call of a service without a route table:
// the method and the first path segment that is not a version, e.g.
// "GET /functions". The path itself goes into requestParameters.
func restFallbackName(method, path string) string {
	for _, seg := range strings.Split(strings.Trim(path, "/"), "/") {
		if seg == "" || (len(seg) > 0 && seg[0] >= '0' && seg[0] <= '9') {
			continue
		}
		return method + " /" + seg
	}
	return method + " /"
}

// s3Address returns the bucket and key of an S3 request, virtual-hosted
// (bucket.s3.<region>.amazonaws.com, bucket.s3.localhost...) or path style.
func s3Address(r *http.Request) (bucket, key string) {
	host := r.Host
	if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	path := r.URL.EscapedPath()
	unesc := func(s string) string {
		if u, err := url.PathUnescape(s); err == nil {
			return u
		}
		return s
	}
	if i := strings.Index(host, ".s3."); i > 0 || strings.HasPrefix(host, "s3.") || strings.Contains(host, ".s3-") {
		if i > 0 {
			return host[:i], unesc(strings.TrimPrefix(path, "/"))
		}
	}
	p := strings.TrimPrefix(path, "/")
	if p == "" {
		return "", ""
	}
	b, k, _ := strings.Cut(p, "/")
	return unesc(b), unesc(k)
}

// s3Route is one row of the S3 operation table: method, level (service,
// bucket, object), a query subresource or header that must be present, and the
// operation. Rows are tried in order; the first match wins.
type s3Route struct {
	method, level, sub, header, op string
}

var s3Routes = []s3Route{
	{"GET", "service", "", "", "ListBuckets"},
	{"GET", "bucket", "list-type", "", "ListObjectsV2"},
	{"GET", "bucket", "versions", "", "ListObjectVersions"},
	{"GET", "bucket", "uploads", "", "ListMultipartUploads"},
	{"GET", "bucket", "location", "", "GetBucketLocation"},
	{"GET", "bucket", "lifecycle", "", "GetBucketLifecycleConfiguration"},
	{"GET", "bucket", "notification", "", "GetBucketNotificationConfiguration"},
	{"GET", "bucket", "publicAccessBlock", "", "GetPublicAccessBlock"},
	{"GET", "bucket", "object-lock", "", "GetObjectLockConfiguration"},
	{"GET", "bucket", "", "", "ListObjects"},
	{"PUT", "bucket", "lifecycle", "", "PutBucketLifecycleConfiguration"},
	{"PUT", "bucket", "notification", "", "PutBucketNotificationConfiguration"},
	{"PUT", "bucket", "publicAccessBlock", "", "PutPublicAccessBlock"},
	{"PUT", "bucket", "object-lock", "", "PutObjectLockConfiguration"},
	{"PUT", "bucket", "", "", "CreateBucket"},
	{"DELETE", "bucket", "lifecycle", "", "DeleteBucketLifecycle"},
	{"DELETE", "bucket", "publicAccessBlock", "", "DeletePublicAccessBlock"},
	{"DELETE", "bucket", "", "", "DeleteBucket"},
	{"HEAD", "bucket", "", "", "HeadBucket"},
	{"POST", "bucket", "delete", "", "DeleteObjects"},
	{"GET", "object", "uploadId", "", "ListParts"},
	{"GET", "object", "acl", "", "GetObjectAcl"},
	{"GET", "object", "tagging", "", "GetObjectTagging"},
	{"GET", "object", "attributes", "", "GetObjectAttributes"},
	{"GET", "object", "retention", "", "GetObjectRetention"},
	{"GET", "object", "legal-hold", "", "GetObjectLegalHold"},
	{"GET", "object", "", "", "GetObject"},
	{"HEAD", "object", "", "", "HeadObject"},
	{"PUT", "object", "partNumber", "X-Amz-Copy-Source", "UploadPartCopy"},
	{"PUT", "object", "partNumber", "", "UploadPart"},
	{"PUT", "object", "acl", "", "PutObjectAcl"},
	{"PUT", "object", "tagging", "", "PutObjectTagging"},
	{"PUT", "object", "retention", "", "PutObjectRetention"},
	{"PUT", "object", "legal-hold", "", "PutObjectLegalHold"},
	{"PUT", "object", "", "X-Amz-Copy-Source", "CopyObject"},
	{"PUT", "object", "", "", "PutObject"},
	{"DELETE", "object", "uploadId", "", "AbortMultipartUpload"},
	{"DELETE", "object", "tagging", "", "DeleteObjectTagging"},
	{"DELETE", "object", "", "", "DeleteObject"},
	{"POST", "object", "uploads", "", "CreateMultipartUpload"},
	{"POST", "object", "uploadId", "", "CompleteMultipartUpload"},
	{"POST", "object", "restore", "", "RestoreObject"},
	{"POST", "object", "select", "", "SelectObjectContent"},
}

// s3Subresources name bucket configurations whose operations follow the
// pattern <Verb>Bucket<Name> (GET ?tagging → GetBucketTagging).
var s3Subresources = map[string]string{
	"acl": "Acl", "policy": "Policy", "tagging": "Tagging", "versioning": "Versioning", "cors": "Cors",
	"encryption": "Encryption", "website": "Website", "logging": "Logging", "replication": "Replication",
	"ownershipControls": "OwnershipControls", "accelerate": "AccelerateConfiguration",
	"requestPayment": "RequestPayment", "policyStatus": "PolicyStatus", "intelligent-tiering": "IntelligentTieringConfiguration",
	"inventory": "InventoryConfiguration", "metrics": "MetricsConfiguration", "analytics": "AnalyticsConfiguration",
}

var s3Verbs = map[string]string{"GET": "Get", "PUT": "Put", "DELETE": "Delete"}

func s3Operation(method, bucket, key string, q url.Values, h http.Header) string {
	if id := q.Get("x-id"); id != "" && isIdent(id) {
		// The AWS SDKs name the operation for the service's own routing.
		return id
	}
	level := "object"
	switch {
	case bucket == "":
		level = "service"
	case key == "":
		level = "bucket"
	}
	for _, rt := range s3Routes {
		if rt.method != method || rt.level != level {
			continue
		}
		if rt.sub != "" && !q.Has(rt.sub) {
			continue
		}
		if rt.header != "" && h.Get(rt.header) == "" {
			continue
		}
		if rt.sub == "" && level == "bucket" {
			// A bucket configuration subresource takes precedence over the bare route.
			if op := s3SubresourceOp(method, q); op != "" {
				return op
			}
		}
		return rt.op
	}
	if level == "bucket" {
		if op := s3SubresourceOp(method, q); op != "" {
			return op
		}
	}
	return restFallbackName(method, "/")
}

func s3SubresourceOp(method string, q url.Values) string {
	verb, ok := s3Verbs[method]
	if !ok {
		return ""
	}
	for sub, name := range s3Subresources {
		if q.Has(sub) {
			return verb + "Bucket" + name
		}
	}
	return ""
}

// isIdent reports whether s looks like an operation name (letters and digits).
func isIdent(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
