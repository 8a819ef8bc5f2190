package cloudtrail

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/insights"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/selector"
)

var insightOps = map[string]opFunc{
	"ListInsightsMetricData": (*Service).listInsightsMetricData,
	"ListInsightsData":       (*Service).listInsightsData,
}

// ---- PutInsightSelectors and GetInsightSelectors on event data stores ----

type storeInsightSelectorsOutput struct {
	EventDataStoreArn   string            `json:"EventDataStoreArn"`
	InsightsDestination string            `json:"InsightsDestination,omitempty"`
	InsightSelectors    []insightSelector `json:"InsightSelectors"`
}

// isInsightsStore says whether a store collects Insights events: its selectors
// take eventCategory Insight.
func (d *storedEDS) isInsightsStore() bool {
	for _, as := range d.Selectors {
		for _, f := range as.FieldSelectors {
			if f.Field == selector.FieldEventCategory && slices.Contains(f.Equals, selector.CategoryInsight) {
				return true
			}
		}
	}
	return false
}

// putStoreInsightSelectors enables (or, with no selectors, disables) Insights
// on a source store whose Insights events go to the destination store.
func (s *Service) putStoreInsightSelectors(ctx context.Context, c auth.Caller, source string, dest *string, sel []insightSelector) (any, error) {
	for i, is := range sel {
		if slices.Contains(is.EventCategories, selector.CategoryData) {
			return nil, awsapi.Errorf("InvalidInsightSelectorsException",
				"InsightSelectors[%d]: event data stores support Insights on management events only, not on data events.", i)
		}
	}
	defer kv.Hold(ctx, &s.lakeMu)()
	d, err := s.resolveActiveStore(c, source)
	if err != nil {
		return nil, err
	}
	if sel == nil {
		d.InsightSelectors, d.InsightsDestination = nil, ""
		if err := s.putEDS(ctx, d); err != nil {
			return nil, err
		}
		s.insightsCache.invalidate()
		return storeInsightSelectorsOutput{EventDataStoreArn: s.edsARN(d), InsightSelectors: []insightSelector{}}, nil
	}
	if dest == nil {
		return nil, awsapi.Errorf("InvalidParameterCombinationException",
			"To enable Insights on event data store %s, give InsightsDestination too: the event data store that receives its Insights events.", d.Name)
	}
	if d.isInsightsStore() || d.isAuditLogStore() {
		return nil, awsapi.Errorf("InvalidParameterException",
			"Event data store %s does not collect management events: Insights analyses a store of CloudTrail management events.", d.Name)
	}
	if err := checkLoggable(selectorsLog(nil, d.Selectors), "event data store", d.Name, "UpdateEventDataStore", sel); err != nil {
		return nil, err
	}
	to, err := s.resolveActiveStore(c, *dest)
	if err != nil {
		return nil, err
	}
	if !to.isInsightsStore() {
		return nil, awsapi.Errorf("InvalidParameterException",
			"InsightsDestination %s does not collect Insights events: create it with an advanced event selector eventCategory = Insight.", to.Name)
	}
	d.InsightSelectors, d.InsightsDestination = sel, to.ID
	if err := s.putEDS(ctx, d); err != nil {
		return nil, err
	}
	s.insightsCache.invalidate()
	return storeInsightSelectorsOutput{EventDataStoreArn: s.edsARN(d), InsightsDestination: s.edsARN(to), InsightSelectors: sel}, nil
}

func (s *Service) getStoreInsightSelectors(c auth.Caller, source string) (any, error) {
	d, err := s.resolveStore(c, source)
	if err != nil {
		return nil, err
	}
	if len(d.InsightSelectors) == 0 {
		return nil, awsapi.Errorf("InsightNotEnabledException", "Event data store %s does not have Insights enabled.", s.edsARN(d))
	}
	out := storeInsightSelectorsOutput{EventDataStoreArn: s.edsARN(d), InsightSelectors: d.InsightSelectors}
	out.InsightsDestination = fmt.Sprintf("arn:%s:cloudtrail:%s:%s:eventdatastore/%s", s.part, d.HomeRegion, d.Account, d.InsightsDestination)
	return out, nil
}

// ---- Which accounts have Insights ----

// insightsCache is what InsightsEnabled reads: every trail and store with
// Insights, re-read when a trail changes or a second has passed.
type insightsCache struct {
	mu      sync.Mutex
	version uint64
	at      time.Time
	scopes  []insightScope
}

type insightScope struct {
	account, home string
	allRegions    bool
	logging       bool
	sel           []insightSelector
}

func (c *insightsCache) invalidate() {
	c.mu.Lock()
	c.at = time.Time{}
	c.mu.Unlock()
}

