package kv

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/batchrepr"
)

// Pebble replays the newest write-ahead log up to its first bad chunk and
// treats the rest as the torn tail of a crash: unless the log carries sync
// offsets (format FormatWALSyncChunks, which this database does not use), 64
// bytes overwritten in the middle of the log made the database open silently
// without every batch after them (issue 11 §6: 900 of 37,400 acknowledged
// records). CheckWAL reads the newest log as Pebble does (same chunk framing,
// same checksums, record reader semantics) and then looks past the first bad
// chunk: a torn tail has nothing valid after it; corruption has intact chunks
// of the same log after it.

// The WAL chunk framing of pebble/record (record.go), part of Pebble's format.
const (
	walBlockSize        = 32 << 10
	walLegacyHeader     = 7
	walRecyclableHeader = 11
	walSyncHeader       = 19
)

// WALLoss is corruption in the newest write-ahead log that is not a torn tail:
// opening the database would silently drop the intact batches after it.
type WALLoss struct {
	File    string // the log file
	Offset  int64  // where its intact prefix ends
	Size    int64  // its size
	Batches int    // intact write batches after the corruption
	Keys    int    // keys they write
	Journal int    // journal entries (acknowledged records) among them
	// Preserved is where Accept copied the log before truncating it.
	Preserved string
}

func (l *WALLoss) Error() string {
	return fmt.Sprintf("kv: write-ahead log %s is corrupt at byte %d of %d, and %d intact write batches follow "+
		"(%d keys, %d of them journal records that were acknowledged to clients): this is not the torn tail of a crash; "+
		"opening the database would lose them", l.File, l.Offset, l.Size, l.Batches, l.Keys, l.Journal)
}

// CheckWAL inspects the newest write-ahead log in the database dir; it returns
// a *WALLoss when whole write batches follow a corruption, nil when the log is
// intact or only torn in its last batch (what a crash leaves).
func CheckWAL(dir string) (*WALLoss, error) {
	file, num, err := newestWAL(dir)
	if err != nil || file == "" {
		return nil, err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("kv: check wal: %w", err)
	}
	s := walScan{data: data, logNum: uint32(num)}
	end := s.prefix()
	loss := &WALLoss{File: file, Offset: int64(end), Size: int64(len(data))}
	// Only whole batches after the corruption can be lost by opening: pieces
	// of a batch with no intact start or end are a write the crash cut short,
	// never acknowledged (a batch is acknowledged once synced whole).
	if !s.after(end, loss) || loss.Batches == 0 {
		return nil, nil
	}
	return loss, nil
}

// Accept gives up what follows the corruption: the log is copied beside the
// database dir (Preserved) and truncated where its intact prefix ends, so that
// Pebble replays the prefix and nothing else.
func (l *WALLoss) Accept() error {
	data, err := os.ReadFile(l.File)
	if err != nil {
		return fmt.Errorf("kv: accept wal loss: %w", err)
	}
	dbDir := filepath.Dir(l.File)
	l.Preserved = filepath.Join(filepath.Dir(dbDir), fmt.Sprintf("%s.corrupt-%s-%d", filepath.Base(dbDir), filepath.Base(l.File), time.Now().Unix()))
	if err := writeSynced(l.Preserved, data); err != nil {
		return fmt.Errorf("kv: accept wal loss: keep a copy: %w", err)
	}
	f, err := os.OpenFile(l.File, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("kv: accept wal loss: %w", err)
	}
	err = f.Truncate(l.Offset)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("kv: accept wal loss: truncate %s: %w", l.File, err)
	}
	return nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// newestWAL finds the log file with the highest number (Pebble names them NNNNNN.log).
func newestWAL(dir string) (string, uint64, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("kv: check wal: %w", err)
	}
	best, bestNum := "", uint64(0)
	for _, e := range entries {
		base, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok || e.IsDir() {
			continue
		}
		n, err := strconv.ParseUint(base, 10, 64)
		if err != nil {
			continue
		}
		if best == "" || n > bestNum {
			best, bestNum = filepath.Join(dir, e.Name()), n
		}
	}
	return best, bestNum, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// walScan reads one log's chunks.
type walScan struct {
	data   []byte
	logNum uint32
}

