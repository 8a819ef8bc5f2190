// Package insights is CloudTrail Insights: it counts API calls and errors per
// minute of event time, learns each API's baseline over the previous seven
// days and writes Insights events (a Start when a minute leaves the baseline,
// an End when the rate has been back for a few minutes).
//
// The Detector is pure: it sees event metadata and a clock, keeps its state in
// memory and says which of that state changed; Service is the projection that
// feeds it the journal, keeps the state in Pebble in the same batch as its
// cursor and appends the Insights events it finds to the journal.
//
// The rule, for one series (account, Region, event source, event name, and the
// error code for error-rate insights) and one closed minute with count c:
//
//	N     = minutes of baseline: the 7 days before the minute, or fewer if the
//	        account and Region were first seen more recently
//	mean  = calls in the baseline / N;  sd = their standard deviation (zeros count)
//	c is anomalous when c >= max(MinCount, mean + Sigma*sd)
//
// StartMinutes anomalous minutes in a row start an insight (its Start event is
// stamped with the first of them); EndMinutes normal minutes in a row end it
// (its End event is stamped with the end of the last anomalous minute). No
// insight starts before the account and Region have MinHistory of baseline.
package insights

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/opentrail/opentrail/internal/event"
)

// Insight types, as AWS names them.
const (
	CallRate  = "ApiCallRateInsight"
	ErrorRate = "ApiErrorRateInsight"
)

// Rule is the statistical rule and its parameters.
type Rule struct {
	MinCount     int           // a minute needs at least this many calls (the floor); default 10
	Sigma        float64       // standard deviations above the baseline mean; default 6
	StartMinutes int           // anomalous minutes in a row that start an insight; default 1
	EndMinutes   int           // normal minutes in a row that end it; default 5
	Baseline     time.Duration // default 7 days
	MinHistory   time.Duration // baseline needed before the first insight; default 24h
	Grace        time.Duration // a minute of live events closes this long after it ends; default 30s
	// BackfillGrace is added to Grace while an account and Region receive old
	// events (imported or replayed: recorded over LiveLag after they happened),
	// which come in files and batches out of order; default 10m.
	BackfillGrace time.Duration
}

// LiveLag is how long after it happened an event may be recorded and still
// count as live rather than backfilled.
const LiveLag = 5 * time.Minute

// Validate names the first parameter out of range (zero means the default).
func (r Rule) Validate() error {
	switch {
	case r.MinCount < 0:
		return fmt.Errorf("insights: min count %d is negative", r.MinCount)
	case r.Sigma < 0 || math.IsNaN(r.Sigma) || math.IsInf(r.Sigma, 0):
		return fmt.Errorf("insights: sigma %v is not a non-negative number", r.Sigma)
	case r.StartMinutes < 0 || r.StartMinutes > 60:
		return fmt.Errorf("insights: start minutes %d is not between 1 and 60", r.StartMinutes)
	case r.EndMinutes < 0 || r.EndMinutes > 60:
		return fmt.Errorf("insights: end minutes %d is not between 1 and 60", r.EndMinutes)
	case r.Baseline != 0 && (r.Baseline < time.Hour || r.Baseline > 90*24*time.Hour):
		return fmt.Errorf("insights: baseline %s is not between 1h and 90 days", r.Baseline)
	case r.MinHistory < 0 || r.Grace < 0 || r.BackfillGrace < 0:
		return fmt.Errorf("insights: min history %s, grace %s and backfill grace %s may not be negative", r.MinHistory, r.Grace, r.BackfillGrace)
	}
	return nil
}

// WithDefaults fills the zero fields.
func (r Rule) WithDefaults() Rule {
	if r.MinCount <= 0 {
		r.MinCount = 10
	}
	if r.Sigma <= 0 {
		r.Sigma = 6
	}
	if r.StartMinutes <= 0 {
		r.StartMinutes = 1
	}
	if r.EndMinutes <= 0 {
		r.EndMinutes = 5
	}
	if r.Baseline <= 0 {
		r.Baseline = 7 * 24 * time.Hour
	}
	if r.MinHistory < 0 {
		r.MinHistory = 0
	} else if r.MinHistory == 0 {
		r.MinHistory = 24 * time.Hour
	}
	if r.Grace <= 0 {
		r.Grace = 30 * time.Second
	}
	if r.BackfillGrace <= 0 {
		r.BackfillGrace = 10 * time.Minute
	}
	return r
}

