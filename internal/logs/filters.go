package logs

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/filterpattern"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/logs/dest"
	"github.com/opentrail/opentrail/internal/outbox"
)

var filterOps = map[string]opFunc{
	"PutSubscriptionFilter":       (*Service).putSubscriptionFilter,
	"DescribeSubscriptionFilters": (*Service).describeSubscriptionFilters,
	"DeleteSubscriptionFilter":    (*Service).deleteSubscriptionFilter,
	"PutMetricFilter":             (*Service).putMetricFilter,
	"DescribeMetricFilters":       (*Service).describeMetricFilters,
	"DeleteMetricFilter":          (*Service).deleteMetricFilter,
	"TestMetricFilter":            (*Service).testMetricFilter,
}

// subscriptionDef is a subscription filter as stored and described.
type subscriptionDef struct {
	FilterName     string `json:"filterName"`
	LogGroupName   string `json:"logGroupName"`
	FilterPattern  string `json:"filterPattern"`
	DestinationArn string `json:"destinationArn"`
	RoleArn        string `json:"roleArn,omitempty"`
	Distribution   string `json:"distribution,omitempty"`
	CreationTime   int64  `json:"creationTime"`
}

// subscription is a subscription filter with its compiled pattern, destination and sender.
type subscription struct {
	def     subscriptionDef
	group   groupID
	pattern *filterpattern.Pattern
	dest    dest.Destination
	destErr error          // why the destination could not be resolved at load
	out     *outbox.Stream // pending deliveries and dead letters, keyed by log sequence number
	stop    context.CancelFunc
	done    chan struct{}
}

func (s *Service) newSubscription(g *group, d subscriptionDef) (*subscription, error) {
	p, err := filterpattern.Parse(d.FilterPattern)
	if err != nil {
		return nil, err
	}
	sub := &subscription{def: d, group: g.id, pattern: p}
	sub.out = s.newOutbox(sub)
	sub.dest, sub.destErr = s.o.Resolve(d.DestinationArn)
	return sub, nil
}

type putSubscriptionFilterInput struct {
	LogGroupName   string `json:"logGroupName"`
	FilterName     string `json:"filterName"`
	FilterPattern  string `json:"filterPattern"`
	DestinationArn string `json:"destinationArn"`
	RoleArn        string `json:"roleArn"`
	Distribution   string `json:"distribution"`
}

func (s *Service) putSubscriptionFilter(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in putSubscriptionFilterInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if _, err := compile(in.FilterPattern); err != nil {
		return nil, err
	}
	if _, err := s.o.Resolve(in.DestinationArn); err != nil {
		return nil, apiErr("InvalidParameterException", "Could not deliver test message to specified destination %s: %v", in.DestinationArn, err)
	}
	if in.Distribution == "" {
		in.Distribution = "ByLogStream"
	}
	defer kv.Hold(ctx, &s.mu)()
	g, err := s.lookupGroupLocked(c, in.LogGroupName, "")
	if err != nil {
		return nil, err
	}
	d := subscriptionDef{FilterName: in.FilterName, LogGroupName: g.id.Name, FilterPattern: in.FilterPattern,
		DestinationArn: in.DestinationArn, RoleArn: in.RoleArn, Distribution: in.Distribution, CreationTime: millis(s.o.Now())}
	old := -1
	for i, sub := range g.subs {
		if sub.def.FilterName == in.FilterName {
			old = i
			d.CreationTime = sub.def.CreationTime
		}
	}
	if old < 0 && len(g.subs) >= s.o.SubscriptionFilters {
		return nil, apiErr("LimitExceededException", "Resource limit exceeded.")
	}
	sub, err := s.newSubscription(g, d)
	if err != nil {
		return nil, apiErr("InvalidParameterException", "Invalid filter pattern: %v", err)
	}
	if err := s.writeLocked(ctx, func(b *pebble.Batch) error {
		return setState(b, kv.StateSubscription, g.id.Account, g.id.stateName()+":"+d.FilterName, &d)
	}); err != nil {
		return nil, err
	}
	g.subIdx = nil
	if old >= 0 {
		// Replacing a filter keeps its queue: what matched the old pattern is still delivered, to the new destination.
		prev := g.subs[old]
		s.stopSenderLocked(prev)
		sub.out.Adopt(prev.out)
		g.subs[old] = sub
	} else {
		g.subs = append(g.subs, sub)
		sort.Slice(g.subs, func(i, j int) bool { return g.subs[i].def.FilterName < g.subs[j].def.FilterName })
	}
	if s.ctx != nil {
		s.startSender(sub)
	}
	return struct{}{}, nil
}

