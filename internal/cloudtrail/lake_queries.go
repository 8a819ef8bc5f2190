package cloudtrail

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/lakemodel"
)

// Engine runs Lake SQL for the query operations; *lake.Engine satisfies it.
type Engine interface {
	// Query runs sql for account; FROM names stores by ID or ARN.
	Query(ctx context.Context, account, sql string) (*lakemodel.Result, error)
	// DropStore removes a store's data for good.
	DropStore(ctx context.Context, id string) error
}

// queryChecker is implemented by engines that can reject a statement (syntax,
// unknown columns) without running it; StartQuery then answers
// InvalidQueryStatementException at once, as AWS does, instead of a FAILED query.
type queryChecker interface {
	Check(ctx context.Context, account, sql string) error
}

// Query statuses (the model's QueryStatus).
const (
	queryQueued    = "QUEUED"
	queryRunning   = "RUNNING"
	queryFinished  = "FINISHED"
	queryFailed    = "FAILED"
	queryCancelled = "CANCELLED"
	queryTimedOut  = "TIMED_OUT"
)

// ---- Storage format: everything in this block is part of the on-disk format. Never change it. ----
//
// A query is one JSON object under kv.StateKey(kv.StateQuery, account, queryID);
// its result rows are JSON arrays of rows ([][]*string, nil = NULL) of up to
// queryChunkRows rows under kv.StateKey(kv.StateQueryRows, account,
// queryID+"/"+8-digit chunk number), written in the same batch that marks the
// query FINISHED.

const (
	queryChunkRows = 1000
)

type storedQuery struct {
	ID             string    `json:"id"`
	Account        string    `json:"account"`
	Region         string    `json:"region"`
	Statement      string    `json:"statement"`
	Stores         []string  `json:"stores"` // IDs of the event data stores the statement names
	Status         string    `json:"status"`
	Error          string    `json:"error,omitempty"`
	DeliveryS3Uri  string    `json:"deliveryS3Uri,omitempty"`
	DeliveryStatus string    `json:"deliveryStatus,omitempty"`
	Created        time.Time `json:"created"`
	Started        time.Time `json:"started,omitzero"`
	Ended          time.Time `json:"ended,omitzero"`
	BytesScanned   int64     `json:"bytesScanned"`
	EventsScanned  int64     `json:"eventsScanned,omitempty"`
	Rows           int       `json:"rows"`
	Columns        []string  `json:"columns,omitempty"`
	Chunks         int       `json:"chunks"`
}

func queryRowsName(id string, chunk int) string { return fmt.Sprintf("%s/%08d", id, chunk) }

// ---- End of storage format. ----

func (q *storedQuery) done() bool { return q.Status != queryQueued && q.Status != queryRunning }

// queryRunner runs queries asynchronously on a bounded pool.
type queryRunner struct {
	s    *Service
	eng  Engine
	opts LakeOptions
	sem  chan struct{} // one token per running query
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu     sync.Mutex
	active map[string]*activeQuery // QUEUED and RUNNING queries
}

type activeQuery struct {
	account string
	cancel  context.CancelFunc
}

// StartLake starts running queries on eng, and the janitor that expires query
// results and drops the data of stores deleted long enough ago. Queries a
// previous run left QUEUED or RUNNING become FAILED. Close stops it all.
func (s *Service) StartLake(ctx context.Context, eng Engine) error {
	ctx, stop := context.WithCancel(ctx)
	r := &queryRunner{s: s, eng: eng, opts: s.lake.opts, sem: make(chan struct{}, s.lake.opts.QueryWorkers),
		ctx: ctx, stop: stop, active: map[string]*activeQuery{}}
	if err := r.recover(); err != nil {
		stop()
		return err
	}
	s.lake.q = r
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.janitor()
	}()
	return nil
}

// Close stops the Lake: running queries end FAILED, and Close waits for them.
func (s *Service) Close() error {
	if r := s.lake.q; r != nil {
		r.stop()
		r.wg.Wait()
	}
	return nil
}

