package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The spool's on-disk format. Part of the format, never to change: a spool
// written by one version must be drained by the next.
//
// A spool is a directory of segment files named <16 hex digits>.spool, drained
// in name order. A segment is a sequence of frames:
//
//	uint32 little-endian payload length | uint32 little-endian CRC-32C of payload | payload
//
// and a payload is one CloudTrail record as JSON, with its eventID set. A frame
// that is short or fails its CRC ends the segment: it is the tail of a write
// that was never acknowledged (the process died before its fsync returned).
const (
	spoolExt       = ".spool"
	frameHeader    = 8
	rejectedSubdir = "rejected"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrSpoolFull is returned when the spool cannot take a record.
var ErrSpoolFull = errors.New("proxy: spool full")

// segmentMaxBytes is when the active segment is sealed and a new one begun.
const segmentMaxBytes = 4 << 20

type segment struct {
	seq     uint64
	size    int64
	created time.Time
}

// spool is a bounded, durable local queue of records waiting for OpenTrail.
// Appends are fsynced before they return; callers batch records so that one
// fsync covers many calls (group commit).
type spool struct {
	dir string
	max int64
	log *slog.Logger

	mu         sync.Mutex
	used       int64 // bytes in segment files
	reserved   int64 // bytes promised to calls in flight
	sealed     []segment
	active     *os.File
	activeSeg  segment
	nextSeq    uint64
	frameBuf   []byte
	closed     bool
	dirFsynced bool
}

func openSpool(dir string, maxBytes int64, log *slog.Logger) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("proxy: spool: %w", err)
	}
	s := &spool{dir: dir, max: maxBytes, log: log}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("proxy: spool: %w", err)
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), spoolExt)
		if !ok || e.IsDir() {
			continue
		}
		seq, err := strconv.ParseUint(name, 16, 64)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("proxy: spool: %w", err)
		}
		if info.Size() == 0 {
			os.Remove(filepath.Join(dir, e.Name()))
			continue
		}
		s.sealed = append(s.sealed, segment{seq: seq, size: info.Size(), created: info.ModTime()})
		s.used += info.Size()
		s.nextSeq = max(s.nextSeq, seq+1)
	}
	sort.Slice(s.sealed, func(i, j int) bool { return s.sealed[i].seq < s.sealed[j].seq })
	return s, nil
}

func (s *spool) path(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%016x%s", seq, spoolExt))
}

// reserve promises n bytes to a call; false when the spool cannot hold them.
func (s *spool) reserve(n int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used+s.reserved+n > s.max {
		return false
	}
	s.reserved += n
	return true
}

func (s *spool) release(n int64) {
	s.mu.Lock()
	s.reserved -= n
	s.mu.Unlock()
}

// size is the bytes on disk plus the bytes reserved.
func (s *spool) size() (used, reserved int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used, s.reserved
}

// append writes records durably. reserved bytes (promised earlier) are turned
// into used ones; records beyond what was reserved are taken only while the
// spool has room, else ErrSpoolFull.
func (s *spool) append(recs [][]byte, reserved int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reserved -= reserved
	need := int64(0)
	for _, r := range recs {
		need += int64(frameHeader + len(r))
	}
	if s.closed {
		return errors.New("proxy: spool closed")
	}
	if need > reserved && s.used+s.reserved+need > s.max {
		return ErrSpoolFull
	}
	if s.active == nil || s.activeSeg.size >= segmentMaxBytes {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	b := s.frameBuf[:0]
	for _, r := range recs {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(r)))
		b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(r, castagnoli))
		b = append(b, r...)
	}
	s.frameBuf = b
	if _, err := s.active.Write(b); err != nil {
		return s.fail(err)
	}
	if err := s.active.Sync(); err != nil {
		return s.fail(err)
	}
	if !s.dirFsynced {
		if err := syncDir(s.dir); err != nil {
			return s.fail(err)
		}
		s.dirFsynced = true
	}
	s.activeSeg.size += int64(len(b))
	s.used += int64(len(b))
	return nil
}

