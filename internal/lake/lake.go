// Package lake is OpenTrail's CloudTrail Lake: a projection of the journal into
// event data stores held in DuckDB, and the SQL engine that answers CloudTrail
// Lake (Trino) and Athena queries over them, and over CloudTrail log files.
//
// Each event data store is one DuckDB table, loaded from the journal in bulk:
// one DuckDB transaction per batch holds the rows and the journal position
// together, so a crash neither loses nor duplicates rows; the journal cursor
// "lake" follows the committed position so the journal is never trimmed past it.
// Records are split into columns in Go and appended in bulk; the records
// themselves (eventJson) go to a zstd-compressed block file per store, synced
// before the transaction that points at them commits (see blocks.go).
//
// User SQL never reaches DuckDB as written: it is tokenized, translated to
// DuckDB's dialect, the stores it names are replaced by their tables, and the
// parsed statement is checked to read nothing but them (see sandbox.go).
package lake

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/duckdb/duckdb-go/v2"
	"github.com/go-json-experiment/json"

	"github.com/opentrail/opentrail/internal/event"
	"github.com/opentrail/opentrail/internal/journal"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/lakemodel"
	"github.com/opentrail/opentrail/internal/selector"
)

// StoreDef is what the engine needs of one event data store.
type StoreDef = lakemodel.StoreDef

// Options tune an engine.
type Options struct {
	MemoryLimitMiB int           // per engine; default 1024
	Threads        int           // default runtime.NumCPU()
	QueryTimeout   time.Duration // per query; default 10m
	Now            func() time.Time
}

