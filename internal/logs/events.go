package logs

import (
	"container/heap"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/filterpattern"
	"github.com/opentrail/opentrail/internal/kv"
)

var eventOps = map[string]opFunc{
	"PutLogEvents":    (*Service).putLogEvents,
	"GetLogEvents":    (*Service).getLogEvents,
	"FilterLogEvents": (*Service).filterLogEvents,
}

// inEvent is one event to write.
type inEvent struct {
	stream string
	ts     int64 // ms
	msg    []byte
	fe     *filterpattern.Event // msg prepared for matching, shared by every group it goes to; nil = prepare on use
}

// appendLocked writes events to g in b: the events, their streams' metadata,
// the subscription outbox entries and metric values of the filters they match.
// The caller holds s.mu and commits b; the returned subscriptions have new work.
func (s *Service) appendLocked(b *pebble.Batch, g *group, evs []inEvent, ingest int64) ([]*subscription, error) {
	woke := map[*subscription]bool{}
	touched := map[*metricFilter]bool{}
	idx := g.subscriptionIndex()
	var val []byte
	for _, e := range evs {
		st := g.streams[e.stream]
		if st == nil {
			st = &streamMeta{Name: e.stream, CreationTime: ingest}
			g.streams[e.stream] = st
		}
		if st.prefix == nil {
			st.prefix = kv.LogStreamPrefix(g.id.Account, g.id.Region, g.id.Name, e.stream)
		}
		s.seq++
		seq := s.seq
		key := kv.LogEventKey(st.prefix, e.ts, seq)
		val = binary.AppendUvarint(val[:0], uint64(ingest))
		val = append(val, e.msg...)
		if err := b.Set(key, val, nil); err != nil {
			return nil, err
		}
		if st.FirstEvent == 0 || e.ts < st.FirstEvent {
			st.FirstEvent = e.ts
		}
		st.LastEvent = max(st.LastEvent, e.ts)
		st.LastIngestion = ingest
		st.StoredBytes += int64(len(e.msg))
		st.Events++
		st.dirty = true
		if len(s.watchers) > 0 {
			s.notifyWatchersLocked(g.id, TailEvent{LogStreamName: e.stream, Timestamp: e.ts, IngestionTime: ingest,
				EventID: eventID(e.ts, seq), Message: string(e.msg), seq: seq})
		}
		if len(g.subs) == 0 && len(g.metrics) == 0 {
			continue
		}
		fe := e.fe
		if fe == nil {
			fe = filterpattern.NewEvent(e.msg)
		}
		var setErr error
		idx.match(fe, func(sub *subscription) {
			if err := sub.out.Put(b, seq, encodePending(e.stream, e.ts, e.msg)); err != nil {
				setErr = err
				return
			}
			woke[sub] = true
		})
		if setErr != nil {
			return nil, setErr
		}
		for _, mf := range g.metrics {
			if mf.apply(fe, e.ts) {
				touched[mf] = true
			}
		}
	}
	name := g.id.stateName()
	for _, st := range g.streams {
		if st.dirty {
			st.dirty = false
			if err := setState(b, kv.StateLogStream, g.id.Account, name+":"+st.Name, st); err != nil {
				return nil, err
			}
		}
	}
	for mf := range touched {
		if err := setState(b, kv.StateMetricValues, g.id.Account, name+":"+mf.def.FilterName, mf.values); err != nil {
			return nil, err
		}
		if mf.disabledNow {
			mf.disabledNow = false
			if err := setState(b, kv.StateMetricFilter, g.id.Account, name+":"+mf.def.FilterName, &mf.def); err != nil {
				return nil, err
			}
			s.log.Warn("metric filter disabled: too many dimension value combinations", "account", g.id.Account, "region", g.id.Region,
				"log_group", g.id.Name, "filter", mf.def.FilterName, "limit", maxDimensionCombinations)
		}
	}
	list := make([]*subscription, 0, len(woke))
	for sub := range woke {
		list = append(list, sub)
	}
	return list, setState(b, kv.StateLogSeq, "", "", s.seq)
}

// subIndex finds the subscription filters an event matches without
// evaluating every one: filters that require a property to equal a string
// (most do: a user, an event name) are grouped by that value, so an event
// reads the property once and evaluates only the filters its value can satisfy.
type subIndex struct {
	byRef []refIndex
	rest  []*subscription // filters with no such requirement: always evaluated
}

type refIndex struct {
	ref     string
	p       *filterpattern.Pattern // any pattern of the group: it reads ref from an event
	byValue map[string][]*subscription
}