// Series kinds: which calls a series counts.
const (
	KindCalls      byte = 'c' // write management calls (readOnly false or absent)
	KindErrors     byte = 'e' // management calls with an errorCode, per error code
	KindDataCalls  byte = 'C' // data calls
	KindDataErrors byte = 'E' // data calls with an errorCode, per error code
)

// SeriesKey names one counted series.
type SeriesKey struct {
	Account, Region string
	Kind            byte
	Source, Name    string
	ErrorCode       string // error-rate kinds only
	// Backfill series count the events recorded over LiveLag after they
	// happened (imports, replays): they keep a baseline and a clock of their
	// own, so that an import of old archives finds the insights that were
	// there while live events keep coming.
	Backfill bool
}

// InsightType is the AWS insight type the series feeds.
func (k SeriesKey) InsightType() string {
	if k.Kind == KindErrors || k.Kind == KindDataErrors {
		return ErrorRate
	}
	return CallRate
}

// Data says whether the series counts data events.
func (k SeriesKey) Data() bool { return k.Kind == KindDataCalls || k.Kind == KindDataErrors }

// Attributes an Insights event attributes calls to, in the order AWS lists them.
var Attributes = [3]string{"userIdentityArn", "userAgent", "errorCode"}

const (
	maxAttrValues  = 8 // distinct values kept per attribute per minute or hour; the rest are dropped
	topAttrs       = 5 // values shown per attribution list
	noErrorCode    = "null"
	minuteNanos    = int64(time.Minute)
	baselineHourly = int64(time.Hour / time.Minute)
)

// Counts is what one minute (or hour) of one series holds.
type Counts struct {
	N     int64
	Attrs [3][]AttrCount
}

// AttrCount is one value of an attribute and how many calls had it.
type AttrCount struct {
	Value string
	N     int64
}

func (c *Counts) add(vals [3]string, n int64) {
	c.N += n
	for i, v := range vals {
		c.Attrs[i] = addAttr(c.Attrs[i], v, n)
	}
}

func (c *Counts) merge(o *Counts) {
	c.N += o.N
	for i := range c.Attrs {
		for _, a := range o.Attrs[i] {
			c.Attrs[i] = addAttr(c.Attrs[i], a.Value, a.N)
		}
	}
}

func addAttr(list []AttrCount, v string, n int64) []AttrCount {
	for j := range list {
		if list[j].Value == v {
			list[j].N += n
			return list
		}
	}
	if len(list) >= maxAttrValues {
		return list
	}
	return append(list, AttrCount{Value: v, N: n})
}

// hourAgg is one hour of a series' baseline: its calls, the sum of squares of
// its per-minute counts (for the deviation) and its attributions.
type hourAgg struct {
	Counts
	SumSq int64
	// full says that Attrs are in memory. Only a series' newest hour keeps
	// them once it is written: the others are read back when an insight
	// starts, so that memory holds 16 bytes per series and hour.
	full bool
}

// seriesState is everything the detector keeps per series between minutes.
type seriesState struct {
	Next    int64              // the next minute to evaluate
	Hours   map[int64]*hourAgg // by hour number (unix minutes / 60), the baseline window only
	Cand    []candMinute       // anomalous minutes in a row, before an insight starts
	Active  *activeInsight
	pending map[int64]*Counts // minutes not yet evaluated (persisted as buckets, not in the state)
	// Hours changed or dropped since the last Flush (each hour is a key of its own).
	dirtyHours map[int64]bool
}

type candMinute struct {
	Minute int64
	C      Counts
}

