package logs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/kv"
)

var groupOps = map[string]opFunc{
	"CreateLogGroup":        (*Service).createLogGroup,
	"DeleteLogGroup":        (*Service).deleteLogGroup,
	"DescribeLogGroups":     (*Service).describeLogGroups,
	"PutRetentionPolicy":    (*Service).putRetentionPolicy,
	"DeleteRetentionPolicy": (*Service).deleteRetentionPolicy,
	"CreateLogStream":       (*Service).createLogStream,
	"DeleteLogStream":       (*Service).deleteLogStream,
	"DescribeLogStreams":    (*Service).describeLogStreams,
}

// validRetention are the retentionInDays values CloudWatch Logs accepts.
var validRetention = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

// maxGroupsPerRegion bounds log groups per account and Region (AWS: 1,000,000; kept lower here).
const maxGroupsPerRegion = 10000

func decode(body []byte, v any) error {
	if len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return apiErr("SerializationException", "%v", err)
	}
	return nil
}

type createLogGroupInput struct {
	LogGroupName              string            `json:"logGroupName"`
	KmsKeyID                  string            `json:"kmsKeyId"`
	Tags                      map[string]string `json:"tags"`
	LogGroupClass             string            `json:"logGroupClass"`
	DeletionProtectionEnabled bool              `json:"deletionProtectionEnabled"`
}

func (s *Service) createLogGroup(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in createLogGroupInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.KmsKeyID != "" {
		return nil, apiErr("InvalidParameterException", "OpenTrail does not encrypt log groups with KMS keys; omit kmsKeyId.")
	}
	for k := range in.Tags {
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return nil, apiErr("InvalidParameterException", "Tag keys may not start with aws:")
		}
	}
	_, err := s.CreateLogGroup(ctx, c.Account, c.Region, in.LogGroupName, groupMeta{
		Class: in.LogGroupClass, DeletionProtection: in.DeletionProtectionEnabled, Tags: in.Tags,
	})
	return struct{}{}, err
}

// CreateLogGroup creates a log group (also used by tests and tooling).
func (s *Service) CreateLogGroup(ctx context.Context, account, region, name string, meta groupMeta) (*group, error) {
	defer kv.Hold(ctx, &s.mu)()
	id := groupID{account, region, name}
	if s.groups[id] != nil {
		return nil, apiErr("ResourceAlreadyExistsException", "The specified log group already exists")
	}
	n := 0
	for gid := range s.groups {
		if gid.Account == account && gid.Region == region {
			n++
		}
	}
	if n >= maxGroupsPerRegion {
		return nil, apiErr("LimitExceededException", "Resource limit exceeded.")
	}
	if meta.Class == "" {
		meta.Class = "STANDARD"
	}
	meta.Name, meta.CreationTime = name, millis(s.o.Now())
	g := &group{id: id, meta: meta, streams: map[string]*streamMeta{}}
	if err := s.writeLocked(ctx, func(b *pebble.Batch) error {
		return setState(b, kv.StateLogGroup, account, id.stateName(), &g.meta)
	}); err != nil {
		return nil, err
	}
	s.groups[id] = g
	return g, nil
}

type groupNameInput struct {
	LogGroupName string `json:"logGroupName"`
}

func (s *Service) deleteLogGroup(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in groupNameInput
	return s.withGroup(ctx, c, body, &in, &in.LogGroupName, func(g *group) (any, error) { return s.deleteGroupLocked(ctx, g) })
}

func (s *Service) deleteGroupLocked(ctx context.Context, g *group) (any, error) {
	if g.meta.DeletionProtection {
		return nil, apiErr("OperationAbortedException", "Log group %s has deletion protection enabled; disable it before deleting the log group.", g.id.Name)
	}
	for _, sub := range g.subs {
		s.stopSenderLocked(sub)
	}
	name := g.id.stateName()
	keys := [][]byte{kv.StateKey(kv.StateLogGroup, g.id.Account, name)}
	prefixes := [][]byte{kv.LogGroupPrefix(g.id.Account, g.id.Region, g.id.Name)}
	for _, sub := range g.subs {
		prefixes = append(prefixes, sub.out.Prefixes()...)
		keys = append(keys, kv.StateKey(kv.StateSubscription, g.id.Account, name+":"+sub.def.FilterName))
	}
	for _, mf := range g.metrics {
		keys = append(keys, kv.StateKey(kv.StateMetricFilter, g.id.Account, name+":"+mf.def.FilterName),
			kv.StateKey(kv.StateMetricValues, g.id.Account, name+":"+mf.def.FilterName))
	}
	for st := range g.streams {
		keys = append(keys, kv.StateKey(kv.StateLogStream, g.id.Account, name+":"+st))
	}
	if err := s.deleteLocked(ctx, keys, prefixes); err != nil {
		return nil, err
	}
	delete(s.groups, g.id)
	return struct{}{}, nil
}

