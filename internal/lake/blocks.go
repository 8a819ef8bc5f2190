package lake

import (
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/klauspost/compress/zstd"
)

// eventJson is not a column: DuckDB stores kilobyte strings uncompressed, and a
// record's bytes dominated the store. A store's records are kept in a block
// file beside the database, zstd-compressed a block of records at a time (a
// block compresses 10-20x where one record alone does 2-4x), and each row
// points into it with (jb, jl, ji). Queries read eventJson through the scalar
// function lake_event_json, which DuckDB evaluates only for queries that name
// eventJson (or eventJsonChecksum), and which keeps the last blocks it
// decompressed.
//
// Crash safety: a batch's blocks are appended and synced before the DuckDB
// transaction that holds its rows and the journal position commits. What a
// crash leaves past the last committed block is cut off when the engine opens
// (the file is truncated to max(jb + jl) of the table), and the batch is loaded
// again from the journal.

// ---- Storage format: block files. Part of the on-disk format; change it only with formatVersion. ----
//
// lake/blocks/s_<sid>.ejz   the records of table lake.s_<sid>: zstd frames one after another
// a frame (a block)         decompresses to records, each uvarint(len) followed by the record's bytes
// a row's jb, jl, ji        the frame's offset and length in the file, the record's index in the block
//
// formatVersion is lake.state 'format'; a database of another version is refused.
const formatVersion = 2

// Blocks close at blockRecords records or blockBytes of records, whichever comes first.
const (
	blockRecords = 2048
	blockBytes   = 4 << 20
)

// ---- End of storage format. ----

// blockFiles are the block files of one engine.
type blockFiles struct {
	dir     string
	threads int
	enc     *zstd.Encoder
	dec     *zstd.Decoder

	mu     sync.Mutex
	files  map[int]*os.File
	ends   map[int]int64 // append offset of each file
	freed  map[int]int64 // how far from the start each file's space was released
	noHole bool          // the file system cannot punch holes

	cmu   sync.Mutex
	cache map[blockKey]*block
	ring  []blockKey // FIFO eviction order
}

type blockKey struct {
	sid int
	off uint64
}

// block is a decompressed block: data and the start of each record in it.
type block struct {
	data []byte
	offs []int
}

const cachedBlocks = 16

func openBlockFiles(dir string, threads int) (*blockFiles, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lake: blocks: %w", err)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderCRC(true),
		zstd.WithEncoderConcurrency(threads))
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(threads), zstd.WithDecoderMaxMemory(4*blockBytes))
	if err != nil {
		return nil, err
	}
	return &blockFiles{dir: dir, threads: max(1, threads), enc: enc, dec: dec, files: map[int]*os.File{}, ends: map[int]int64{}, freed: map[int]int64{}, cache: map[blockKey]*block{}}, nil
}

func (b *blockFiles) path(sid int) string {
	return filepath.Join(b.dir, fmt.Sprintf("s_%d.ejz", sid))
}

// file returns sid's open file; b.mu is held.
func (b *blockFiles) file(sid int) (*os.File, error) {
	if f := b.files[sid]; f != nil {
		return f, nil
	}
	f, err := os.OpenFile(b.path(sid), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lake: blocks: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lake: blocks: %w", err)
	}
	b.files[sid] = f
	b.ends[sid] = st.Size()
	return f, nil
}

// truncate cuts sid's file to size: what lies past it is referenced by no row.
func (b *blockFiles) truncate(sid int, size int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	f, err := b.file(sid)
	if err != nil {
		return err
	}
	if b.ends[sid] == size {
		return nil
	}
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("lake: blocks: truncate %s: %w", f.Name(), err)
	}
	b.ends[sid] = size
	return nil
}

// release gives the disk space of sid's bytes before upTo back to the file
// system (no row points there any more); offsets stay as they are. Where the
// file system cannot punch holes the space is kept.
func (b *blockFiles) release(sid int, upTo int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	f, err := b.file(sid)
	if err != nil {
		return err
	}
	from := b.freed[sid]
	if b.noHole || upTo <= from {
		return nil
	}
	if err := punchHole(f, from, upTo-from); err != nil {
		if errors.Is(err, errors.ErrUnsupported) || errors.Is(err, syscall.EOPNOTSUPP) {
			b.noHole = true
			return nil
		}
		return fmt.Errorf("lake: blocks: release %s: %w", f.Name(), err)
	}
	b.freed[sid] = upTo
	return nil
}

// end is sid's append offset.
func (b *blockFiles) end(sid int) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := b.file(sid); err != nil {
		return 0, err
	}
	return b.ends[sid], nil
}

// ref is where a record went.
type ref struct {
	jb uint64
	jl uint32
	ji uint16
}