// activeInsight is an insight between its Start and its End.
type activeInsight struct {
	SharedID   string
	First      int64   // first anomalous minute
	Last       int64   // last anomalous minute
	Quiet      int     // normal minutes since Last
	Threshold  float64 // frozen at Start
	Mean       float64 // baseline average at Start
	BaselineN  int64   // baseline minutes at Start
	BaseAttrs  [3][]AttrAvg
	Total      Counts // calls from First to Last
	SinceLast  Counts // calls after Last, merged into Total if the rate rises again
	StartCount int    // minutes the Start event averaged
}

// scopeState is one account and Region: when it was first seen and how far
// its event time has got.
type scopeState struct {
	Account, Region string
	First           int64 // first minute seen
	Hi              int64 // highest event time seen (nanoseconds), capped at the ingest time
	HiWall          int64 // wall time (nanoseconds) when Hi last moved
	// Backfill is the clock of the backfill series.
	Backfill bool
}

type scopeKey struct {
	Account, Region string
	Backfill        bool
}

// AttrAvg is one attribution entry: a value and its calls per minute.
type AttrAvg struct {
	Value   string  `json:"value"`
	Average float64 `json:"average"`
}

// Insight is one Insights event the detector found.
type Insight struct {
	Series           SeriesKey
	State            string // Start or End
	SharedID         string
	Time             time.Time
	Baseline         float64 // calls per minute in the baseline
	Average          float64 // calls per minute in the insight
	InsightDuration  int64   // minutes
	BaselineDuration int64   // minutes
	Attributions     [3]struct{ Insight, Baseline []AttrAvg }
}

// Detector finds insights in a stream of events. It is not safe for concurrent use.
type Detector struct {
	rule   Rule
	series map[SeriesKey]*seriesState
	scopes map[scopeKey]*scopeState

	// What changed since the last Dirty: written by the projection.
	dirtySeries  map[SeriesKey]bool
	dirtyScopes  map[scopeKey]bool
	dirtyBuckets map[bucketRef]*Counts
	// late is called for an event whose minute was already evaluated: it
	// returns the stored counts of that minute so that the event is still counted.
	late func(SeriesKey, int64) (Counts, error)
	// HourAttrs reads a stored baseline hour's attributions (nil: none stored).
	HourAttrs func(SeriesKey, int64) (Counts, error)
	err       error // the first failed read since the last Flush
}

// Err is the first read that failed during Observe or Advance since the last
// Flush: the caller discards the detector's changes and tries again.
func (d *Detector) Err() error { return d.err }

// hourCounts is hour h of s with its attributions, read back if need be.
func (d *Detector) hourCounts(k SeriesKey, h int64, a *hourAgg) *Counts {
	if a.full || d.HourAttrs == nil {
		return &a.Counts
	}
	c, err := d.HourAttrs(k, h)
	if err != nil && d.err == nil {
		d.err = err
	}
	return &c
}

type bucketRef struct {
	Key    SeriesKey
	Minute int64
}

// NewDetector returns an empty detector. late loads a stored minute (see Detector.late).
func NewDetector(r Rule, late func(SeriesKey, int64) (Counts, error)) *Detector {
	return &Detector{
		rule: r.WithDefaults(), series: map[SeriesKey]*seriesState{}, scopes: map[scopeKey]*scopeState{},
		dirtySeries: map[SeriesKey]bool{}, dirtyScopes: map[scopeKey]bool{}, dirtyBuckets: map[bucketRef]*Counts{},
		late: late,
	}
}

// Rule is the detector's rule with its defaults.
func (d *Detector) Rule() Rule { return d.rule }

