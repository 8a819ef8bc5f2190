package cloudtrail

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/selector"
)

// trailOps are the trail, selector and tag operations.
var trailOps = map[string]opFunc{
	"CreateTrail":         (*Service).createTrail,
	"GetTrail":            (*Service).getTrail,
	"DescribeTrails":      (*Service).describeTrails,
	"ListTrails":          (*Service).listTrails,
	"UpdateTrail":         (*Service).updateTrail,
	"DeleteTrail":         (*Service).deleteTrail,
	"StartLogging":        (*Service).startLogging,
	"StopLogging":         (*Service).stopLogging,
	"GetTrailStatus":      (*Service).getTrailStatus,
	"PutEventSelectors":   (*Service).putEventSelectors,
	"GetEventSelectors":   (*Service).getEventSelectors,
	"PutInsightSelectors": (*Service).putInsightSelectors,
	"GetInsightSelectors": (*Service).getInsightSelectors,
	"AddTags":             (*Service).addTags,
	"RemoveTags":          (*Service).removeTags,
	"ListTags":            (*Service).listTags,
}

// A trail's identity is (account, home Region, name): single-Region trails of
// one name may exist in several Regions, but a multi-Region trail appears (as a
// shadow trail) in every Region, so its name is unique in the account.

// ---- Storage format: everything in this block is part of the on-disk format. Never change it. ----
//
// Each trail is one JSON object under kv.StateKey(kv.StateTrail, account,
// homeRegion+"/"+name). Selectors are stored in the API's own shape
// (selector.EventSelector, selector.AdvancedEventSelector), normalized.

func trailStateName(homeRegion, name string) string { return homeRegion + "/" + name }

type storedTrail struct {
	Account                    string                           `json:"account"`
	HomeRegion                 string                           `json:"homeRegion"`
	Name                       string                           `json:"name"`
	Created                    time.Time                        `json:"created"`
	S3BucketName               string                           `json:"s3BucketName"`
	S3KeyPrefix                string                           `json:"s3KeyPrefix,omitempty"`
	SnsTopicARN                string                           `json:"snsTopicARN,omitempty"`
	IncludeGlobalServiceEvents bool                             `json:"includeGlobalServiceEvents"`
	IsMultiRegionTrail         bool                             `json:"isMultiRegionTrail"`
	LogFileValidationEnabled   bool                             `json:"logFileValidationEnabled"`
	CloudWatchLogsLogGroupArn  string                           `json:"cloudWatchLogsLogGroupArn,omitempty"`
	CloudWatchLogsRoleArn      string                           `json:"cloudWatchLogsRoleArn,omitempty"`
	KmsKeyID                   string                           `json:"kmsKeyId,omitempty"`
	EventSelectors             []selector.EventSelector         `json:"eventSelectors,omitempty"`
	AdvancedEventSelectors     []selector.AdvancedEventSelector `json:"advancedEventSelectors,omitempty"`
	InsightSelectors           []insightSelector                `json:"insightSelectors,omitempty"`
	Tags                       []tag                            `json:"tags,omitempty"`
	Status                     trailStatus                      `json:"status"`
}

type insightSelector struct {
	InsightType     string   `json:"InsightType"`
	EventCategories []string `json:"EventCategories,omitempty"`
}

// tag is a trail tag; a nil Value is a tag added without a value.
type tag struct {
	Key   string  `json:"Key"`
	Value *string `json:"Value,omitempty"`
}

type trailStatus struct {
	IsLogging        bool           `json:"isLogging"`
	StartLoggingTime time.Time      `json:"startLoggingTime,omitzero"`
	StopLoggingTime  time.Time      `json:"stopLoggingTime,omitzero"`
	Delivery         deliveryStatus `json:"delivery"`
}

// deliveryStatus is what delivery reports through RecordDelivery and
// GetTrailStatus shows. Times are of the latest success (…Time) or the latest
// attempt (…Attempt); an error is the latest failure's, cleared by a success.
type deliveryStatus struct {
	LogFileTime         time.Time `json:"logFileTime,omitzero"`
	LogFileAttempt      time.Time `json:"logFileAttempt,omitzero"`
	LogFileError        string    `json:"logFileError,omitempty"`
	DigestTime          time.Time `json:"digestTime,omitzero"`
	DigestError         string    `json:"digestError,omitempty"`
	NotificationTime    time.Time `json:"notificationTime,omitzero"`
	NotificationAttempt time.Time `json:"notificationAttempt,omitzero"`
	NotificationError   string    `json:"notificationError,omitempty"`
	CloudWatchLogsTime  time.Time `json:"cloudWatchLogsTime,omitzero"`
	CloudWatchLogsError string    `json:"cloudWatchLogsError,omitempty"`
}