type describeLogGroupsInput struct {
	LogGroupNamePrefix  string   `json:"logGroupNamePrefix"`
	LogGroupNamePattern string   `json:"logGroupNamePattern"`
	LogGroupClass       string   `json:"logGroupClass"`
	LogGroupIdentifiers []string `json:"logGroupIdentifiers"`
	AccountIdentifiers  []string `json:"accountIdentifiers"`
	NextToken           string   `json:"nextToken"`
	Limit               int      `json:"limit"`
}

type logGroupOut struct {
	LogGroupName              string `json:"logGroupName"`
	CreationTime              int64  `json:"creationTime"`
	RetentionInDays           *int   `json:"retentionInDays,omitempty"`
	MetricFilterCount         int    `json:"metricFilterCount"`
	Arn                       string `json:"arn"`
	StoredBytes               int64  `json:"storedBytes"`
	LogGroupClass             string `json:"logGroupClass,omitempty"`
	LogGroupArn               string `json:"logGroupArn"`
	DeletionProtectionEnabled bool   `json:"deletionProtectionEnabled"`
}

func (s *Service) describeLogGroups(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in describeLogGroupsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.LogGroupNamePrefix != "" && in.LogGroupNamePattern != "" {
		return nil, apiErr("InvalidParameterException", "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")
	}
	if len(in.LogGroupIdentifiers) > 0 && (in.LogGroupNamePrefix != "" || in.LogGroupNamePattern != "") {
		return nil, apiErr("InvalidParameterException", "logGroupIdentifiers cannot be combined with logGroupNamePrefix or logGroupNamePattern.")
	}
	limit := in.Limit
	if limit == 0 {
		limit = 50
	}
	after, err := decodeNameToken(in.NextToken)
	if err != nil {
		return nil, err
	}
	idents := map[string]bool{}
	for _, v := range in.LogGroupIdentifiers {
		if id, ok := parseGroupARN(v); ok {
			if id.Account == c.Account && id.Region == c.Region {
				idents[id.Name] = true
			}
			continue
		}
		idents[v] = true
	}
	s.mu.Lock()
	var names []string
	for id, g := range s.groups {
		switch {
		case id.Account != c.Account || id.Region != c.Region || id.Name <= after:
		case !strings.HasPrefix(id.Name, in.LogGroupNamePrefix):
		case in.LogGroupNamePattern != "" && !strings.Contains(strings.ToLower(id.Name), strings.ToLower(in.LogGroupNamePattern)):
		case in.LogGroupClass != "" && g.meta.Class != in.LogGroupClass:
		case len(idents) > 0 && !idents[id.Name]:
		default:
			names = append(names, id.Name)
		}
	}
	sort.Strings(names)
	out := struct {
		LogGroups []logGroupOut `json:"logGroups"`
		NextToken string        `json:"nextToken,omitempty"`
	}{LogGroups: []logGroupOut{}}
	for i, n := range names {
		if i == limit {
			out.NextToken = encodeNameToken(names[i-1])
			break
		}
		out.LogGroups = append(out.LogGroups, s.groupOut(s.groups[groupID{c.Account, c.Region, n}]))
	}
	s.mu.Unlock()
	return out, nil
}

func (s *Service) groupOut(g *group) logGroupOut {
	arn := s.groupARN(g.id)
	o := logGroupOut{LogGroupName: g.id.Name, CreationTime: g.meta.CreationTime, MetricFilterCount: len(g.metrics),
		Arn: arn + ":*", LogGroupArn: arn, LogGroupClass: g.meta.Class, DeletionProtectionEnabled: g.meta.DeletionProtection}
	if g.meta.RetentionInDays > 0 {
		d := g.meta.RetentionInDays
		o.RetentionInDays = &d
	}
	for _, st := range g.streams {
		o.StoredBytes += st.StoredBytes
	}
	return o
}

func encodeNameToken(name string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("n:" + name))
}

func decodeNameToken(tok string) (string, error) {
	if tok == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !strings.HasPrefix(string(b), "n:") {
		return "", apiErr("InvalidParameterException", "The specified nextToken is invalid.")
	}
	return string(b[2:]), nil
}

type retentionInput struct {
	LogGroupName    string `json:"logGroupName"`
	RetentionInDays int    `json:"retentionInDays"`
}

func (s *Service) putRetentionPolicy(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in retentionInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if !slices.Contains(validRetention, in.RetentionInDays) {
		return nil, apiErr("InvalidParameterException",
			"1 validation error detected: Value '%d' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: %v",
			in.RetentionInDays, validRetention)
	}
	return struct{}{}, s.updateGroup(ctx, c, in.LogGroupName, func(m *groupMeta) { m.RetentionInDays = in.RetentionInDays })
}

func (s *Service) deleteRetentionPolicy(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in groupNameInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	return struct{}{}, s.updateGroup(ctx, c, in.LogGroupName, func(m *groupMeta) { m.RetentionInDays = 0 })
}