// subscriptionIndex returns g's index, built on first use after a change of its filters.
func (g *group) subscriptionIndex() *subIndex {
	if g.subIdx != nil {
		return g.subIdx
	}
	idx := &subIndex{}
	refs := map[string]int{}
	for _, sub := range g.subs {
		ref, v, ok := sub.pattern.Requirement()
		if !ok {
			idx.rest = append(idx.rest, sub)
			continue
		}
		i, seen := refs[ref]
		if !seen {
			i = len(idx.byRef)
			refs[ref] = i
			idx.byRef = append(idx.byRef, refIndex{ref: ref, p: sub.pattern, byValue: map[string][]*subscription{}})
		}
		idx.byRef[i].byValue[v] = append(idx.byRef[i].byValue[v], sub)
	}
	g.subIdx = idx
	return idx
}

// match calls fn for every subscription whose filter matches ev.
func (idx *subIndex) match(ev *filterpattern.Event, fn func(*subscription)) {
	for _, sub := range idx.rest {
		if sub.pattern.Match(ev) {
			fn(sub)
		}
	}
	for i := range idx.byRef {
		r := &idx.byRef[i]
		v, ok := r.p.Value(ev, r.ref)
		if !ok {
			continue // the property is missing or not a string: no equality on it can hold
		}
		for _, sub := range r.byValue[v] {
			if sub.pattern.Match(ev) {
				fn(sub)
			}
		}
	}
}

// encodePending is an outbox entry: the stream, the event time and the message.
func encodePending(stream string, ts int64, msg []byte) []byte {
	b := make([]byte, 0, len(stream)+len(msg)+16)
	b = binary.AppendUvarint(b, uint64(len(stream)))
	b = append(b, stream...)
	b = binary.AppendVarint(b, ts)
	return append(b, msg...)
}

func decodePending(b []byte) (stream string, ts int64, msg []byte, ok bool) {
	stream, rest, ok := readStr(b)
	if !ok {
		return "", 0, nil, false
	}
	ts, n := binary.Varint(rest)
	if n <= 0 {
		return "", 0, nil, false
	}
	return stream, ts, rest[n:], true
}

func uvarint(b []byte) (uint64, int) { return binary.Uvarint(b) }

// eventID renders a CloudWatch-style event ID (decimal digits) from an event's position.
func eventID(ts int64, seq uint64) string {
	return fmt.Sprintf("%020d%036d", uint64(ts)^(1<<63), seq)
}

type putLogEventsInput struct {
	LogGroupName  string `json:"logGroupName"`
	LogStreamName string `json:"logStreamName"`
	LogEvents     []struct {
		Timestamp int64  `json:"timestamp"`
		Message   string `json:"message"`
	} `json:"logEvents"`
	SequenceToken string `json:"sequenceToken"`
}

type rejectedInfo struct {
	TooNewLogEventStartIndex *int `json:"tooNewLogEventStartIndex,omitempty"`
	TooOldLogEventEndIndex   *int `json:"tooOldLogEventEndIndex,omitempty"`
	ExpiredLogEventEndIndex  *int `json:"expiredLogEventEndIndex,omitempty"`
}

