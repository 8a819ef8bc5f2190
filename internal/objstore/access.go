package objstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Access is who may deliver into a bucket: the account that owns it, and its
// bucket policy (an IAM policy document, as S3's GetBucketPolicy returns it).
// A trail may deliver into a bucket its account owns, or one whose policy
// allows the CloudTrail service to put its objects, as in AWS.
type Access struct {
	// Owner is the owning account's 12-digit ID; "" means the bucket has no
	// owner and anyone may deliver into it (a store with no owner configured).
	Owner string `json:"owner,omitempty"`
	// Policy is the bucket policy; nil or empty means none.
	Policy json.RawMessage `json:"policy,omitempty"`
}

// AccessReader is implemented by stores that know who may deliver into their
// buckets (both FS and S3 do).
type AccessReader interface {
	// BucketAccess returns the bucket's owner and policy, or ErrNotFound.
	BucketAccess(ctx context.Context, bucket string) (Access, error)
}

// ErrAccessDenied is returned by CheckCloudTrail when the bucket's owner is
// another account and its policy does not allow the delivery.
var ErrAccessDenied = errors.New("objstore: bucket policy does not allow delivery")

// CloudTrailService is the service principal CloudTrail delivers as.
const CloudTrailService = "cloudtrail.amazonaws.com"

// CloudTrailDelivery is one delivery a trail makes, as the bucket policy sees it.
type CloudTrailDelivery struct {
	Account string   // the trail's account
	Source  string   // the ARN of the trail or event data store delivering (condition key aws:SourceArn)
	Keys    []string // object keys the trail writes
	// Resource describes Keys in messages, relative to the prefix (e.g. "AWSLogs/<account>/*").
	Resource string
}

// CheckCloudTrail returns nil if d may be delivered into bucket under a: the
// trail's account owns it, it has no owner, or its policy allows
// cloudtrail.amazonaws.com s3:PutObject on every key (with aws:SourceArn,
// aws:SourceAccount and s3:x-amz-acl = bucket-owner-full-control, as CloudTrail
// sends them) and denies none. Otherwise it returns an error wrapping
// ErrAccessDenied; a policy it cannot read is an error too, never a grant.
func CheckCloudTrail(a Access, bucket string, d CloudTrailDelivery) error {
	if a.Owner == "" || a.Owner == d.Account {
		return nil
	}
	if len(a.Policy) == 0 {
		return fmt.Errorf("bucket %s has no policy granting account %s: %w", bucket, d.Account, ErrAccessDenied)
	}
	p, err := ParsePolicy(a.Policy)
	if err != nil {
		return fmt.Errorf("bucket %s: %w: %w", bucket, ErrAccessDenied, err)
	}
	for _, key := range d.Keys {
		req := PolicyRequest{
			Service:  CloudTrailService,
			Action:   "s3:PutObject",
			Resource: "arn:aws:s3:::" + bucket + "/" + key,
			Context: map[string]string{
				"aws:sourcearn":     d.Source,
				"aws:sourceaccount": d.Account,
				"s3:x-amz-acl":      "bucket-owner-full-control",
			},
		}
		if !p.Allows(req) {
			return fmt.Errorf("bucket %s: its policy does not allow %s s3:PutObject on %s for account %s: %w",
				bucket, CloudTrailService, req.Resource, d.Account, ErrAccessDenied)
		}
	}
	return nil
}

// Policy is a parsed bucket policy: the subset of the IAM policy language that
// says who may put objects (Effect, Principal, Action, Resource, Condition with
// the String and Arn operators). Anything else it refuses to interpret.
type Policy struct {
	Statements []Statement
}

// Statement is one statement of a Policy.
type Statement struct {
	Sid       string
	Allow     bool // Effect Allow, else Deny
	Anyone    bool // Principal "*" or {"AWS": "*"}
	Services  []string
	Actions   []string
	Resources []string
	// Conditions, by operator (lower case), then condition key (lower case).
	Conditions map[string]map[string][]string
}

// PolicyRequest is one request a Policy is asked about.
type PolicyRequest struct {
	Service  string            // the calling service principal
	Action   string            // e.g. s3:PutObject
	Resource string            // e.g. arn:aws:s3:::bucket/key
	Context  map[string]string // condition keys (lower case) and their values
}

// ParsePolicy parses a bucket policy document.
func ParsePolicy(doc []byte) (*Policy, error) {
	var raw struct {
		Statement json.RawMessage
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, fmt.Errorf("bucket policy: %w", err)
	}
	var stmts []map[string]json.RawMessage
	var one map[string]json.RawMessage
	if json.Unmarshal(raw.Statement, &one) == nil && one != nil {
		stmts = append(stmts, one)
	} else if err := json.Unmarshal(raw.Statement, &stmts); err != nil || len(stmts) == 0 {
		return nil, errors.New("bucket policy: Statement must be an object or a non-empty list of objects")
	}
	p := &Policy{}
	for i, m := range stmts {
		st, err := parseStatement(m)
		if err != nil {
			return nil, fmt.Errorf("bucket policy: Statement[%d]: %w", i, err)
		}
		p.Statements = append(p.Statements, st)
	}
	return p, nil
}

