package insights

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"
)

// sharedID is the sharedEventID of the insight of series k that starts at
// minute first. It is derived, not random, so that replaying the journal after
// a crash finds the same insight under the same IDs and appends nothing twice.
func sharedID(k SeriesKey, first int64) string {
	// Not k.Backfill: the same insight has the same IDs however its events came.
	return uuidOf(fmt.Sprintf("insight\x00%s\x00%s\x00%c\x00%s\x00%s\x00%s\x00%d", k.Account, k.Region, k.Kind, k.Source, k.Name, k.ErrorCode, first))
}

// EventID is the eventID of the Start or End event of an insight.
func (in *Insight) EventID() string { return uuidOf(in.SharedID + "\x00" + in.State) }

// uuidOf formats the first 16 bytes of SHA-256(s) as a version-8 (custom) UUID.
func uuidOf(s string) string {
	h := sha256.Sum256([]byte(s))
	h[6] = h[6]&0x0f | 0x80
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

type recordJSON struct {
	EventVersion       string         `json:"eventVersion"`
	EventTime          string         `json:"eventTime"`
	AWSRegion          string         `json:"awsRegion"`
	EventID            string         `json:"eventID"`
	EventType          string         `json:"eventType"`
	RecipientAccountID string         `json:"recipientAccountId"`
	SharedEventID      string         `json:"sharedEventID"`
	InsightDetails     insightDetails `json:"insightDetails"`
	EventCategory      string         `json:"eventCategory"`
}

type insightDetails struct {
	State          string         `json:"state"`
	EventSource    string         `json:"eventSource"`
	EventName      string         `json:"eventName"`
	InsightType    string         `json:"insightType"`
	ErrorCode      string         `json:"errorCode,omitempty"`
	InsightContext insightContext `json:"insightContext"`
}

type insightContext struct {
	Statistics   statistics    `json:"statistics"`
	Attributions []attribution `json:"attributions"`
}

type statistics struct {
	Baseline         average `json:"baseline"`
	Insight          average `json:"insight"`
	InsightDuration  int64   `json:"insightDuration"`
	BaselineDuration int64   `json:"baselineDuration"`
}

type average struct {
	Average float64 `json:"average"`
}

type attribution struct {
	Attribute string    `json:"attribute"`
	Insight   []AttrAvg `json:"insight"`
	Baseline  []AttrAvg `json:"baseline"`
}

// Record is the insight as CloudTrail writes an Insights event (see
// "CloudTrail record contents for Insights events for trails").
func (in *Insight) Record() []byte {
	r := recordJSON{
		EventVersion:       "1.08",
		EventTime:          in.Time.UTC().Format(time.RFC3339),
		AWSRegion:          in.Series.Region,
		EventID:            in.EventID(),
		EventType:          "AwsCloudTrailInsight",
		RecipientAccountID: in.Series.Account,
		SharedEventID:      in.SharedID,
		EventCategory:      "Insight",
		InsightDetails: insightDetails{
			State:       in.State,
			EventSource: in.Series.Source,
			EventName:   in.Series.Name,
			InsightType: in.Series.InsightType(),
			ErrorCode:   in.Series.ErrorCode,
			InsightContext: insightContext{
				Statistics: statistics{
					Baseline:         average{in.Baseline},
					Insight:          average{in.Average},
					InsightDuration:  in.InsightDuration,
					BaselineDuration: in.BaselineDuration,
				},
			},
		},
	}
	for i, a := range in.Attributions {
		r.InsightDetails.InsightContext.Attributions = append(r.InsightDetails.InsightContext.Attributions,
			attribution{Attribute: Attributes[i], Insight: a.Insight, Baseline: a.Baseline})
	}
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // only strings and numbers: cannot fail
	}
	return b
}

// ParseRecord reads an Insights event written by Record back (for tests and tools).
func ParseRecord(raw []byte) (Insight, error) {
	var r recordJSON
	if err := json.Unmarshal(raw, &r); err != nil {
		return Insight{}, fmt.Errorf("insights: parse record: %w", err)
	}
	d := &r.InsightDetails
	t, err := time.Parse(time.RFC3339, r.EventTime)
	if err != nil {
		return Insight{}, fmt.Errorf("insights: parse record: %w", err)
	}
	kind := KindCalls
	if d.InsightType == ErrorRate {
		kind = KindErrors
	}
	st := &d.InsightContext.Statistics
	in := Insight{
		Series: SeriesKey{Account: r.RecipientAccountID, Region: r.AWSRegion, Kind: kind, Source: d.EventSource, Name: d.EventName, ErrorCode: d.ErrorCode},
		State:  d.State, SharedID: r.SharedEventID, Time: t,
		Baseline: st.Baseline.Average, Average: st.Insight.Average, InsightDuration: st.InsightDuration, BaselineDuration: st.BaselineDuration,
	}
	for _, a := range d.InsightContext.Attributions {
		for i, name := range Attributes {
			if a.Attribute == name {
				in.Attributions[i].Insight, in.Attributions[i].Baseline = a.Insight, a.Baseline
			}
		}
	}
	if in.EventID() != r.EventID {
		return in, fmt.Errorf("insights: record eventID %s is not the one its sharedEventID and state give", r.EventID)
	}
	return in, nil
}

// IsData says whether a parsed Insights event is about data events: its
// sharedEventID is the one a data-event series would have given it.
func IsData(in Insight) bool {
	k := in.Series
	if k.Kind == KindCalls {
		k.Kind = KindDataCalls
	} else {
		k.Kind = KindDataErrors
	}
	first := in.Time
	if in.State == "End" {
		first = first.Add(-time.Duration(in.InsightDuration) * time.Minute)
	}
	return sharedID(k, first.Unix()/60) == in.SharedID
}