// ---- End of storage format. ----

func (s *Service) trailARN(t *storedTrail) string {
	return fmt.Sprintf("arn:%s:cloudtrail:%s:%s:trail/%s", s.part, t.HomeRegion, t.Account, t.Name)
}

func (s *Service) putTrail(ctx context.Context, t *storedTrail) error {
	err := s.putState(ctx, kv.StateTrail, t.Account, trailStateName(t.HomeRegion, t.Name), t)
	kv.AfterCommit(ctx, func() { s.trailsVersion.Add(1) })
	return err
}

// TrailsVersion changes whenever a trail's configuration does (not its
// delivery status): projections that cache Trails re-read them when it moves.
func (s *Service) TrailsVersion() uint64 { return s.trailsVersion.Load() }

// accountTrails returns every trail of account ("" = of every account), ordered
// by account, home Region and name.
func (s *Service) accountTrails(account string) ([]*storedTrail, error) {
	var out []*storedTrail
	err := s.listState(kv.StateTrail, account, func(raw []byte) error {
		t := new(storedTrail)
		if err := json.Unmarshal(raw, t); err != nil {
			return fmt.Errorf("cloudtrail: decode trail: %w", err)
		}
		out = append(out, t)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *storedTrail) int {
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.HomeRegion, b.HomeRegion), cmp.Compare(a.Name, b.Name))
	})
	return out, nil
}

func findTrail(trails []*storedTrail, homeRegion, name string) *storedTrail {
	for _, t := range trails {
		if t.HomeRegion == homeRegion && t.Name == name {
			return t
		}
	}
	return nil
}

// visibleIn reports whether t appears in region: there it lives, or its shadow does.
func (t *storedTrail) visibleIn(region string) bool {
	return t.HomeRegion == region || t.IsMultiRegionTrail
}

// reach is whether an operation may reach a trail from a Region other than its home.
type reach int

const (
	// shadowOK: reads see a multi-Region trail from every Region.
	shadowOK reach = iota
	// homeOnly: changes are made in the home Region only (InvalidHomeRegionException).
	homeOnly
)

// resolveTrail finds the trail a Name or TrailName parameter names, as c sees it.
//
// A name means the trail of that name in c.Region, or else the multi-Region
// trail of that name whose shadow is in c.Region. An ARN names one trail; it is
// found only in c.Account and only if it appears in c.Region.
func (s *Service) resolveTrail(c auth.Caller, op, nameOrARN string, how reach) (*storedTrail, error) {
	ref, err := s.parseTrailRef(nameOrARN)
	if err != nil {
		return nil, err
	}
	shown := ref.given
	if !ref.isARN() {
		// AWS reports an unknown name as the ARN it would have in this Region.
		shown = fmt.Sprintf("arn:%s:cloudtrail:%s:%s:trail/%s", s.part, c.Region, c.Account, ref.name)
	}
	notFound := awsapi.Errorf("TrailNotFoundException", "Unknown trail: %s for the user: %s", shown, c.Account)
	if ref.isARN() && ref.account != c.Account {
		return nil, notFound
	}
	trails, err := s.accountTrails(c.Account)
	if err != nil {
		return nil, err
	}
	var t *storedTrail
	if ref.isARN() {
		t = findTrail(trails, ref.region, ref.name)
	} else if t = findTrail(trails, c.Region, ref.name); t == nil {
		for _, u := range trails {
			if u.Name == ref.name && u.IsMultiRegionTrail {
				t = u
				break
			}
		}
	}
	if t == nil || !t.visibleIn(c.Region) {
		return nil, notFound
	}
	if how == homeOnly && t.HomeRegion != c.Region {
		return nil, awsapi.Errorf("InvalidHomeRegionException",
			"Trail %s was created in %s and is a shadow trail in %s: call %s in %s, the trail's home Region.",
			s.trailARN(t), t.HomeRegion, c.Region, op, t.HomeRegion)
	}
	return t, nil
}