// InsightsEnabled says whether a trail or an event data store of account
// analyses insightType on management (data false) or data events in region.
func (s *Service) InsightsEnabled(account, region, insightType string, data bool) bool {
	c := &s.insightsCache
	c.mu.Lock()
	defer c.mu.Unlock()
	if v := s.TrailsVersion(); v != c.version || time.Since(c.at) >= time.Second {
		c.version, c.at = v, time.Now()
		c.scopes = c.scopes[:0]
		trails, err := s.accountTrails("")
		if err != nil {
			s.log.Error("list trails for Insights", "err", err)
		}
		for _, t := range trails {
			if len(t.InsightSelectors) > 0 {
				c.scopes = append(c.scopes, insightScope{t.Account, t.HomeRegion, t.IsMultiRegionTrail, t.Status.IsLogging, t.InsightSelectors})
			}
		}
		stores, err := s.accountStores("")
		if err != nil {
			s.log.Error("list event data stores for Insights", "err", err)
		}
		for _, d := range stores {
			if len(d.InsightSelectors) > 0 {
				c.scopes = append(c.scopes, insightScope{d.Account, d.HomeRegion, d.MultiRegion, d.Status == edsEnabled, d.InsightSelectors})
			}
		}
	}
	cat := selector.CategoryManagement
	if data {
		cat = selector.CategoryData
	}
	for _, sc := range c.scopes {
		if sc.account != account || !sc.logging || (!sc.allRegions && sc.home != region) {
			continue
		}
		for _, is := range sc.sel {
			cats := is.EventCategories
			if len(cats) == 0 {
				cats = []string{selector.CategoryManagement}
			}
			if is.InsightType == insightType && slices.Contains(cats, cat) {
				return true
			}
		}
	}
	return false
}

// ---- ListInsightsMetricData ----

type listInsightsMetricDataInput struct {
	TrailName   *string
	EventSource string
	EventName   string
	InsightType string
	ErrorCode   *string
	StartTime   *float64
	EndTime     *float64
	Period      *int
	DataType    *string
	MaxResults  *int
	NextToken   *string
}

type listInsightsMetricDataOutput struct {
	TrailARN    string         `json:"TrailARN,omitempty"`
	EventSource string         `json:"EventSource"`
	EventName   string         `json:"EventName"`
	InsightType string         `json:"InsightType"`
	ErrorCode   string         `json:"ErrorCode,omitempty"`
	Timestamps  []epochSeconds `json:"Timestamps"`
	Values      []float64      `json:"Values"`
	NextToken   string         `json:"NextToken,omitempty"`
}

// metricToken is a ListInsightsMetricData NextToken: where the next page
// starts, and a hash of the request it belongs to.
type metricToken struct {
	From  int64  `json:"f"` // unix seconds of the next period
	Query string `json:"q"`
}

// How far back each period's data points go ("Each cutoff is inclusive").
var metricRetention = map[int]time.Duration{60: 15 * 24 * time.Hour, 300: 63 * 24 * time.Hour, 3600: 90 * 24 * time.Hour}

var errorCodeRE = regexp.MustCompile(`^[\w\d\s_.,\-:\[\]]+$`)

