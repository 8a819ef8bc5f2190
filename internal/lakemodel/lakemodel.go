// Package lakemodel is what the CloudTrail API and the Lake engine exchange:
// the definition of an event data store the engine loads (StoreDef), a query's
// answer (Result) and a statement the engine cannot run (QueryError). It holds
// no engine, so the API builds without DuckDB (cgo); package lake aliases these
// types.
package lakemodel

import (
	"time"

	"github.com/opentrail/opentrail/internal/selector"
)

// StoreDef is what the engine needs of one event data store; the API owns the
// definitions and hands them over through a func.
type StoreDef struct {
	ID            string // the event data store ID: the last path part of its ARN
	ARN           string // arn:aws:cloudtrail:<region>:<account>:eventdatastore/<ID>
	Account       string
	HomeRegion    string
	MultiRegion   bool                             // false: only events whose awsRegion is HomeRegion
	Selectors     []selector.AdvancedEventSelector // normalised; empty = all management events
	Ingesting     bool                             // false: keeps what it has, takes nothing new
	RetentionDays int                              // rows whose eventTime is older are deleted (enforced by the engine)
	CreatedAt     time.Time                        // a store takes journal entries ingested at or after this, not older history
	// ChannelARNs are the channels whose events (eventCategory ActivityAuditLog)
	// the store takes, whatever its selectors; other events go by Selectors.
	ChannelARNs []string
}

// Result is a query's answer.
type Result struct {
	Columns      []string    // in SELECT order, names as the user wrote/aliased them
	Rows         [][]*string // values rendered as AWS CloudTrail Lake renders them (nil = SQL NULL)
	BytesScanned int64
	// EventsScanned is the events of the stores the query named (DuckDB reads what it needs of them).
	EventsScanned int64
}

// QueryError is a statement the engine cannot run: bad SQL
// (InvalidQueryStatementException) or, with NotFound set, a store that is not the
// account's (EventDataStoreNotFoundException).
type QueryError struct {
	Message      string
	Line, Column int    // 1-based position in the statement; 0 when unknown
	NotFound     string // the event data store ID or ARN that was not found
}

func (e *QueryError) Error() string { return e.Message }
