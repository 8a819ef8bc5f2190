package cloudtrail

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/opentrail/opentrail/internal/awsapi"
)

// Checks of the values CreateTrail, UpdateTrail and the name-or-ARN parameters
// carry. Each returns an *awsapi.Error whose message names the value and says
// what was expected.

// checkTrailName applies the trail naming rules of "CloudTrail trail naming
// requirements" (CloudTrail User Guide) and of InvalidTrailNameException.
func checkTrailName(name string) error {
	bad := func(format string, args ...any) error {
		return awsapi.Errorf("InvalidTrailNameException", "Trail name %q is not valid: "+format, append([]any{name}, args...)...)
	}
	if n := len(name); n < 3 || n > 128 {
		return bad("a trail name must be 3 to 128 characters long; it has %d.", n)
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		if !isAlnum(b) && !isTrailPunct(b) {
			r, _ := utf8.DecodeRuneInString(name[i:])
			return bad("character %q at position %d is not allowed; use only ASCII letters, digits, periods (.), underscores (_) and hyphens (-).", r, i)
		}
	}
	if !isAlnum(name[0]) {
		return bad("it must start with a letter or a digit, not %q.", name[0])
	}
	if !isAlnum(name[len(name)-1]) {
		return bad("it must end with a letter or a digit, not %q.", name[len(name)-1])
	}
	for i := 1; i < len(name); i++ {
		if isTrailPunct(name[i-1]) && isTrailPunct(name[i]) {
			return bad("%q at position %d puts two of periods, underscores and hyphens next to each other.", name[i-1:i+1], i-1)
		}
	}
	if looksLikeIPv4(name) {
		return bad("a trail name must not be formatted as an IP address.")
	}
	return nil
}

func isAlnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

func isTrailPunct(b byte) bool { return b == '.' || b == '_' || b == '-' }

// looksLikeIPv4 reports whether s is a dotted quad such as 192.168.5.4.
func looksLikeIPv4(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		if len(p) == 0 || len(p) > 3 {
			return false
		}
		n, err := strconv.Atoi(p)
		if err != nil || n > 255 {
			return false
		}
	}
	return true
}

// trailRef is a parsed name-or-ARN parameter. region and account are set only
// for an ARN.
type trailRef struct {
	given   string
	name    string
	region  string
	account string
}

func (r trailRef) isARN() bool { return r.region != "" }

var (
	partitionRE = `aws(?:-[a-z]+)*`
	regionRE    = `[a-z]{2}(?:-[a-z]+)+-[0-9]+`
	trailARNRE  = regexp.MustCompile(`^arn:(` + partitionRE + `):cloudtrail:(` + regionRE + `):([0-9]{12}):trail/(.+)$`)
)

// parseTrailRef parses a Name or TrailName parameter: a trail name or a trail ARN
// arn:<partition>:cloudtrail:<region>:<account>:trail/<name>.
func (s *Service) parseTrailRef(v string) (trailRef, error) {
	if !strings.HasPrefix(v, "arn:") {
		if err := checkTrailName(v); err != nil {
			return trailRef{}, err
		}
		return trailRef{given: v, name: v}, nil
	}
	m := trailARNRE.FindStringSubmatch(v)
	if m == nil || m[1] != s.part {
		return trailRef{}, awsapi.Errorf("CloudTrailARNInvalidException",
			"%s is not a valid trail ARN; a trail ARN has the form arn:%s:cloudtrail:us-east-2:123456789012:trail/MyTrail.", v, s.part)
	}
	if err := checkTrailName(m[4]); err != nil {
		return trailRef{}, awsapi.Errorf("CloudTrailARNInvalidException", "%s is not a valid trail ARN: %s", v, err.(*awsapi.Error).Message)
	}
	return trailRef{given: v, name: m[4], region: m[2], account: m[3]}, nil
}

// checkBucketName applies Amazon S3's general purpose bucket naming rules.
func checkBucketName(b string) error {
	bad := func(format string, args ...any) error {
		return awsapi.Errorf("InvalidS3BucketNameException", "S3 bucket name %q is not valid: "+format, append([]any{b}, args...)...)
	}
	if n := len(b); n < 3 || n > 63 {
		return bad("a bucket name must be 3 to 63 characters long; it has %d.", n)
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			r, _ := utf8.DecodeRuneInString(b[i:])
			return bad("character %q at position %d is not allowed; use only lowercase letters, digits, periods (.) and hyphens (-).", r, i)
		}
	}
	if first, last := b[0], b[len(b)-1]; first == '.' || first == '-' || last == '.' || last == '-' {
		return bad("it must begin and end with a lowercase letter or a digit.")
	}
	if strings.Contains(b, "..") {
		return bad("it must not contain two adjacent periods.")
	}
	if looksLikeIPv4(b) {
		return bad("it must not be formatted as an IP address.")
	}
	if strings.HasPrefix(b, "xn--") || strings.HasSuffix(b, "-s3alias") || strings.HasSuffix(b, "--ol-s3") {
		return bad("the prefix xn-- and the suffixes -s3alias and --ol-s3 are reserved.")
	}
	return nil
}

// maxS3PrefixLen is the documented maximum length of S3KeyPrefix, in characters.
const maxS3PrefixLen = 200

// reservedSegment starts every name the folder bucket backend keeps for itself
// (objstore.FS: .opentrail-meta, .opentrail-tmp-*).
const reservedSegment = ".opentrail-"