// ---- CreateTrail, UpdateTrail ----

// trailSettings are the request members CreateTrail and UpdateTrail share; nil
// means not given.
type trailSettings struct {
	S3BucketName               *string
	S3KeyPrefix                *string
	SnsTopicName               *string
	IncludeGlobalServiceEvents *bool
	IsMultiRegionTrail         *bool
	EnableLogFileValidation    *bool
	CloudWatchLogsLogGroupArn  *string
	CloudWatchLogsRoleArn      *string
	KmsKeyId                   *string
	IsOrganizationTrail        *bool
}

// applySettings checks the given members and sets them on t, then checks the
// combination. An empty string removes an optional setting, as UpdateTrail does.
func (s *Service) applySettings(ctx context.Context, t *storedTrail, in *trailSettings) error {
	if v := in.S3BucketName; v != nil {
		if err := checkBucketName(*v); err != nil {
			return err
		}
		if err := s.checkBucketExists(ctx, *v); err != nil {
			return err
		}
		t.S3BucketName = *v
	}
	if v := in.S3KeyPrefix; v != nil {
		if err := checkS3Prefix(*v); err != nil {
			return err
		}
		t.S3KeyPrefix = *v
	}
	if v := in.SnsTopicName; v != nil {
		t.SnsTopicARN = ""
		if *v != "" {
			arn, err := s.snsTopicARN(*v, t.HomeRegion, t.Account)
			if err != nil {
				return err
			}
			t.SnsTopicARN = arn
		}
	}
	if v := in.KmsKeyId; v != nil {
		t.KmsKeyID = ""
		if *v != "" {
			arn, err := s.kmsKeyARN(*v, t.HomeRegion, t.Account)
			if err != nil {
				return err
			}
			t.KmsKeyID = arn
		}
	}
	if v := in.CloudWatchLogsLogGroupArn; v != nil {
		if *v != "" {
			if err := checkLogGroupARN(*v, t.Account); err != nil {
				return err
			}
		}
		t.CloudWatchLogsLogGroupArn = *v
	}
	if v := in.CloudWatchLogsRoleArn; v != nil {
		if *v != "" {
			if err := checkRoleARN(*v, t.Account); err != nil {
				return err
			}
		}
		t.CloudWatchLogsRoleArn = *v
	}
	if v := in.IncludeGlobalServiceEvents; v != nil {
		t.IncludeGlobalServiceEvents = *v
	}
	if v := in.IsMultiRegionTrail; v != nil {
		t.IsMultiRegionTrail = *v
	}
	if v := in.EnableLogFileValidation; v != nil {
		t.LogFileValidationEnabled = *v
	}
	if v := in.IsOrganizationTrail; v != nil && *v {
		return awsapi.Errorf("OrganizationsNotInUseException",
			"Account %s is not in an organization: OpenTrail has no AWS Organizations, so IsOrganizationTrail must be false.", t.Account)
	}
	switch {
	case t.IsMultiRegionTrail && !t.IncludeGlobalServiceEvents:
		return awsapi.Errorf("InvalidParameterCombinationException",
			"Multi-Region trail %s must include global service events: IncludeGlobalServiceEvents cannot be false when IsMultiRegionTrail is true.", t.Name)
	case t.CloudWatchLogsLogGroupArn != "" && t.CloudWatchLogsRoleArn == "":
		return awsapi.Errorf("InvalidCloudWatchLogsRoleArnException",
			"CloudWatchLogsLogGroupArn needs CloudWatchLogsRoleArn: specify a role ARN as well as a log group.")
	case t.CloudWatchLogsRoleArn != "" && t.CloudWatchLogsLogGroupArn == "":
		return awsapi.Errorf("InvalidCloudWatchLogsLogGroupArnException",
			"CloudWatchLogsRoleArn needs CloudWatchLogsLogGroupArn: specify a log group as well as a role ARN.")
	}
	if in.S3BucketName != nil || in.S3KeyPrefix != nil {
		return s.checkBucketAccess(ctx, t)
	}
	return nil
}

// maxTrailsPerRegion is CloudTrail's quota of trails per Region and account;
// a multi-Region trail counts in every Region ("Quotas in AWS CloudTrail").
const maxTrailsPerRegion = 5

