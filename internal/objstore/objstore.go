// Package objstore is where trails deliver: buckets of objects with metadata,
// on local folders (the zero-config default) or any S3-compatible service.
// Both backends satisfy one contract, tested by one suite (objstoretest).
package objstore

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned for a missing bucket or object.
var ErrNotFound = errors.New("objstore: not found")

// Object describes one stored object.
type Object struct {
	Key          string
	Size         int64
	LastModified time.Time
}

// Bucket is one bucket. Keys are S3 object keys ("a/b/c.json.gz").
type Bucket interface {
	// Name is the bucket's name.
	Name() string
	// Put stores body under key with user metadata (S3 "x-amz-meta-*", names lower-case),
	// replacing any object there. It returns only once the object is durable.
	Put(ctx context.Context, key string, body []byte, meta map[string]string) error
	// Get returns an object's body and metadata, or ErrNotFound.
	Get(ctx context.Context, key string) (body []byte, meta map[string]string, err error)
	// Head returns an object's description and metadata, or ErrNotFound.
	Head(ctx context.Context, key string) (Object, map[string]string, error)
	// List returns up to max objects whose keys start with prefix and sort after
	// startAfter, in lexical key order (max <= 0: all).
	List(ctx context.Context, prefix, startAfter string, max int) ([]Object, error)
	// Delete removes an object; deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error
}

// Store is a set of buckets.
type Store interface {
	// Bucket returns the named bucket, or ErrNotFound when it does not exist.
	Bucket(ctx context.Context, name string) (Bucket, error)
	// CreateBucket creates a bucket (no error if it exists already).
	CreateBucket(ctx context.Context, name string) error
}