func (o *Options) defaults() {
	if o.MemoryLimitMiB <= 0 {
		o.MemoryLimitMiB = 1024
	}
	if o.Threads <= 0 {
		o.Threads = runtime.NumCPU()
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// batchEntries bounds one load transaction. It is above DuckDB's row group size
// (122,880 rows) so that a store's rows of a full batch go to the file as
// compressed row groups while they are appended, rather than into the WAL and
// then again through a checkpoint: this alone more than doubled the load rate.
const batchEntries = 131072

// Engine is the Lake projection and query engine.
type Engine struct {
	j      *journal.Journal
	kv     *pebble.DB
	stores func() []StoreDef
	log    *slog.Logger
	o      Options
	db     *sql.DB
	blocks *blockFiles
	views  map[string]bool // names DuckDB resolves without a schema: no CTE may take them

	wmu sync.Mutex // serialises write transactions on w
	// dead is, per store, where its block file's first live record lay at the
	// last expiry: what precedes it is released at the next one, by when no
	// query that could still read it runs (the janitor's hour > QueryTimeout).
	dead map[int]int64
	w    *sql.Conn

	smu  sync.Mutex
	sids map[string]int // store ID → table number

	progress journal.Progress // highest journal seq whose effects are committed

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	posSaved time.Time // when the loader last wrote its position to DuckDB (loader goroutine only)
}

// sandboxDSN are the settings of every DuckDB database the engine opens: user
// SQL can reach no file, network, extension or setting.
func sandboxDSN(path string, o Options) string {
	return fmt.Sprintf("%s?threads=%d&memory_limit=%dMiB&enable_external_access=false&autoinstall_known_extensions=false"+
		"&autoload_known_extensions=false&allow_community_extensions=false&integer_division=true"+
		"&errors_as_json=true&preserve_insertion_order=true",
		path, o.Threads, o.MemoryLimitMiB)
}

// Open opens (or creates) the Lake database under dir. Start follows the journal.
func Open(dir string, j *journal.Journal, db *pebble.DB, stores func() []StoreDef, log *slog.Logger, o Options) (*Engine, error) {
	o.defaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lake: open: %w", err)
	}
	ddb, err := openDuckDB(filepath.Join(dir, "store.duckdb"), o)
	if err != nil {
		return nil, err
	}
	blocks, err := openBlockFiles(filepath.Join(dir, "blocks"), o.Threads)
	if err != nil {
		ddb.Close()
		return nil, err
	}
	e := &Engine{j: j, kv: db, stores: stores, log: log.With("component", "lake"), o: o, db: ddb, blocks: blocks, sids: map[string]int{}, dead: map[int]int64{}}
	ctx := context.Background()
	if e.w, err = ddb.Conn(ctx); err != nil {
		blocks.close()
		ddb.Close()
		return nil, fmt.Errorf("lake: open: %w", err)
	}
	if err := registerEventJSON(e.w, blocks); err != nil {
		e.Close()
		return nil, err
	}
	if err := e.init(ctx); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func openDuckDB(path string, o Options) (*sql.DB, error) {
	// duckdb-go opens files through DuckDB's instance cache, which waits until an
	// earlier instance of the same file has shut down. Handles that only a Go
	// finalizer releases would keep it alive while this goroutine waits inside C,
	// where it allocates nothing, so no GC would ever run them (seen once as a hang
	// when a node was reopened in-process). Collect first.
	runtime.GC()
	c, err := duckdb.NewConnector(sandboxDSN(path, o), nil)
	if err != nil {
		return nil, fmt.Errorf("lake: open %s: %w", path, err)
	}
	db := sql.OpenDB(c)
	db.SetMaxIdleConns(4)
	if err := setupSchema(db); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// setupSchema creates the internal schema, the macros and the empty template table.
func setupSchema(db *sql.DB) error {
	stmts := []string{
		`CREATE SCHEMA IF NOT EXISTS lake`,
		`CREATE TABLE IF NOT EXISTS lake.state (k VARCHAR PRIMARY KEY, v UBIGINT)`,
		`CREATE TABLE IF NOT EXISTS lake.stores (sid INTEGER PRIMARY KEY, id VARCHAR UNIQUE, events BIGINT, bytes BIGINT)`,
		createStoreSQL("lake.template"),
	}
	for _, m := range macros {
		stmts = append(stmts, "CREATE OR REPLACE MACRO "+squash(m))
	}
	// Settings of extensions (TimeZone is ICU's) cannot be given at open; they are
	// set globally here, and then the configuration is locked for good.
	stmts = append(stmts, `SET GLOBAL TimeZone = 'UTC'`, `SET GLOBAL lock_configuration = true`)
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			return fmt.Errorf("lake: schema: %w", duckError(err))
		}
	}
	return nil
}

func (e *Engine) init(ctx context.Context) error {
	if err := e.checkFormat(ctx); err != nil {
		return err
	}
	rows, err := e.w.QueryContext(ctx, `SELECT sid, id FROM lake.stores`)
	if err != nil {
		return fmt.Errorf("lake: load stores: %w", err)
	}
	for rows.Next() {
		var sid int
		var id string
		if err := rows.Scan(&sid, &id); err != nil {
			rows.Close()
			return err
		}
		e.sids[id] = sid
	}
	rows.Close()
	// Cut off blocks a crash left behind the last commit.
	for _, sid := range e.sids {
		var end int64
		if err := e.w.QueryRowContext(ctx, fmt.Sprintf(`SELECT coalesce(max(jb + jl), 0) FROM %s`, tableName(sid))).Scan(&end); err != nil {
			return fmt.Errorf("lake: open store table %d: %w", sid, duckError(err))
		}
		if err := e.blocks.truncate(sid, end); err != nil {
			return err
		}
	}
	var views []string
	if rows, err = e.w.QueryContext(ctx, `SELECT DISTINCT lower(view_name) FROM duckdb_views() UNION SELECT DISTINCT lower(table_name) FROM duckdb_tables() WHERE schema_name <> 'lake'`); err != nil {
		return fmt.Errorf("lake: list views: %w", err)
	}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		views = append(views, v)
	}
	rows.Close()
	e.views = map[string]bool{}
	for _, v := range views {
		e.views[v] = true
	}
	return nil
}

// ErrFormat reports a database written by an engine of another storage format.
var ErrFormat = errors.New("lake: the Lake database has another storage format")

// checkFormat records formatVersion in a new database and refuses one of another version.
func (e *Engine) checkFormat(ctx context.Context) error {
	var v uint64
	err := e.w.QueryRowContext(ctx, `SELECT v FROM lake.state WHERE k = 'format'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		var n int
		if err := e.w.QueryRowContext(ctx, `SELECT count(*) FROM lake.stores`).Scan(&n); err != nil {
			return fmt.Errorf("lake: format: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("%w: 1, want %d", ErrFormat, formatVersion)
		}
		if _, err := e.w.ExecContext(ctx, `INSERT INTO lake.state VALUES ('format', ?)`, formatVersion); err != nil {
			return fmt.Errorf("lake: format: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("lake: format: %w", err)
	}
	if v != formatVersion {
		return fmt.Errorf("%w: %d, want %d", ErrFormat, v, formatVersion)
	}
	return nil
}

// position is the next journal seq to load, as committed in DuckDB.
func (e *Engine) position(ctx context.Context) (uint64, error) {
	var v uint64
	err := e.w.QueryRowContext(ctx, `SELECT v FROM lake.state WHERE k = 'position'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		first, ferr := e.j.First()
		return max(first, 1), ferr
	}
	return v, err
}