// checkPlacement checks that t fits among the account's trails: no trail that
// shares a Region with it has its name, and no Region it appears in would hold
// more than maxTrailsPerRegion trails. For UpdateTrail (update true) trails
// still holds t as it was, which is skipped; a name clash is then reported as
// InvalidParameterCombinationException, the code UpdateTrail's model has for it.
func checkPlacement(trails []*storedTrail, t *storedTrail, update bool) error {
	self := func(u *storedTrail) bool { return update && u.HomeRegion == t.HomeRegion && u.Name == t.Name }
	regions := []string{t.HomeRegion}
	for _, u := range trails {
		if self(u) {
			continue
		}
		if u.Name == t.Name && (u.HomeRegion == t.HomeRegion || u.IsMultiRegionTrail || t.IsMultiRegionTrail) {
			if !update {
				return awsapi.Errorf("TrailAlreadyExistsException", "Trail %s already exists for customer: %s", t.Name, t.Account)
			}
			return awsapi.Errorf("InvalidParameterCombinationException",
				"Trail %s cannot apply to all Regions: a trail named %s already exists in %s, and a multi-Region trail's name must be unique in every Region.",
				t.Name, u.Name, u.HomeRegion)
		}
		if t.IsMultiRegionTrail && !slices.Contains(regions, u.HomeRegion) {
			regions = append(regions, u.HomeRegion)
		}
	}
	slices.Sort(regions)
	for _, r := range regions {
		n := 1 // t
		for _, u := range trails {
			if !self(u) && u.visibleIn(r) {
				n++
			}
		}
		if n > maxTrailsPerRegion {
			return awsapi.Errorf("MaximumNumberOfTrailsExceededException",
				"User: %s already has %d trails in %s.", t.Account, n-1, r)
		}
	}
	return nil
}

type createTrailInput struct {
	Name string
	trailSettings
	TagsList []tag
}

// trailSettingsOut is CreateTrailResponse and UpdateTrailResponse.
type trailSettingsOut struct {
	Name                       string `json:"Name"`
	S3BucketName               string `json:"S3BucketName"`
	S3KeyPrefix                string `json:"S3KeyPrefix,omitempty"`
	SnsTopicName               string `json:"SnsTopicName,omitempty"`
	SnsTopicARN                string `json:"SnsTopicARN,omitempty"`
	IncludeGlobalServiceEvents bool   `json:"IncludeGlobalServiceEvents"`
	IsMultiRegionTrail         bool   `json:"IsMultiRegionTrail"`
	TrailARN                   string `json:"TrailARN"`
	LogFileValidationEnabled   bool   `json:"LogFileValidationEnabled"`
	CloudWatchLogsLogGroupArn  string `json:"CloudWatchLogsLogGroupArn,omitempty"`
	CloudWatchLogsRoleArn      string `json:"CloudWatchLogsRoleArn,omitempty"`
	KmsKeyID                   string `json:"KmsKeyId,omitempty"`
	IsOrganizationTrail        bool   `json:"IsOrganizationTrail"`
}

// trailOut is the model's Trail shape (GetTrail, DescribeTrails).
type trailOut struct {
	trailSettingsOut
	HomeRegion              string `json:"HomeRegion"`
	HasCustomEventSelectors bool   `json:"HasCustomEventSelectors"`
	HasInsightSelectors     bool   `json:"HasInsightSelectors"`
}

func (s *Service) settingsOut(t *storedTrail) trailSettingsOut {
	out := trailSettingsOut{
		Name:                       t.Name,
		S3BucketName:               t.S3BucketName,
		S3KeyPrefix:                t.S3KeyPrefix,
		SnsTopicARN:                t.SnsTopicARN,
		IncludeGlobalServiceEvents: t.IncludeGlobalServiceEvents,
		IsMultiRegionTrail:         t.IsMultiRegionTrail,
		TrailARN:                   s.trailARN(t),
		LogFileValidationEnabled:   t.LogFileValidationEnabled,
		CloudWatchLogsLogGroupArn:  t.CloudWatchLogsLogGroupArn,
		CloudWatchLogsRoleArn:      t.CloudWatchLogsRoleArn,
		KmsKeyID:                   t.KmsKeyID,
	}
	if t.SnsTopicARN != "" {
		out.SnsTopicName = snsTopicName(t.SnsTopicARN)
	}
	return out
}

