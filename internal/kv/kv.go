// Package kv opens OpenTrail's embedded Pebble database and owns its key layout.
//
// One database holds the journal, the event-ID index that makes ingest idempotent,
// projection cursors, the event-history index and control-plane state, so that a
// projection can advance its cursor and write its output in one atomic batch.
package kv

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// ---- Storage format: everything in this block is part of the on-disk format. Never change it. ----

// Key prefixes. Every key in the database starts with exactly one of these bytes.
const (
	prefixJournal = 'j' // j | seq(8, big endian)                          → stored event
	prefixEventID = 'd' // d | str(account) | str(eventID)                 → seq(8)
	prefixCursor  = 'c' // c | name                                         → seq(8): next seq to read
	prefixLookup  = 'x' // x | str(account) | str(region) | cat | attr | str(value) | ^nanos(8) | ^seq(8) → nil
	prefixState   = 's' // s | kind | 0 | str(account) | str(region)? | name → JSON
	prefixLogs    = 'l' // l | str(account) | str(region) | str(group) | str(stream) | time(8) | seq(8) → log event
	prefixOutbox  = 'o' // o | str(account) | str(region) | str(group) | str(filter) | seq(8) → pending subscription delivery
	prefixDead    = 'q' // q | str(account) | str(region) | str(group) | str(filter) | seq(8) → dead-lettered delivery
	// Generic outbox streams (internal/outbox) other than subscriptions, by
	// kind (Outbox* below) and stream name; the value is the kind's payload.
	prefixStreamPending = 'n' // n | str(kind) | str(name) | seq(8) → pending payload
	prefixStreamDead    = 'm' // m | str(kind) | str(name) | seq(8) → dead-lettered payload
	// Insights: i | 'm' | series | minute(8) → one minute's counts; i | 's' | series → a series' state;
	// i | 'h' | series | hour(8, unix hours, sign bit flipped) → one hour of a series' baseline;
	// i | 'a' | str(account) | str(region) → an account and Region's event-time clock. series is
	// str(account) | str(region) | kind(1) | str(eventSource) | str(eventName) | str(errorCode);
	// kind has its high bit set for backfill series (events recorded late); minute is unix
	// minutes, sign bit flipped. Values are the insights package's.
	prefixInsights = 'i'
	// Detections (package detect): findings of an account, newest first.
	prefixFinding = 'f' // f | str(account) | ^nanos(8) | findingID[:8] → finding JSON
)

// State kinds: the kind of StateKey and StatePrefix, one per kind of
// control-plane object, with the package that owns the objects and their name.
const (
	StateAccessKey      = "accesskey"       // auth: an access key, by access key ID (account "")
	StateRootKey        = "accesskey-root"  // auth: the root key's access key ID, name "root" (account "")
	StateDigestKeys     = "digest-keys"     // delivery: the digest signing key ring, name "ring" (account "")
	StateDeliveryStream = "delivery-stream" // delivery: one log-file stream's position
	StateNotify         = "delivery-notify" // delivery: a pending SNS notification, by seq (account ""); read only to move it into its outbox

	StateTrail        = "trail"        // cloudtrail: a trail, by homeRegion+"/"+name
	StateEDS          = "eds"          // cloudtrail: an event data store, by ID
	StateChannel      = "channel"      // cloudtrail: a channel, by ID
	StateIngestion    = "ingestion"    // cloudtrail: a channel's IngestionStatus, by channel ID
	StateQuery        = "query"        // cloudtrail: a Lake query, by query ID
	StateQueryRows    = "qrows"        // cloudtrail: a chunk of a query's result rows, by queryID+"/"+8-digit chunk
	StateLogGroup     = "loggroup"     // logs: a log group
	StateLogStream    = "logstream"    // logs: a log stream, by group+":"+stream
	StateSubscription = "subfilter"    // logs: a subscription filter, by group+":"+filter
	StateMetricFilter = "metricfilter" // logs: a metric filter, by group+":"+filter
	StateMetricValues = "metricvalue"  // logs: a metric filter's values, by group+":"+filter
	StateLogSeq       = "logseq"       // logs: the log sequence number
	// StateMasterKeyCheck holds the master key's check value, name "kcv" (account ""):
	// HMAC-SHA256 of the master key and a fixed label (auth); a missing or replaced
	// master.key is refused at start.
	StateMasterKeyCheck = "masterkey-check"

	StateCorrelations = "detect-correlations" // detect: an account's Sigma correlation windows, name "" (sigma.State's binary form)
)