// Start follows the journal and enforces retention until Close.
func (e *Engine) Start(ctx context.Context) error {
	pos, err := e.position(ctx)
	if err != nil {
		return fmt.Errorf("lake: start: %w", err)
	}
	if err := e.setCursor(pos); err != nil {
		return err
	}
	e.progress.Set(pos - 1)
	ctx, e.cancel = context.WithCancel(ctx)
	e.wg.Add(2)
	go e.follow(ctx, pos)
	go e.janitor(ctx)
	return nil
}

func (e *Engine) setCursor(next uint64) error {
	b := e.kv.NewBatch()
	defer b.Close()
	if err := journal.SetCursor(b, kv.CursorLake, next); err != nil {
		return err
	}
	// No sync: a lost cursor only makes the journal keep more than it must.
	return b.Commit(pebble.NoSync)
}

// Close stops loading and closes the database.
func (e *Engine) Close() error {
	if e.cancel != nil {
		e.cancel()
	}
	e.wg.Wait()
	applied := e.progress.Applied()
	if e.w != nil {
		if e.cancel != nil && applied > 0 {
			// Keep the position of batches no store took, so a restart does not read them again.
			if err := e.commitBatch(context.Background(), nil, applied+1); err != nil {
				e.log.Error("save position", "err", err)
			}
		}
		e.w.Close()
	}
	err := e.db.Close()
	e.blocks.close()
	return err
}

// Applied is the highest journal seq whose effects are committed.
func (e *Engine) Applied() uint64 { return e.progress.Applied() }

// WaitApplied blocks until entries up to seq are loaded, or ctx ends.
func (e *Engine) WaitApplied(ctx context.Context, seq uint64) error { return e.progress.Wait(ctx, seq) }

func (e *Engine) follow(ctx context.Context, next uint64) {
	defer e.wg.Done()
	e.j.Follow(ctx, next, "load events into Lake", e.load)
}

// target is a store a batch loads into.
type target struct {
	def     StoreDef
	matcher *selector.Matcher
	chans   map[string]bool
}

func (e *Engine) targets() []target {
	var ts []target
	for _, d := range e.stores() {
		if !d.Ingesting {
			continue
		}
		m, err := selector.Compile(nil, d.Selectors)
		if err != nil {
			e.log.Error("event data store selectors", "store", d.ID, "err", err)
			m = nil
		}
		if len(d.Selectors) == 0 {
			m, _ = selector.Compile(nil, nil)
		}
		t := target{def: d, matcher: m}
		if len(d.ChannelARNs) > 0 {
			t.chans = map[string]bool{}
			for _, c := range d.ChannelARNs {
				t.chans[c] = true
			}
		}
		ts = append(ts, t)
	}
	return ts
}

// staged is a record bound for one store.
type staged struct {
	seq uint64
	et  int64 // eventTime, unix microseconds
	raw []byte
}

// load applies one batch of journal entries from from and returns the next seq.
func (e *Engine) load(ctx context.Context, from uint64) (uint64, error) {
	ts := e.targets()
	rows := map[string][]staged{}
	var sel *selector.Event
	next, err := e.j.Scan(from, batchEntries, func(seq uint64, v []byte) error {
		if len(ts) == 0 {
			return nil // no store is ingesting: nothing to decode
		}
		r, err := event.Decode(v)
		if err != nil {
			e.log.Error("skip undecodable journal entry", "seq", seq, "err", err)
			return nil
		}
		m := &r.Meta
		sel = nil
		channel := ""
		if m.Category == event.CategoryActivityAudit {
			channel = channelARN(r.Raw)
		}
		for i := range ts {
			t := &ts[i]
			if m.Account != t.def.Account || m.IngestTime < t.def.CreatedAt.UnixNano() {
				continue
			}
			if m.Category == event.CategoryActivityAudit {
				if !t.chans[channel] {
					continue
				}
			} else {
				if !t.def.MultiRegion && m.Region != t.def.HomeRegion {
					continue
				}
				if sel == nil {
					sel = selector.EventOf(m)
				}
				if t.matcher == nil || !t.matcher.Match(sel) {
					continue
				}
			}
			rows[t.def.ID] = append(rows[t.def.ID], staged{seq, m.EventTime / 1000, slices.Clone(r.Raw)})
		}
		return nil
	})
	if err != nil {
		return from, err
	}
	if next == from {
		return from, nil
	}
	// A batch no store takes needs no DuckDB transaction: its position is kept
	// in memory and written with the next batch that has rows, at least once a
	// minute, and at Close. Reading such entries again after a crash adds nothing
	// (a store only takes entries ingested after it was created).
	if len(rows) > 0 || time.Since(e.posSaved) >= time.Minute {
		if err := e.commitBatch(ctx, rows, next); err != nil {
			return from, err
		}
		e.posSaved = time.Now()
	}
	if err := e.setCursor(next); err != nil {
		e.log.Error("set journal cursor", "err", err)
	}
	e.progress.Set(next - 1)
	return next, nil
}

