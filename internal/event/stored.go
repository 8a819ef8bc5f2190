package event

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ---- Storage format: a journal entry. Part of the on-disk format; never change it, add a version. ----
//
//	version(1)=1 | eventTime(varint) | ingestTime(varint) | readOnly(1) | flags(1) |
//	str(eventID) str(account) str(region) str(category) str(type) str(source) str(name)
//	str(username) str(accessKeyID) str(userARN) str(errorCode) str(vpcEndpointID) |
//	uvarint(len(resources)) { str(type) str(arn) } | raw JSON (the rest)
//
// str(s) is uvarint(len(s)) followed by the bytes of s.
const storedV1 = 1

const (
	flagManagementEvent = 1 << 0
	flagConsoleSession  = 1 << 1
)

// ---- End of storage format. ----

// ErrCorrupt reports a stored entry that cannot be decoded.
var ErrCorrupt = errors.New("event: corrupt stored entry")

// Encode appends the stored form of r to dst.
func Encode(dst []byte, r *Record) []byte {
	m := &r.Meta
	dst = append(dst, storedV1)
	dst = binary.AppendVarint(dst, m.EventTime)
	dst = binary.AppendVarint(dst, m.IngestTime)
	var flags byte
	if m.ManagementEvent {
		flags |= flagManagementEvent
	}
	if m.ConsoleSession {
		flags |= flagConsoleSession
	}
	dst = append(dst, byte(m.ReadOnly), flags)
	for _, s := range [...]string{m.EventID, m.Account, m.Region, m.Category, m.Type, m.Source, m.Name,
		m.Username, m.AccessKeyID, m.UserARN, m.ErrorCode, m.VPCEndpointID} {
		dst = appendStr(dst, s)
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.Resources)))
	for _, res := range m.Resources {
		dst = appendStr(appendStr(dst, res.Type), res.ARN)
	}
	return append(dst, r.Raw...)
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Decode parses a stored entry. The returned Raw aliases b.
func Decode(b []byte) (Record, error) {
	d := decoder{b: b}
	if v := d.byte(); v != storedV1 {
		return Record{}, fmt.Errorf("%w: version %d", ErrCorrupt, v)
	}
	var r Record
	m := &r.Meta
	m.EventTime = d.varint()
	m.IngestTime = d.varint()
	m.ReadOnly = int8(d.byte())
	flags := d.byte()
	m.ManagementEvent = flags&flagManagementEvent != 0
	m.ConsoleSession = flags&flagConsoleSession != 0
	for _, p := range [...]*string{&m.EventID, &m.Account, &m.Region, &m.Category, &m.Type, &m.Source, &m.Name,
		&m.Username, &m.AccessKeyID, &m.UserARN, &m.ErrorCode, &m.VPCEndpointID} {
		*p = d.str()
	}
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err = true
	}
	if !d.err && n > 0 {
		m.Resources = make([]Resource, n)
		for i := range m.Resources {
			m.Resources[i] = Resource{Type: d.str(), ARN: d.str()}
		}
	}
	if d.err {
		return Record{}, ErrCorrupt
	}
	r.Raw = d.b
	return r, nil
}

type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.err = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err || n > uint64(len(d.b)) {
		d.err = true
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
