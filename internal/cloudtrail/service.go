// Package cloudtrail implements the CloudTrail API operations: trails
// (CreateTrail … GetTrailStatus, StartLogging/StopLogging), event and insight
// selectors, tags, LookupEvents over the event history, ListPublicKeys, and
// CloudTrail Lake: event data stores, channels (the control plane of
// PutAuditEvents) and queries (StartQuery … CancelQuery), whose SQL an Engine
// runs. Handlers take a request body that awsapi has already checked against
// the service model and return a JSON-marshalable response or an
// *awsapi.Error; the server does the wire work.
//
// The Service is also the trail.Registry the projections read the trails from
// and report delivery status to, and it hands the Lake its event data store
// definitions (StoreDefs).
package cloudtrail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/digest"
	"github.com/opentrail/opentrail/internal/history"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/objstore"
)

// Options configure a Service.
type Options struct {
	Now func() time.Time
	// Partition of the ARNs the service makes; default "aws".
	Partition string
	// Buckets, when set, is where trails deliver: CreateTrail and UpdateTrail
	// check that the named bucket exists.
	Buckets objstore.Store
	// PublicKeys lists the digest signing keys of a region valid in [start, end], for ListPublicKeys.
	PublicKeys func(region string, start, end time.Time) []digest.PublicKey
	// Lake configures event data stores, channels and queries; StartLake starts the queries.
	Lake LakeOptions
}

// Service serves CloudTrail operations over the shared database.
type Service struct {
	db         *pebble.DB
	store      *history.Store
	tokens     *history.Tokens
	log        *slog.Logger
	now        func() time.Time
	part       string
	buckets    objstore.Store
	publicKeys func(region string, start, end time.Time) []digest.PublicKey
	ops        awsapi.Ops[*Service, auth.Caller]

	// trailMu serialises the read-modify-write sequences on trails (trails*.go):
	// name uniqueness and the per-Region quota span several stored objects.
	trailMu sync.Mutex
	// trailsVersion counts trail configuration changes (TrailsVersion).
	trailsVersion atomic.Uint64
	// Page sizes of ListTrails and ListTags; zero picks the default. Tests lower them.
	trailPage, tagPage int

	// lakeMu serialises the read-modify-write sequences on event data stores
	// and channels (lake_*.go, channels.go).
	lakeMu sync.Mutex
	lake   lakeState

	insightsCache insightsCache
}

type opFunc = func(s *Service, ctx context.Context, c auth.Caller, body []byte) (any, error)

// New returns a Service.
func New(db *pebble.DB, st *history.Store, tokens *history.Tokens, log *slog.Logger, o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Partition == "" {
		o.Partition = "aws"
	}
	s := &Service{db: db, store: st, tokens: tokens, log: log.With("component", "cloudtrail"), now: o.Now, part: o.Partition, buckets: o.Buckets, publicKeys: o.PublicKeys}
	s.ops = awsapi.Ops[*Service, auth.Caller]{}
	maps.Copy(s.ops, trailOps)
	maps.Copy(s.ops, lookupOps)
	maps.Copy(s.ops, lakeOps)
	maps.Copy(s.ops, insightOps)
	s.lake.opts = o.Lake
	s.lake.opts.setDefaults()
	s.ops["ListPublicKeys"] = (*Service).listPublicKeys
	return s
}

// Handles reports whether op is implemented.
func (s *Service) Handles(op string) bool { _, ok := s.ops[op]; return ok }

// Handle runs op for c. body is the request JSON, already valid against the model.
func (s *Service) Handle(ctx context.Context, c auth.Caller, op string, body []byte) (any, error) {
	return s.ops.Call(s, ctx, c, op, body)
}

// ReadOnly reports whether op only reads (Get*, Describe*, List*, LookupEvents, ...):
// what reader keys may call, and the readOnly flag of its self-audit record.
func ReadOnly(op string) bool {
	for _, p := range []string{"Get", "Describe", "List", "Lookup", "Search"} {
		if len(op) > len(p) && op[:len(p)] == p {
			return true
		}
	}
	return false
}

// decode unmarshals a request body (already valid against the model).
func decode(body []byte, v any) error {
	if len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return awsapi.Errorf("SerializationException", "%v", err)
	}
	return nil
}

// getState reads one control-plane object into v; found is false when absent.
func (s *Service) getState(kind, account, name string, v any) (found bool, err error) {
	b, closer, err := s.db.Get(kv.StateKey(kind, account, name))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cloudtrail: read %s %s: %w", kind, name, err)
	}
	defer closer.Close()
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("cloudtrail: decode %s %s: %w", kind, name, err)
	}
	return true, nil
}

// putState durably writes one control-plane object: with the call's audit
// record when ctx carries the call's transaction (kv.Txn), else on its own.
func (s *Service) putState(ctx context.Context, kind, account, name string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Set(kv.StateKey(kind, account, name), raw, nil); err == nil {
		err = kv.Commit(ctx, b, true)
	}
	if err != nil {
		return fmt.Errorf("cloudtrail: write %s %s: %w", kind, name, err)
	}
	return nil
}

// deleteState durably removes one control-plane object, as putState writes one.
func (s *Service) deleteState(ctx context.Context, kind, account, name string) error {
	b := s.db.NewBatch()
	defer b.Close()
	err := b.Delete(kv.StateKey(kind, account, name), nil)
	if err == nil {
		err = kv.Commit(ctx, b, true)
	}
	if err != nil {
		return fmt.Errorf("cloudtrail: delete %s %s: %w", kind, name, err)
	}
	return nil
}

// listState calls fn with every object of kind in account ("" = every account), in key order.
func (s *Service) listState(kind, account string, fn func(raw []byte) error) error {
	lo := kv.StatePrefix(kind, account)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: kv.PrefixUpper(lo)})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if err := fn(it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}

// checkBucketExists answers S3BucketDoesNotExistException for a missing bucket.
func (s *Service) checkBucketExists(ctx context.Context, name string) error {
	if s.buckets == nil {
		return nil
	}
	_, err := s.buckets.Bucket(ctx, name)
	if errors.Is(err, objstore.ErrNotFound) {
		return awsapi.Errorf("S3BucketDoesNotExistException", "S3 bucket %s does not exist.", name)
	}
	if err != nil {
		return fmt.Errorf("check bucket %s: %w", name, err)
	}
	return nil
}