// putLogEvents writes a batch durably before it answers. As CloudWatch Logs,
// it rejects events more than 2 hours in the future or older than 14 days (or
// than the group's retention) by index, and takes the rest; the sequence token
// is accepted and ignored.
func (s *Service) putLogEvents(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in putLogEventsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	size := 0
	for i, e := range in.LogEvents {
		size += len(e.Message) + eventOverhead
		if len(e.Message) > maxEventBytes {
			return nil, apiErr("InvalidParameterException", "Log event %d is too large: %d bytes; the limit is %d bytes.", i, len(e.Message), maxEventBytes)
		}
		if !utf8.ValidString(e.Message) {
			return nil, apiErr("InvalidParameterException", "Log event %d is not valid UTF-8.", i)
		}
		if i > 0 && e.Timestamp < in.LogEvents[i-1].Timestamp {
			return nil, apiErr("InvalidParameterException", "Log events in a single PutLogEvents request must be in chronological order.")
		}
	}
	if size > maxBatchBytes {
		return nil, apiErr("InvalidParameterException", "Upload too large: %d bytes exceeds the limit of %d bytes.", size, maxBatchBytes)
	}
	if n := len(in.LogEvents); n > 1 && in.LogEvents[n-1].Timestamp-in.LogEvents[0].Timestamp > 24*3600*1000 {
		return nil, apiErr("InvalidParameterException", "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.")
	}
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGroupLocked(c, in.LogGroupName, "")
	if err != nil {
		return nil, err
	}
	st := g.streams[in.LogStreamName]
	if st == nil {
		return nil, errNoStream()
	}
	tooNew, tooOld := millis(now.Add(2*time.Hour)), millis(now.Add(-14*24*time.Hour))
	expired := int64(-1 << 62)
	if g.meta.RetentionInDays > 0 {
		expired = millis(now.Add(-time.Duration(g.meta.RetentionInDays) * 24 * time.Hour))
	}
	var rej rejectedInfo
	evs := make([]inEvent, 0, len(in.LogEvents))
	for i, e := range in.LogEvents {
		switch {
		case e.Timestamp > tooNew:
			if rej.TooNewLogEventStartIndex == nil {
				rej.TooNewLogEventStartIndex = ptr(i)
			}
		case e.Timestamp < expired:
			rej.ExpiredLogEventEndIndex = ptr(i)
		case e.Timestamp < tooOld:
			rej.TooOldLogEventEndIndex = ptr(i)
		default:
			evs = append(evs, inEvent{stream: in.LogStreamName, ts: e.Timestamp, msg: []byte(e.Message)})
		}
	}
	b := s.db.NewBatch()
	defer b.Close()
	woke, err := s.appendLocked(b, g, evs, millis(now))
	if err == nil {
		err = s.commitLocked(ctx, b, true)
	}
	if err != nil {
		s.reloadLocked()
		return nil, err
	}
	wake(woke)
	out := struct {
		NextSequenceToken     string        `json:"nextSequenceToken"`
		RejectedLogEventsInfo *rejectedInfo `json:"rejectedLogEventsInfo,omitempty"`
	}{NextSequenceToken: fmt.Sprintf("%056d", st.Events)}
	if rej != (rejectedInfo{}) {
		out.RejectedLogEventsInfo = &rej
	}
	return out, nil
}

func ptr[T any](v T) *T { return &v }

// reloadLocked rebuilds the in-memory state after a failed commit left it ahead of the database.
func (s *Service) reloadLocked() {
	for _, g := range s.groups {
		for _, sub := range g.subs {
			s.stopSenderLocked(sub)
		}
	}
	s.groups = map[groupID]*group{}
	s.mu.Unlock()
	err := s.load()
	s.mu.Lock()
	if err != nil {
		s.log.Error("reload log groups after a failed write", "err", err)
	}
	if s.ctx != nil {
		for _, g := range s.groups {
			for _, sub := range g.subs {
				s.startSender(sub)
			}
		}
	}
}

// ---- reading ----

// stored is one log event read back.
type stored struct {
	stream string
	ts     int64
	seq    uint64
	ingest int64
	msg    []byte
}

func readEvent(stream string, key, val []byte) (stored, bool) {
	ts, seq, ok := kv.LogEventPos(key)
	if !ok {
		return stored{}, false
	}
	ingest, n := binary.Uvarint(val)
	if n <= 0 {
		return stored{}, false
	}
	return stored{stream: stream, ts: ts, seq: seq, ingest: int64(ingest), msg: val[n:]}, true
}

type getLogEventsInput struct {
	LogGroupName       string `json:"logGroupName"`
	LogGroupIdentifier string `json:"logGroupIdentifier"`
	LogStreamName      string `json:"logStreamName"`
	StartTime          *int64 `json:"startTime"`
	EndTime            *int64 `json:"endTime"`
	NextToken          string `json:"nextToken"`
	Limit              int    `json:"limit"`
	StartFromHead      bool   `json:"startFromHead"`
}

type outputLogEvent struct {
	Timestamp     int64  `json:"timestamp"`
	Message       string `json:"message"`
	IngestionTime int64  `json:"ingestionTime"`
}

// Event positions in tokens: "f" (forward: events after pos) or "b" (backward: events before pos).
func encodePosToken(dir byte, ts int64, seq uint64) string {
	b := []byte{dir}
	b = binary.BigEndian.AppendUint64(b, uint64(ts)^(1<<63))
	b = binary.BigEndian.AppendUint64(b, seq)
	return string(dir) + "/" + base64.RawURLEncoding.EncodeToString(b[1:])
}