// Keys are the series an event counts in: its call rate and, with an error
// code, its error rate. Insights events themselves count nowhere.
func Keys(m *event.Meta) (calls, errs SeriesKey, ok [2]bool) {
	base := SeriesKey{Account: m.Account, Region: m.Region, Source: m.Source, Name: m.Name}
	if m.Source == "" || m.Name == "" {
		return calls, errs, ok
	}
	switch m.Category {
	case event.CategoryManagement:
		if m.ReadOnly != 1 {
			calls, ok[0] = base, true
			calls.Kind = KindCalls
		}
		if m.ErrorCode != "" {
			errs, ok[1] = base, true
			errs.Kind, errs.ErrorCode = KindErrors, m.ErrorCode
		}
	case event.CategoryData:
		calls, ok[0] = base, true
		calls.Kind = KindDataCalls
		if m.ErrorCode != "" {
			errs, ok[1] = base, true
			errs.Kind, errs.ErrorCode = KindDataErrors, m.ErrorCode
		}
	}
	return calls, errs, ok
}

// Observe counts one event. userAgent is the record's userAgent.
func (d *Detector) Observe(m *event.Meta, userAgent string) error {
	calls, errs, ok := Keys(m)
	if !ok[0] && !ok[1] {
		return nil
	}
	backfill := m.IngestTime-m.EventTime > int64(LiveLag)
	calls.Backfill, errs.Backfill = backfill, backfill
	minute := floorDiv(m.EventTime, minuteNanos)
	sk := scopeKey{m.Account, m.Region, backfill}
	sc := d.scopes[sk]
	if sc == nil {
		sc = &scopeState{Account: m.Account, Region: m.Region, Backfill: backfill, First: minute, Hi: math.MinInt64}
		d.scopes[sk] = sc
		d.dirtyScopes[sk] = true
	}
	if minute < sc.First {
		sc.First = minute
		d.dirtyScopes[sk] = true
	}
	if t := min(m.EventTime, m.IngestTime); t > sc.Hi {
		sc.Hi, sc.HiWall = t, m.IngestTime
		d.dirtyScopes[sk] = true
	}
	code := m.ErrorCode
	if code == "" {
		code = noErrorCode
	}
	vals := [3]string{m.UserARN, userAgent, code}
	for i, k := range [2]SeriesKey{calls, errs} {
		if !ok[i] {
			continue
		}
		if err := d.count(k, minute, vals); err != nil {
			return err
		}
	}
	return nil
}

func (d *Detector) count(k SeriesKey, minute int64, vals [3]string) error {
	s := d.series[k]
	if s == nil {
		s = &seriesState{Next: minute, Hours: map[int64]*hourAgg{}}
		d.series[k] = s
		d.dirtySeries[k] = true
	}
	ref := bucketRef{k, minute}
	if minute < s.Next {
		// Late: the minute was evaluated already. Count it for the metrics only.
		c := d.dirtyBuckets[ref]
		if c == nil {
			stored, err := d.late(k, minute)
			if err != nil {
				return err
			}
			c = &stored
		}
		c.add(vals, 1)
		d.dirtyBuckets[ref] = c
		return nil
	}
	if s.pending == nil {
		s.pending = map[int64]*Counts{}
	}
	c := s.pending[minute]
	if c == nil {
		c = &Counts{}
		s.pending[minute] = c
	}
	c.add(vals, 1)
	d.dirtyBuckets[ref] = c
	return nil
}

// frontier is the first minute of sk that is not closed at wall time now:
// event time moves with the highest event time seen and, when no event
// comes, with the wall clock from there; a minute closes Grace after its end
// (Grace + BackfillGrace while old events come in).
func (d *Detector) frontier(sc *scopeState, now int64) int64 {
	if sc.Hi == math.MinInt64 {
		return math.MinInt64
	}
	t := sc.Hi + max(0, now-sc.HiWall) - int64(d.rule.Grace)
	if sc.Backfill {
		t -= int64(d.rule.BackfillGrace)
	}
	return floorDiv(t, minuteNanos)
}