func channelARN(raw []byte) string {
	var v struct {
		Metadata struct {
			ChannelARN string `json:"channelARN"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &v, json.RejectUnknownMembers(false)); err != nil {
		return ""
	}
	return v.Metadata.ChannelARN
}

// commitBatch writes rows and the new position in one DuckDB transaction.
func (e *Engine) commitBatch(ctx context.Context, rows map[string][]staged, next uint64) (err error) {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if _, err := e.w.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return fmt.Errorf("lake: begin: %w", err)
	}
	ends := map[int]int64{} // block file ends before the batch, for a rollback
	defer func() {
		if err != nil {
			// A cancelled ctx (shutdown) has DuckDB abort the transaction itself, and ROLLBACK
			// then finds none ("no transaction is active"): not worth an ERROR line.
			if _, rerr := e.w.ExecContext(context.Background(), "ROLLBACK"); rerr != nil && ctx.Err() == nil {
				e.log.Error("rollback", "err", rerr)
			}
			for sid, end := range ends {
				if terr := e.blocks.truncate(sid, end); terr != nil {
					e.log.Error("truncate block file", "err", terr)
				}
			}
		}
	}()
	ids := make([]string, 0, len(rows))
	for id := range rows {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		rs := rows[id]
		sid, err := e.ensureStore(ctx, id)
		if err != nil {
			return err
		}
		if ends[sid], err = e.blocks.end(sid); err != nil {
			return err
		}
		var bytes int64
		if err := e.appendRows(sid, rs, &bytes); err != nil {
			return fmt.Errorf("lake: load store %s: %w", id, err)
		}
		if _, err := e.w.ExecContext(ctx, `UPDATE lake.stores SET events = events + ?, bytes = bytes + ? WHERE sid = ?`,
			int64(len(rs)), bytes, sid); err != nil {
			return fmt.Errorf("lake: store stats: %w", err)
		}
	}
	if _, err := e.w.ExecContext(ctx, `INSERT OR REPLACE INTO lake.state VALUES ('position', ?)`, next); err != nil {
		return fmt.Errorf("lake: position: %w", err)
	}
	if _, err := e.w.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("lake: commit: %w", duckError(err))
	}
	return nil
}

func tableName(sid int) string { return fmt.Sprintf("lake.s_%d", sid) }

// ensureStore returns the table number of store id, creating its table (in the
// caller's transaction) on first use.
func (e *Engine) ensureStore(ctx context.Context, id string) (int, error) {
	e.smu.Lock()
	sid, ok := e.sids[id]
	e.smu.Unlock()
	if ok {
		return sid, nil
	}
	if err := e.w.QueryRowContext(ctx, `SELECT coalesce(max(sid), 0) + 1 FROM lake.stores`).Scan(&sid); err != nil {
		return 0, fmt.Errorf("lake: new store: %w", err)
	}
	if _, err := e.w.ExecContext(ctx, createStoreSQL(tableName(sid))); err != nil {
		return 0, fmt.Errorf("lake: new store: %w", duckError(err))
	}
	if _, err := e.w.ExecContext(ctx, `INSERT INTO lake.stores VALUES (?, ?, 0, 0)`, sid, id); err != nil {
		return 0, fmt.Errorf("lake: new store: %w", err)
	}
	e.smu.Lock()
	e.sids[id] = sid
	e.smu.Unlock()
	return sid, nil
}

// appendRows writes the records to sid's block file and bulk-loads their rows
// through a query appender: the fields are split out in Go, and DuckDB types
// the nested ones with json_transform.
func (e *Engine) appendRows(sid int, rs []staged, bytes *int64) error {
	recs := make([][]byte, len(rs))
	for i, r := range rs {
		recs[i] = r.raw
		*bytes += int64(len(r.raw))
	}
	refs, err := e.blocks.write(sid, recs)
	if err != nil {
		return err
	}
	st := newStager(nil)
	return e.w.Raw(func(dc any) error {
		a, err := duckdb.NewQueryAppender(dc.(driver.Conn), transformSQL(tableName(sid)), "appended_data", stageTypes, stageNames)
		if err != nil {
			return duckError(err)
		}
		for i, r := range rs {
			if err := a.AppendRow(st.row(r.seq, r.et, refs[i], nil, r.raw)...); err != nil {
				a.Close()
				return duckError(err)
			}
		}
		return duckError(a.Close())
	})
}

// janitor deletes rows past each store's retention period, hourly.
func (e *Engine) janitor(ctx context.Context) {
	defer e.wg.Done()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if err := e.Expire(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("expire events", "err", err)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// Expire deletes, now, the rows of every store whose eventTime is older than its retention period.
func (e *Engine) Expire(ctx context.Context) error {
	for _, d := range e.stores() {
		if d.RetentionDays <= 0 {
			continue
		}
		e.smu.Lock()
		sid, ok := e.sids[d.ID]
		e.smu.Unlock()
		if !ok {
			continue
		}
		cutoff := e.o.Now().UTC().Add(-time.Duration(d.RetentionDays) * 24 * time.Hour)
		if err := e.expireStore(ctx, sid, cutoff); err != nil {
			return fmt.Errorf("lake: expire %s: %w", d.ID, err)
		}
	}
	return nil
}

func (e *Engine) expireStore(ctx context.Context, sid int, cutoff time.Time) (err error) {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	table := tableName(sid)
	if _, err := e.w.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			e.w.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	var n, bytes int64
	if err := e.w.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*), coalesce(sum(strlen(lake_event_json(%d, jb, jl, ji))), 0) FROM %s WHERE eventTime < ?`, sid, table),
		cutoff).Scan(&n, &bytes); err != nil {
		return duckError(err)
	}
	if n > 0 {
		if _, err := e.w.ExecContext(ctx, fmt.Sprintf(`DELETE FROM %s WHERE eventTime < ?`, table), cutoff); err != nil {
			return duckError(err)
		}
		if _, err := e.w.ExecContext(ctx, `UPDATE lake.stores SET events = events - ?, bytes = bytes - ? WHERE sid = ?`, n, bytes, sid); err != nil {
			return err
		}
	}
	if _, err = e.w.ExecContext(ctx, "COMMIT"); err != nil {
		return duckError(err)
	}
	// The block file's space before its first live record, dead since the last run, goes back to the file system.
	var first sql.NullInt64
	if err := e.w.QueryRowContext(ctx, fmt.Sprintf(`SELECT CAST(min(jb) AS BIGINT) FROM %s`, table)).Scan(&first); err != nil {
		return duckError(err)
	}
	live := first.Int64
	if !first.Valid { // no rows: all of it
		if live, err = e.blocks.end(sid); err != nil {
			return err
		}
	}
	if prev, ok := e.dead[sid]; ok {
		if err := e.blocks.release(sid, min(prev, live)); err != nil {
			return err
		}
	}
	e.dead[sid] = live
	return nil
}

