package lake

import (
	"context"
	"database/sql/driver"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/opentrail/opentrail/internal/archive"
	"github.com/opentrail/opentrail/internal/objstore"
)

// LogsTable is the table name QueryLogs answers to, as Athena users name it.
const LogsTable = "cloudtrail_logs"

// QueryLogs runs sql over CloudTrail log files (no ingest): table cloudtrail_logs,
// with the same columns as an event data store. src is a folder path or
// s3://bucket/prefix, opened with s3 (nil = the AWS SDK default configuration).
// Only the columns the statement names are decoded. Corrupt files are skipped.
func QueryLogs(ctx context.Context, src string, s3 objstore.Store, sqlText string, o Options) (*Result, error) {
	o.defaults()
	ar, err := archive.Open(ctx, src, s3)
	if err != nil {
		return nil, err
	}
	cols, err := referencedColumns(sqlText)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "opentrail-logs-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	db, err := openDuckDB(filepath.Join(tmp, "logs.duckdb"), o)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	resolve := func(name string) (string, bool) {
		if !strings.EqualFold(name, LogsTable) {
			return "", false
		}
		if cols["eventjson"] {
			return "(SELECT * EXCLUDE (seq), sha256(eventJson) AS eventJsonChecksum FROM lake.logs)", true
		}
		return "(SELECT * EXCLUDE (seq) FROM lake.logs)", true
	}
	// Check the statement before reading anything.
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, createTableSQL("lake.logs", cols)); err != nil {
		return nil, duckError(err)
	}
	p, err := prepare(ctx, db, sqlText, resolve, map[string]bool{}, o.Now())
	if err != nil {
		return nil, err
	}
	// Only the files that can hold events in the eventTime range the statement asks for (prune.go).
	filter := timeFilter(ctx, db, p.stmt)
	files, err := ar.List(ctx, filter, nil)
	if err != nil {
		return nil, err
	}
	var bytes atomic.Int64
	err = conn.Raw(func(dc any) error {
		return loadLogs(ctx, dc.(driver.Conn), ar, files, filter, cols, o.Threads, &bytes)
	})
	if err != nil {
		return nil, fmt.Errorf("lake: load %s: %w", src, err)
	}
	conn.Close()
	res, err := runQuery(ctx, db, sqlText, p, o)
	if err != nil {
		return nil, err
	}
	res.BytesScanned = bytes.Load()
	return res, nil
}

// referencedColumns are the store columns a statement names (lower case); all of
// them when it selects *.
func referencedColumns(src string) (map[string]bool, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, newQueryError(src, err.(*lexError).pos, err.Error())
	}
	names := map[string]bool{}
	for _, c := range storeColumns {
		names[strings.ToLower(c.name)] = true
	}
	cols := map[string]bool{"eventtime": true, "eventid": true}
	for i, t := range toks {
		switch {
		case t.is("*") && i > 0 && (toks[i-1].upper() == "SELECT" || toks[i-1].is(",") || toks[i-1].is(".") || toks[i-1].upper() == "DISTINCT"):
			return names, nil
		case t.kind == tokIdent || t.kind == tokQuoted:
			n := strings.ToLower(t.text)
			if n == "eventjsonchecksum" {
				n = "eventjson"
			}
			if names[n] {
				cols[n] = true
			}
		}
	}
	return cols, nil
}

// createTableSQL is createStoreSQL restricted to cols (lower-case names).
func createTableSQL(table string, cols map[string]bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE %s (seq UBIGINT", table)
	for _, c := range storeColumns {
		if cols[strings.ToLower(c.name)] {
			fmt.Fprintf(&b, ", %s %s", quoteIdent(c.name), squash(c.typ))
		}
	}
	b.WriteString(")")
	return b.String()
}

// loadLogs decodes files (threads at a time) and appends the cols of their
// records in f's time range to lake.logs. Decoding and staging (splitting a
// record into its columns) run on threads goroutines; only the appends, which
// share the connection dc, run on this one.
func loadLogs(ctx context.Context, dc driver.Conn, ar *archive.Archive, files []archive.File, f archive.Filter, cols map[string]bool, threads int, bytes *atomic.Int64) error {
	threads = max(1, threads)
	st := newStager(cols)
	a, err := duckdb.NewQueryAppender(dc, transformSQLCols("lake.logs", cols), "appended_data", st.types, st.names)
	if err != nil {
		return duckError(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type batch struct {
		recs [][]byte
		seq  uint64 // of the first record
	}
	batches := make(chan batch, threads)
	staged := make(chan [][]driver.Value, threads)
	var derr error
	go func() {
		defer close(batches)
		seq := uint64(1)
		derr = ar.Decode(ctx, files, f, threads, func(r archive.Result) error {
			if r.Err != nil {
				return nil // a corrupt file is skipped, as Athena skips what it cannot read
			}
			bytes.Add(r.File.Size)
			select {
			case batches <- batch{r.Records, seq}:
			case <-ctx.Done():
				return ctx.Err()
			}
			seq += uint64(len(r.Records))
			return nil
		})
	}()
	var wg sync.WaitGroup
	withJSON := cols["eventjson"]
	for range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := newStager(cols)
			for b := range batches {
				rows := make([][]driver.Value, len(b.recs))
				for i, rec := range b.recs {
					et := int64(0)
					if t, ok := archive.EventTime(rec); ok {
						et = t.UnixMicro()
					}
					var ej any
					if withJSON {
						ej = string(rec)
					}
					rows[i] = slices.Clone(st.row(b.seq+uint64(i), et, ref{}, ej, rec))
				}
				select {
				case staged <- rows:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(staged)
	}()
	var aerr error
	for rows := range staged {
		for _, row := range rows {
			if aerr == nil {
				if err := a.AppendRow(row...); err != nil {
					aerr = duckError(err)
					cancel() // the decoders and stagers stop; what they hold is drained
				}
			}
		}
	}
	cerr := a.Close()
	switch {
	case aerr != nil:
		return aerr
	case derr != nil:
		return derr
	}
	return duckError(cerr)
}
