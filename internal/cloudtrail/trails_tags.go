package cloudtrail

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/kv"
)

// Tag limits: "up to a limit of 50" tags per resource (AddTags), keys of 1 to
// 128 and values of up to 256 characters (Tag), at most 20 resources per
// ListTags call (ListTagsRequest.ResourceIdList).
const (
	maxTagsPerTrail    = 50
	maxTagKeyLen       = 128
	maxTagValueLen     = 256
	maxListTagsIDs     = 20
	defaultTagPageSize = maxListTagsIDs
)

// mergeTags checks add and returns have with add applied: a new key is
// appended, an existing key gets the new value (none, if add gives none).
func mergeTags(trail string, have, add []tag) ([]tag, error) {
	if err := checkTagList(add, true); err != nil {
		return nil, err
	}
	out := append([]tag(nil), have...)
	for _, a := range add {
		i := indexTag(out, a.Key)
		if i < 0 {
			out = append(out, a)
		} else {
			out[i].Value = a.Value
		}
	}
	if len(out) > maxTagsPerTrail {
		return nil, awsapi.Errorf("TagsLimitExceededException",
			"Trail %s would have %d tags; a trail can have at most %d.", trail, len(out), maxTagsPerTrail)
	}
	return out, nil
}

func indexTag(tags []tag, key string) int {
	for i, t := range tags {
		if t.Key == key {
			return i
		}
	}
	return -1
}

// checkTagList checks the keys (and, when values is set, the values) of a
// TagsList: lengths, and no key twice.
func checkTagList(list []tag, values bool) error {
	for i, t := range list {
		if n := utf8.RuneCountInString(t.Key); n < 1 || n > maxTagKeyLen {
			return awsapi.Errorf("InvalidTagParameterException", "TagsList[%d].Key is %d characters long; a tag key has 1 to %d characters.", i, n, maxTagKeyLen)
		}
		if values && t.Value != nil {
			if n := utf8.RuneCountInString(*t.Value); n > maxTagValueLen {
				return awsapi.Errorf("InvalidTagParameterException", "TagsList[%d].Value is %d characters long; a tag value has at most %d characters.", i, n, maxTagValueLen)
			}
		}
		for j := range i {
			if list[j].Key == t.Key {
				return awsapi.Errorf("InvalidTagParameterException", "TagsList[%d] repeats the key %q of TagsList[%d]; tag keys must be unique.", i, t.Key, j)
			}
		}
	}
	return nil
}

// tagTrail finds the trail a ResourceId names. Tags are managed in the trail's
// home Region only, so the ARN must name the request's Region. Resources other
// than trails (event data stores, channels, dashboards) do not exist in
// OpenTrail.
func (s *Service) tagTrail(c auth.Caller, id string) (*storedTrail, error) {
	if !strings.HasPrefix(id, "arn:") {
		return nil, awsapi.Errorf("CloudTrailARNInvalidException",
			"ResourceId %q is not an ARN; tag a trail by its ARN, such as arn:%s:cloudtrail:us-east-2:123456789012:trail/MyTrail.", id, s.part)
	}
	parts := strings.SplitN(id, ":", 6)
	if len(parts) < 6 || parts[2] != "cloudtrail" {
		return nil, awsapi.Errorf("ResourceTypeNotSupportedException",
			"ResourceId %s is not a CloudTrail resource; only trails can be tagged in OpenTrail.", id)
	}
	typ, _, hasType := strings.Cut(parts[5], "/")
	if !hasType {
		return nil, awsapi.Errorf("CloudTrailARNInvalidException",
			"ResourceId %s is not a valid CloudTrail ARN; a trail ARN has the form arn:%s:cloudtrail:us-east-2:123456789012:trail/MyTrail.", id, s.part)
	}
	switch typ {
	case "trail":
	case "eventdatastore", "channel":
		return nil, errLakeResource
	case "dashboard":
		return nil, awsapi.Errorf("ResourceNotFoundException", "Dashboard %s does not exist: OpenTrail has no dashboards.", id)
	default:
		return nil, awsapi.Errorf("ResourceTypeNotSupportedException", "Resource type %s of %s is not supported; only trails can be tagged.", typ, id)
	}
	ref, err := s.parseTrailRef(id)
	if err != nil {
		return nil, err
	}
	if ref.region != c.Region {
		return nil, awsapi.Errorf("CloudTrailARNInvalidException",
			"ResourceId %s names Region %s, but this request was made in %s: a trail's tags are managed in its home Region.", id, ref.region, c.Region)
	}
	notFound := awsapi.Errorf("ResourceNotFoundException", "Unknown trail: %s for the user: %s", id, c.Account)
	if ref.account != c.Account {
		return nil, notFound
	}
	t := new(storedTrail)
	found, err := s.getState(kv.StateTrail, c.Account, trailStateName(ref.region, ref.name), t)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound
	}
	return t, nil
}

// errLakeResource is tagTrail's answer for an event data store or channel ARN,
// which tagResource handles.
var errLakeResource = errors.New("cloudtrail: not a trail")

