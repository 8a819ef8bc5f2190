package cloudtrail

import (
	"fmt"
	"testing"
	"time"

	"github.com/opentrail/opentrail/internal/insights"
	"github.com/opentrail/opentrail/internal/kv"
)

// TestStoreInsightSelectors enables Insights on an event data store of
// management events, with its Insights events going to an Insights store.
func TestStoreInsightSelectors(t *testing.T) {
	s, _ := newTestService(t)
	srcARN, _ := createStore(t, s, eastA, "source", "")
	dstARN, dstID := createStore(t, s, eastA, "insights",
		`,"AdvancedEventSelectors":[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Insight"]}]}]`)
	readARN, _ := createStore(t, s, eastA, "reads",
		`,"AdvancedEventSelectors":[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"readOnly","Equals":["true"]}]}]`)

	fails(t, s, eastA, "GetInsightSelectors", fmt.Sprintf(`{"EventDataStore":%q}`, srcARN), "InsightNotEnabledException", srcARN)
	if s.InsightsEnabled(acctA, "us-east-1", insights.CallRate, false) {
		t.Fatal("Insights enabled before PutInsightSelectors")
	}
	put := fmt.Sprintf(`{"EventDataStore":%q,"InsightsDestination":%q,"InsightSelectors":[{"InsightType":"ApiCallRateInsight"}]}`, srcARN, dstID)
	want := fmt.Sprintf(`{"EventDataStoreArn":%q,"InsightsDestination":%q,"InsightSelectors":[{"InsightType":"ApiCallRateInsight"}]}`, srcARN, dstARN)
	sameJSON(t, "PutInsightSelectors", ok(t, s, eastA, "PutInsightSelectors", put), want)
	sameJSON(t, "GetInsightSelectors", ok(t, s, eastA, "GetInsightSelectors", fmt.Sprintf(`{"EventDataStore":%q}`, srcARN)), want)
	if !s.InsightsEnabled(acctA, "us-east-1", insights.CallRate, false) || s.InsightsEnabled(acctA, "us-east-1", insights.ErrorRate, false) ||
		s.InsightsEnabled(acctA, "us-east-1", insights.CallRate, true) || s.InsightsEnabled(acctB, "us-east-1", insights.CallRate, false) {
		t.Fatal("InsightsEnabled does not follow the store's selectors")
	}

	tests := []struct{ name, body, code, msg string }{
		{"data events", fmt.Sprintf(`{"EventDataStore":%q,"InsightsDestination":%q,"InsightSelectors":[{"InsightType":"ApiCallRateInsight","EventCategories":["Data"]}]}`, srcARN, dstID),
			"InvalidInsightSelectorsException", "management events only"},
		{"no destination", fmt.Sprintf(`{"EventDataStore":%q,"InsightSelectors":[{"InsightType":"ApiCallRateInsight"}]}`, srcARN),
			"InvalidParameterCombinationException", "give InsightsDestination"},
		{"destination takes no insights", fmt.Sprintf(`{"EventDataStore":%q,"InsightsDestination":%q,"InsightSelectors":[{"InsightType":"ApiCallRateInsight"}]}`, srcARN, readARN),
			"InvalidParameterException", "does not collect Insights events"},
		{"source is an insights store", fmt.Sprintf(`{"EventDataStore":%q,"InsightsDestination":%q,"InsightSelectors":[{"InsightType":"ApiErrorRateInsight"}]}`, dstARN, dstID),
			"InvalidParameterException", "does not collect management events"},
		{"source logs no writes", fmt.Sprintf(`{"EventDataStore":%q,"InsightsDestination":%q,"InsightSelectors":[{"InsightType":"ApiCallRateInsight"}]}`, readARN, dstID),
			"InvalidInsightSelectorsException", "needs a event data store that logs write management events"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { fails(t, s, eastA, "PutInsightSelectors", tc.body, tc.code, tc.msg) })
	}
	// Error-rate insights need reads or writes only.
	ok(t, s, eastA, "PutInsightSelectors", fmt.Sprintf(`{"EventDataStore":%q,"InsightsDestination":%q,"InsightSelectors":[{"InsightType":"ApiErrorRateInsight"}]}`, readARN, dstID))

	sameJSON(t, "PutInsightSelectors []", ok(t, s, eastA, "PutInsightSelectors", fmt.Sprintf(`{"EventDataStore":%q,"InsightSelectors":[]}`, srcARN)),
		fmt.Sprintf(`{"EventDataStoreArn":%q,"InsightSelectors":[]}`, srcARN))
	if s.InsightsEnabled(acctA, "us-east-1", insights.CallRate, false) {
		t.Fatal("Insights still enabled after an empty PutInsightSelectors")
	}
}