func (s *Service) trailOut(t *storedTrail) trailOut {
	return trailOut{
		trailSettingsOut:        s.settingsOut(t),
		HomeRegion:              t.HomeRegion,
		HasCustomEventSelectors: t.EventSelectors != nil || t.AdvancedEventSelectors != nil,
		HasInsightSelectors:     len(t.InsightSelectors) > 0,
	}
}

func (s *Service) createTrail(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in createTrailInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkTrailName(in.Name); err != nil {
		return nil, err
	}
	if in.S3BucketName == nil {
		return nil, awsapi.Errorf("InvalidS3BucketNameException", "S3BucketName is required.")
	}
	t := &storedTrail{
		Account:                    c.Account,
		HomeRegion:                 c.Region,
		Name:                       in.Name,
		Created:                    s.now().UTC(),
		IncludeGlobalServiceEvents: true,
	}
	if err := s.applySettings(ctx, t, &in.trailSettings); err != nil {
		return nil, err
	}
	tags, err := mergeTags(t.Name, nil, in.TagsList)
	if err != nil {
		return nil, err
	}
	t.Tags = tags

	defer kv.Hold(ctx, &s.trailMu)()
	trails, err := s.accountTrails(c.Account)
	if err != nil {
		return nil, err
	}
	if err := checkPlacement(trails, t, false); err != nil {
		return nil, err
	}
	if err := s.putTrail(ctx, t); err != nil {
		return nil, err
	}
	return s.settingsOut(t), nil
}

type updateTrailInput struct {
	Name string
	trailSettings
}

func (s *Service) updateTrail(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in updateTrailInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	defer kv.Hold(ctx, &s.trailMu)()
	t, err := s.resolveTrail(c, "UpdateTrail", in.Name, homeOnly)
	if err != nil {
		return nil, err
	}
	wasMulti := t.IsMultiRegionTrail
	if err := s.applySettings(ctx, t, &in.trailSettings); err != nil {
		return nil, err
	}
	if t.IsMultiRegionTrail && !wasMulti {
		trails, err := s.accountTrails(c.Account)
		if err != nil {
			return nil, err
		}
		if err := checkPlacement(trails, t, true); err != nil {
			return nil, err
		}
	}
	if err := s.putTrail(ctx, t); err != nil {
		return nil, err
	}
	return s.settingsOut(t), nil
}

// ---- GetTrail, DescribeTrails, ListTrails ----

type nameInput struct{ Name string }

func (s *Service) getTrail(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in nameInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	t, err := s.resolveTrail(c, "GetTrail", in.Name, shadowOK)
	if err != nil {
		return nil, err
	}
	return struct {
		Trail trailOut `json:"Trail"`
	}{s.trailOut(t)}, nil
}

type describeTrailsInput struct {
	TrailNameList       []string `json:"trailNameList"`
	IncludeShadowTrails *bool    `json:"includeShadowTrails"`
}

type describeTrailsOutput struct {
	TrailList []trailOut `json:"trailList"`
}

// describeTrails follows the API reference: without names, the trails of
// c.Region and (unless includeShadowTrails is false) the shadows of multi-Region
// trails homed elsewhere. A name matches only a trail homed in c.Region; an ARN
// matches the trail it names in any Region. Unknown names and ARNs are left
// out, not errors.
func (s *Service) describeTrails(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in describeTrailsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	shadows := in.IncludeShadowTrails == nil || *in.IncludeShadowTrails
	trails, err := s.accountTrails(c.Account)
	if err != nil {
		return nil, err
	}
	out := describeTrailsOutput{TrailList: []trailOut{}}
	if len(in.TrailNameList) == 0 {
		for _, t := range trails {
			if t.HomeRegion == c.Region || shadows && t.IsMultiRegionTrail {
				out.TrailList = append(out.TrailList, s.trailOut(t))
			}
		}
		return out, nil
	}
	var picked []*storedTrail
	for _, v := range in.TrailNameList {
		ref, err := s.parseTrailRef(v)
		if err != nil {
			return nil, err
		}
		var t *storedTrail
		switch {
		case !ref.isARN():
			t = findTrail(trails, c.Region, ref.name)
		case ref.account == c.Account:
			t = findTrail(trails, ref.region, ref.name)
		}
		if t == nil || !shadows && t.HomeRegion != c.Region || slices.Contains(picked, t) {
			continue
		}
		picked = append(picked, t)
		out.TrailList = append(out.TrailList, s.trailOut(t))
	}
	return out, nil
}

