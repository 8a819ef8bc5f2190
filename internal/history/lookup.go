package history

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/kv"
)

// Attribute keys of LookupEvents, as on the wire.
const (
	AttrEventID      = "EventId"
	AttrEventName    = "EventName"
	AttrReadOnly     = "ReadOnly"
	AttrUsername     = "Username"
	AttrResourceType = "ResourceType"
	AttrResourceName = "ResourceName"
	AttrEventSource  = "EventSource"
	AttrAccessKeyID  = "AccessKeyId"
)

var attrCodes = map[string]byte{
	AttrEventName: kv.AttrEventName, AttrReadOnly: kv.AttrReadOnly, AttrUsername: kv.AttrUsername,
	AttrResourceType: kv.AttrResourceType, AttrResourceName: kv.AttrResourceName,
	AttrEventSource: kv.AttrEventSource, AttrAccessKeyID: kv.AttrAccessKeyID,
}

// Query is one LookupEvents request, already validated.
type Query struct {
	Account, Region string
	Insight         bool   // insight events instead of management events
	Attr, Value     string // Attr "" = no lookup attribute
	Start, End      int64  // inclusive, unix nanoseconds
	Max             int
	After           []byte // position from a previous page
}

// Event is one LookupEvents result.
type Event struct {
	Seq    uint64
	Record event.Record
}

// Page is one page of results; Next is nil on the last page.
type Page struct {
	Events []Event
	Next   []byte
}

// ErrBadPosition reports a position that no page of this store produced.
var ErrBadPosition = errors.New("store: bad position")

// Lookup returns up to q.Max events, newest first.
func (s *Store) Lookup(q Query) (Page, error) {
	if q.Attr == AttrEventID {
		return s.lookupID(q)
	}
	cat := kv.CatManagement
	if q.Insight {
		cat = kv.CatInsight
	}
	attr := kv.AttrAll
	if q.Attr != "" {
		code, ok := attrCodes[q.Attr]
		if !ok {
			return Page{}, fmt.Errorf("store: unknown lookup attribute %q", q.Attr)
		}
		attr = code
	}
	prefix := kv.LookupPrefix(q.Account, q.Region, cat, attr, q.Value)
	lower := kv.LookupKey(prefix, q.End, math.MaxUint64) // newest admissible entry
	if q.After != nil {
		if len(q.After) != 16 {
			return Page{}, ErrBadPosition
		}
		after := append(append([]byte(nil), prefix...), q.After...)
		if bytes.Compare(after, lower) < 0 {
			return Page{}, ErrBadPosition
		}
		lower = append(after, 0) // strictly after the last entry returned
	}
	upper := kv.LookupKey(prefix, q.Start, 0) // oldest admissible entry, inclusive
	upper = append(upper, 0)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return Page{}, fmt.Errorf("store: lookup: %w", err)
	}
	defer it.Close()
	var page Page
	var last []byte
	for ok := it.First(); ok; ok = it.Next() {
		if len(page.Events) == q.Max {
			page.Next = bytes.Clone(last[len(prefix):])
			break
		}
		_, seq, good := kv.LookupEntry(it.Key())
		if !good {
			continue
		}
		rec, found, err := s.record(seq)
		if err != nil {
			return Page{}, err
		}
		if found {
			page.Events = append(page.Events, Event{Seq: seq, Record: rec})
		}
		last = append(last[:0], it.Key()...)
	}
	return page, it.Error()
}

func (s *Store) lookupID(q Query) (Page, error) {
	if q.After != nil {
		return Page{}, ErrBadPosition // an event ID names at most one event
	}
	seq, ok, err := s.j.Lookup(kv.EventIDKey(q.Account, q.Value))
	if err != nil || !ok || seq > s.Applied() {
		return Page{}, err
	}
	rec, found, err := s.record(seq)
	if err != nil || !found {
		return Page{}, err
	}
	m := rec.Meta
	wantCat := event.CategoryManagement
	if q.Insight {
		wantCat = event.CategoryInsight
	}
	if m.Category != wantCat || m.Region != q.Region || m.EventTime < q.Start || m.EventTime > q.End {
		return Page{}, nil
	}
	return Page{Events: []Event{{Seq: seq, Record: rec}}}, nil
}

func (s *Store) record(seq uint64) (event.Record, bool, error) {
	v, found, err := s.j.Get(seq)
	if err != nil || !found {
		return event.Record{}, false, err
	}
	rec, err := event.Decode(v)
	if err != nil {
		return event.Record{}, false, fmt.Errorf("store: record %d: %w", seq, err)
	}
	return rec, true, nil
}

// ---- NextToken format: tokens handed to clients; changing it invalidates tokens in flight (harmless). ----
//
//	base64url( version(1)=1 | queryHash(8) | position(16) | mac(16) )
//
// queryHash binds the token to the query's parameters; mac (HMAC-SHA256, truncated)
// makes any token not minted by this server fail to decode.
const tokenV1 = 1

// Tokens mints and checks NextTokens.
type Tokens struct{ key []byte }

// NewTokens uses key (at least 32 bytes of secret) to sign tokens.
func NewTokens(key []byte) *Tokens { return &Tokens{key: key} }

// ErrBadToken reports a token that is malformed, forged, or from another query.
var ErrBadToken = errors.New("store: invalid next token")

// Encode returns the NextToken for the page after pos in query q.
func (t *Tokens) Encode(q Query, pos []byte) string {
	b := make([]byte, 0, 1+8+len(pos)+16)
	b = append(b, tokenV1)
	b = binary.BigEndian.AppendUint64(b, queryHash(q))
	b = append(b, pos...)
	b = append(b, t.mac(b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Decode checks tok against q and returns the position it carries.
func (t *Tokens) Decode(q Query, tok string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) != 1+8+16+16 || b[0] != tokenV1 {
		return nil, ErrBadToken
	}
	body, mac := b[:len(b)-16], b[len(b)-16:]
	if !hmac.Equal(mac, t.mac(body)) {
		return nil, ErrBadToken
	}
	if binary.BigEndian.Uint64(body[1:9]) != queryHash(q) {
		return nil, ErrBadToken
	}
	return body[9:], nil
}

func (t *Tokens) mac(b []byte) []byte {
	h := hmac.New(sha256.New, t.key)
	h.Write(b)
	return h.Sum(nil)[:16]
}

// queryHash covers every parameter a token must be reused with (not Max, not After).
func queryHash(q Query) uint64 {
	h := sha256.New()
	fmt.Fprintf(h, "%q|%q|%t|%q|%q|%d|%d", q.Account, q.Region, q.Insight, q.Attr, q.Value, q.Start, q.End)
	return binary.BigEndian.Uint64(h.Sum(nil))
}

// Regions lists, sorted, the regions that hold events of account in the index (management or
// insight events, within retention): one seek per region, however many events each holds.
func (s *Store) Regions(account string) ([]string, error) {
	lo := kv.LookupAccountPrefix(account)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: kv.PrefixUpper(lo)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var regions []string
	for ok := it.First(); ok; {
		region, prefix, good := kv.LookupRegion(lo, it.Key())
		if !good {
			return regions, fmt.Errorf("store: bad index key %x", it.Key())
		}
		regions = append(regions, region)
		ok = it.SeekGE(kv.PrefixUpper(prefix))
	}
	slices.Sort(regions) // keys order regions by length first
	return regions, it.Error()
}