// Outbox stream kinds: the kind of OutboxPrefix, one per producer of a generic outbox stream.
const (
	OutboxTrailNotify = "trail-notify" // delivery: a trail's log file notifications, by SNS topic ARN
	OutboxFindings    = "findings"     // detect: findings alerts, by findings destination (ARN or URL); seq = journal seq<<16 | match index
)

// Cursor names: the name of CursorKey, one per projection that follows the journal.
const (
	CursorHistory  = "store"    // history: the event-history index (named before the package was renamed)
	CursorDelivery = "delivery" // delivery: trail log files
	CursorLake     = "lake"     // lake: event data stores
	CursorLogs     = "logs"     // logs: trail events sent to CloudWatch Logs log groups
	CursorDetect   = "detect"   // detect: Sigma rules evaluated, findings written
)

// Lookup categories and attributes as they appear in index keys.
const (
	CatManagement byte = 'm'
	CatInsight    byte = 'i'

	AttrAll          byte = 0
	AttrEventName    byte = 1
	AttrReadOnly     byte = 2
	AttrUsername     byte = 3
	AttrResourceType byte = 4
	AttrResourceName byte = 5
	AttrEventSource  byte = 6
	AttrAccessKeyID  byte = 7
)

// appendStr writes a length-prefixed string, so that no value can run into the next field.
func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// JournalKey is the key of journal entry seq.
func JournalKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixJournal}, seq)
}

// JournalSeq decodes a JournalKey.
func JournalSeq(key []byte) (uint64, bool) {
	if len(key) != 9 || key[0] != prefixJournal {
		return 0, false
	}
	return binary.BigEndian.Uint64(key[1:]), true
}

// JournalBounds are the bounds of the whole journal key range.
func JournalBounds() (lower, upper []byte) { return []byte{prefixJournal}, []byte{prefixJournal + 1} }

// EventIDKey maps an account's eventID to the journal seq that holds it.
func EventIDKey(account, eventID string) []byte {
	return appendStr(appendStr([]byte{prefixEventID}, account), eventID)
}

// CursorKey holds a projection's next sequence number.
func CursorKey(name string) []byte { return append([]byte{prefixCursor}, name...) }

// LookupPrefix is the prefix of one (account, region, category, attribute, value) index run.
func LookupPrefix(account, region string, cat, attr byte, value string) []byte {
	b := appendStr(appendStr([]byte{prefixLookup}, account), region)
	b = append(b, cat, attr)
	return appendStr(b, value)
}

// LookupAccountPrefix is the prefix of every index entry of one account, all regions.
func LookupAccountPrefix(account string) []byte { return appendStr([]byte{prefixLookup}, account) }

// LookupRegion decodes the region of an index key under accountPrefix
// (LookupAccountPrefix), and returns the prefix of that region's entries.
func LookupRegion(accountPrefix, key []byte) (region string, regionPrefix []byte, ok bool) {
	region, ok = strAfter(accountPrefix, key)
	if !ok {
		return "", nil, false
	}
	return region, appendStr(append([]byte(nil), accountPrefix...), region), true
}

// LookupKey is an index entry; entries sort newest first (by event time, then seq).
func LookupKey(prefix []byte, nanos int64, seq uint64) []byte {
	b := make([]byte, 0, len(prefix)+16)
	b = append(b, prefix...)
	b = binary.BigEndian.AppendUint64(b, InvertTime(nanos))
	return binary.BigEndian.AppendUint64(b, math.MaxUint64-seq)
}

// InvertTime maps a time (unix nanoseconds) to a key component that sorts newest first.
func InvertTime(nanos int64) uint64 { return math.MaxUint64 - (uint64(nanos) ^ (1 << 63)) }

// LookupEntry decodes the time and seq at the end of a lookup key.
func LookupEntry(key []byte) (nanos int64, seq uint64, ok bool) {
	if len(key) < 17 {
		return 0, 0, false
	}
	t := math.MaxUint64 - binary.BigEndian.Uint64(key[len(key)-16:])
	return int64(t ^ (1 << 63)), math.MaxUint64 - binary.BigEndian.Uint64(key[len(key)-8:]), true
}

