package insights

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/kv"
)

// ---- Storage format: the values under kv's Insights keys. Never change; add a version. ----
//
//	minute: version(1)=1 | uvarint(calls) | 3 × { uvarint(n) n × { str(value) uvarint(calls) } }
//	        (attributes in the order of Attributes)
//	series: JSON of storedSeries
//	hour:   JSON of hourAgg (one hour of a series' baseline)
//	scope:  JSON of scopeState
const countsV1 = 1

type storedSeries struct {
	Key    SeriesKey      `json:"key"`
	Next   int64          `json:"next"`
	Cand   []candMinute   `json:"cand,omitempty"`
	Active *activeInsight `json:"active,omitempty"`
}

// ---- End of storage format. ----

// ErrCorrupt reports a stored value that cannot be decoded.
var ErrCorrupt = errors.New("insights: corrupt stored value")

// EncodeCounts appends the stored form of c to dst.
func EncodeCounts(dst []byte, c *Counts) []byte {
	dst = append(dst, countsV1)
	dst = binary.AppendUvarint(dst, uint64(c.N))
	for _, list := range c.Attrs {
		dst = binary.AppendUvarint(dst, uint64(len(list)))
		for _, a := range list {
			dst = binary.AppendUvarint(dst, uint64(len(a.Value)))
			dst = append(dst, a.Value...)
			dst = binary.AppendUvarint(dst, uint64(a.N))
		}
	}
	return dst
}

// DecodeCounts parses a stored minute. attrs false reads the call count only.
func DecodeCounts(b []byte, attrs bool) (Counts, error) {
	var c Counts
	if len(b) == 0 || b[0] != countsV1 {
		return c, ErrCorrupt
	}
	b = b[1:]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	n, ok := next()
	if !ok {
		return c, ErrCorrupt
	}
	c.N = int64(n)
	if !attrs {
		return c, nil
	}
	for i := range c.Attrs {
		k, ok := next()
		if !ok || k > uint64(len(b)) {
			return c, ErrCorrupt
		}
		for range k {
			l, ok := next()
			if !ok || l > uint64(len(b)) {
				return c, ErrCorrupt
			}
			v := string(b[:l])
			b = b[l:]
			cnt, ok := next()
			if !ok {
				return c, ErrCorrupt
			}
			c.Attrs[i] = append(c.Attrs[i], AttrCount{Value: v, N: int64(cnt)})
		}
	}
	return c, nil
}

func seriesBytes(k SeriesKey) []byte {
	kind := k.Kind
	if k.Backfill {
		kind |= 0x80
	}
	return kv.InsightSeries(k.Account, k.Region, kind, k.Source, k.Name, k.ErrorCode)
}

// Writer is what Flush writes to: a Pebble batch.
type Writer interface {
	Set(key, value []byte, _ *pebble.WriteOptions) error
	Delete(key []byte, _ *pebble.WriteOptions) error
}

// Flush writes everything that changed since the last Flush: open and late
// minutes, series states and clocks.
func (d *Detector) Flush(w Writer) error {
	var buf []byte
	for ref, c := range d.dirtyBuckets {
		buf = EncodeCounts(buf[:0], c)
		if err := w.Set(kv.InsightMinuteKey(kv.InsightMinutePrefix(seriesBytes(ref.Key)), ref.Minute), buf, nil); err != nil {
			return err
		}
	}
	for k := range d.dirtySeries {
		s := d.series[k]
		sb := seriesBytes(k)
		v, err := json.Marshal(storedSeries{Key: k, Next: s.Next, Cand: s.Cand, Active: s.Active})
		if err != nil {
			return fmt.Errorf("insights: encode series: %w", err)
		}
		if err := w.Set(kv.InsightSeriesKey(sb), v, nil); err != nil {
			return err
		}
		// Only the hours that changed: a series' state stays small however long its baseline.
		for h := range s.dirtyHours {
			key := kv.InsightHourKey(sb, h)
			a, ok := s.Hours[h]
			if !ok {
				if err := w.Delete(key, nil); err != nil {
					return err
				}
				continue
			}
			v, err := json.Marshal(a)
			if err != nil {
				return fmt.Errorf("insights: encode hour: %w", err)
			}
			if err := w.Set(key, v, nil); err != nil {
				return err
			}
		}
		clear(s.dirtyHours)
		s.trimHours()
	}
	for sk := range d.dirtyScopes {
		v, err := json.Marshal(d.scopes[sk])
		if err != nil {
			return fmt.Errorf("insights: encode clock: %w", err)
		}
		region := sk.Region
		if sk.Backfill {
			region += "\x00backfill" // a key of its own; the value names the Region
		}
		if err := w.Set(kv.InsightScopeKey(sk.Account, region), v, nil); err != nil {
			return err
		}
	}
	clear(d.dirtyBuckets)
	clear(d.dirtySeries)
	clear(d.dirtyScopes)
	d.err = nil
	return nil
}

// trimHours forgets the attributions of every hour but the newest: they are
// stored, and read back only when an insight starts.
func (s *seriesState) trimHours() {
	newest := int64(math.MinInt64)
	for h := range s.Hours {
		newest = max(newest, h)
	}
	for h, a := range s.Hours {
		if h != newest && a.full {
			a.Attrs, a.full = [3][]AttrCount{}, false
		}
	}
}

// LoadedSeries finishes loading a series: its older hours keep no attributions in memory.
func (d *Detector) LoadedSeries(k SeriesKey) {
	if s := d.series[k]; s != nil {
		s.trimHours()
	}
}

// Discard forgets the changes since the last Flush; the caller reloads the
// detector (a failed commit leaves memory ahead of the database).
func (d *Detector) Discard() {
	d.series = map[SeriesKey]*seriesState{}
	d.scopes = map[scopeKey]*scopeState{}
	clear(d.dirtyBuckets)
	clear(d.dirtySeries)
	clear(d.dirtyScopes)
	d.err = nil
}

// LoadSeries restores one series' state from its stored value.
func (d *Detector) LoadSeries(v []byte) (SeriesKey, int64, error) {
	var st storedSeries
	if err := json.Unmarshal(v, &st); err != nil {
		return SeriesKey{}, 0, fmt.Errorf("%w: series: %v", ErrCorrupt, err)
	}
	d.series[st.Key] = &seriesState{Next: st.Next, Hours: map[int64]*hourAgg{}, Cand: st.Cand, Active: st.Active}
	return st.Key, st.Next, nil
}

// LoadHour restores one hour of a series' baseline.
func (d *Detector) LoadHour(k SeriesKey, hour int64, v []byte) error {
	s := d.series[k]
	if s == nil {
		return nil
	}
	a := &hourAgg{full: true}
	if err := json.Unmarshal(v, a); err != nil {
		return fmt.Errorf("%w: hour: %v", ErrCorrupt, err)
	}
	s.Hours[hour] = a
	return nil
}

// LoadPending restores a minute of k not yet evaluated.
func (d *Detector) LoadPending(k SeriesKey, minute int64, c Counts) {
	s := d.series[k]
	if s == nil {
		return
	}
	if s.pending == nil {
		s.pending = map[int64]*Counts{}
	}
	s.pending[minute] = &c
}

// LoadScope restores an account and Region's clock.
func (d *Detector) LoadScope(v []byte) error {
	var sc scopeState
	if err := json.Unmarshal(v, &sc); err != nil {
		return fmt.Errorf("%w: clock: %v", ErrCorrupt, err)
	}
	d.scopes[scopeKey{sc.Account, sc.Region, sc.Backfill}] = &sc
	return nil
}
