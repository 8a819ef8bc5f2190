package lake

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	stdjson "encoding/json"

	"github.com/opentrail/opentrail/internal/lakemodel"
)

// Result is a query's answer.
type Result = lakemodel.Result

// QueryError is a statement the engine cannot run.
type QueryError = lakemodel.QueryError

// newQueryError reports msg at byte offset pos of src, Trino style: "line 1:8: msg".
func newQueryError(src string, pos int, msg string) *QueryError {
	pos = max(0, min(pos, len(src)))
	line := 1 + strings.Count(src[:pos], "\n")
	col := pos - strings.LastIndexByte(src[:pos], '\n')
	return &QueryError{Message: fmt.Sprintf("line %d:%d: %s", line, col, msg), Line: line, Column: col}
}

// dbError is a DuckDB error decoded from errors_as_json.
type dbError struct {
	Type     string `json:"exception_type"`
	Message  string `json:"exception_message"`
	Position string `json:"position"`
}

// parseDuckError extracts DuckDB's JSON error from err's text.
func parseDuckError(err error) (dbError, bool) {
	s := err.Error()
	i := strings.Index(s, `{"exception_type"`)
	if i < 0 {
		return dbError{}, false
	}
	var d dbError
	if stdjson.Unmarshal([]byte(s[i:]), &d) != nil {
		return dbError{}, false
	}
	return d, true
}

// duckError makes DuckDB's JSON errors readable in logs.
func duckError(err error) error {
	if err == nil {
		return nil
	}
	if d, ok := parseDuckError(err); ok {
		return fmt.Errorf("%s: %s", d.Type, d.Message)
	}
	return err
}

// userErrorTypes are DuckDB error types caused by the statement, not by us.
var userErrorTypes = map[string]bool{
	"Parser": true, "Binder": true, "Conversion": true, "Invalid Input": true, "Out of Range": true,
	"Catalog": true, "Syntax": true, "Not implemented": true, "Mismatch Type": true, "Constraint": true,
	"Permission": true, "Invalid": true, "Dependency": true, "Expression": true,
}

func newNonce() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// prepared is a checked statement ready to run.
type prepared struct {
	rw      *rewritten
	sql     string
	columns []string           // names to report; "" keeps DuckDB's
	eager   bool               // sql is the two-step form of the statement (eager.go)
	stmt    stdjson.RawMessage // the statement as json_serialize_sql gives it
	refs    []string           // store IDs read
}

// prepare rewrites, checks and names the columns of src.
func prepare(ctx context.Context, db *sql.DB, src string, resolve resolver, views map[string]bool, now time.Time) (*prepared, error) {
	rw, err := rewrite(src, resolve, newNonce(), now.UTC().Format("2006-01-02 15:04:05.000"))
	if err != nil {
		return nil, err
	}
	allowed := map[string]bool{}
	for ph := range rw.tables {
		allowed[strings.ToLower(strings.Trim(ph, `"`))] = true
	}
	names, stmt, err := check(ctx, db, src, rw, allowed, views)
	if err != nil {
		return nil, err
	}
	p := &prepared{rw: rw, sql: rw.final(), columns: names, stmt: stmt}
	// The two-step form, where it applies and DuckDB binds it; on any doubt the statement as written.
	if eager, err := eagerSQL(ctx, db, stmt, rw.fill); err == nil && eager != "" {
		if st, err := db.PrepareContext(ctx, eager); err == nil {
			st.Close()
			p.sql, p.eager = eager, true
		}
	}
	return p, nil
}