// DropStore deletes a store's data for good. The API removes the store from
// its definitions first, or the next event it would take recreates the table.
func (e *Engine) DropStore(ctx context.Context, id string) error {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	e.smu.Lock()
	sid, ok := e.sids[id]
	e.smu.Unlock()
	if !ok {
		return nil
	}
	for _, s := range []string{
		"BEGIN TRANSACTION",
		"DROP TABLE IF EXISTS " + tableName(sid),
		fmt.Sprintf("DELETE FROM lake.stores WHERE sid = %d", sid),
		"COMMIT",
	} {
		if _, err := e.w.ExecContext(ctx, s); err != nil {
			e.w.ExecContext(context.Background(), "ROLLBACK")
			return fmt.Errorf("lake: drop store %s: %w", id, duckError(err))
		}
	}
	e.smu.Lock()
	delete(e.sids, id)
	e.smu.Unlock()
	delete(e.dead, sid)
	if err := e.blocks.remove(sid); err != nil {
		e.log.Warn("remove block file", "err", err)
	}
	// A checkpoint returns the table's blocks to the free list at once.
	if _, err := e.w.ExecContext(ctx, "CHECKPOINT"); err != nil {
		e.log.Warn("checkpoint after drop", "err", err)
	}
	return nil
}

// StoreStats returns the number of events a store holds and their size as
// ingested (the JSON records' bytes).
func (e *Engine) StoreStats(id string) (events, bytes int64, err error) {
	err = e.db.QueryRow(`SELECT events, bytes FROM lake.stores WHERE id = ?`, id).Scan(&events, &bytes)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	return events, bytes, err
}