type describeFiltersInput struct {
	LogGroupName     string `json:"logGroupName"`
	FilterNamePrefix string `json:"filterNamePrefix"`
	NextToken        string `json:"nextToken"`
	Limit            int    `json:"limit"`
	MetricName       string `json:"metricName"`
	MetricNamespace  string `json:"metricNamespace"`
}

func (s *Service) describeSubscriptionFilters(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in describeFiltersInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	after, err := decodeNameToken(in.NextToken)
	if err != nil {
		return nil, err
	}
	limit := in.Limit
	if limit == 0 {
		limit = 50
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGroupLocked(c, in.LogGroupName, "")
	if err != nil {
		return nil, err
	}
	out := struct {
		SubscriptionFilters []subscriptionDef `json:"subscriptionFilters"`
		NextToken           string            `json:"nextToken,omitempty"`
	}{SubscriptionFilters: []subscriptionDef{}}
	for _, sub := range g.subs {
		if sub.def.FilterName <= after || !strings.HasPrefix(sub.def.FilterName, in.FilterNamePrefix) {
			continue
		}
		if len(out.SubscriptionFilters) == limit {
			out.NextToken = encodeNameToken(out.SubscriptionFilters[limit-1].FilterName)
			break
		}
		out.SubscriptionFilters = append(out.SubscriptionFilters, sub.def)
	}
	return out, nil
}

type filterNameInput struct {
	LogGroupName string `json:"logGroupName"`
	FilterName   string `json:"filterName"`
}

func (s *Service) deleteSubscriptionFilter(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in filterNameInput
	return s.withGroup(ctx, c, body, &in, &in.LogGroupName, func(g *group) (any, error) {
		i := slices.IndexFunc(g.subs, func(sub *subscription) bool { return sub.def.FilterName == in.FilterName })
		if i < 0 {
			return nil, apiErr("ResourceNotFoundException", "The specified subscription filter does not exist.")
		}
		sub := g.subs[i]
		s.stopSenderLocked(sub)
		if err := s.deleteLocked(ctx, [][]byte{kv.StateKey(kv.StateSubscription, g.id.Account, g.id.stateName()+":"+in.FilterName)},
			sub.out.Prefixes()); err != nil {
			return nil, err
		}
		g.subs = slices.Delete(g.subs, i, i+1)
		g.subIdx = nil
		return struct{}{}, nil
	})
}

// ---- metric filters ----

type metricTransformation struct {
	MetricName      string            `json:"metricName"`
	MetricNamespace string            `json:"metricNamespace"`
	MetricValue     string            `json:"metricValue"`
	DefaultValue    *float64          `json:"defaultValue,omitempty"`
	Dimensions      map[string]string `json:"dimensions,omitempty"`
	Unit            string            `json:"unit,omitempty"`
}

type metricFilterDef struct {
	FilterName            string                 `json:"filterName"`
	FilterPattern         string                 `json:"filterPattern"`
	MetricTransformations []metricTransformation `json:"metricTransformations"`
	CreationTime          int64                  `json:"creationTime"`
	LogGroupName          string                 `json:"logGroupName"`
	// DisabledReason is set when the filter stopped counting; not an AWS
	// member (SDKs ignore it), shown by DescribeMetricFilters. Putting the
	// filter again enables it.
	DisabledReason string `json:"disabledReason,omitempty"`
}

// maxDimensionCombinations is how many distinct dimension value combinations
// one metric filter may yield before it is disabled, as CloudWatch Logs
// disables a filter past 1,000: each is a metric series.
const maxDimensionCombinations = 1000

// metricValue is the running sum of one metric (one set of dimension values).
type metricValue struct {
	Dims  map[string]string `json:"dims,omitempty"`
	Sum   float64           `json:"sum"`
	Count int64             `json:"count"`
	Last  int64             `json:"last"` // ms of the latest event counted
}

type metricFilter struct {
	def     metricFilterDef
	group   groupID
	pattern *filterpattern.Pattern
	values  map[string]*metricValue // key: dimension values joined

	disabledNow bool // apply disabled it; appendLocked saves the definition and logs it
}

func newMetricFilter(g *group, d metricFilterDef) (*metricFilter, error) {
	p, err := filterpattern.Parse(d.FilterPattern)
	if err != nil {
		return nil, err
	}
	return &metricFilter{def: d, group: g.id, pattern: p, values: map[string]*metricValue{}}, nil
}

// apply counts ev if it matches; it reports whether a value (or the filter) changed.
func (mf *metricFilter) apply(ev *filterpattern.Event, ts int64) bool {
	if mf.def.DisabledReason != "" || !mf.pattern.Match(ev) {
		return false
	}
	t := &mf.def.MetricTransformations[0]
	v, ok := mf.value(ev, t.MetricValue)
	if !ok {
		return false // a value reference that selects nothing publishes nothing
	}
	var dims map[string]string
	key := ""
	if len(t.Dimensions) > 0 {
		dims = map[string]string{}
		names := make([]string, 0, len(t.Dimensions))
		for n := range t.Dimensions {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			dv, ok := mf.pattern.Value(ev, t.Dimensions[n])
			if !ok {
				return false // CloudWatch drops a metric whose dimension has no value
			}
			dims[n] = dv
			key += n + "=" + dv + "\x00"
		}
	}
	mv := mf.values[key]
	if mv == nil && len(mf.values) >= maxDimensionCombinations {
		mf.def.DisabledReason = fmt.Sprintf("disabled at %s: its dimensions yielded more than %d distinct value combinations; put the filter again with dimensions of fewer values to enable it",
			time.UnixMilli(ts).UTC().Format(time.RFC3339), maxDimensionCombinations)
		mf.disabledNow = true
		return true
	}
	if mv == nil {
		mv = &metricValue{Dims: dims}
		mf.values[key] = mv
	}
	mv.Sum += v
	mv.Count++
	mv.Last = max(mv.Last, ts)
	return true
}

func (mf *metricFilter) value(ev *filterpattern.Event, ref string) (float64, bool) {
	if !strings.HasPrefix(ref, "$") {
		v, err := strconv.ParseFloat(ref, 64)
		return v, err == nil
	}
	s, ok := mf.pattern.Value(ev, ref)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

type putMetricFilterInput struct {
	LogGroupName          string                 `json:"logGroupName"`
	FilterName            string                 `json:"filterName"`
	FilterPattern         string                 `json:"filterPattern"`
	MetricTransformations []metricTransformation `json:"metricTransformations"`
}

func (s *Service) putMetricFilter(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in putMetricFilterInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	p, err := compile(in.FilterPattern)
	if err != nil {
		return nil, err
	}
	t := in.MetricTransformations[0]
	if err := checkTransformation(p, &t); err != nil {
		return nil, err
	}
	defer kv.Hold(ctx, &s.mu)()
	g, err := s.lookupGroupLocked(c, in.LogGroupName, "")
	if err != nil {
		return nil, err
	}
	d := metricFilterDef{FilterName: in.FilterName, FilterPattern: in.FilterPattern, LogGroupName: g.id.Name,
		MetricTransformations: []metricTransformation{t}, CreationTime: millis(s.o.Now())}
	old := -1
	for i, mf := range g.metrics {
		if mf.def.FilterName == in.FilterName {
			old = i
		}
	}
	if old < 0 && len(g.metrics) >= maxMetricFilters {
		return nil, apiErr("LimitExceededException", "Resource limit exceeded.")
	}
	mf, err := newMetricFilter(g, d)
	if err != nil {
		return nil, err
	}
	if old >= 0 {
		prev := g.metrics[old]
		if sameMetric(&prev.def.MetricTransformations[0], &t) && prev.def.DisabledReason == "" {
			mf.values = prev.values // the metric goes on counting
		}
	}
	name := g.id.stateName() + ":" + d.FilterName
	if err := s.writeLocked(ctx, func(b *pebble.Batch) error {
		if err := setState(b, kv.StateMetricFilter, g.id.Account, name, &d); err != nil {
			return err
		}
		return setState(b, kv.StateMetricValues, g.id.Account, name, mf.values)
	}); err != nil {
		return nil, err
	}
	if old >= 0 {
		g.metrics[old] = mf
	} else {
		g.metrics = append(g.metrics, mf)
		sort.Slice(g.metrics, func(i, j int) bool { return g.metrics[i].def.FilterName < g.metrics[j].def.FilterName })
	}
	return struct{}{}, nil
}

func sameMetric(a, b *metricTransformation) bool {
	if a.MetricName != b.MetricName || a.MetricNamespace != b.MetricNamespace || len(a.Dimensions) != len(b.Dimensions) {
		return false
	}
	for k, v := range a.Dimensions {
		if b.Dimensions[k] != v {
			return false
		}
	}
	return true
}

// checkTransformation applies CloudWatch's rules to a metric transformation.
func checkTransformation(p *filterpattern.Pattern, t *metricTransformation) error {
	if t.MetricName == "" || t.MetricNamespace == "" || t.MetricValue == "" {
		return apiErr("InvalidParameterException", "metricName, metricNamespace and metricValue are required.")
	}
	if len(t.Dimensions) > 3 {
		return apiErr("InvalidParameterException", "A metric filter can have at most 3 dimensions.")
	}
	if len(t.Dimensions) > 0 && t.DefaultValue != nil {
		return apiErr("InvalidParameterException", "A metric filter with dimensions cannot have a default value.")
	}
	if strings.HasPrefix(t.MetricValue, "$") {
		if p.Kind() != filterpattern.JSON && p.Kind() != filterpattern.SpaceDelimited {
			return apiErr("InvalidParameterException", "Invalid metric value %s: a field reference needs a JSON or space-delimited filter pattern.", t.MetricValue)
		}
	} else if _, err := strconv.ParseFloat(t.MetricValue, 64); err != nil {
		return apiErr("InvalidParameterException", "Invalid metric value %q: give a number or a field reference such as $.latency.", t.MetricValue)
	}
	for n, ref := range t.Dimensions {
		if !strings.HasPrefix(ref, "$") {
			return apiErr("InvalidParameterException", "Invalid dimension %s: its value must be a field reference such as $.eventName.", n)
		}
	}
	return nil
}

func (s *Service) describeMetricFilters(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in describeFiltersInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.FilterNamePrefix != "" && in.LogGroupName == "" {
		return nil, apiErr("InvalidParameterException", "If you specify filterNamePrefix, you must also specify logGroupName.")
	}
	if (in.MetricName == "") != (in.MetricNamespace == "") {
		return nil, apiErr("InvalidParameterException", "metricName and metricNamespace must be given together.")
	}
	after, err := decodeNameToken(in.NextToken)
	if err != nil {
		return nil, err
	}
	limit := in.Limit
	if limit == 0 {
		limit = 50
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var groups []*group
	if in.LogGroupName != "" {
		g, err := s.lookupGroupLocked(c, in.LogGroupName, "")
		if err != nil {
			return nil, err
		}
		groups = []*group{g}
	} else {
		for id, g := range s.groups {
			if id.Account == c.Account && id.Region == c.Region {
				groups = append(groups, g)
			}
		}
	}
	type row struct {
		key string
		def metricFilterDef
	}
	var rows []row
	for _, g := range groups {
		for _, mf := range g.metrics {
			t := mf.def.MetricTransformations[0]
			key := g.id.Name + ":" + mf.def.FilterName
			switch {
			case key <= after, !strings.HasPrefix(mf.def.FilterName, in.FilterNamePrefix):
			case in.MetricName != "" && (t.MetricName != in.MetricName || t.MetricNamespace != in.MetricNamespace):
			default:
				rows = append(rows, row{key, mf.def})
			}
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].key < rows[j].key })
	out := struct {
		MetricFilters []metricFilterDef `json:"metricFilters"`
		NextToken     string            `json:"nextToken,omitempty"`
	}{MetricFilters: []metricFilterDef{}}
	for i, r := range rows {
		if i == limit {
			out.NextToken = encodeNameToken(rows[i-1].key)
			break
		}
		out.MetricFilters = append(out.MetricFilters, r.def)
	}
	return out, nil
}

func (s *Service) deleteMetricFilter(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in filterNameInput
	return s.withGroup(ctx, c, body, &in, &in.LogGroupName, func(g *group) (any, error) {
		i := slices.IndexFunc(g.metrics, func(mf *metricFilter) bool { return mf.def.FilterName == in.FilterName })
		if i < 0 {
			return nil, apiErr("ResourceNotFoundException", "The specified metric filter does not exist.")
		}
		name := g.id.stateName() + ":" + in.FilterName
		if err := s.deleteLocked(ctx, [][]byte{kv.StateKey(kv.StateMetricFilter, g.id.Account, name), kv.StateKey(kv.StateMetricValues, g.id.Account, name)}, nil); err != nil {
			return nil, err
		}
		g.metrics = slices.Delete(g.metrics, i, i+1)
		return struct{}{}, nil
	})
}

type testMetricFilterInput struct {
	FilterPattern    string   `json:"filterPattern"`
	LogEventMessages []string `json:"logEventMessages"`
}

type metricFilterMatch struct {
	EventNumber     int64             `json:"eventNumber"`
	EventMessage    string            `json:"eventMessage"`
	ExtractedValues map[string]string `json:"extractedValues"`
}

// testMetricFilter answers which messages match; for a space-delimited pattern
// extractedValues maps $name and $N to the fields, as CloudWatch Logs shows them.
func (s *Service) testMetricFilter(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in testMetricFilterInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	p, err := compile(in.FilterPattern)
	if err != nil {
		return nil, err
	}
	out := struct {
		Matches []metricFilterMatch `json:"matches"`
	}{Matches: []metricFilterMatch{}}
	for i, msg := range in.LogEventMessages {
		ev := filterpattern.NewEvent([]byte(msg))
		if !p.Match(ev) {
			continue
		}
		m := metricFilterMatch{EventNumber: int64(i + 1), EventMessage: msg, ExtractedValues: map[string]string{}}
		if p.Kind() == filterpattern.SpaceDelimited {
			for _, ref := range p.FieldRefs() {
				if v, ok := p.Value(ev, ref); ok {
					m.ExtractedValues[ref] = v
				}
			}
		}
		out.Matches = append(out.Matches, m)
	}
	return out, nil
}

// MetricSample is one metric filter's value for Prometheus.
type MetricSample struct {
	Account, Region, LogGroup, Filter string
	Namespace, Name, Unit             string
	Dims                              map[string]string
	Sum                               float64
	Count                             int64
	// Disabled is set on the one sample of a disabled filter (DisabledReason), which has no values.
	Disabled bool
}

// MetricSamples returns every metric filter's current values, plus a zero (or
// defaultValue) sample for filters without dimensions that matched nothing yet,
// so that alert rules see the series from the start.
func (s *Service) MetricSamples() []MetricSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []MetricSample
	for _, g := range s.groups {
		for _, mf := range g.metrics {
			t := mf.def.MetricTransformations[0]
			base := MetricSample{Account: g.id.Account, Region: g.id.Region, LogGroup: g.id.Name, Filter: mf.def.FilterName,
				Namespace: t.MetricNamespace, Name: t.MetricName, Unit: t.Unit}
			if mf.def.DisabledReason != "" {
				base.Disabled = true
				out = append(out, base)
				continue
			}
			if len(mf.values) == 0 && len(t.Dimensions) == 0 {
				out = append(out, base)
				continue
			}
			for _, v := range mf.values {
				x := base
				x.Dims, x.Sum, x.Count = v.Dims, v.Sum, v.Count
				out = append(out, x)
			}
		}
	}
	return out
}

func (id groupID) String() string { return fmt.Sprintf("%s/%s/%s", id.Account, id.Region, id.Name) }
