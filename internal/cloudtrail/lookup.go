package cloudtrail

import (
	"context"
	"errors"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/history"
)

var lookupOps = map[string]opFunc{"LookupEvents": (*Service).lookupEvents}

type lookupEventsInput struct {
	LookupAttributes []struct {
		AttributeKey   string
		AttributeValue string
	}
	StartTime     *float64
	EndTime       *float64
	EventCategory *string
	MaxResults    *int
	NextToken     *string
}

// LookupEvent is one event as LookupEvents returns it.
type LookupEvent struct {
	EventID         string           `json:"EventId"`
	EventName       string           `json:"EventName,omitempty"`
	ReadOnly        string           `json:"ReadOnly,omitempty"`
	AccessKeyID     string           `json:"AccessKeyId,omitempty"`
	EventTime       float64          `json:"EventTime"`
	EventSource     string           `json:"EventSource,omitempty"`
	Username        string           `json:"Username,omitempty"`
	Resources       []LookupResource `json:"Resources,omitempty"`
	CloudTrailEvent string           `json:"CloudTrailEvent"`
}

// LookupResource is one resource of a LookupEvent.
type LookupResource struct {
	ResourceType string `json:"ResourceType,omitempty"`
	ResourceName string `json:"ResourceName,omitempty"`
}

type lookupEventsOutput struct {
	Events    []LookupEvent `json:"Events"`
	NextToken string        `json:"NextToken,omitempty"`
}

// insightAttrs are the lookup attributes insight lookups support.
var insightAttrs = map[string]bool{history.AttrEventID: true, history.AttrEventName: true, history.AttrEventSource: true}

func (s *Service) lookupEvents(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in lookupEventsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	q := history.Query{Account: c.Account, Region: c.Region, Start: math.MinInt64, End: math.MaxInt64, Max: 50}
	if in.EventCategory != nil {
		if *in.EventCategory != "insight" {
			return nil, awsapi.Errorf("InvalidEventCategoryException", "EventCategory must be insight, not %q.", *in.EventCategory)
		}
		q.Insight = true
	}
	switch len(in.LookupAttributes) {
	case 0:
	case 1:
		a := in.LookupAttributes[0]
		q.Attr, q.Value = a.AttributeKey, a.AttributeValue
		if q.Insight && !insightAttrs[q.Attr] {
			return nil, awsapi.Errorf("InvalidLookupAttributesException",
				"Insights events can be looked up by EventId, EventName or EventSource only, not %s.", q.Attr)
		}
		if utf8.RuneCountInString(q.Value) > 2000 {
			return nil, awsapi.Errorf("InvalidLookupAttributesException", "AttributeValue is longer than 2000 characters.")
		}
	default:
		return nil, awsapi.Errorf("InvalidLookupAttributesException",
			"LookupAttributes takes one attribute per call; got %d.", len(in.LookupAttributes))
	}
	if in.StartTime != nil {
		q.Start = secondsToNanos(*in.StartTime)
	}
	if in.EndTime != nil {
		q.End = secondsToNanos(*in.EndTime)
	}
	if q.Start > q.End {
		return nil, awsapi.Errorf("InvalidTimeRangeException", "StartTime (%s) is after EndTime (%s).",
			formatSeconds(*in.StartTime), formatSeconds(*in.EndTime))
	}
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 50 {
			return nil, awsapi.Errorf("InvalidMaxResultsException", "MaxResults must be between 1 and 50, not %d.", *in.MaxResults)
		}
		q.Max = *in.MaxResults
	}
	if in.NextToken != nil {
		pos, err := s.tokens.Decode(q, *in.NextToken)
		if err != nil {
			return nil, awsapi.Errorf("InvalidNextTokenException",
				"The NextToken is invalid, or was issued for a query with other parameters.")
		}
		q.After = pos
	}
	page, err := s.store.Lookup(q)
	if errors.Is(err, history.ErrBadPosition) {
		return nil, awsapi.Errorf("InvalidNextTokenException", "The NextToken is invalid, or was issued for a query with other parameters.")
	}
	if err != nil {
		return nil, err
	}
	out := lookupEventsOutput{Events: make([]LookupEvent, 0, len(page.Events))}
	for _, e := range page.Events {
		out.Events = append(out.Events, LookupEventOf(&e.Record))
	}
	if page.Next != nil {
		out.NextToken = s.tokens.Encode(q, page.Next)
	}
	return out, nil
}

// LookupEventOf is r as LookupEvents returns it (the console's live rows too).
func LookupEventOf(r *event.Record) LookupEvent {
	m := &r.Meta
	le := LookupEvent{
		EventID: m.EventID, EventName: m.Name, AccessKeyID: m.AccessKeyID, EventSource: m.Source,
		Username: m.Username, EventTime: float64(m.EventTime) / 1e9, CloudTrailEvent: string(r.Raw),
	}
	if m.ReadOnly >= 0 {
		le.ReadOnly = strconv.FormatBool(m.ReadOnly > 0)
	}
	for _, res := range m.Resources {
		le.Resources = append(le.Resources, LookupResource{ResourceType: res.Type, ResourceName: res.ARN})
	}
	return le
}

// secondsToNanos converts epoch seconds to nanoseconds, saturating.
func secondsToNanos(sec float64) int64 {
	switch {
	case sec >= math.MaxInt64/1e9:
		return math.MaxInt64
	case sec <= math.MinInt64/1e9:
		return math.MinInt64
	}
	return int64(math.Round(sec * 1e9))
}

func formatSeconds(sec float64) string { return strconv.FormatFloat(sec, 'f', -1, 64) }