func decodePosToken(tok string) (dir byte, pos []byte, err error) {
	bad := apiErr("InvalidParameterException", "The specified nextToken is invalid.")
	d, rest, ok := strings.Cut(tok, "/")
	if !ok || (d != "f" && d != "b") {
		return 0, nil, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(raw) != 16 {
		return 0, nil, bad
	}
	return d[0], raw, nil
}

func (s *Service) getLogEvents(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in getLogEventsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	limit := in.Limit
	if limit == 0 {
		limit = maxBatchEvents
	}
	s.mu.Lock()
	g, err := s.lookupGroupLocked(c, in.LogGroupName, in.LogGroupIdentifier)
	if err == nil && g.streams[in.LogStreamName] == nil {
		err = errNoStream()
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	p := kv.LogStreamPrefix(g.id.Account, g.id.Region, g.id.Name, in.LogStreamName)
	lo, hi := append(append([]byte(nil), p...), 0), kv.PrefixUpper(p)
	if in.StartTime != nil {
		lo = kv.LogEventKey(p, *in.StartTime, 0)
	}
	if in.EndTime != nil {
		hi = kv.LogEventKey(p, *in.EndTime, 0) // endTime is exclusive
	}
	forward := in.StartFromHead
	var from []byte
	if in.NextToken != "" {
		dir, pos, err := decodePosToken(in.NextToken)
		if err != nil {
			return nil, err
		}
		forward = dir == 'f'
		from = append(append([]byte(nil), p...), pos...)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var evs []stored
	var valid bool
	switch {
	case forward && from != nil:
		valid = it.SeekGE(from)
	case forward:
		valid = it.First()
	case from != nil:
		valid = it.SeekLT(from)
	default:
		valid = it.Last()
	}
	bytes := 0
	for ; valid && len(evs) < limit && bytes < maxBatchBytes; valid = stepIter(it, forward) {
		e, ok := readEvent(in.LogStreamName, it.Key(), it.Value())
		if !ok {
			continue
		}
		e.msg = append([]byte(nil), e.msg...)
		evs = append(evs, e)
		bytes += len(e.msg) + eventOverhead
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	if !forward {
		for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
			evs[i], evs[j] = evs[j], evs[i]
		}
	}
	out := struct {
		Events            []outputLogEvent `json:"events"`
		NextForwardToken  string           `json:"nextForwardToken"`
		NextBackwardToken string           `json:"nextBackwardToken"`
	}{Events: make([]outputLogEvent, 0, len(evs))}
	for _, e := range evs {
		out.Events = append(out.Events, outputLogEvent{Timestamp: e.ts, Message: string(e.msg), IngestionTime: e.ingest})
	}
	// Tokens point just past the page in each direction; with no events they stay where the read was.
	switch {
	case len(evs) > 0:
		first, last := evs[0], evs[len(evs)-1]
		out.NextForwardToken = encodePosToken('f', last.ts, last.seq+1)
		out.NextBackwardToken = encodePosToken('b', first.ts, first.seq)
	case from != nil:
		ts, seq, _ := kv.LogEventPos(from)
		out.NextForwardToken = encodePosToken('f', ts, seq)
		out.NextBackwardToken = encodePosToken('b', ts, seq)
	default:
		end := millis(s.o.Now())
		out.NextForwardToken = encodePosToken('f', end, 0)
		out.NextBackwardToken = encodePosToken('b', end, 0)
	}
	return out, nil
}

func stepIter(it *pebble.Iterator, forward bool) bool {
	if forward {
		return it.Next()
	}
	return it.Prev()
}

type filterLogEventsInput struct {
	LogGroupName        string   `json:"logGroupName"`
	LogGroupIdentifier  string   `json:"logGroupIdentifier"`
	LogStreamNames      []string `json:"logStreamNames"`
	LogStreamNamePrefix string   `json:"logStreamNamePrefix"`
	StartTime           *int64   `json:"startTime"`
	EndTime             *int64   `json:"endTime"`
	FilterPattern       string   `json:"filterPattern"`
	NextToken           string   `json:"nextToken"`
	Limit               int      `json:"limit"`
}

type filteredLogEvent struct {
	LogStreamName string `json:"logStreamName"`
	Timestamp     int64  `json:"timestamp"`
	Message       string `json:"message"`
	IngestionTime int64  `json:"ingestionTime"`
	EventID       string `json:"eventId"`
}

type searchedStream struct {
	LogStreamName      string `json:"logStreamName"`
	SearchedCompletely bool   `json:"searchedCompletely"`
}

// maxScanPerCall bounds the events one FilterLogEvents call examines; past it
// the call answers with what it found and a nextToken, as CloudWatch Logs does.
const maxScanPerCall = 200000

func (s *Service) filterLogEvents(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in filterLogEventsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if len(in.LogStreamNames) > 0 && in.LogStreamNamePrefix != "" {
		return nil, apiErr("InvalidParameterException", "logStreamNames and logStreamNamePrefix are mutually exclusive parameters.")
	}
	pat, err := compile(in.FilterPattern)
	if err != nil {
		return nil, err
	}
	limit := in.Limit
	if limit == 0 {
		limit = maxBatchEvents
	}
	var after []byte
	if in.NextToken != "" {
		dir, pos, err := decodePosToken(in.NextToken)
		if err != nil || dir != 'f' {
			return nil, apiErr("InvalidParameterException", "The specified nextToken is invalid.")
		}
		after = pos
	}
	s.mu.Lock()
	g, err := s.lookupGroupLocked(c, in.LogGroupName, in.LogGroupIdentifier)
	var streams []string
	if err == nil {
		if len(in.LogStreamNames) > 0 {
			for _, n := range in.LogStreamNames {
				if g.streams[n] == nil {
					err = errNoStream()
					break
				}
				streams = append(streams, n)
			}
		} else {
			for n := range g.streams {
				if strings.HasPrefix(n, in.LogStreamNamePrefix) {
					streams = append(streams, n)
				}
			}
		}
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var start, end *int64 = in.StartTime, in.EndTime
	m, err := s.newMerge(g.id, streams, start, end, after)
	if err != nil {
		return nil, err
	}
	defer m.close()
	out := struct {
		Events             []filteredLogEvent `json:"events"`
		SearchedLogStreams []searchedStream   `json:"searchedLogStreams"`
		NextToken          string             `json:"nextToken,omitempty"`
	}{Events: []filteredLogEvent{}, SearchedLogStreams: []searchedStream{}}
	scanned, bytes := 0, 0
	for {
		e, ok := m.next()
		if !ok {
			break
		}
		if len(out.Events) == limit || bytes >= maxBatchBytes || scanned == maxScanPerCall || ctx.Err() != nil {
			out.NextToken = encodePosToken('f', e.ts, e.seq)
			break
		}
		scanned++
		if !pat.Match(filterpattern.NewEvent(e.msg)) {
			continue
		}
		out.Events = append(out.Events, filteredLogEvent{LogStreamName: e.stream, Timestamp: e.ts, Message: string(e.msg),
			IngestionTime: e.ingest, EventID: eventID(e.ts, e.seq)})
		bytes += len(e.msg) + eventOverhead
	}
	if err := m.err(); err != nil {
		return nil, err
	}
	for _, n := range streams {
		out.SearchedLogStreams = append(out.SearchedLogStreams, searchedStream{LogStreamName: n, SearchedCompletely: out.NextToken == ""})
	}
	return out, nil
}

// merge reads several streams of one group in (timestamp, sequence) order.
type merge struct {
	its  []*pebble.Iterator
	h    mergeHeap
	fail error
}

type mergeItem struct {
	e  stored
	it int
}

type mergeHeap []mergeItem

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	if h[i].e.ts != h[j].e.ts {
		return h[i].e.ts < h[j].e.ts
	}
	return h[i].e.seq < h[j].e.seq
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(mergeItem)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// newMerge positions one iterator per stream at max(start, after); end is exclusive.
func (s *Service) newMerge(id groupID, streams []string, start, end *int64, after []byte) (*merge, error) {
	m := &merge{}
	for _, n := range streams {
		p := kv.LogStreamPrefix(id.Account, id.Region, id.Name, n)
		lo, hi := append(append([]byte(nil), p...), 0), kv.PrefixUpper(p)
		if start != nil {
			lo = kv.LogEventKey(p, *start, 0)
		}
		if end != nil {
			hi = kv.LogEventKey(p, *end, 0)
		}
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			m.close()
			return nil, err
		}
		m.its = append(m.its, it)
		var ok bool
		if after != nil {
			ok = it.SeekGE(append(append([]byte(nil), p...), after...))
		} else {
			ok = it.First()
		}
		m.push(len(m.its)-1, n, ok)
	}
	return m, nil
}

func (m *merge) push(i int, stream string, ok bool) {
	it := m.its[i]
	for ; ok; ok = it.Next() {
		if e, good := readEvent(stream, it.Key(), it.Value()); good {
			heap.Push(&m.h, mergeItem{e: e, it: i})
			return
		}
	}
	if err := it.Error(); err != nil && m.fail == nil {
		m.fail = err
	}
}

// next returns the next event; its message is a copy.
func (m *merge) next() (stored, bool) {
	if len(m.h) == 0 {
		return stored{}, false
	}
	top := heap.Pop(&m.h).(mergeItem)
	top.e.msg = append([]byte(nil), top.e.msg...)
	m.push(top.it, top.e.stream, m.its[top.it].Next())
	return top.e, true
}

func (m *merge) err() error { return m.fail }

func (m *merge) close() {
	for _, it := range m.its {
		it.Close()
	}
}