// StateKey addresses one control-plane object (a trail, an access key, ...).
func StateKey(kind, account, name string) []byte {
	b := append([]byte{prefixState}, kind...)
	b = append(b, 0)
	return appendStr(appendStr(b, account), name)
}

// StatePrefix is the prefix of every object of one kind in one account ("" account: all accounts).
func StatePrefix(kind, account string) []byte {
	b := append([]byte{prefixState}, kind...)
	b = append(b, 0)
	if account == "" {
		return b
	}
	return appendStr(b, account)
}

// LogStreamPrefix is the prefix of every event of one log stream.
func LogStreamPrefix(account, region, group, stream string) []byte {
	return appendStr(appendStr(appendStr(appendStr([]byte{prefixLogs}, account), region), group), stream)
}

// LogGroupPrefix is the prefix of every event of one log group, all streams.
func LogGroupPrefix(account, region, group string) []byte {
	return appendStr(appendStr(appendStr([]byte{prefixLogs}, account), region), group)
}

// LogEventKey addresses one log event in its stream: ordered by its timestamp
// (milliseconds, sign bit flipped so that negative times sort first), then by
// the log sequence number that makes it unique.
func LogEventKey(streamPrefix []byte, millis int64, seq uint64) []byte {
	b := make([]byte, 0, len(streamPrefix)+16)
	b = append(b, streamPrefix...)
	b = binary.BigEndian.AppendUint64(b, uint64(millis)^(1<<63))
	return binary.BigEndian.AppendUint64(b, seq)
}

// LogEventPos decodes the timestamp and sequence number at the end of a log event key.
func LogEventPos(key []byte) (millis int64, seq uint64, ok bool) {
	if len(key) < 17 || key[0] != prefixLogs {
		return 0, 0, false
	}
	return int64(binary.BigEndian.Uint64(key[len(key)-16:]) ^ (1 << 63)), binary.BigEndian.Uint64(key[len(key)-8:]), true
}

// SubscriptionPrefix is the prefix of one subscription filter's pending
// deliveries (dead = false) or dead letters (dead = true).
func SubscriptionPrefix(dead bool, account, region, group, filter string) []byte {
	p := byte(prefixOutbox)
	if dead {
		p = prefixDead
	}
	return appendStr(appendStr(appendStr(appendStr([]byte{p}, account), region), group), filter)
}

// SubscriptionKey addresses one pending delivery or dead letter by its log sequence number.
func SubscriptionKey(prefix []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, len(prefix)+8), prefix...), seq)
}

// OutboxPrefix is the prefix of one generic outbox stream's pending payloads
// (dead = false) or dead letters (dead = true).
func OutboxPrefix(dead bool, kind, name string) []byte {
	return appendStr(OutboxKindPrefix(dead, kind), name)
}

// OutboxKindPrefix is the prefix of every stream of one kind.
func OutboxKindPrefix(dead bool, kind string) []byte {
	p := byte(prefixStreamPending)
	if dead {
		p = prefixStreamDead
	}
	return appendStr([]byte{p}, kind)
}

// OutboxStreamName decodes the stream name of a key under OutboxKindPrefix(dead, kind).
func OutboxStreamName(kindPrefix, key []byte) (string, bool) { return strAfter(kindPrefix, key) }

// strAfter decodes the length-prefixed string that follows prefix in key.
func strAfter(prefix, key []byte) (string, bool) {
	if len(key) < len(prefix) || string(key[:len(prefix)]) != string(prefix) {
		return "", false
	}
	n, w := binary.Uvarint(key[len(prefix):])
	rest := key[len(prefix):]
	if w <= 0 || uint64(len(rest)-w) < n {
		return "", false
	}
	return string(rest[w : w+int(n)]), true
}

// OutboxKey addresses one entry of an outbox stream (a subscription's or a
// generic one) by its sequence number: prefix | seq(8). Same encoding as SubscriptionKey.
func OutboxKey(prefix []byte, seq uint64) []byte { return SubscriptionKey(prefix, seq) }

// InsightSeries is the part of an Insights key that names one counted series.
func InsightSeries(account, region string, kind byte, source, name, errorCode string) []byte {
	b := appendStr(appendStr(nil, account), region)
	b = append(b, kind)
	return appendStr(appendStr(appendStr(b, source), name), errorCode)
}

// InsightMinutePrefix is the prefix of every minute of one series.
func InsightMinutePrefix(series []byte) []byte {
	return append([]byte{prefixInsights, 'm'}, series...)
}

