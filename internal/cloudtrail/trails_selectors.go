package cloudtrail

import (
	"context"
	"slices"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/selector"
)

// ---- PutEventSelectors, GetEventSelectors ----

type putEventSelectorsInput struct {
	TrailName              string
	EventSelectors         *[]selector.EventSelector
	AdvancedEventSelectors *[]selector.AdvancedEventSelector
}

type eventSelectorsOutput struct {
	TrailARN               string                           `json:"TrailARN"`
	EventSelectors         []selector.EventSelector         `json:"EventSelectors,omitempty"`
	AdvancedEventSelectors []selector.AdvancedEventSelector `json:"AdvancedEventSelectors,omitempty"`
}

// putEventSelectors replaces the trail's selectors with exactly one kind:
// basic or advanced selectors replace whatever the trail had before.
func (s *Service) putEventSelectors(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in putEventSelectorsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if (in.EventSelectors == nil) == (in.AdvancedEventSelectors == nil) {
		// PutEventSelectors' model has no InvalidParameterCombinationException;
		// InvalidEventSelectorsException covers invalid combinations.
		return nil, awsapi.Errorf("InvalidEventSelectorsException",
			"Invalid combination of parameters: specify either EventSelectors or AdvancedEventSelectors, not both and not neither.")
	}
	var basic []selector.EventSelector
	var advanced []selector.AdvancedEventSelector
	var err error
	if in.EventSelectors != nil {
		basic, err = selector.NormalizeBasic(*in.EventSelectors)
	} else {
		advanced, err = selector.NormalizeAdvanced(*in.AdvancedEventSelectors)
	}
	if err != nil {
		return nil, awsapi.Errorf("InvalidEventSelectorsException", "%s", err.Error())
	}

	defer kv.Hold(ctx, &s.trailMu)()
	t, err := s.resolveTrail(c, "PutEventSelectors", in.TrailName, homeOnly)
	if err != nil {
		return nil, err
	}
	t.EventSelectors, t.AdvancedEventSelectors = basic, advanced
	if err := s.putTrail(ctx, t); err != nil {
		return nil, err
	}
	return eventSelectorsOutput{TrailARN: s.trailARN(t), EventSelectors: basic, AdvancedEventSelectors: advanced}, nil
}

type trailNameInput struct{ TrailName string }

func (s *Service) getEventSelectors(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in trailNameInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	t, err := s.resolveTrail(c, "GetEventSelectors", in.TrailName, shadowOK)
	if err != nil {
		return nil, err
	}
	out := eventSelectorsOutput{TrailARN: s.trailARN(t), EventSelectors: t.EventSelectors, AdvancedEventSelectors: t.AdvancedEventSelectors}
	if out.EventSelectors == nil && out.AdvancedEventSelectors == nil {
		out.EventSelectors = selector.DefaultBasic()
	}
	return out, nil
}

// ---- PutInsightSelectors, GetInsightSelectors ----

// Insight types and the event categories Insights analyse.
const (
	insightCallRate  = "ApiCallRateInsight"
	insightErrorRate = "ApiErrorRateInsight"
)

type putInsightSelectorsInput struct {
	TrailName           *string
	InsightSelectors    []insightSelector
	EventDataStore      *string
	InsightsDestination *string
}

type insightSelectorsOutput struct {
	TrailARN         string            `json:"TrailARN"`
	InsightSelectors []insightSelector `json:"InsightSelectors"`
}

// insightTarget checks that a request names a trail, not an event data store,
// which OpenTrail does not have.
func insightTarget(trailName, eventDataStore, insightsDestination *string) (string, error) {
	eds := eventDataStore != nil || insightsDestination != nil
	switch {
	case trailName != nil && eds:
		return "", awsapi.Errorf("InvalidParameterCombinationException",
			"TrailName cannot be used with EventDataStore or InsightsDestination: specify a trail or an event data store.")
	case trailName == nil && !eds:
		return "", awsapi.Errorf("InvalidParameterCombinationException", "Specify TrailName, or EventDataStore for an event data store.")
	case trailName == nil:
		return "", awsapi.Errorf("UnsupportedOperationException", "OpenTrail does not support event data stores; Insights can be enabled on trails only.")
	}
	return *trailName, nil
}

func (s *Service) putInsightSelectors(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in putInsightSelectorsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	name, err := insightTarget(in.TrailName, in.EventDataStore, in.InsightsDestination)
	if err != nil {
		return nil, err
	}
	sel, err := normalizeInsightSelectors(in.InsightSelectors)
	if err != nil {
		return nil, err
	}

	defer kv.Hold(ctx, &s.trailMu)()
	t, err := s.resolveTrail(c, "PutInsightSelectors", name, homeOnly)
	if err != nil {
		return nil, err
	}
	if err := checkInsightsLoggable(t, sel); err != nil {
		return nil, err
	}
	t.InsightSelectors = sel
	if err := s.putTrail(ctx, t); err != nil {
		return nil, err
	}
	if sel == nil {
		sel = []insightSelector{} // AWS echoes the empty list that turned Insights off
	}
	return insightSelectorsOutput{TrailARN: s.trailARN(t), InsightSelectors: sel}, nil
}