func parseStatement(m map[string]json.RawMessage) (Statement, error) {
	var st Statement
	for k := range m {
		switch k {
		case "Sid", "Effect", "Principal", "Action", "Resource", "Condition":
		default:
			return st, fmt.Errorf("element %s is not supported", k)
		}
	}
	if v, ok := m["Sid"]; ok {
		if err := json.Unmarshal(v, &st.Sid); err != nil {
			return st, errors.New("Sid must be a string")
		}
	}
	var effect string
	json.Unmarshal(m["Effect"], &effect)
	switch effect {
	case "Allow":
		st.Allow = true
	case "Deny":
	default:
		return st, fmt.Errorf("Effect must be Allow or Deny, not %q", effect)
	}
	if err := parsePrincipal(m["Principal"], &st); err != nil {
		return st, err
	}
	if err := unmarshalOneOrMany(m["Action"], &st.Actions); err != nil || len(st.Actions) == 0 {
		return st, errors.New("Action must be a string or a list of strings")
	}
	if err := unmarshalOneOrMany(m["Resource"], &st.Resources); err != nil || len(st.Resources) == 0 {
		return st, errors.New("Resource must be a string or a list of strings")
	}
	if v, ok := m["Condition"]; ok {
		var conds map[string]map[string]json.RawMessage
		if err := json.Unmarshal(v, &conds); err != nil {
			return st, errors.New("Condition must map operators to {key: value or values}")
		}
		st.Conditions = map[string]map[string][]string{}
		for op, keys := range conds {
			lop := strings.ToLower(op)
			if _, ok := conditionOps[lop]; !ok {
				return st, fmt.Errorf("condition operator %s is not supported", op)
			}
			st.Conditions[lop] = map[string][]string{}
			for key, vals := range keys {
				var vs []string
				if err := unmarshalOneOrMany(vals, &vs); err != nil {
					return st, fmt.Errorf("condition %s %s: values must be strings", op, key)
				}
				st.Conditions[lop][strings.ToLower(key)] = vs
			}
		}
	}
	return st, nil
}

func parsePrincipal(v json.RawMessage, st *Statement) error {
	if v == nil {
		return errors.New("Principal is required")
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		if s != "*" {
			return fmt.Errorf("Principal %q must be \"*\" or an object", s)
		}
		st.Anyone = true
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v, &m); err != nil {
		return errors.New("Principal must be \"*\" or an object")
	}
	for k, vals := range m {
		var vs []string
		if err := unmarshalOneOrMany(vals, &vs); err != nil {
			return fmt.Errorf("Principal %s must be a string or a list of strings", k)
		}
		switch k {
		case "Service":
			st.Services = append(st.Services, vs...)
		case "AWS":
			for _, a := range vs {
				if a == "*" {
					st.Anyone = true
				}
				// Account and IAM principals never match a service's delivery.
			}
		default:
			// Federated and CanonicalUser principals never match a service's delivery.
		}
	}
	return nil
}

func unmarshalOneOrMany(v json.RawMessage, out *[]string) error {
	var one string
	if json.Unmarshal(v, &one) == nil {
		*out = []string{one}
		return nil
	}
	return json.Unmarshal(v, out)
}

// conditionOps are the supported operators: whether a value matches as a
// wildcard pattern (Like) or exactly, and whether the operator is negated.
var conditionOps = map[string]struct{ like, not, fold bool }{
	"stringequals":           {},
	"stringnotequals":        {not: true},
	"stringequalsignorecase": {fold: true},
	"stringlike":             {like: true},
	"stringnotlike":          {like: true, not: true},
	"arnequals":              {},
	"arnlike":                {like: true},
	"arnnotequals":           {not: true},
	"arnnotlike":             {like: true, not: true},
}

// Allows evaluates req: false if any statement that applies denies it, true if
// one allows it, false if none applies.
func (p *Policy) Allows(req PolicyRequest) bool {
	allowed := false
	for _, st := range p.Statements {
		if !st.applies(req) {
			continue
		}
		if !st.Allow {
			return false
		}
		allowed = true
	}
	return allowed
}