// InsightMinuteKey addresses one minute (unix minutes) of a series.
func InsightMinuteKey(prefix []byte, minute int64) []byte {
	b := make([]byte, 0, len(prefix)+8)
	b = append(b, prefix...)
	return binary.BigEndian.AppendUint64(b, uint64(minute)^(1<<63))
}

// InsightMinute decodes the minute at the end of an InsightMinuteKey.
func InsightMinute(key []byte) int64 {
	return int64(binary.BigEndian.Uint64(key[len(key)-8:]) ^ (1 << 63))
}

// InsightHourPrefix is the prefix of every baseline hour of one series; InsightMinuteKey
// and InsightMinute encode and decode an hour after it.
func InsightHourPrefix(series []byte) []byte {
	return append([]byte{prefixInsights, 'h'}, series...)
}

// InsightHourKey addresses one baseline hour (unix hours) of a series.
func InsightHourKey(series []byte, hour int64) []byte {
	return InsightMinuteKey(InsightHourPrefix(series), hour)
}

// InsightSeriesKey holds one series' detector state; InsightSeriesStates is the prefix of them all.
func InsightSeriesKey(series []byte) []byte { return append([]byte{prefixInsights, 's'}, series...) }

// InsightSeriesStates is the prefix of every series' state.
func InsightSeriesStates() []byte { return []byte{prefixInsights, 's'} }

// InsightScopeKey holds an account and Region's event-time clock.
func InsightScopeKey(account, region string) []byte {
	return appendStr(appendStr([]byte{prefixInsights, 'a'}, account), region)
}

// InsightScopes is the prefix of every InsightScopeKey.
func InsightScopes() []byte { return []byte{prefixInsights, 'a'} }

// FindingPrefix is the prefix of every finding of one account.
func FindingPrefix(account string) []byte { return appendStr([]byte{prefixFinding}, account) }

// FindingKey addresses one finding; findings sort newest first (by event time,
// then by the first 8 bytes of the finding's ID, which make the key unique).
func FindingKey(account string, nanos int64, id [8]byte) []byte {
	b := binary.BigEndian.AppendUint64(FindingPrefix(account), InvertTime(nanos))
	return append(b, id[:]...)
}

// ---- End of storage format. ----

// EncodeSeq encodes a sequence number value.
func EncodeSeq(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// DecodeSeq decodes a sequence number value.
func DecodeSeq(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("kv: sequence value has %d bytes, want 8", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// PrefixUpper returns the smallest key greater than every key with prefix p.
func PrefixUpper(p []byte) []byte {
	u := append([]byte(nil), p...)
	for i := len(u) - 1; i >= 0; i-- {
		if u[i] < 0xff {
			u[i]++
			return u[:i+1]
		}
	}
	return nil
}

// Options tune the database; zero values pick defaults sized for one machine.
type Options struct {
	CacheBytes int64 // block cache; default 256 MiB
	Logger     *slog.Logger
}

// Open opens (creating if needed) the database in dir.
func Open(dir string, o Options) (*pebble.DB, error) {
	if o.CacheBytes == 0 {
		o.CacheBytes = 256 << 20
	}
	cache := pebble.NewCache(o.CacheBytes)
	defer cache.Unref()
	opts := &pebble.Options{
		Cache:                       cache,
		MemTableSize:                64 << 20,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		LBaseMaxBytes:               256 << 20,
		CompactionConcurrencyRange:  func() (int, int) { return 1, 2 },
		Logger:                      quietLogger{o.Logger},
	}
	opts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionBalanced })
	for i := range opts.Levels {
		opts.Levels[i].BlockSize = 32 << 10
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	// Corruption in the middle of the newest log is refused here, loudly, rather
	// than replayed as a torn tail (walcheck.go); WALLoss.Accept is the way on.
	if loss, err := CheckWAL(dir); err != nil {
		return nil, err
	} else if loss != nil {
		return nil, loss
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("kv: open %s: %w", dir, err)
	}
	return db, nil
}

// quietLogger routes Pebble's messages to slog; Fatalf panics as Pebble's default does.
type quietLogger struct{ log *slog.Logger }

func (l quietLogger) Infof(format string, args ...any) {
	if l.log != nil {
		l.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (l quietLogger) Errorf(format string, args ...any) {
	if l.log != nil {
		l.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (l quietLogger) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