// chunk is one valid chunk at some offset.
type chunk struct {
	pos      int // chunk type: 1 full, 2 first, 3 middle, 4 last
	payload  []byte
	synced   uint64 // the sync offset it carries (sync wire format), else 0
	hasSync  bool
	next     int // offset after it
	recycled bool
}

// chunkAt parses a valid chunk of this log at offset off, as pebble/record does.
func (s *walScan) chunkAt(off int) (chunk, bool) {
	blockEnd := min(len(s.data), (off/walBlockSize+1)*walBlockSize)
	if off+walLegacyHeader > blockEnd {
		return chunk{}, false
	}
	h := s.data[off:]
	sum := binary.LittleEndian.Uint32(h[0:4])
	length := int(binary.LittleEndian.Uint16(h[4:6]))
	enc := h[6]
	var c chunk
	hs := walLegacyHeader
	switch {
	case enc >= 1 && enc <= 4:
		c.pos = int(enc)
	case enc >= 5 && enc <= 8:
		c.pos, hs, c.recycled = int(enc)-4, walRecyclableHeader, true
	case enc >= 9 && enc <= 12:
		c.pos, hs, c.recycled, c.hasSync = int(enc)-8, walSyncHeader, true, true
	default:
		return chunk{}, false
	}
	if off+hs+length > blockEnd {
		return chunk{}, false
	}
	if c.recycled && binary.LittleEndian.Uint32(h[7:11]) != s.logNum {
		return chunk{}, false // left over from the log this file was recycled from
	}
	if c.hasSync {
		c.synced = binary.LittleEndian.Uint64(h[11:19])
	}
	if maskedCRC(s.data[off+6:off+hs+length]) != sum {
		return chunk{}, false
	}
	c.payload, c.next = s.data[off+hs:off+hs+length], off+hs+length
	return c, true
}

// maskedCRC is pebble's internal/crc: CRC-32C, rotated and offset.
func maskedCRC(b []byte) uint32 {
	c := crc32.Update(0, castagnoli, b)
	return (c>>15 | c<<17) + 0xa282ead8
}

// skipPadding moves off to the next block when the rest of this one is the
// zeroes the writer leaves where no chunk header fits (up to a sync header).
func (s *walScan) skipPadding(off int) int {
	rem := walBlockSize - off%walBlockSize
	if rem >= walSyncHeader || off+rem > len(s.data) {
		return off
	}
	for _, b := range s.data[off : off+rem] {
		if b != 0 {
			return off
		}
	}
	return off + rem
}

// prefix returns where the log's intact prefix of whole records ends.
func (s *walScan) prefix() int {
	off, end := 0, 0
	inRecord := false
	for {
		off = s.skipPadding(off)
		c, ok := s.chunkAt(off)
		if !ok {
			return end
		}
		switch {
		case c.pos == 1 && !inRecord, c.pos == 4 && inRecord:
			inRecord, end = false, c.next
		case c.pos == 2 && !inRecord:
			inRecord = true
		case c.pos == 3 && inRecord:
		default:
			return end
		}
		off = c.next
	}
}

// after looks for intact chunks of this log after offset end, adding the
// whole batches they hold to loss; it reports whether any proves that the
// log was written past end (a chunk of the sync format proves it only when
// the offset it says was synced lies past end).
func (s *walScan) after(end int, loss *WALLoss) bool {
	proof := false
	var rec []byte
	inRecord := false
	for off := end + 1; off+walLegacyHeader <= len(s.data); {
		c, ok := s.chunkAt(off)
		if !ok || !c.recycled {
			off++
			continue
		}
		if !c.hasSync || c.synced > uint64(end) {
			proof = true
		}
		switch c.pos {
		case 1:
			s.count(c.payload, loss)
			inRecord = false
		case 2:
			rec, inRecord = append(rec[:0], c.payload...), true
		case 3:
			if inRecord {
				rec = append(rec, c.payload...)
			}
		case 4:
			if inRecord {
				s.count(append(rec, c.payload...), loss)
			}
			inRecord = false
		}
		off = s.skipPadding(c.next)
	}
	return proof
}

// count adds one batch's keys to loss.
func (s *walScan) count(batch []byte, loss *WALLoss) {
	loss.Batches++
	r := batchrepr.Read(batch)
	for {
		_, key, _, ok, err := r.Next()
		if !ok || err != nil {
			return
		}
		loss.Keys++
		if _, isJournal := JournalSeq(key); isJournal {
			loss.Journal++
		}
	}
}