// listInsightsMetricData returns the calls (or errors) of one API per period:
// the sum of its per-minute counts, in the caller's account and Region.
func (s *Service) listInsightsMetricData(_ context.Context, c auth.Caller, body []byte) (any, error) {
	var in listInsightsMetricDataInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return awsapi.Errorf("InvalidParameterException", format, args...)
	}
	k := insights.SeriesKey{Account: c.Account, Region: c.Region, Source: in.EventSource, Name: in.EventName}
	out := listInsightsMetricDataOutput{EventSource: in.EventSource, EventName: in.EventName, InsightType: in.InsightType}
	switch in.InsightType {
	case insights.CallRate:
		if in.ErrorCode != nil {
			return nil, bad("ErrorCode applies to ApiErrorRateInsight only, not to %s.", in.InsightType)
		}
		k.Kind = insights.KindCalls
	case insights.ErrorRate:
		if in.ErrorCode == nil {
			return nil, bad("ErrorCode is required when InsightType is ApiErrorRateInsight, e.g. AccessDenied.")
		}
		if !errorCodeRE.MatchString(*in.ErrorCode) || len(*in.ErrorCode) > 128 {
			return nil, bad("ErrorCode %q is not valid.", *in.ErrorCode)
		}
		k.Kind, k.ErrorCode, out.ErrorCode = insights.KindErrors, *in.ErrorCode, *in.ErrorCode
	default:
		return nil, bad("InsightType %q is not valid: use %s or %s.", in.InsightType, insights.CallRate, insights.ErrorRate)
	}
	if in.TrailName != nil {
		t, err := s.resolveTrail(c, "ListInsightsMetricData", *in.TrailName, shadowOK)
		if err != nil {
			return nil, err
		}
		out.TrailARN = s.trailARN(t)
		if k.Kind == insights.KindCalls {
			k.Kind = insights.KindDataCalls
		} else {
			k.Kind = insights.KindDataErrors
		}
	}
	period := 3600
	if in.Period != nil {
		period = *in.Period
	}
	if _, ok := metricRetention[period]; !ok {
		return nil, bad("Period %d is not valid: use 60, 300 or 3600 seconds.", period)
	}
	fill := false
	if in.DataType != nil {
		switch *in.DataType {
		case "FillWithZeros":
			fill = true
		case "NonZeroData":
		default:
			return nil, bad("DataType %q is not valid: use FillWithZeros or NonZeroData.", *in.DataType)
		}
	}
	maxResults := 21600
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 21600 {
			return nil, bad("MaxResults must be between 1 and 21600, not %d.", *in.MaxResults)
		}
		maxResults = *in.MaxResults
	}
	now := s.now()
	start, end := now.Add(-90*24*time.Hour).Unix(), now.Unix()
	if in.StartTime != nil {
		start = int64(math.Floor(*in.StartTime))
	}
	if in.EndTime != nil {
		end = int64(math.Ceil(*in.EndTime))
	}
	if start >= end {
		return nil, bad("StartTime must be before EndTime.")
	}
	// Periods start on multiples of the period; older points than the period keeps are gone.
	p := int64(period)
	start = max(start, now.Add(-metricRetention[period]).Unix())
	start = floorTo(start, p)
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%v\x00%d\x00%d\x00%d\x00%t", c.Account, c.Region, k, start, end, p, fill))
	query := hex.EncodeToString(h[:8])
	if in.NextToken != nil {
		var tok metricToken
		if err := decodePageToken(*in.NextToken, &tok); err != nil || tok.Query != query || tok.From < start || tok.From >= end {
			return nil, bad("The NextToken is invalid, or was issued for a request with other parameters.")
		}
		start = tok.From
	}
	out.Timestamps, out.Values = []epochSeconds{}, []float64{}
	var sums []int64
	var stamps []int64
	err := insights.Minutes(s.db, k, floorDiv(start, 60), ceilDiv(end, 60), func(pt insights.Point) bool {
		ts := floorTo(pt.Minute*60, p)
		if ts >= end {
			return false
		}
		if n := len(stamps); n > 0 && stamps[n-1] == ts {
			sums[n-1] += pt.N
			return true
		}
		stamps, sums = append(stamps, ts), append(sums, pt.N)
		return true
	})
	if err != nil {
		return nil, err
	}
	emit := func(ts, v int64) bool {
		if len(out.Values) == maxResults {
			out.NextToken = encodePageToken(metricToken{From: ts, Query: query})
			return false
		}
		out.Timestamps = append(out.Timestamps, epochSeconds(time.Unix(ts, 0).UTC()))
		out.Values = append(out.Values, float64(v))
		return true
	}
	if fill {
		i := 0
		for ts := start; ts < end; ts += p {
			var v int64
			if i < len(stamps) && stamps[i] == ts {
				v = sums[i]
				i++
			}
			if !emit(ts, v) {
				break
			}
		}
	} else {
		for i, ts := range stamps {
			if sums[i] > 0 && !emit(ts, sums[i]) {
				break
			}
		}
	}
	return out, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }

func floorTo(t, p int64) int64 { return floorDiv(t, p) * p }

// ---- ListInsightsData ----

type listInsightsDataInput struct {
	InsightSource string
	DataType      string
	Dimensions    map[string]string
	StartTime     *float64
	EndTime       *float64
	MaxResults    *int
	NextToken     *string
}

// listInsightsData lists the Insights events on data events of a trail:
// LookupEvents' insight events, narrowed to the data-event ones.
func (s *Service) listInsightsData(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in listInsightsDataInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.DataType != "InsightsEvents" {
		return nil, awsapi.Errorf("InvalidParameterException", "DataType must be InsightsEvents, not %q.", in.DataType)
	}
	if _, err := s.resolveTrail(c, "ListInsightsData", in.InsightSource, shadowOK); err != nil {
		return nil, err
	}
	look := map[string]any{"EventCategory": "insight"}
	if len(in.Dimensions) > 1 {
		return nil, awsapi.Errorf("InvalidParameterException", "Dimensions takes one dimension, not %d.", len(in.Dimensions))
	}
	for key, v := range in.Dimensions {
		if key != "EventId" && key != "EventName" && key != "EventSource" {
			return nil, awsapi.Errorf("InvalidParameterException", "Dimension %q is not valid: use EventId, EventName or EventSource.", key)
		}
		look["LookupAttributes"] = []map[string]string{{"AttributeKey": key, "AttributeValue": v}}
	}
	if in.StartTime != nil {
		look["StartTime"] = *in.StartTime
	}
	if in.EndTime != nil {
		look["EndTime"] = *in.EndTime
	}
	if in.MaxResults != nil {
		look["MaxResults"] = *in.MaxResults
	}
	if in.NextToken != nil {
		look["NextToken"] = *in.NextToken
	}
	b, _ := json.Marshal(look) // strings and numbers: cannot fail
	res, err := s.lookupEvents(ctx, c, b)
	if err != nil {
		return nil, err
	}
	page := res.(lookupEventsOutput)
	kept := page.Events[:0]
	for _, e := range page.Events {
		in, err := insights.ParseRecord([]byte(e.CloudTrailEvent))
		if err == nil && insights.IsData(in) {
			kept = append(kept, e)
		}
	}
	page.Events = kept
	return page, nil
}