// runQuery executes p and renders its rows.
func runQuery(ctx context.Context, db *sql.DB, src string, p *prepared, timeout time.Duration) (*Result, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, p.sql)
	if err != nil && p.eager && ctx.Err() == nil {
		// The statement as written gives the error its user's position.
		conn.Close()
		return runQuery(ctx, db, src, &prepared{rw: p.rw, sql: p.rw.final(), columns: p.columns}, timeout)
	}
	if err != nil {
		return nil, userError(ctx, src, p.rw, err)
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	res := &Result{Columns: make([]string, len(cts))}
	types := make([]*typeNode, len(cts))
	for i, ct := range cts {
		res.Columns[i] = ct.Name()
		if i < len(p.columns) && p.columns[i] != "" {
			res.Columns[i] = p.columns[i]
		}
		types[i] = parseType(ct.DatabaseTypeName())
	}
	vals := make([]any, len(cts))
	ptrs := make([]any, len(cts))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := make([]*string, len(vals))
		for i, v := range vals {
			if v != nil {
				s := render(v, types[i])
				row[i] = &s
			}
		}
		res.Rows = append(res.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return nil, userError(ctx, src, p.rw, err)
	}
	return res, nil
}

// ErrQueryTimeout is returned when a query runs past its time limit.
var ErrQueryTimeout = errors.New("lake: query timed out")

// userError turns a DuckDB error into a QueryError at the user's position when
// the statement caused it; cancellation and timeouts pass through.
func userError(ctx context.Context, src string, rw *rewritten, err error) error {
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return ErrQueryTimeout
		}
		return ctx.Err()
	}
	d, ok := parseDuckError(err)
	if !ok {
		return err
	}
	if d.Type == "Out of Memory" {
		return &QueryError{Message: "the query needs more memory than the engine allows: " + d.Message}
	}
	if d.Type == "INTERRUPT" || d.Type == "Interrupt" {
		return context.Canceled
	}
	if !userErrorTypes[d.Type] {
		return fmt.Errorf("lake: query: %s: %s", d.Type, d.Message)
	}
	msg := cleanMessage(d.Message, rw)
	if d.Position == "" {
		return &QueryError{Message: msg}
	}
	pos, _ := strconv.Atoi(d.Position)
	return newQueryError(src, rw.inputPos(pos), msg)
}

// cleanMessage keeps internal names out of messages.
func cleanMessage(msg string, rw *rewritten) string {
	for ph := range rw.tables {
		msg = strings.ReplaceAll(msg, strings.Trim(ph, `"`), "event data store")
	}
	msg = strings.ReplaceAll(msg, "ct_", "")
	if i := strings.Index(msg, "\n"); i >= 0 && strings.HasPrefix(msg[i:], "\nCandidate") {
		return msg
	}
	return msg
}

// Query runs one statement for account. Stores are named in FROM by ID or ARN;
// naming one that is not the account's is a *QueryError with NotFound set. It
// honours ctx (cancelling it interrupts DuckDB) and the engine's time limit.
func (e *Engine) Query(ctx context.Context, account, src string) (*Result, error) {
	defs := map[string]StoreDef{}
	for _, d := range e.stores() {
		if d.Account == account {
			defs[strings.ToLower(d.ID)] = d
			defs[strings.ToLower(d.ARN)] = d
		}
	}
	var bytes, events int64
	seen := map[string]bool{}
	resolve := func(name string) (string, bool) {
		d, ok := defs[strings.ToLower(name)]
		if !ok {
			return "", false
		}
		e.smu.Lock()
		sid, ok := e.sids[d.ID]
		e.smu.Unlock()
		if !seen[d.ID] {
			seen[d.ID] = true
			if n, b, err := e.StoreStats(d.ID); err == nil {
				events, bytes = events+n, bytes+b
			}
		}
		if !ok {
			return storeSelect("lake.template", 0), true // nothing loaded yet
		}
		return storeSelect(tableName(sid), sid), true
	}
	p, err := prepare(ctx, e.db, src, resolve, e.views, e.o.Now())
	if err != nil {
		return nil, err
	}
	res, err := runQuery(ctx, e.db, src, p, e.o.QueryTimeout)
	if err != nil {
		return nil, err
	}
	res.BytesScanned, res.EventsScanned = bytes, events
	return res, nil
}