type listTrailsInput struct{ NextToken *string }

type trailInfo struct {
	TrailARN   string `json:"TrailARN"`
	Name       string `json:"Name"`
	HomeRegion string `json:"HomeRegion"`
}

type listTrailsOutput struct {
	Trails    []trailInfo `json:"Trails"`
	NextToken string      `json:"NextToken,omitempty"`
}

// defaultTrailPage is how many trails one ListTrails page holds.
const defaultTrailPage = 50

// listTrails lists every trail of the account, in every Region, ordered by
// TrailARN. The NextToken is the last ARN returned, encoded.
func (s *Service) listTrails(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in listTrailsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	var after string
	if in.NextToken != nil {
		var tok struct{ After string }
		if err := decodePageToken(*in.NextToken, &tok); err != nil || tok.After == "" {
			return nil, awsapi.Errorf("InvalidNextTokenException", "NextToken is not one that ListTrails returned.")
		}
		after = tok.After
	}
	trails, err := s.accountTrails(c.Account)
	if err != nil {
		return nil, err
	}
	infos := make([]trailInfo, 0, len(trails))
	for _, t := range trails {
		infos = append(infos, trailInfo{TrailARN: s.trailARN(t), Name: t.Name, HomeRegion: t.HomeRegion})
	}
	slices.SortFunc(infos, func(a, b trailInfo) int { return cmp.Compare(a.TrailARN, b.TrailARN) })
	start, _ := slices.BinarySearchFunc(infos, after, func(t trailInfo, arn string) int {
		if t.TrailARN <= arn {
			return -1
		}
		return 1
	})
	page := cmp.Or(s.trailPage, defaultTrailPage)
	out := listTrailsOutput{Trails: infos[start:min(start+page, len(infos))]}
	if start+page < len(infos) {
		out.NextToken = encodePageToken(struct{ After string }{out.Trails[len(out.Trails)-1].TrailARN})
	}
	return out, nil
}

// ---- DeleteTrail, StartLogging, StopLogging, GetTrailStatus ----

type emptyOutput struct{}

func (s *Service) deleteTrail(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in nameInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	defer kv.Hold(ctx, &s.trailMu)()
	t, err := s.resolveTrail(c, "DeleteTrail", in.Name, homeOnly)
	if err != nil {
		return nil, err
	}
	kv.AfterCommit(ctx, func() { s.trailsVersion.Add(1) })
	if err := s.deleteState(ctx, kv.StateTrail, t.Account, trailStateName(t.HomeRegion, t.Name)); err != nil {
		return nil, err
	}
	return emptyOutput{}, nil
}

func (s *Service) startLogging(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	return s.setLogging(ctx, c, "StartLogging", body, true)
}

func (s *Service) stopLogging(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	return s.setLogging(ctx, c, "StopLogging", body, false)
}

// setLogging starts or stops logging. Starting a trail that logs, or stopping
// one that does not, changes nothing: the times stay those of the last change.
func (s *Service) setLogging(ctx context.Context, c auth.Caller, op string, body []byte, on bool) (any, error) {
	var in nameInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	defer kv.Hold(ctx, &s.trailMu)()
	t, err := s.resolveTrail(c, op, in.Name, homeOnly)
	if err != nil {
		return nil, err
	}
	if t.Status.IsLogging == on {
		return emptyOutput{}, nil
	}
	t.Status.IsLogging = on
	if on {
		t.Status.StartLoggingTime = s.now().UTC()
	} else {
		t.Status.StopLoggingTime = s.now().UTC()
	}
	if err := s.putTrail(ctx, t); err != nil {
		return nil, err
	}
	return emptyOutput{}, nil
}

// epochSeconds is a JSON 1.1 timestamp: seconds since the epoch as a number,
// to the millisecond.
type epochSeconds time.Time

func (e epochSeconds) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(time.Time(e).UnixMilli())/1000, 'f', -1, 64), nil
}

// UnmarshalJSON reads what MarshalJSON wrote (to the millisecond).
func (e *epochSeconds) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("epoch seconds %s: %w", b, err)
	}
	*e = epochSeconds(time.UnixMilli(int64(math.Round(f * 1000))).UTC())
	return nil
}

