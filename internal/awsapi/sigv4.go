package awsapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Scope is the credential scope of a verified request.
type Scope struct {
	AccessKeyID string
	Date        string // YYYYMMDD from the credential scope
	Region      string
	Service     string
}

// Verifier checks SigV4 signatures against a set of known access keys.
type Verifier struct {
	Lookup  func(accessKeyID string) (secret string, ok bool)
	Now     func() time.Time // nil = time.Now
	MaxSkew time.Duration    // 0 = 15 * time.Minute
}

const (
	sigV4Algorithm = "AWS4-HMAC-SHA256"
	amzDateFormat  = "20060102T150405Z"
	scopeDateForm  = "20060102"

	messageBadSignature = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

// Verify checks r's SigV4 signature, sent in the Authorization header. body
// is the full request body, already read by the caller; Verify does not read
// r.Body. On success it returns the credential scope; the caller decides
// whether the region and service in it are acceptable.
//
// The signature is recomputed with aws-sdk-go-v2's signer on a copy of the
// request that carries exactly the headers the client signed, so the
// canonical-request rules are the SDK's, not ours. X-Amz-Date must be sent
// and signed (signing with the Date header alone is rejected), and a signed
// X-Amz-Content-Sha256 must be the body's hash. Presigned (query-string)
// authentication is rejected with IncompleteSignatureException: CloudTrail
// and CloudWatch Logs clients sign the Authorization header, and we do not
// need it.
func (v *Verifier) Verify(r *http.Request, body []byte) (Scope, error) {
	auth, signedAt, secret, err := v.header(r)
	if err != nil {
		return Scope{}, err
	}
	payloadHash, err := payloadHash(r, auth, body)
	if err != nil {
		return Scope{}, err
	}
	want, err := recomputeSignature(r, auth, secret, payloadHash, signedAt)
	if err != nil {
		return Scope{}, fmt.Errorf("verify sigv4: %w", err)
	}
	got, err := hex.DecodeString(auth.signature)
	if err != nil || !hmac.Equal(got, want) {
		return Scope{}, Errorf(codeInvalidSignature, messageBadSignature)
	}
	return auth.scope, nil
}

// Precheck checks what can be checked before the request body is read: that
// the Authorization header is well formed, signed at an acceptable time, by a
// known key. A request that fails it is answered without reading its body, so
// an unauthenticated client cannot make the server buffer anything. Verify
// must still be called with the body.
func (v *Verifier) Precheck(r *http.Request) (Scope, error) {
	auth, _, _, err := v.header(r)
	return auth.scope, err
}

// header checks the Authorization header: its form, the signing time, and
// that the key is known, whose secret it returns.
func (v *Verifier) header(r *http.Request) (authorization, time.Time, string, error) {
	header := r.Header.Get("Authorization")
	if header == "" {
		if r.URL.Query().Has("X-Amz-Algorithm") {
			return authorization{}, time.Time{}, "", Errorf(codeIncompleteSignature,
				"Query-string (presigned) authentication is not supported; sign the Authorization header instead.")
		}
		return authorization{}, time.Time{}, "", Errorf(codeMissingAuthentication, "Request is missing Authentication Token")
	}
	auth, err := parseAuthorization(header)
	if err != nil {
		return authorization{}, time.Time{}, "", err
	}
	signedAt, err := signingTime(r, auth)
	if err != nil {
		return authorization{}, time.Time{}, "", err
	}
	if err := v.checkSkew(signedAt); err != nil {
		return authorization{}, time.Time{}, "", err
	}
	secret, ok := v.Lookup(auth.scope.AccessKeyID)
	if !ok {
		return authorization{}, time.Time{}, "", Errorf(codeUnrecognizedClient, "The security token included in the request is invalid.")
	}
	return auth, signedAt, secret, nil
}

// authorization is a parsed "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." header.
type authorization struct {
	scope         Scope
	signedHeaders []string // lower-case, in the client's order
	signature     string   // hex
}

// parseAuthorization parses an Authorization header. The messages follow
// AWS's, without AWS's echo of the whole header.
func parseAuthorization(header string) (authorization, error) {
	algorithm, rest, _ := strings.Cut(header, " ")
	if algorithm != sigV4Algorithm {
		return authorization{}, Errorf(codeIncompleteSignature,
			"Unsupported authorization algorithm '%s'; only %s is supported.", algorithm, sigV4Algorithm)
	}
	params := map[string]string{}
	for _, pair := range strings.Split(rest, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		k, val, ok := strings.Cut(pair, "=")
		if !ok {
			return authorization{}, Errorf(codeIncompleteSignature,
				"'%s' not a valid key=value pair (missing equal-sign) in Authorization header.", pair)
		}
		params[k] = val
	}
	var missing []string
	for _, k := range []string{"Credential", "Signature", "SignedHeaders"} {
		if params[k] == "" {
			missing = append(missing, fmt.Sprintf("Authorization header requires '%s' parameter.", k))
		}
	}
	if len(missing) > 0 {
		return authorization{}, Errorf(codeIncompleteSignature, "%s", strings.Join(missing, " "))
	}
	scope, err := parseCredential(params["Credential"])
	if err != nil {
		return authorization{}, err
	}
	signed := strings.Split(strings.ToLower(params["SignedHeaders"]), ";")
	if slices.Contains(signed, "") {
		return authorization{}, Errorf(codeIncompleteSignature,
			"SignedHeaders '%s' contains an empty header name.", params["SignedHeaders"])
	}
	if !slices.Contains(signed, "host") {
		return authorization{}, Errorf(codeIncompleteSignature,
			"'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	return authorization{scope: scope, signedHeaders: signed, signature: params["Signature"]}, nil
}

// parseCredential parses "<AccessKeyId>/<YYYYMMDD>/<region>/<service>/aws4_request".
func parseCredential(credential string) (Scope, error) {
	parts := strings.Split(credential, "/")
	if len(parts) != 5 || slices.Contains(parts, "") {
		return Scope{}, Errorf(codeIncompleteSignature,
			"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'.", credential)
	}
	if parts[4] != "aws4_request" {
		return Scope{}, Errorf(codeIncompleteSignature,
			"Credential should be scoped with a valid terminator: 'aws4_request', not '%s'.", parts[4])
	}
	if _, err := time.Parse(scopeDateForm, parts[1]); err != nil || len(parts[1]) != len(scopeDateForm) {
		return Scope{}, Errorf(codeIncompleteSignature,
			"Credential should be scoped to a date in YYYYMMDD form, not '%s'.", parts[1])
	}
	return Scope{AccessKeyID: parts[0], Date: parts[1], Region: parts[2], Service: parts[3]}, nil
}

// signingTime returns the time the request was signed at, from X-Amz-Date.
//
// Signing with only the Date header is legal SigV4 but cannot be verified by
// recomputing with the SDK signer, which always signs x-amz-date; every AWS
// SDK and the AWS CLI send and sign X-Amz-Date, so we require it.
func signingTime(r *http.Request, auth authorization) (time.Time, error) {
	value := r.Header.Get("X-Amz-Date")
	switch {
	case value == "" && r.Header.Get("Date") != "":
		return time.Time{}, Errorf(codeIncompleteSignature,
			"Signing with the 'Date' header is not supported; send and sign 'X-Amz-Date'.")
	case value == "":
		return time.Time{}, Errorf(codeIncompleteSignature,
			"Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	t, err := time.Parse(amzDateFormat, value)
	if err != nil || t.Format(amzDateFormat) != value {
		return time.Time{}, Errorf(codeIncompleteSignature,
			"Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", value)
	}
	if !slices.Contains(auth.signedHeaders, "x-amz-date") {
		return time.Time{}, Errorf(codeIncompleteSignature,
			"'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.")
	}
	if day := t.Format(scopeDateForm); day != auth.scope.Date {
		return time.Time{}, Errorf(codeInvalidSignature,
			"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			auth.scope.Date, day, value)
	}
	return t, nil
}

// checkSkew rejects a signing time further than MaxSkew from now, in AWS's words.
func (v *Verifier) checkSkew(signedAt time.Time) error {
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	now = now.UTC()
	skew := v.MaxSkew
	if skew == 0 {
		skew = 15 * time.Minute
	}
	minutes := strconv.FormatFloat(skew.Minutes(), 'f', -1, 64)
	if earliest := now.Add(-skew); signedAt.Before(earliest) {
		return Errorf(codeInvalidSignature, "Signature expired: %s is now earlier than %s (%s - %s min.)",
			signedAt.Format(amzDateFormat), earliest.Format(amzDateFormat), now.Format(amzDateFormat), minutes)
	}
	if latest := now.Add(skew); signedAt.After(latest) {
		return Errorf(codeInvalidSignature, "Signature not yet current: %s is still later than %s (%s + %s min.)",
			signedAt.Format(amzDateFormat), latest.Format(amzDateFormat), now.Format(amzDateFormat), minutes)
	}
	return nil
}

// payloadHash returns the hex SHA-256 of body. A signed X-Amz-Content-Sha256
// must state that same hash: accepting another value (UNSIGNED-PAYLOAD, or a
// stale hash) would let the body change without breaking the signature.
func payloadHash(r *http.Request, auth authorization, body []byte) (string, error) {
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	if slices.Contains(auth.signedHeaders, "x-amz-content-sha256") && r.Header.Get("X-Amz-Content-Sha256") != hash {
		return "", Errorf(codeInvalidSignature,
			"The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	return hash, nil
}

// recomputeSignature signs a copy of r with secret and returns the signature.
//
// The copy carries only what the client signed, so that the SDK signer's set
// of signed headers equals the client's:
//   - host and x-amz-date are not copied: the signer always adds them itself
//     (from Host and the signing time, which formats back to X-Amz-Date);
//   - content-length is signed by the SDK exactly when ContentLength > 0, so
//     it is carried in ContentLength (0 when the client did not sign it);
//   - everything else is stored under its lower-case key, bypassing
//     http.Header canonicalisation. The signer's ignore list (User-Agent,
//     X-Amzn-Trace-Id, Expect, Transfer-Encoding, Authorization) matches
//     canonical keys only, so a header some other client chose to sign, such
//     as user-agent, is still signed here.
//   - no session token is passed to the signer, so X-Amz-Security-Token is
//     signed only when the client signed it, with the value it sent.
func recomputeSignature(r *http.Request, auth authorization, secret, payloadHash string, signedAt time.Time) ([]byte, error) {
	req := &http.Request{
		Method: r.Method,
		URL:    &url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery},
		Host:   r.Host,
		Header: http.Header{},
	}
	for _, name := range auth.signedHeaders {
		switch name {
		case "host", "x-amz-date":
		case "content-length":
			n, err := strconv.ParseInt(r.Header.Get("Content-Length"), 10, 64)
			if err != nil {
				n = r.ContentLength
			}
			req.ContentLength = n
		default:
			req.Header[name] = r.Header.Values(name)
		}
	}
	creds := aws.Credentials{AccessKeyID: auth.scope.AccessKeyID, SecretAccessKey: secret}
	// A fresh Signer per request: the SDK caches derived keys by access key
	// and day, not by secret, so a shared one would keep accepting a rotated
	// secret until midnight.
	err := v4.NewSigner().SignHTTP(context.Background(), creds, req, payloadHash,
		auth.scope.Service, auth.scope.Region, signedAt)
	if err != nil {
		return nil, fmt.Errorf("sign request copy: %w", err)
	}
	_, signature, _ := strings.Cut(req.Header.Get("Authorization"), "Signature=")
	sig, err := hex.DecodeString(signature)
	if err != nil || len(sig) == 0 {
		return nil, fmt.Errorf("sign request copy: no hex signature in the signer's Authorization header")
	}
	return sig, nil
}