func (st *Statement) applies(req PolicyRequest) bool {
	if !st.Anyone && !anyMatch(st.Services, req.Service, true) {
		return false
	}
	if !anyMatch(st.Actions, req.Action, true) || !anyMatch(st.Resources, req.Resource, false) {
		return false
	}
	for op, keys := range st.Conditions {
		o := conditionOps[op]
		for key, vals := range keys {
			v, ok := req.Context[key]
			if !ok {
				// A missing key fails a positive condition and satisfies a negated one.
				if !o.not {
					return false
				}
				continue
			}
			if anyMatchOp(vals, v, o.like, o.fold) == o.not {
				return false
			}
		}
	}
	return true
}

func anyMatch(patterns []string, s string, fold bool) bool {
	return anyMatchOp(patterns, s, true, fold)
}

func anyMatchOp(patterns []string, s string, like, fold bool) bool {
	if fold {
		s = strings.ToLower(s)
	}
	for _, p := range patterns {
		if fold {
			p = strings.ToLower(p)
		}
		if like && wildcard(p, s) || !like && p == s {
			return true
		}
	}
	return false
}

// wildcard matches s against an IAM pattern: * any run of characters
// (including /), ? any one character.
func wildcard(pattern, s string) bool {
	p, t := []rune(pattern), []rune(s)
	star, match := -1, 0
	i, j := 0, 0
	for j < len(t) {
		switch {
		case i < len(p) && (p[i] == '?' || p[i] == t[j]):
			i++
			j++
		case i < len(p) && p[i] == '*':
			star, match = i, j
			i++
		case star >= 0:
			i = star + 1
			match++
			j = match
		default:
			return false
		}
	}
	for i < len(p) && p[i] == '*' {
		i++
	}
	return i == len(p)
}

var accountRE = regexp.MustCompile(`^[0-9]{12}$`)

// BucketAccess reads the bucket's .opentrail-bucket.json; without one, or
// without an owner in it, the bucket is owned by f.Owner.
func (f *FS) BucketAccess(ctx context.Context, bucket string) (Access, error) {
	b, err := f.Bucket(ctx, bucket)
	if err != nil {
		return Access{}, err
	}
	a := Access{Owner: f.Owner}
	raw, err := os.ReadFile(filepath.Join(b.(*fsBucket).dir, fsAccessFile))
	if isNotExist(err) {
		return a, nil
	}
	if err != nil {
		return Access{}, fmt.Errorf("objstore: bucket %s access: %w", bucket, err)
	}
	var declared Access
	if err := json.Unmarshal(raw, &declared); err != nil {
		return Access{}, fmt.Errorf("objstore: bucket %s: %s: %w", bucket, fsAccessFile, err)
	}
	if declared.Owner != "" && !accountRE.MatchString(declared.Owner) {
		return Access{}, fmt.Errorf("objstore: bucket %s: %s: owner %q is not a 12-digit account ID", bucket, fsAccessFile, declared.Owner)
	}
	if declared.Owner != "" {
		a.Owner = declared.Owner
	}
	a.Policy = declared.Policy
	return a, nil
}

// SetBucketAccess writes the bucket's .opentrail-bucket.json durably.
func (f *FS) SetBucketAccess(ctx context.Context, bucket string, a Access) error {
	if a.Owner != "" && !accountRE.MatchString(a.Owner) {
		return fmt.Errorf("objstore: bucket %s: owner %q is not a 12-digit account ID", bucket, a.Owner)
	}
	if len(a.Policy) > 0 {
		if _, err := ParsePolicy(a.Policy); err != nil {
			return fmt.Errorf("objstore: bucket %s: %w", bucket, err)
		}
	}
	b, err := f.Bucket(ctx, bucket)
	if err != nil {
		return err
	}
	raw, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(b.(*fsBucket).dir, fsAccessFile), append(raw, '\n')); err != nil {
		return fmt.Errorf("objstore: bucket %s access: %w", bucket, err)
	}
	return nil
}

// BucketAccess returns the owner the configuration names and the bucket's
// policy from GetBucketPolicy (none if the bucket has none).
func (s *S3) BucketAccess(ctx context.Context, bucket string) (Access, error) {
	if err := ValidBucketName(bucket); err != nil {
		return Access{}, err
	}
	a := Access{Owner: s.owner}
	if o, ok := s.owners[bucket]; ok {
		a.Owner = o
	}
	out, err := s.client.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String(bucket)})
	var api interface{ ErrorCode() string }
	switch {
	case err == nil:
		a.Policy = json.RawMessage(aws.ToString(out.Policy))
	case errors.As(err, &api) && api.ErrorCode() == "NoSuchBucketPolicy":
	case isS3NotFound(err):
		return Access{}, fmt.Errorf("bucket %s: %w", bucket, ErrNotFound)
	default:
		return Access{}, fmt.Errorf("objstore: bucket %s policy: %w", bucket, err)
	}
	return a, nil
}