// Advance evaluates every minute closed at wall time now and returns the
// insights that start or end.
func (d *Detector) Advance(now time.Time) []Insight {
	var out []Insight
	keys := make([]SeriesKey, 0, len(d.series))
	for k, s := range d.series {
		if len(s.pending) > 0 || s.Active != nil || len(s.Cand) > 0 {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, compareKeys) // a stable order makes the journal's order reproducible
	for _, k := range keys {
		s := d.series[k]
		sc := d.scopes[scopeKey{k.Account, k.Region, k.Backfill}]
		if sc == nil {
			continue
		}
		f := d.frontier(sc, now.UnixNano())
		if f <= s.Next {
			continue
		}
		out = d.evaluate(k, s, sc, f, out)
	}
	return out
}

func compareKeys(a, b SeriesKey) int {
	return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Region, b.Region), cmp.Compare(a.Kind, b.Kind),
		cmp.Compare(a.Source, b.Source), cmp.Compare(a.Name, b.Name), cmp.Compare(a.ErrorCode, b.ErrorCode))
}

// evaluate runs the rule over the minutes of s before f, in order.
func (d *Detector) evaluate(k SeriesKey, s *seriesState, sc *scopeState, f int64, out []Insight) []Insight {
	minutes := make([]int64, 0, len(s.pending))
	for m := range s.pending {
		if m < f {
			minutes = append(minutes, m)
		}
	}
	slices.Sort(minutes)
	for _, m := range minutes {
		out = d.quiet(k, s, m, out)
		c := s.pending[m]
		delete(s.pending, m)
		out = d.minute(k, s, sc, m, c, out)
		s.Next = m + 1
	}
	out = d.quiet(k, s, f, out)
	s.Next = f
	d.dirtySeries[k] = true
	return out
}

// quiet evaluates the minutes from s.Next up to (not including) until, which had no calls.
func (d *Detector) quiet(k SeriesKey, s *seriesState, until int64, out []Insight) []Insight {
	if until <= s.Next {
		return out
	}
	s.Cand = nil
	if a := s.Active; a != nil {
		a.Quiet += int(until - s.Next)
		if a.Quiet >= d.rule.EndMinutes {
			out = append(out, d.end(k, s))
		}
	}
	return out
}

// baseline returns the mean, deviation and size in minutes of the baseline before minute m.
func (d *Detector) baseline(s *seriesState, sc *scopeState, m int64) (mean, sd float64, n int64) {
	hour := floorDiv(m, baselineHourly)
	window := int64(d.rule.Baseline / time.Minute)
	from := max(m-window, sc.First)
	n = m - from
	if n <= 0 {
		return 0, 0, 0
	}
	var sum, sumSq int64
	for h, a := range s.Hours {
		if h*baselineHourly >= from-baselineHourly+1 && h <= hour {
			sum += a.N
			sumSq += a.SumSq
		}
	}
	mean = float64(sum) / float64(n)
	v := float64(sumSq)/float64(n) - mean*mean
	return mean, math.Sqrt(max(v, 0)), n
}

// baselineAttrs averages the attributions of the baseline before minute m over n minutes.
func (d *Detector) baselineAttrs(k SeriesKey, s *seriesState, m, n int64) [3][]AttrAvg {
	var c Counts
	hour := floorDiv(m, baselineHourly)
	from := m - n
	for h, a := range s.Hours {
		if h*baselineHourly >= from-baselineHourly+1 && h <= hour {
			c.merge(d.hourCounts(k, h, a))
		}
	}
	return averages(&c, n)
}

func averages(c *Counts, minutes int64) [3][]AttrAvg {
	var out [3][]AttrAvg
	if minutes <= 0 {
		minutes = 1
	}
	for i, list := range c.Attrs {
		list = slices.Clone(list)
		slices.SortFunc(list, func(a, b AttrCount) int { return cmp.Or(cmp.Compare(b.N, a.N), cmp.Compare(a.Value, b.Value)) })
		for _, a := range list[:min(len(list), topAttrs)] {
			out[i] = append(out[i], AttrAvg{Value: a.Value, Average: round(float64(a.N) / float64(minutes))})
		}
		if out[i] == nil {
			out[i] = []AttrAvg{}
		}
	}
	return out
}

// round keeps the averages readable and stable across platforms.
func round(f float64) float64 { return math.Round(f*1e6) / 1e6 }