func epochOrNil(t time.Time) *epochSeconds {
	if t.IsZero() {
		return nil
	}
	e := epochSeconds(t)
	return &e
}

// isoSeconds formats the deprecated string timestamps of GetTrailStatus
// ("2015-09-01T20:35:57Z"); a zero time is "", as AWS shows unset ones.
func isoSeconds(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// trailStatusOut is GetTrailStatusResponse. The timestamps and errors are
// absent until there is something to report; the deprecated string members are
// always present, "" when unset, as AWS returns them.
type trailStatusOut struct {
	IsLogging                          bool          `json:"IsLogging"`
	LatestDeliveryError                string        `json:"LatestDeliveryError,omitempty"`
	LatestNotificationError            string        `json:"LatestNotificationError,omitempty"`
	LatestDeliveryTime                 *epochSeconds `json:"LatestDeliveryTime,omitempty"`
	LatestNotificationTime             *epochSeconds `json:"LatestNotificationTime,omitempty"`
	StartLoggingTime                   *epochSeconds `json:"StartLoggingTime,omitempty"`
	StopLoggingTime                    *epochSeconds `json:"StopLoggingTime,omitempty"`
	LatestCloudWatchLogsDeliveryError  string        `json:"LatestCloudWatchLogsDeliveryError,omitempty"`
	LatestCloudWatchLogsDeliveryTime   *epochSeconds `json:"LatestCloudWatchLogsDeliveryTime,omitempty"`
	LatestDigestDeliveryTime           *epochSeconds `json:"LatestDigestDeliveryTime,omitempty"`
	LatestDigestDeliveryError          string        `json:"LatestDigestDeliveryError,omitempty"`
	LatestDeliveryAttemptTime          string        `json:"LatestDeliveryAttemptTime"`
	LatestNotificationAttemptTime      string        `json:"LatestNotificationAttemptTime"`
	LatestNotificationAttemptSucceeded string        `json:"LatestNotificationAttemptSucceeded"`
	LatestDeliveryAttemptSucceeded     string        `json:"LatestDeliveryAttemptSucceeded"`
	TimeLoggingStarted                 string        `json:"TimeLoggingStarted"`
	TimeLoggingStopped                 string        `json:"TimeLoggingStopped"`
}

func (s *Service) getTrailStatus(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in nameInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	t, err := s.resolveTrail(c, "GetTrailStatus", in.Name, shadowOK)
	if err != nil {
		return nil, err
	}
	st, d := &t.Status, &t.Status.Delivery
	return trailStatusOut{
		IsLogging:                          st.IsLogging,
		LatestDeliveryError:                d.LogFileError,
		LatestNotificationError:            d.NotificationError,
		LatestDeliveryTime:                 epochOrNil(d.LogFileTime),
		LatestNotificationTime:             epochOrNil(d.NotificationTime),
		StartLoggingTime:                   epochOrNil(st.StartLoggingTime),
		StopLoggingTime:                    epochOrNil(st.StopLoggingTime),
		LatestCloudWatchLogsDeliveryError:  d.CloudWatchLogsError,
		LatestCloudWatchLogsDeliveryTime:   epochOrNil(d.CloudWatchLogsTime),
		LatestDigestDeliveryTime:           epochOrNil(d.DigestTime),
		LatestDigestDeliveryError:          d.DigestError,
		LatestDeliveryAttemptTime:          isoSeconds(d.LogFileAttempt),
		LatestNotificationAttemptTime:      isoSeconds(d.NotificationAttempt),
		LatestNotificationAttemptSucceeded: isoSeconds(d.NotificationTime),
		LatestDeliveryAttemptSucceeded:     isoSeconds(d.LogFileTime),
		TimeLoggingStarted:                 isoSeconds(st.StartLoggingTime),
		TimeLoggingStopped:                 isoSeconds(st.StopLoggingTime),
	}, nil
}

// Page tokens of ListTrails and ListTags: base64url of a small JSON object. They
// are opaque to clients but not secret: they only ever select among the
// caller's own trails, so a forged one can do no harm.

func encodePageToken(v any) string {
	b, _ := json.Marshal(v) // small structs of strings and ints: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePageToken(tok string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