// fail abandons the active segment after a write error: what reached it
// is kept (frames are self-checking), and the next append starts a new one.
func (s *spool) fail(err error) error {
	s.sealLocked()
	return fmt.Errorf("proxy: spool write: %w", err)
}

// rotate seals the active segment and opens a new one.
func (s *spool) rotate() error {
	s.sealLocked()
	seq := s.nextSeq
	f, err := os.OpenFile(s.path(seq), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("proxy: spool: %w", err)
	}
	s.nextSeq++
	s.active, s.activeSeg, s.dirFsynced = f, segment{seq: seq, created: time.Now()}, false
	return nil
}

func (s *spool) sealLocked() {
	if s.active == nil {
		return
	}
	s.active.Close()
	if s.activeSeg.size > 0 {
		s.sealed = append(s.sealed, s.activeSeg)
	} else {
		os.Remove(s.path(s.activeSeg.seq))
	}
	s.active = nil
}

// oldest returns the oldest segment to ship, sealing the active one when it
// is the only one with records.
func (s *spool) oldest() (segment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sealed) == 0 && s.active != nil && s.activeSeg.size > 0 {
		s.sealLocked()
	}
	if len(s.sealed) == 0 {
		return segment{}, false
	}
	return s.sealed[0], true
}

// lag is the age of the oldest record waiting.
func (s *spool) lag(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case len(s.sealed) > 0:
		return now.Sub(s.sealed[0].created)
	case s.active != nil && s.activeSeg.size > 0:
		return now.Sub(s.activeSeg.created)
	}
	return 0
}

// read returns the records of a sealed segment, up to the first torn frame.
func (s *spool) read(seg segment) ([][]byte, error) {
	b, err := os.ReadFile(s.path(seg.seq))
	if err != nil {
		return nil, fmt.Errorf("proxy: spool read: %w", err)
	}
	recs, rest := decodeFrames(b)
	if rest > 0 {
		s.log.Warn("spool segment has a torn tail; the unacknowledged tail is skipped",
			"segment", filepath.Base(s.path(seg.seq)), "bytes", rest)
	}
	return recs, nil
}

// decodeFrames splits a segment into payloads; rest is the count of trailing
// bytes that do not form a whole, valid frame.
func decodeFrames(b []byte) (recs [][]byte, rest int) {
	for len(b) > 0 {
		if len(b) < frameHeader {
			return recs, len(b)
		}
		n := binary.LittleEndian.Uint32(b)
		sum := binary.LittleEndian.Uint32(b[4:])
		if uint64(n) > uint64(len(b)-frameHeader) {
			return recs, len(b)
		}
		p := b[frameHeader : frameHeader+int(n)]
		if crc32.Checksum(p, castagnoli) != sum {
			return recs, len(b)
		}
		recs = append(recs, p)
		b = b[frameHeader+int(n):]
	}
	return recs, 0
}

// remove deletes a shipped segment.
func (s *spool) remove(seg segment) error {
	if err := os.Remove(s.path(seg.seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("proxy: spool remove: %w", err)
	}
	s.forget(seg)
	return syncDir(s.dir)
}

// reject moves a segment OpenTrail refused for good aside, for an operator to read.
func (s *spool) reject(seg segment) error {
	dst := filepath.Join(s.dir, rejectedSubdir)
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	if err := os.Rename(s.path(seg.seq), filepath.Join(dst, filepath.Base(s.path(seg.seq)))); err != nil {
		return fmt.Errorf("proxy: spool reject: %w", err)
	}
	s.forget(seg)
	return syncDir(s.dir)
}

func (s *spool) forget(seg segment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.sealed {
		if x.seq == seg.seq {
			s.sealed = append(s.sealed[:i], s.sealed[i+1:]...)
			s.used -= x.size
			return
		}
	}
}

func (s *spool) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sealLocked()
	s.closed = true
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