// minute applies the rule to minute m with counts c, then folds c into the baseline.
func (d *Detector) minute(k SeriesKey, s *seriesState, sc *scopeState, m int64, c *Counts, out []Insight) []Insight {
	mean, sd, n := d.baseline(s, sc, m)
	threshold := max(float64(d.rule.MinCount), mean+d.rule.Sigma*sd)
	ready := m-sc.First >= int64(d.rule.MinHistory/time.Minute)
	if a := s.Active; a != nil {
		if float64(c.N) >= a.Threshold {
			a.Total.merge(&a.SinceLast)
			a.SinceLast = Counts{}
			a.Total.merge(c)
			a.Last, a.Quiet = m, 0
		} else {
			a.SinceLast.merge(c)
			a.Quiet++
			if a.Quiet >= d.rule.EndMinutes {
				out = append(out, d.end(k, s))
			}
		}
	} else if ready && float64(c.N) >= threshold {
		if len(s.Cand) > 0 && s.Cand[len(s.Cand)-1].Minute != m-1 {
			s.Cand = nil
		}
		s.Cand = append(s.Cand, candMinute{Minute: m, C: *c})
		if len(s.Cand) >= d.rule.StartMinutes {
			out = append(out, d.start(k, s, m, mean, threshold, n))
		}
	} else {
		s.Cand = nil
	}
	d.fold(k, s, m, c)
	return out
}

func (d *Detector) start(k SeriesKey, s *seriesState, m int64, mean, threshold float64, n int64) Insight {
	first := s.Cand[0].Minute
	a := &activeInsight{
		SharedID: sharedID(k, first), First: first, Last: m, Threshold: threshold, Mean: mean, BaselineN: n,
		BaseAttrs: d.baselineAttrs(k, s, first, n), StartCount: len(s.Cand),
	}
	for i := range s.Cand {
		a.Total.merge(&s.Cand[i].C)
	}
	s.Cand, s.Active = nil, a
	in := Insight{
		Series: k, State: "Start", SharedID: a.SharedID, Time: minuteTime(first),
		Baseline: round(mean), Average: round(float64(a.Total.N) / float64(a.StartCount)),
		InsightDuration: int64(a.StartCount), BaselineDuration: n,
	}
	d.attribute(&in, a, int64(a.StartCount))
	return in
}

func (d *Detector) end(k SeriesKey, s *seriesState) Insight {
	a := s.Active
	s.Active = nil
	dur := a.Last - a.First + 1
	in := Insight{
		Series: k, State: "End", SharedID: a.SharedID, Time: minuteTime(a.Last + 1),
		Baseline: round(a.Mean), Average: round(float64(a.Total.N) / float64(dur)),
		InsightDuration: dur, BaselineDuration: a.BaselineN,
	}
	d.attribute(&in, a, dur)
	return in
}

func (d *Detector) attribute(in *Insight, a *activeInsight, minutes int64) {
	ins := averages(&a.Total, minutes)
	for i := range in.Attributions {
		in.Attributions[i].Insight = ins[i]
		in.Attributions[i].Baseline = a.BaseAttrs[i]
	}
}

// fold adds minute m to the baseline and forgets the hours that left it.
func (d *Detector) fold(k SeriesKey, s *seriesState, m int64, c *Counts) {
	hour := floorDiv(m, baselineHourly)
	h := s.Hours[hour]
	if h == nil {
		h = &hourAgg{full: true}
		s.Hours[hour] = h
	} else if !h.full {
		h.Attrs = d.hourCounts(k, hour, h).Attrs
		h.full = true
	}
	h.merge(c)
	h.SumSq += c.N * c.N
	if s.dirtyHours == nil {
		s.dirtyHours = map[int64]bool{}
	}
	s.dirtyHours[hour] = true
	oldest := hour - int64(d.rule.Baseline/time.Hour) - 1
	for x := range s.Hours {
		if x < oldest {
			delete(s.Hours, x)
			s.dirtyHours[x] = true
		}
	}
}

func minuteTime(m int64) time.Time { return time.Unix(m*60, 0).UTC() }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
