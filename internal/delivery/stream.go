package delivery

import (
	"bytes"
	"time"

	"github.com/opentrail/opentrail/internal/event"
)

// streamID names one output stream: a trail's log files for one region (or its
// Insights files for one region).
type streamID struct {
	Account, HomeRegion, Trail, Region string
	Insight                            bool
}

func (id streamID) stateName() string {
	kind := "log"
	if id.Insight {
		kind = "insight"
	}
	return id.HomeRegion + "/" + id.Trail + "/" + id.Region + "/" + kind
}

// ---- Storage format: a stream's persisted state (JSON in the state keyspace). Never rename fields. ----

// streamState is what survives a restart for one stream. Delivered is the
// watermark: every selected event with seq <= Delivered is in a delivered file,
// and none after it is. Intent, when set, is a file whose upload was started:
// after a crash it is either found in the bucket (and completed) or dropped.
type streamState struct {
	Delivered uint64      `json:"delivered"`
	Intent    *fileRecord `json:"intent,omitempty"`
	// Files delivered since the last digest, for the next digest.
	Files []fileRecord `json:"files,omitempty"`
	// The digest chain: the next digest covers [DigestStart, its end]; Prev is
	// the digest it follows (nil: the next digest starts a chain).
	DigestStart time.Time   `json:"digestStart,omitzero"`
	Prev        *digestLink `json:"prev,omitempty"`
}

// digestLink is what a digest needs of the one before it.
type digestLink struct {
	Bucket    string `json:"bucket"`
	Key       string `json:"key"`
	Hash      string `json:"hash"`
	Signature string `json:"signature"`
}

// fileRecord describes one delivered log file.
type fileRecord struct {
	Bucket string    `json:"bucket"`
	Key    string    `json:"key"`
	Hash   string    `json:"hash"` // hex SHA-256 of the uncompressed file
	Oldest time.Time `json:"oldest"`
	Newest time.Time `json:"newest"`
	ToSeq  uint64    `json:"toSeq"`
	Events int       `json:"events"`
}

// ---- End of storage format. ----

// buffer collects one stream's pending records.
type buffer struct {
	body           bytes.Buffer // `{"Records":[` r1 `,` r2 ...
	n              int
	firstSeq       uint64
	lastSeq        uint64
	opened         time.Time // when the first record arrived: the interval runs from here
	oldest, newest int64
}

func (b *buffer) add(seq uint64, m *event.Meta, raw []byte, now time.Time) {
	if b.n == 0 {
		b.body.Reset()
		b.body.WriteString(`{"Records":[`)
		b.firstSeq, b.opened = seq, now
		b.oldest, b.newest = m.EventTime, m.EventTime
	} else {
		b.body.WriteByte(',')
	}
	b.body.Write(raw)
	b.n++
	b.lastSeq = seq
	b.oldest = min(b.oldest, m.EventTime)
	b.newest = max(b.newest, m.EventTime)
}

// file closes the buffer into the complete uncompressed log file, in place;
// reopen must be called before the buffer takes more records.
func (b *buffer) file() []byte {
	b.body.WriteString("]}")
	return b.body.Bytes()
}

// reopen undoes file, so that a buffer whose upload failed can grow again.
func (b *buffer) reopen() { b.body.Truncate(b.body.Len() - 2) }

func (b *buffer) reset() { *b = buffer{body: b.body}; b.body.Reset() }