func (r *queryRunner) recover() error {
	var stale []*storedQuery
	err := r.s.listState(kv.StateQuery, "", func(raw []byte) error {
		q := new(storedQuery)
		if err := json.Unmarshal(raw, q); err != nil {
			return fmt.Errorf("cloudtrail: decode query: %w", err)
		}
		if !q.done() {
			stale = append(stale, q)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, q := range stale {
		q.Status, q.Error, q.Ended = queryFailed, "OpenTrail restarted before the query finished; run it again.", r.s.now().UTC()
		if err := r.s.putState(context.Background(), kv.StateQuery, q.Account, q.ID, q); err != nil {
			return err
		}
	}
	return nil
}

// janitor expires old queries and purges deleted stores, hourly.
func (r *queryRunner) janitor() {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		r.sweep()
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweep runs one round of the janitor.
func (r *queryRunner) sweep() {
	s := r.s
	now := s.now()
	var old []*storedQuery
	_ = s.listState(kv.StateQuery, "", func(raw []byte) error {
		q := new(storedQuery)
		if json.Unmarshal(raw, q) == nil && q.done() && now.Sub(q.Created) > r.opts.ResultTTL {
			old = append(old, q)
		}
		return nil
	})
	for _, q := range old {
		if err := s.deleteQuery(q); err != nil {
			s.log.Error("expire query", "query", q.ID, "err", err)
		}
	}
	stores, err := s.accountStores("")
	if err != nil {
		s.log.Error("list event data stores", "err", err)
		return
	}
	for _, d := range stores {
		if d.Status != edsPendingDeletion || now.Sub(d.Deleted) < r.opts.DeletionWait {
			continue
		}
		if err := r.eng.DropStore(r.ctx, d.ID); err != nil {
			s.log.Error("drop event data store", "store", d.ID, "err", err)
			continue
		}
		s.lakeMu.Lock()
		err := s.deleteState(context.Background(), kv.StateEDS, d.Account, d.ID)
		s.lake.defs.invalidate()
		s.lakeMu.Unlock()
		if err != nil {
			s.log.Error("delete event data store", "store", d.ID, "err", err)
		}
	}
}

// deleteQuery removes a query and its rows.
func (s *Service) deleteQuery(q *storedQuery) error {
	b := s.db.NewBatch()
	defer b.Close()
	lo := kv.StateKey(kv.StateQueryRows, q.Account, q.ID+"/")
	if err := b.DeleteRange(lo, kv.PrefixUpper(lo), nil); err != nil {
		return err
	}
	if err := b.Delete(kv.StateKey(kv.StateQuery, q.Account, q.ID), nil); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}

// ---- StartQuery ----

type startQueryInput struct {
	QueryStatement               *string
	DeliveryS3Uri                *string
	QueryAlias                   *string
	QueryParameters              []string
	EventDataStoreOwnerAccountId *string
}

var (
	// storeRefRE finds what may name an event data store in a statement: an
	// event data store ARN or a bare UUID.
	storeRefRE = regexp.MustCompile(`(?i)arn:[a-z-]+:cloudtrail:[a-z0-9-]+:[0-9]{12}:eventdatastore/[0-9a-f-]{36}|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`)
	// literalRE finds string literals and comments, where a UUID is a value, not a table.
	literalRE = regexp.MustCompile(`'(?:[^']|'')*'|--[^\n]*|/\*(?s:.*?)\*/`)
)

// statementStores returns the event data stores of c a statement names in its
// FROM clauses (IDs or ARNs outside string literals and comments), checking
// each exists and is active.
func (s *Service) statementStores(c auth.Caller, sql string) ([]*storedEDS, error) {
	code := literalRE.ReplaceAllString(sql, "''")
	var out []*storedEDS
	for _, ref := range storeRefRE.FindAllString(code, -1) {
		d, err := s.resolveActiveStore(c, strings.ToLower(ref))
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(out, func(o *storedEDS) bool { return o.ID == d.ID }) {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil, awsapi.Errorf("InvalidQueryStatementException",
			"The query names no event data store: write FROM with the ID (or ARN) of an event data store, e.g. SELECT eventName FROM 0a1b2c3d-0000-4000-8000-000000000000.")
	}
	return out, nil
}

// queryStatementError turns an engine error into InvalidQueryStatementException's message.
func queryErrorMessage(qe *lakemodel.QueryError) string {
	if qe.Line > 0 && !strings.HasPrefix(qe.Message, "line ") {
		return fmt.Sprintf("line %d:%d: %s", qe.Line, qe.Column, qe.Message)
	}
	return qe.Message
}

func (s *Service) startQuery(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in startQueryInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	r := s.lake.q
	if r == nil {
		return nil, awsapi.Errorf("UnsupportedOperationException", "This OpenTrail node runs no Lake query engine.")
	}
	switch {
	case in.QueryStatement == nil && in.QueryAlias != nil:
		return nil, awsapi.Errorf("UnsupportedOperationException",
			"QueryAlias and QueryParameters run the queries of CloudTrail Lake dashboards, which OpenTrail does not have; send QueryStatement.")
	case in.QueryStatement == nil:
		return nil, awsapi.Errorf("InvalidParameterException", "StartQuery requires QueryStatement.")
	case in.QueryAlias != nil || in.QueryParameters != nil:
		return nil, awsapi.Errorf("InvalidParameterException", "QueryAlias and QueryParameters cannot be used with QueryStatement.")
	}
	if o := in.EventDataStoreOwnerAccountId; o != nil && *o != c.Account {
		return nil, awsapi.Errorf("OperationNotPermittedException",
			"OpenTrail does not query other accounts' event data stores; EventDataStoreOwnerAccountId must be %s or absent.", c.Account)
	}
	stores, err := s.statementStores(c, *in.QueryStatement)
	if err != nil {
		return nil, err
	}
	if ch, ok := r.eng.(queryChecker); ok {
		if err := ch.Check(ctx, c.Account, *in.QueryStatement); err != nil {
			var qe *lakemodel.QueryError
			if errors.As(err, &qe) {
				return nil, awsapi.Errorf("InvalidQueryStatementException", "%s", queryErrorMessage(qe))
			}
			return nil, err
		}
	}
	q := &storedQuery{ID: uuid.NewString(), Account: c.Account, Region: c.Region, Statement: *in.QueryStatement,
		Status: queryQueued, Created: s.now().UTC()}
	for _, d := range stores {
		q.Stores = append(q.Stores, d.ID)
	}
	if in.DeliveryS3Uri != nil {
		bucket, _ := splitS3URI(*in.DeliveryS3Uri)
		if err := checkBucketName(bucket); err != nil {
			return nil, err
		}
		if err := s.checkBucketExists(ctx, bucket); err != nil {
			return nil, err
		}
		if err := s.checkDelivery(ctx, bucket, resultsPrefix(*in.DeliveryS3Uri), s.resultsDelivery(q, *in.DeliveryS3Uri, firstStore(q))); err != nil {
			return nil, err
		}
		q.DeliveryS3Uri, q.DeliveryStatus = *in.DeliveryS3Uri, "PENDING"
	}
	if err := r.submit(ctx, q); err != nil {
		return nil, err
	}
	out := struct {
		QueryId                      string `json:"QueryId"`
		EventDataStoreOwnerAccountId string `json:"EventDataStoreOwnerAccountId,omitempty"`
	}{QueryId: q.ID}
	if in.EventDataStoreOwnerAccountId != nil {
		out.EventDataStoreOwnerAccountId = c.Account
	}
	return out, nil
}

// splitS3URI splits s3://bucket/prefix (the model has checked the form).
func splitS3URI(uri string) (bucket, prefix string) {
	bucket, prefix, _ = strings.Cut(strings.TrimPrefix(uri, "s3://"), "/")
	return bucket, strings.TrimSuffix(prefix, "/")
}

// submit records q as QUEUED and starts it, unless its account already has
// the maximum of queries in progress.
func (r *queryRunner) submit(txn context.Context, q *storedQuery) error {
	r.mu.Lock()
	err := r.ctx.Err()
	n := 0
	for _, a := range r.active {
		if a.account == q.Account {
			n++
		}
	}
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("start query: %w", err)
	}
	if n >= r.opts.MaxConcurrentQueries {
		return awsapi.Errorf("MaxConcurrentQueriesException",
			"You are already running the maximum number of concurrent queries (%d). Wait for some queries to finish, and then run the query again.", r.opts.MaxConcurrentQueries)
	}
	if err := r.s.putState(txn, kv.StateQuery, q.Account, q.ID, q); err != nil {
		return err
	}
	// The query runs once its QUEUED state is durable with StartQuery's record
	// (the worker's own writes must not race the call's commit). The server
	// serialises an account's mutating calls until then, so the count above holds.
	kv.AfterCommit(txn, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.ctx.Err() != nil {
			return
		}
		ctx, cancel := context.WithCancel(r.ctx)
		r.active[q.ID] = &activeQuery{account: q.Account, cancel: cancel}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer cancel()
			r.run(ctx, q)
		}()
	})
	return nil
}

// run waits for a worker, runs q and records how it ended. A query that
// CancelQuery took out of r.active is already recorded CANCELLED.
func (r *queryRunner) run(ctx context.Context, q *storedQuery) {
	select {
	case r.sem <- struct{}{}:
		defer func() { <-r.sem }()
	case <-ctx.Done():
		r.finish(q, nil, ctx.Err(), nil)
		return
	}
	r.mu.Lock()
	if _, ok := r.active[q.ID]; !ok {
		r.mu.Unlock()
		return
	}
	q.Status, q.Started = queryRunning, r.s.now().UTC()
	err := r.s.putState(context.Background(), kv.StateQuery, q.Account, q.ID, q)
	r.mu.Unlock()
	if err != nil {
		r.finish(q, nil, err, nil)
		return
	}
	qctx, cancel := context.WithTimeout(ctx, r.opts.QueryTimeout)
	defer cancel()
	res, err := r.eng.Query(qctx, q.Account, q.Statement)
	r.finish(q, res, err, qctx.Err())
}

// finish records the end of q: FINISHED with its rows, or how it failed.
func (r *queryRunner) finish(q *storedQuery, res *lakemodel.Result, err, ctxErr error) {
	s := r.s
	delivery := ""
	if err == nil && q.DeliveryS3Uri != "" {
		delivery = s.deliverResults(r.ctx, q, res) // outside r.mu: it may be slow
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.active[q.ID]; !ok {
		return // cancelled
	}
	delete(r.active, q.ID)
	q.Ended = s.now().UTC()
	var qe *lakemodel.QueryError
	switch {
	case err == nil:
		q.Status = queryFinished
	case errors.Is(ctxErr, context.DeadlineExceeded):
		q.Status, q.Error = queryTimedOut, fmt.Sprintf("The query ran longer than %s and was stopped.", r.opts.QueryTimeout)
	case r.ctx.Err() != nil:
		q.Status, q.Error = queryFailed, "OpenTrail stopped before the query finished; run it again."
	case errors.As(err, &qe):
		q.Status, q.Error = queryFailed, queryErrorMessage(qe)
	default:
		s.log.Error("query failed", "query", q.ID, "err", err)
		q.Status, q.Error = queryFailed, "The query failed because of an internal error in OpenTrail; query ID "+q.ID+"."
	}
	if len(q.Error) > 1000 {
		q.Error = q.Error[:997] + "..."
	}
	if q.Status != queryFinished {
		if q.DeliveryS3Uri != "" {
			q.DeliveryStatus = "CANCELLED"
		}
		if err := s.putState(context.Background(), kv.StateQuery, q.Account, q.ID, q); err != nil {
			s.log.Error("record query", "query", q.ID, "err", err)
		}
		return
	}
	q.Columns, q.Rows, q.BytesScanned, q.EventsScanned = res.Columns, len(res.Rows), res.BytesScanned, res.EventsScanned
	q.Chunks = (len(res.Rows) + queryChunkRows - 1) / queryChunkRows
	if delivery != "" {
		q.DeliveryStatus = delivery
	}
	if err := s.writeResults(q, res.Rows); err != nil {
		s.log.Error("record query results", "query", q.ID, "err", err)
	}
}

// writeResults stores q, FINISHED, with its rows in one batch.
func (s *Service) writeResults(q *storedQuery, rows [][]*string) error {
	b := s.db.NewBatch()
	defer b.Close()
	for i := 0; i < q.Chunks; i++ {
		chunk, err := json.Marshal(rows[i*queryChunkRows : min((i+1)*queryChunkRows, len(rows))])
		if err != nil {
			return err
		}
		if err := b.Set(kv.StateKey(kv.StateQueryRows, q.Account, queryRowsName(q.ID, i)), chunk, nil); err != nil {
			return err
		}
	}
	meta, err := json.Marshal(q)
	if err != nil {
		return err
	}
	if err := b.Set(kv.StateKey(kv.StateQuery, q.Account, q.ID), meta, nil); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}

// deliverResults writes the results as gzipped CSV with a header row to
// DeliveryS3Uri/<QueryId>/result_1.csv.gz and returns the DeliveryStatus.
func (s *Service) deliverResults(ctx context.Context, q *storedQuery, res *lakemodel.Result) string {
	bucketName, prefix := splitS3URI(q.DeliveryS3Uri)
	bucket, err := s.buckets.Bucket(ctx, bucketName)
	if err != nil {
		return "RESOURCE_NOT_FOUND"
	}
	if err := s.mayDeliver(ctx, bucketName, s.resultsDelivery(q, q.DeliveryS3Uri, firstStore(q))); err != nil {
		s.log.Warn("query results not delivered", "query", q.ID, "err", err)
		return "ACCESS_DENIED"
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	w := csv.NewWriter(zw)
	w.Write(res.Columns)
	rec := make([]string, len(res.Columns))
	for _, row := range res.Rows {
		for i, v := range row {
			rec[i] = ""
			if v != nil {
				rec[i] = *v
			}
		}
		w.Write(rec)
	}
	w.Flush()
	zw.Close()
	key := resultsKey(prefix, q.ID)
	if err := bucket.Put(ctx, key, buf.Bytes(), nil); err != nil {
		s.log.Error("deliver query results", "query", q.ID, "err", err)
		return "FAILED"
	}
	return "SUCCESS"
}

// ---- DescribeQuery, GetQueryResults, ListQueries, CancelQuery ----

type queryRefInput struct {
	EventDataStore               *string
	QueryId                      *string
	QueryAlias                   *string
	RefreshId                    *string
	EventDataStoreOwnerAccountId *string
	NextToken                    *string
	MaxQueryResults              *int
}

// resolveQuery finds the query of c an input names. The deprecated
// EventDataStore member, when given, must name an existing store.
func (s *Service) resolveQuery(c auth.Caller, in *queryRefInput) (*storedQuery, error) {
	if in.QueryId == nil {
		if in.QueryAlias != nil || in.RefreshId != nil {
			return nil, awsapi.Errorf("UnsupportedOperationException",
				"QueryAlias and RefreshId describe the queries of CloudTrail Lake dashboards, which OpenTrail does not have; give QueryId.")
		}
		return nil, awsapi.Errorf("InvalidParameterException", "QueryId is required.")
	}
	if in.EventDataStore != nil {
		if _, err := s.resolveStore(c, *in.EventDataStore); err != nil {
			return nil, err
		}
	}
	q := new(storedQuery)
	found, err := s.getState(kv.StateQuery, c.Account, *in.QueryId, q)
	if err != nil {
		return nil, err
	}
	if !found || q.Region != c.Region {
		return nil, awsapi.Errorf("QueryIdNotFoundException", "The query ID %s does not exist or is not available in account %s in %s.", *in.QueryId, c.Account, c.Region)
	}
	// "After you run DeleteEventDataStore ..., you cannot run ListQueries, DescribeQuery,
	// or GetQueryResults on queries that are using an event data store in a PENDING_DELETION state."
	for _, id := range q.Stores {
		d := new(storedEDS)
		if found, err := s.getState(kv.StateEDS, c.Account, id, d); err != nil {
			return nil, err
		} else if found && d.Status == edsPendingDeletion {
			return nil, awsapi.Errorf("InactiveEventDataStoreException",
				"Query %s uses event data store %s, which is pending deletion.", q.ID, s.edsARN(d))
		}
	}
	return q, nil
}

func (q *storedQuery) execMillis(now time.Time) int64 {
	switch {
	case q.Started.IsZero():
		return 0
	case q.Ended.IsZero():
		return now.Sub(q.Started).Milliseconds()
	}
	return q.Ended.Sub(q.Started).Milliseconds()
}

func (s *Service) describeQuery(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in queryRefInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	q, err := s.resolveQuery(c, &in)
	if err != nil {
		return nil, err
	}
	type stats struct {
		EventsMatched         int64        `json:"EventsMatched"`
		EventsScanned         int64        `json:"EventsScanned"`
		BytesScanned          int64        `json:"BytesScanned"`
		ExecutionTimeInMillis int64        `json:"ExecutionTimeInMillis"`
		CreationTime          epochSeconds `json:"CreationTime"`
	}
	out := struct {
		QueryId                      string `json:"QueryId"`
		QueryString                  string `json:"QueryString"`
		QueryStatus                  string `json:"QueryStatus"`
		QueryStatistics              stats  `json:"QueryStatistics"`
		ErrorMessage                 string `json:"ErrorMessage,omitempty"`
		DeliveryS3Uri                string `json:"DeliveryS3Uri,omitempty"`
		DeliveryStatus               string `json:"DeliveryStatus,omitempty"`
		EventDataStoreOwnerAccountId string `json:"EventDataStoreOwnerAccountId,omitempty"`
	}{
		QueryId: q.ID, QueryString: q.Statement, QueryStatus: q.Status, ErrorMessage: q.Error,
		DeliveryS3Uri: q.DeliveryS3Uri, DeliveryStatus: q.DeliveryStatus,
		QueryStatistics: stats{EventsMatched: int64(q.Rows), EventsScanned: q.EventsScanned, BytesScanned: q.BytesScanned,
			ExecutionTimeInMillis: q.execMillis(s.now()), CreationTime: epochSeconds(q.Created)},
	}
	if in.EventDataStoreOwnerAccountId != nil {
		out.EventDataStoreOwnerAccountId = c.Account
	}
	return out, nil
}

// queryResultsToken resumes GetQueryResults of query Q at row Off.
type queryResultsToken struct {
	Q   string
	Off int
}

// defaultQueryPage is GetQueryResults' page size without MaxQueryResults (the model's maximum).
const defaultQueryPage = 1000

func (s *Service) getQueryResults(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in queryRefInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	q, err := s.resolveQuery(c, &in)
	if err != nil {
		return nil, err
	}
	off := 0
	if in.NextToken != nil {
		var tok queryResultsToken
		if err := decodePageToken(*in.NextToken, &tok); err != nil || tok.Q != q.ID || tok.Off <= 0 || tok.Off >= q.Rows {
			return nil, awsapi.Errorf("InvalidNextTokenException", "NextToken is not one that GetQueryResults returned for query %s.", q.ID)
		}
		off = tok.Off
	}
	n := defaultQueryPage
	if in.MaxQueryResults != nil {
		n = *in.MaxQueryResults
	}
	type stats struct {
		ResultsCount      int   `json:"ResultsCount"`
		TotalResultsCount int   `json:"TotalResultsCount"`
		BytesScanned      int64 `json:"BytesScanned"`
	}
	out := struct {
		QueryStatus     string                `json:"QueryStatus"`
		QueryStatistics stats                 `json:"QueryStatistics"`
		QueryResultRows [][]map[string]string `json:"QueryResultRows"`
		NextToken       string                `json:"NextToken,omitempty"`
		ErrorMessage    string                `json:"ErrorMessage,omitempty"`
	}{QueryStatus: q.Status, ErrorMessage: q.Error, QueryResultRows: [][]map[string]string{},
		QueryStatistics: stats{TotalResultsCount: q.Rows, BytesScanned: q.BytesScanned}}
	if q.Status != queryFinished {
		return out, nil
	}
	rows, err := s.readRows(q, off, n)
	if err != nil {
		return nil, err
	}
	for _, row := range rows {
		out.QueryResultRows = append(out.QueryResultRows, resultRow(q.Columns, row))
	}
	out.QueryStatistics.ResultsCount = len(rows)
	if end := off + len(rows); end < q.Rows {
		out.NextToken = encodePageToken(queryResultsToken{Q: q.ID, Off: end})
	}
	return out, nil
}

// resultRow is one row in AWS's format: a list of one-member objects, column
// name to value, in column order. SQL NULL is the empty string: the model's
// values are strings and have no null.
func resultRow(cols []string, row []*string) []map[string]string {
	out := make([]map[string]string, len(cols))
	for i, col := range cols {
		v := ""
		if i < len(row) && row[i] != nil {
			v = *row[i]
		}
		out[i] = map[string]string{col: v}
	}
	return out
}

// readRows reads rows [off, off+n) of q's results.
func (s *Service) readRows(q *storedQuery, off, n int) ([][]*string, error) {
	var out [][]*string
	for chunk := off / queryChunkRows; chunk < q.Chunks && len(out) < n; chunk++ {
		var rows [][]*string
		found, err := s.getState(kv.StateQueryRows, q.Account, queryRowsName(q.ID, chunk), &rows)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("cloudtrail: query %s: result chunk %d is missing", q.ID, chunk)
		}
		first := chunk * queryChunkRows
		from := max(off-first, 0)
		out = append(out, rows[min(from, len(rows)):min(from+n-len(out), len(rows))]...)
	}
	return out, nil
}

type listQueriesInput struct {
	EventDataStore string
	NextToken      *string
	MaxResults     *int
	StartTime      *float64
	EndTime        *float64
	QueryStatus    *string
}

func epochTime(f float64) time.Time {
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC()
}

// listQueries lists the queries of the last ResultTTL that name a store,
// newest first.
func (s *Service) listQueries(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in listQueriesInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	d, err := s.resolveActiveStore(c, in.EventDataStore)
	if err != nil {
		return nil, err
	}
	var from, to time.Time
	if in.StartTime != nil {
		from = epochTime(*in.StartTime)
	}
	if in.EndTime != nil {
		to = epochTime(*in.EndTime)
	}
	if !from.IsZero() && !to.IsZero() && from.After(to) {
		return nil, awsapi.Errorf("InvalidDateRangeException", "StartTime %s is after EndTime %s.", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	after, err := pageStart("ListQueries", in.NextToken)
	if err != nil {
		return nil, err
	}
	type queryInfo struct {
		QueryId      string       `json:"QueryId"`
		QueryStatus  string       `json:"QueryStatus"`
		CreationTime epochSeconds `json:"CreationTime"`
		key          string
	}
	var infos []queryInfo
	err = s.listState(kv.StateQuery, c.Account, func(raw []byte) error {
		q := new(storedQuery)
		if err := json.Unmarshal(raw, q); err != nil {
			return fmt.Errorf("cloudtrail: decode query: %w", err)
		}
		switch {
		case !slices.Contains(q.Stores, d.ID),
			!from.IsZero() && q.Created.Before(from),
			!to.IsZero() && q.Created.After(to),
			in.QueryStatus != nil && q.Status != *in.QueryStatus:
			return nil
		}
		key := fmt.Sprintf("%020d/%s", math.MaxInt64-q.Created.UnixNano(), q.ID)
		infos = append(infos, queryInfo{QueryId: q.ID, QueryStatus: q.Status, CreationTime: epochSeconds(q.Created), key: key})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(infos, func(a, b queryInfo) int { return cmp.Compare(a.key, b.key) })
	n := cmp.Or(s.lake.queryPage, 100)
	if in.MaxResults != nil {
		n = *in.MaxResults
	}
	got, next := page(infos, func(q queryInfo) string { return q.key }, after, n)
	if got == nil {
		got = []queryInfo{}
	}
	return struct {
		Queries   []queryInfo `json:"Queries"`
		NextToken string      `json:"NextToken,omitempty"`
	}{got, next}, nil
}

func (s *Service) cancelQuery(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in queryRefInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	q, err := s.resolveQuery(c, &in)
	if err != nil {
		return nil, err
	}
	r := s.lake.q
	inactive := awsapi.Errorf("InactiveQueryException", "Query %s is %s and cannot be cancelled; only QUEUED and RUNNING queries can.", q.ID, q.Status)
	if r == nil {
		return nil, inactive
	}
	r.mu.Lock()
	a, ok := r.active[q.ID]
	r.mu.Unlock()
	if !ok {
		// Re-read: the query may have ended since resolveQuery.
		if found, err := s.getState(kv.StateQuery, c.Account, q.ID, q); err != nil || !found {
			return nil, cmp.Or(err, error(inactive))
		}
		return nil, awsapi.Errorf("InactiveQueryException", "Query %s is %s and cannot be cancelled; only QUEUED and RUNNING queries can.", q.ID, q.Status)
	}
	if _, err := s.getState(kv.StateQuery, c.Account, q.ID, q); err != nil {
		return nil, err
	}
	q.Status, q.Ended = queryCancelled, s.now().UTC()
	if q.DeliveryS3Uri != "" {
		q.DeliveryStatus = "CANCELLED"
	}
	if err := s.putState(ctx, kv.StateQuery, q.Account, q.ID, q); err != nil {
		return nil, err
	}
	// The worker stops once CANCELLED is durable with CancelQuery's record.
	kv.AfterCommit(ctx, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.active[q.ID] == a {
			delete(r.active, q.ID)
			a.cancel()
		}
	})
	out := struct {
		QueryId                      string `json:"QueryId"`
		QueryStatus                  string `json:"QueryStatus"`
		EventDataStoreOwnerAccountId string `json:"EventDataStoreOwnerAccountId,omitempty"`
	}{QueryId: q.ID, QueryStatus: q.Status}
	if in.EventDataStoreOwnerAccountId != nil {
		out.EventDataStoreOwnerAccountId = c.Account
	}
	return out, nil
}