func (s *Service) updateGroup(ctx context.Context, c auth.Caller, name string, change func(*groupMeta)) error {
	defer kv.Hold(ctx, &s.mu)()
	g, err := s.lookupGroupLocked(c, name, "")
	if err != nil {
		return err
	}
	meta := g.meta
	change(&meta)
	if err := s.writeLocked(ctx, func(b *pebble.Batch) error {
		return setState(b, kv.StateLogGroup, g.id.Account, g.id.stateName(), &meta)
	}); err != nil {
		return err
	}
	g.meta = meta
	return nil
}

type streamInput struct {
	LogGroupName  string `json:"logGroupName"`
	LogStreamName string `json:"logStreamName"`
}

func (s *Service) createLogStream(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in streamInput
	return s.withGroup(ctx, c, body, &in, &in.LogGroupName, func(g *group) (any, error) {
		if g.streams[in.LogStreamName] != nil {
			return nil, apiErr("ResourceAlreadyExistsException", "The specified log stream already exists")
		}
		st := &streamMeta{Name: in.LogStreamName, CreationTime: millis(s.o.Now())}
		if err := s.writeLocked(ctx, func(b *pebble.Batch) error {
			return setState(b, kv.StateLogStream, g.id.Account, g.id.stateName()+":"+st.Name, st)
		}); err != nil {
			return nil, err
		}
		g.streams[st.Name] = st
		return struct{}{}, nil
	})
}

func (s *Service) deleteLogStream(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in streamInput
	return s.withGroup(ctx, c, body, &in, &in.LogGroupName, func(g *group) (any, error) {
		if g.streams[in.LogStreamName] == nil {
			return nil, errNoStream()
		}
		if err := s.deleteLocked(ctx, [][]byte{kv.StateKey(kv.StateLogStream, g.id.Account, g.id.stateName()+":"+in.LogStreamName)},
			[][]byte{kv.LogStreamPrefix(g.id.Account, g.id.Region, g.id.Name, in.LogStreamName)}); err != nil {
			return nil, err
		}
		delete(g.streams, in.LogStreamName)
		return struct{}{}, nil
	})
}

type describeLogStreamsInput struct {
	LogGroupName        string `json:"logGroupName"`
	LogGroupIdentifier  string `json:"logGroupIdentifier"`
	LogStreamNamePrefix string `json:"logStreamNamePrefix"`
	OrderBy             string `json:"orderBy"`
	Descending          bool   `json:"descending"`
	NextToken           string `json:"nextToken"`
	Limit               int    `json:"limit"`
}

type logStreamOut struct {
	LogStreamName       string `json:"logStreamName"`
	CreationTime        int64  `json:"creationTime"`
	FirstEventTimestamp int64  `json:"firstEventTimestamp,omitempty"`
	LastEventTimestamp  int64  `json:"lastEventTimestamp,omitempty"`
	LastIngestionTime   int64  `json:"lastIngestionTime,omitempty"`
	UploadSequenceToken string `json:"uploadSequenceToken"`
	Arn                 string `json:"arn"`
	StoredBytes         int64  `json:"storedBytes"`
}

func (s *Service) describeLogStreams(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in describeLogStreamsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.OrderBy == "LastEventTime" && in.LogStreamNamePrefix != "" {
		return nil, apiErr("InvalidParameterException", "Cannot order by LastEventTime with a logStreamNamePrefix.")
	}
	limit := in.Limit
	if limit == 0 {
		limit = 50
	}
	offset := 0
	if in.NextToken != "" {
		v, err := decodeNameToken(in.NextToken)
		if _, scanErr := fmt.Sscanf(v, "%d", &offset); err != nil || scanErr != nil || offset < 0 {
			return nil, apiErr("InvalidParameterException", "The specified nextToken is invalid.")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGroupLocked(c, in.LogGroupName, in.LogGroupIdentifier)
	if err != nil {
		return nil, err
	}
	var list []*streamMeta
	for _, st := range g.streams {
		if strings.HasPrefix(st.Name, in.LogStreamNamePrefix) {
			list = append(list, st)
		}
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if in.OrderBy == "LastEventTime" && a.LastEvent != b.LastEvent {
			return (a.LastEvent < b.LastEvent) != in.Descending
		}
		return (a.Name < b.Name) != in.Descending
	})
	out := struct {
		LogStreams []logStreamOut `json:"logStreams"`
		NextToken  string         `json:"nextToken,omitempty"`
	}{LogStreams: []logStreamOut{}}
	arn := s.groupARN(g.id)
	for i := offset; i < len(list); i++ {
		if i-offset == limit {
			out.NextToken = encodeNameToken(fmt.Sprint(i))
			break
		}
		st := list[i]
		out.LogStreams = append(out.LogStreams, logStreamOut{
			LogStreamName: st.Name, CreationTime: st.CreationTime, FirstEventTimestamp: st.FirstEvent,
			LastEventTimestamp: st.LastEvent, LastIngestionTime: st.LastIngestion, StoredBytes: st.StoredBytes,
			UploadSequenceToken: fmt.Sprintf("%056d", st.Events), Arn: arn + ":log-stream:" + st.Name,
		})
	}
	return out, nil
}