// checkS3Prefix applies the rules for S3KeyPrefix. AWS documents only the
// length; the rest makes every key the trail writes, prefix + "/AWSLogs/...",
// a clean relative path that both bucket backends store and readers (the AWS
// CLI's validate-logs, Athena) find again: S3's object key guidelines advise
// against control characters and backslashes, and "." and ".." segments and
// empty segments do not survive a path-style client or a folder bucket.
func checkS3Prefix(p string) error {
	bad := func(format string, args ...any) error {
		return awsapi.Errorf("InvalidS3PrefixException", "S3KeyPrefix %q is not valid: "+format, append([]any{p}, args...)...)
	}
	if n := utf8.RuneCountInString(p); n > maxS3PrefixLen {
		return awsapi.Errorf("InvalidS3PrefixException", "S3KeyPrefix is %d characters long; the maximum is %d.", n, maxS3PrefixLen)
	}
	if p == "" {
		return nil
	}
	for i, r := range p {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return bad("character %q at position %d is not allowed.", r, i)
		}
	}
	if p[0] == '/' || p[len(p)-1] == '/' {
		return bad("it must not start or end with /; CloudTrail puts the / between the prefix and AWSLogs/.")
	}
	for _, seg := range strings.Split(p, "/") {
		switch {
		case seg == "":
			return bad("it has an empty path segment (//).")
		case seg == "." || seg == "..":
			return bad("path segment %q is not allowed.", seg)
		case strings.HasPrefix(seg, reservedSegment):
			return bad("path segment %q starts with %q, which OpenTrail reserves for bucket metadata.", seg, reservedSegment)
		}
	}
	return nil
}

var (
	snsNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)
	snsARNRE  = regexp.MustCompile(`^arn:` + partitionRE + `:sns:` + regionRE + `:[0-9]{12}:([A-Za-z0-9_-]{1,256})$`)
)

// snsTopicARN turns SnsTopicName (a topic name or ARN) into the topic ARN.
func (s *Service) snsTopicARN(v, region, account string) (string, error) {
	if strings.HasPrefix(v, "arn:") {
		if !snsARNRE.MatchString(v) {
			return "", awsapi.Errorf("InvalidSnsTopicNameException",
				"SnsTopicName %s is not a valid topic ARN; expected arn:%s:sns:<region>:<account>:<topic name>.", v, s.part)
		}
		return v, nil
	}
	if !snsNameRE.MatchString(v) {
		return "", awsapi.Errorf("InvalidSnsTopicNameException",
			"SnsTopicName %q is not valid: a topic name has 1 to 256 ASCII letters, digits, underscores (_) and hyphens (-).", v)
	}
	return fmt.Sprintf("arn:%s:sns:%s:%s:%s", s.part, region, account, v), nil
}

// snsTopicName is the topic name of a topic ARN: what the deprecated
// SnsTopicName response member carries.
func snsTopicName(arn string) string {
	if m := snsARNRE.FindStringSubmatch(arn); m != nil {
		return m[1]
	}
	return arn
}

var (
	kmsARNRE   = regexp.MustCompile(`^arn:` + partitionRE + `:kms:` + regionRE + `:[0-9]{12}:(key|alias)/[A-Za-z0-9/_-]+$`)
	kmsAliasRE = regexp.MustCompile(`^alias/[A-Za-z0-9/_-]{1,250}$`)
	kmsKeyIDRE = regexp.MustCompile(`^(?:mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)
)

// kmsKeyARN turns KmsKeyId (key ID, alias name, key ARN or alias ARN) into an
// ARN, the form GetTrail reports it in. OpenTrail has no KMS to resolve an
// alias to its key, so an alias name becomes an alias ARN.
func (s *Service) kmsKeyARN(v, region, account string) (string, error) {
	switch {
	case kmsARNRE.MatchString(v):
		return v, nil
	case kmsAliasRE.MatchString(v):
		return fmt.Sprintf("arn:%s:kms:%s:%s:%s", s.part, region, account, v), nil
	case kmsKeyIDRE.MatchString(v):
		return fmt.Sprintf("arn:%s:kms:%s:%s:key/%s", s.part, region, account, v), nil
	}
	return "", awsapi.Errorf("InvalidKmsKeyIdException",
		"KmsKeyId %q is not valid: use a key ID (12345678-1234-1234-1234-123456789012), an alias name (alias/MyAlias), or a key or alias ARN.", v)
}

var (
	logGroupARNRE = regexp.MustCompile(`^arn:` + partitionRE + `:logs:` + regionRE + `:([0-9]{12}):log-group:[A-Za-z0-9._/#-]{1,512}(?::\*)?$`)
	roleARNRE     = regexp.MustCompile(`^arn:` + partitionRE + `:iam::([0-9]{12}):role/[A-Za-z0-9+=,.@_/-]{1,512}$`)
)

func checkLogGroupARN(v, account string) error {
	m := logGroupARNRE.FindStringSubmatch(v)
	if m == nil {
		return awsapi.Errorf("InvalidCloudWatchLogsLogGroupArnException",
			"CloudWatchLogsLogGroupArn %q is not a log group ARN; expected arn:aws:logs:<region>:<account>:log-group:<name>:*.", v)
	}
	if m[1] != account {
		return awsapi.Errorf("InvalidCloudWatchLogsLogGroupArnException",
			"CloudWatchLogsLogGroupArn %s belongs to account %s; the log group must be in account %s.", v, m[1], account)
	}
	return nil
}

func checkRoleARN(v, account string) error {
	m := roleARNRE.FindStringSubmatch(v)
	if m == nil {
		return awsapi.Errorf("InvalidCloudWatchLogsRoleArnException",
			"CloudWatchLogsRoleArn %q is not an IAM role ARN; expected arn:aws:iam::<account>:role/<name>.", v)
	}
	if m[1] != account {
		return awsapi.Errorf("InvalidCloudWatchLogsRoleArnException",
			"CloudWatchLogsRoleArn %s belongs to account %s; the role must be in account %s.", v, m[1], account)
	}
	return nil
}