// TestListInsightsMetricData reads per-minute counts as the detector stores them.
func TestListInsightsMetricData(t *testing.T) {
	s, clock := newTestService(t)
	base := t0.Truncate(time.Hour).Add(-2 * time.Hour) // 03:00
	clock.Set(base.Add(2 * time.Hour))
	b := s.db.NewBatch()
	write := func(k insights.SeriesKey, at time.Time, n int64) {
		kind := k.Kind
		if k.Backfill {
			kind |= 0x80
		}
		p := kv.InsightMinutePrefix(kv.InsightSeries(k.Account, k.Region, kind, k.Source, k.Name, k.ErrorCode))
		if err := b.Set(kv.InsightMinuteKey(p, at.Unix()/60), insights.EncodeCounts(nil, &insights.Counts{N: n}), nil); err != nil {
			t.Fatal(err)
		}
	}
	calls := insights.SeriesKey{Account: acctA, Region: "us-east-1", Kind: insights.KindCalls, Source: "iam.amazonaws.com", Name: "CreateUser"}
	write(calls, base, 3)
	write(calls, base.Add(2*time.Minute), 4)
	calls.Backfill = true
	write(calls, base.Add(2*time.Minute), 1) // an imported call of the same minute adds up
	write(calls, base.Add(7*time.Minute), 5)
	errs := insights.SeriesKey{Account: acctA, Region: "us-east-1", Kind: insights.KindErrors, Source: "iam.amazonaws.com", Name: "CreateUser", ErrorCode: "AccessDenied"}
	write(errs, base.Add(time.Minute), 9)
	other := calls
	other.Account, other.Backfill = acctB, false
	write(other, base, 100)
	if err := b.Commit(nil); err != nil {
		t.Fatal(err)
	}
	sec := func(d time.Duration) string { return fmt.Sprint(base.Add(d).Unix()) }
	req := func(extra string) string {
		return `{"EventSource":"iam.amazonaws.com","EventName":"CreateUser","InsightType":"ApiCallRateInsight","StartTime":` + sec(0) +
			`,"EndTime":` + sec(10*time.Minute) + extra + `}`
	}
	ts := func(ds ...time.Duration) string {
		out := "["
		for i, d := range ds {
			if i > 0 {
				out += ","
			}
			out += sec(d)
		}
		return out + "]"
	}
	head := `"EventSource":"iam.amazonaws.com","EventName":"CreateUser",`
	sameJSON(t, "NonZeroData 60", ok(t, s, eastA, "ListInsightsMetricData", req(`,"Period":60`)),
		`{`+head+`"InsightType":"ApiCallRateInsight","Timestamps":`+ts(0, 2*time.Minute, 7*time.Minute)+`,"Values":[3,5,5]}`)
	sameJSON(t, "FillWithZeros 300", ok(t, s, eastA, "ListInsightsMetricData", req(`,"Period":300,"DataType":"FillWithZeros"`)),
		`{`+head+`"InsightType":"ApiCallRateInsight","Timestamps":`+ts(0, 5*time.Minute)+`,"Values":[8,5]}`)
	sameJSON(t, "default period 3600", ok(t, s, eastA, "ListInsightsMetricData", req(``)),
		`{`+head+`"InsightType":"ApiCallRateInsight","Timestamps":`+ts(0)+`,"Values":[13]}`)
	sameJSON(t, "error rate", ok(t, s, eastA, "ListInsightsMetricData",
		`{"EventSource":"iam.amazonaws.com","EventName":"CreateUser","InsightType":"ApiErrorRateInsight","ErrorCode":"AccessDenied","Period":60,"StartTime":`+sec(0)+`,"EndTime":`+sec(3*time.Minute)+`,"DataType":"FillWithZeros"}`),
		`{`+head+`"InsightType":"ApiErrorRateInsight","ErrorCode":"AccessDenied","Timestamps":`+ts(0, time.Minute, 2*time.Minute)+`,"Values":[0,9,0]}`)

	// Pages of two.
	page := ok(t, s, eastA, "ListInsightsMetricData", req(`,"Period":60,"MaxResults":2`))
	tok, _ := page["NextToken"].(string)
	if len(page["Values"].([]any)) != 2 || tok == "" {
		t.Fatalf("first page: %v", page)
	}
	sameJSON(t, "second page", ok(t, s, eastA, "ListInsightsMetricData", req(`,"Period":60,"MaxResults":2,"NextToken":"`+tok+`"`)),
		`{`+head+`"InsightType":"ApiCallRateInsight","Timestamps":`+ts(7*time.Minute)+`,"Values":[5]}`)
	fails(t, s, eastA, "ListInsightsMetricData", req(`,"Period":300,"MaxResults":2,"NextToken":"`+tok+`"`), "InvalidParameterException", "NextToken")

	tests := []struct{ name, body, msg string }{
		{"error rate without code", `{"EventSource":"iam.amazonaws.com","EventName":"CreateUser","InsightType":"ApiErrorRateInsight"}`, "ErrorCode is required"},
		{"code with call rate", `{"EventSource":"iam.amazonaws.com","EventName":"CreateUser","InsightType":"ApiCallRateInsight","ErrorCode":"X"}`, "ErrorCode applies"},
		{"bad period", req(`,"Period":120`), "Period 120"},
		{"bad data type", req(`,"DataType":"Some"`), "DataType"},
		{"empty range", `{"EventSource":"iam.amazonaws.com","EventName":"CreateUser","InsightType":"ApiCallRateInsight","StartTime":` + sec(time.Hour) + `,"EndTime":` + sec(0) + `}`, "before EndTime"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fails(t, s, eastA, "ListInsightsMetricData", tc.body, "InvalidParameterException", tc.msg)
		})
	}
	fails(t, s, eastA, "ListInsightsMetricData", req(`,"TrailName":"nope"`), "TrailNotFoundException", "nope")
}

func TestListInsightsDataErrors(t *testing.T) {
	s, _ := newTestService(t)
	create(t, s, eastA, "trail", "")
	src := arn("us-east-1", acctA, "trail")
	fails(t, s, eastA, "ListInsightsData", `{"InsightSource":"`+src+`","DataType":"Events"}`, "InvalidParameterException", "DataType must be InsightsEvents")
	fails(t, s, eastA, "ListInsightsData", `{"InsightSource":"`+arn("us-east-1", acctA, "nope")+`","DataType":"InsightsEvents"}`, "TrailNotFoundException", "nope")
}