// write appends recs to sid's file as blocks, syncs it, and returns each
// record's place. Blocks are compressed in parallel.
func (b *blockFiles) write(sid int, recs [][]byte) ([]ref, error) {
	// Cut the blocks, then compress them, up to b.threads at a time.
	var cuts []int
	for i := 0; i < len(recs); {
		start, size := i, 0
		for i < len(recs) && i-start < blockRecords && (i == start || size+len(recs[i]) <= blockBytes) {
			size += len(recs[i])
			i++
		}
		cuts = append(cuts, i)
	}
	frames := make([][]byte, len(cuts))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(b.threads, len(cuts)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var raw []byte
			for k := range next {
				raw = raw[:0]
				start := 0
				if k > 0 {
					start = cuts[k-1]
				}
				for _, r := range recs[start:cuts[k]] {
					raw = binary.AppendUvarint(raw, uint64(len(r)))
					raw = append(raw, r...)
				}
				frames[k] = b.enc.EncodeAll(raw, nil)
			}
		}()
	}
	for k := range cuts {
		next <- k
	}
	close(next)
	wg.Wait()

	refs := make([]ref, len(recs))
	b.mu.Lock()
	defer b.mu.Unlock()
	f, err := b.file(sid)
	if err != nil {
		return nil, err
	}
	off := b.ends[sid]
	for k, frame := range frames {
		if _, err := f.WriteAt(frame, off); err != nil {
			return nil, fmt.Errorf("lake: blocks: write %s: %w", f.Name(), err)
		}
		start := 0
		if k > 0 {
			start = cuts[k-1]
		}
		for i := start; i < cuts[k]; i++ {
			refs[i] = ref{jb: uint64(off), jl: uint32(len(frame)), ji: uint16(i - start)}
		}
		off += int64(len(frame))
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("lake: blocks: sync %s: %w", f.Name(), err)
	}
	b.ends[sid] = off
	return refs, nil
}

// remove deletes sid's file.
func (b *blockFiles) remove(sid int) error {
	b.mu.Lock()
	if f := b.files[sid]; f != nil {
		f.Close()
		delete(b.files, sid)
		delete(b.ends, sid)
	}
	delete(b.freed, sid)
	b.mu.Unlock()
	b.cmu.Lock()
	for k := range b.cache {
		if k.sid == sid {
			delete(b.cache, k)
		}
	}
	b.cmu.Unlock()
	if err := os.Remove(b.path(sid)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("lake: blocks: %w", err)
	}
	return nil
}

func (b *blockFiles) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range b.files {
		f.Close()
	}
	b.files = map[int]*os.File{}
	b.enc.Close()
	b.dec.Close()
}

// errBadRef reports a row pointing at no record: a damaged block file.
var errBadRef = errors.New("lake: event block damaged")

// record returns the record at (jb, jl, ji) of sid's file.
func (b *blockFiles) record(sid int, jb uint64, jl uint32, ji uint16) (string, error) {
	k := blockKey{sid, jb}
	b.cmu.Lock()
	blk := b.cache[k]
	b.cmu.Unlock()
	if blk == nil {
		var err error
		if blk, err = b.load(sid, jb, jl); err != nil {
			return "", err
		}
		b.cmu.Lock()
		if _, ok := b.cache[k]; !ok {
			if len(b.ring) >= cachedBlocks {
				delete(b.cache, b.ring[0])
				b.ring = b.ring[1:]
			}
			b.cache[k] = blk
			b.ring = append(b.ring, k)
		}
		b.cmu.Unlock()
	}
	if int(ji) >= len(blk.offs) {
		return "", errBadRef
	}
	start := blk.offs[ji]
	n, w := binary.Uvarint(blk.data[start:])
	return string(blk.data[start+w : start+w+int(n)]), nil
}

func (b *blockFiles) load(sid int, jb uint64, jl uint32) (*block, error) {
	b.mu.Lock()
	f, err := b.file(sid)
	b.mu.Unlock()
	if err != nil {
		return nil, err
	}
	frame := make([]byte, jl)
	if _, err := f.ReadAt(frame, int64(jb)); err != nil {
		return nil, fmt.Errorf("%w: read %s at %d: %v", errBadRef, f.Name(), jb, err)
	}
	data, err := b.dec.DecodeAll(frame, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s at %d: %v", errBadRef, f.Name(), jb, err)
	}
	blk := &block{data: data}
	for i := 0; i < len(data); {
		n, w := binary.Uvarint(data[i:])
		if w <= 0 || i+w+int(n) > len(data) {
			return nil, fmt.Errorf("%w: %s at %d", errBadRef, f.Name(), jb)
		}
		blk.offs = append(blk.offs, i)
		i += w + int(n)
	}
	return blk, nil
}

// eventJSONFunc is lake_event_json(sid, jb, jl, ji): a row's record. The
// sandbox keeps it (every lake_ function) out of user SQL.
type eventJSONFunc struct{ b *blockFiles }

func (f *eventJSONFunc) Config() duckdb.ScalarFuncConfig {
	ti := func(t duckdb.Type) duckdb.TypeInfo {
		info, err := duckdb.NewTypeInfo(t)
		if err != nil {
			panic(err)
		}
		return info
	}
	return duckdb.ScalarFuncConfig{
		InputTypeInfos: []duckdb.TypeInfo{ti(duckdb.TYPE_INTEGER), ti(duckdb.TYPE_UBIGINT), ti(duckdb.TYPE_UINTEGER), ti(duckdb.TYPE_USMALLINT)},
		ResultTypeInfo: ti(duckdb.TYPE_VARCHAR),
	}
}

func (f *eventJSONFunc) Executor() duckdb.ScalarFuncExecutor {
	return duckdb.ScalarFuncExecutor{RowExecutor: func(v []driver.Value) (any, error) {
		sid, _ := v[0].(int32)
		jb, _ := v[1].(uint64)
		jl, _ := v[2].(uint32)
		ji, _ := v[3].(uint16)
		return f.b.record(int(sid), jb, jl, ji)
	}}
}

func registerEventJSON(c *sql.Conn, b *blockFiles) error {
	if err := duckdb.RegisterScalarUDF(c, "lake_event_json", &eventJSONFunc{b}); err != nil {
		return fmt.Errorf("lake: register lake_event_json: %w", err)
	}
	return nil
}