// tagged is a resource whose tags AddTags, RemoveTags and ListTags manage.
type tagged struct {
	name string
	tags *[]tag
	save func() error
}

// tagResource finds the trail, event data store or channel a ResourceId (an ARN) names.
func (s *Service) tagResource(ctx context.Context, c auth.Caller, id string) (tagged, error) {
	t, err := s.tagTrail(c, id)
	switch {
	case err == nil:
		return tagged{name: t.Name, tags: &t.Tags, save: func() error { return s.putTrail(ctx, t) }}, nil
	case !errors.Is(err, errLakeResource):
		return tagged{}, err
	case strings.Contains(id, ":eventdatastore/"):
		d, err := s.resolveStore(c, id)
		if err != nil {
			return tagged{}, err
		}
		return tagged{name: d.Name, tags: &d.Tags, save: func() error { return s.putEDS(ctx, d) }}, nil
	default:
		ch, err := s.resolveChannel(c, id)
		if err != nil {
			return tagged{}, err
		}
		return tagged{name: ch.Name, tags: &ch.Tags, save: func() error { return s.putChannel(ctx, ch) }}, nil
	}
}

type tagsInput struct {
	ResourceID string `json:"ResourceId"`
	TagsList   []tag
}

func (s *Service) addTags(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in tagsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkTagList(in.TagsList, true); err != nil {
		return nil, err
	}
	defer kv.Hold(ctx, &s.trailMu)()
	defer kv.Hold(ctx, &s.lakeMu)()
	t, err := s.tagResource(ctx, c, in.ResourceID)
	if err != nil {
		return nil, err
	}
	if *t.tags, err = mergeTags(t.name, *t.tags, in.TagsList); err != nil {
		return nil, err
	}
	if err := t.save(); err != nil {
		return nil, err
	}
	return emptyOutput{}, nil
}

// removeTags removes the tags with the given keys; values, if given, are not
// compared, and keys the trail does not have are ignored.
func (s *Service) removeTags(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in tagsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkTagList(in.TagsList, false); err != nil {
		return nil, err
	}
	defer kv.Hold(ctx, &s.trailMu)()
	defer kv.Hold(ctx, &s.lakeMu)()
	t, err := s.tagResource(ctx, c, in.ResourceID)
	if err != nil {
		return nil, err
	}
	kept := (*t.tags)[:0]
	for _, have := range *t.tags {
		if indexTag(in.TagsList, have.Key) < 0 {
			kept = append(kept, have)
		}
	}
	*t.tags = kept
	if err := t.save(); err != nil {
		return nil, err
	}
	return emptyOutput{}, nil
}

type listTagsInput struct {
	ResourceIDList []string `json:"ResourceIdList"`
	NextToken      *string
}

type resourceTag struct {
	ResourceID string `json:"ResourceId"`
	TagsList   []tag  `json:"TagsList"`
}

type listTagsOutput struct {
	ResourceTagList []resourceTag `json:"ResourceTagList"`
	NextToken       string        `json:"NextToken,omitempty"`
}

// listTagsToken resumes a ListTags call at resource Next of the list whose
// digest is List.
type listTagsToken struct {
	List string
	Next int
}

// listTags returns the tags of each resource, in request order. Every
// ResourceId must name a trail of the caller in this Region.
func (s *Service) listTags(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in listTagsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if len(in.ResourceIDList) > maxListTagsIDs {
		return nil, awsapi.Errorf("InvalidParameterException",
			"ResourceIdList has %d resource IDs; the maximum is %d.", len(in.ResourceIDList), maxListTagsIDs)
	}
	sum := sha256.Sum256([]byte(strings.Join(in.ResourceIDList, "\n")))
	digest := hex.EncodeToString(sum[:8])
	start := 0
	if in.NextToken != nil {
		var tok listTagsToken
		if err := decodePageToken(*in.NextToken, &tok); err != nil || tok.List != digest || tok.Next <= 0 || tok.Next >= len(in.ResourceIDList) {
			return nil, awsapi.Errorf("InvalidTokenException", "NextToken is not one that ListTags returned for this ResourceIdList.")
		}
		start = tok.Next
	}
	trails := make([]tagged, len(in.ResourceIDList))
	for i, id := range in.ResourceIDList {
		t, err := s.tagResource(ctx, c, id)
		if err != nil {
			return nil, err
		}
		trails[i] = t
	}
	end := min(start+cmp.Or(s.tagPage, defaultTagPageSize), len(trails))
	out := listTagsOutput{ResourceTagList: []resourceTag{}}
	for i := start; i < end; i++ {
		tags := *trails[i].tags
		if tags == nil {
			tags = []tag{}
		}
		out.ResourceTagList = append(out.ResourceTagList, resourceTag{ResourceID: in.ResourceIDList[i], TagsList: tags})
	}
	if end < len(in.ResourceIDList) {
		out.NextToken = encodePageToken(listTagsToken{List: digest, Next: end})
	}
	return out, nil
}