// normalizeInsightSelectors checks InsightSelectors: known, distinct insight
// types and event categories. An empty list turns Insights off (nil).
func normalizeInsightSelectors(in []insightSelector) ([]insightSelector, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]insightSelector, 0, len(in))
	for i, is := range in {
		if is.InsightType != insightCallRate && is.InsightType != insightErrorRate {
			return nil, awsapi.Errorf("InvalidInsightSelectorsException",
				"InsightSelectors[%d].InsightType %q is not valid: use %s or %s.", i, is.InsightType, insightCallRate, insightErrorRate)
		}
		for j := range i {
			if in[j].InsightType == is.InsightType {
				return nil, awsapi.Errorf("InvalidInsightSelectorsException",
					"InsightSelectors[%d] repeats InsightType %s of InsightSelectors[%d]; give each insight type once.", i, is.InsightType, j)
			}
		}
		var cats []string
		for j, cat := range is.EventCategories {
			if cat != selector.CategoryManagement && cat != selector.CategoryData {
				return nil, awsapi.Errorf("InvalidInsightSelectorsException",
					"InsightSelectors[%d].EventCategories[%d] %q is not valid: use %s or %s.", i, j, cat, selector.CategoryManagement, selector.CategoryData)
			}
			if slices.Contains(cats, cat) {
				return nil, awsapi.Errorf("InvalidInsightSelectorsException",
					"InsightSelectors[%d].EventCategories lists %s twice.", i, cat)
			}
			cats = append(cats, cat)
		}
		out = append(out, insightSelector{InsightType: is.InsightType, EventCategories: cats})
	}
	return out, nil
}

// loggedKinds says which events a trail's selectors take, as far as Insights
// care: read and write management events, and any data events.
type loggedKinds struct{ mgmtRead, mgmtWrite, data bool }

func trailLogs(t *storedTrail) loggedKinds {
	var k loggedKinds
	switch {
	case t.EventSelectors != nil:
		for _, es := range t.EventSelectors {
			if es.IncludeManagementEvents == nil || *es.IncludeManagementEvents {
				k.mgmtRead = k.mgmtRead || es.ReadWriteType != selector.WriteOnly
				k.mgmtWrite = k.mgmtWrite || es.ReadWriteType != selector.ReadOnly
			}
			k.data = k.data || len(es.DataResources) > 0
		}
	case t.AdvancedEventSelectors != nil:
		for _, as := range t.AdvancedEventSelectors {
			var cats, readOnly []string
			hasReadOnly := false
			for _, f := range as.FieldSelectors {
				switch f.Field {
				case selector.FieldEventCategory:
					cats = f.Equals
				case selector.FieldReadOnly:
					hasReadOnly, readOnly = true, f.Equals
				}
			}
			if slices.Contains(cats, selector.CategoryManagement) {
				k.mgmtRead = k.mgmtRead || !hasReadOnly || slices.Contains(readOnly, "true")
				k.mgmtWrite = k.mgmtWrite || !hasReadOnly || slices.Contains(readOnly, "false")
			}
			k.data = k.data || slices.Contains(cats, selector.CategoryData)
		}
	default:
		k.mgmtRead, k.mgmtWrite = true, true
	}
	return k
}

// checkInsightsLoggable applies PutInsightSelectors' documented requirements:
// call-rate Insights on management events need write management events, error-
// rate Insights need read or write management events, and Insights on data
// events need data events.
func checkInsightsLoggable(t *storedTrail, sel []insightSelector) error {
	k := trailLogs(t)
	for i, is := range sel {
		cats := is.EventCategories
		if len(cats) == 0 {
			cats = []string{selector.CategoryManagement}
		}
		for _, cat := range cats {
			var ok bool
			var need string
			switch {
			case cat == selector.CategoryData:
				ok, need = k.data, "data events"
			case is.InsightType == insightCallRate:
				ok, need = k.mgmtWrite, "write management events"
			default:
				ok, need = k.mgmtRead || k.mgmtWrite, "read or write management events"
			}
			if !ok {
				return awsapi.Errorf("InvalidInsightSelectorsException",
					"InsightSelectors[%d]: %s on %s events needs a trail that logs %s, and the event selectors of trail %s do not; change them with PutEventSelectors first.",
					i, is.InsightType, cat, need, t.Name)
			}
		}
	}
	return nil
}

type getInsightSelectorsInput struct {
	TrailName      *string
	EventDataStore *string
}

func (s *Service) getInsightSelectors(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in getInsightSelectorsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	name, err := insightTarget(in.TrailName, in.EventDataStore, nil)
	if err != nil {
		return nil, err
	}
	t, err := s.resolveTrail(c, "GetInsightSelectors", name, shadowOK)
	if err != nil {
		return nil, err
	}
	if len(t.InsightSelectors) == 0 {
		return nil, awsapi.Errorf("InsightNotEnabledException", "Trail %s does not have Insights enabled.", s.trailARN(t))
	}
	return insightSelectorsOutput{TrailARN: s.trailARN(t), InsightSelectors: t.InsightSelectors}, nil
}
