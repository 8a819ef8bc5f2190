package kv

import (
	"context"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// Txn collects the control-plane writes of one API call, so that they commit
// in the same Pebble batch as the call's audit record: no change without its
// record. The server opens one per mutating call and puts it in the call's
// context; the services write through Commit, which uses the transaction when
// the context carries one and the database otherwise (background work:
// delivery status, query workers, projections). The locks a call takes with
// Hold keep others from reading what it changed before it is durable.
//
// What a call changes outside the database (caches, counters, waiters) is
// registered with AfterCommit and runs only once the batch is durable.
type Txn struct {
	b       *pebble.Batch
	after   []func()
	release []func() // locks held for the call (Hold), released by Close
}

// NewTxn starts a transaction over db.
func NewTxn(db *pebble.DB) *Txn { return &Txn{b: db.NewBatch()} }

// Batch is what the transaction would commit.
func (t *Txn) Batch() *pebble.Batch { return t.b }

// Committed runs, in order, what the call registered with AfterCommit. Call it
// once the batch is durable.
func (t *Txn) Committed() {
	for _, f := range t.after {
		f()
	}
	t.after = nil
}

// Close releases the batch (what was not committed is dropped) and the locks
// the call held.
func (t *Txn) Close() error {
	for i := len(t.release) - 1; i >= 0; i-- {
		t.release[i]()
	}
	t.release = nil
	if t.b == nil {
		return nil
	}
	err := t.b.Close()
	t.b = nil
	return err
}

type txnKey struct{}

// WithTxn returns ctx carrying t.
func WithTxn(ctx context.Context, t *Txn) context.Context { return context.WithValue(ctx, txnKey{}, t) }

// TxnFrom returns the transaction ctx carries, or nil.
func TxnFrom(ctx context.Context) *Txn {
	t, _ := ctx.Value(txnKey{}).(*Txn)
	return t
}

// Commit commits b: into ctx's transaction when there is one, else to the
// database, synced when sync is set. b stays the caller's to close.
func Commit(ctx context.Context, b *pebble.Batch, sync bool) error {
	if t := TxnFrom(ctx); t != nil {
		return t.b.Apply(b, nil)
	}
	opt := pebble.NoSync
	if sync {
		opt = pebble.Sync
	}
	return b.Commit(opt)
}

// AfterCommit runs f once ctx's transaction is durable, or now when ctx
// carries none.
func AfterCommit(ctx context.Context, f func()) {
	if t := TxnFrom(ctx); t != nil {
		t.after = append(t.after, f)
		return
	}
	f()
}

// Hold locks mu for the rest of the call: with a transaction in ctx, until it
// is committed or dropped (the returned func then does nothing), so that no
// one reads what the call changes before it is durable; without one, until the
// returned func is called.
func Hold(ctx context.Context, mu sync.Locker) (release func()) {
	mu.Lock()
	if t := TxnFrom(ctx); t != nil {
		t.release = append(t.release, mu.Unlock)
		return func() {}
	}
	return mu.Unlock
}
