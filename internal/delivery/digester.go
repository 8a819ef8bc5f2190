package delivery

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/digest"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/trail"
)

// Digester writes the signed digest files of trails with log file validation:
// one per trail and region every interval (even when no file was delivered),
// chained by the previous digest's signature, and a final one when a trail
// stops logging or is deleted. A digest covers the streams' regions: the home
// region always, and every region the trail has delivered a file for.
type Digester struct {
	keys     *digest.KeyRing
	interval time.Duration
}

// NewDigester signs with keys every interval (default 1h).
func NewDigester(keys *digest.KeyRing, interval time.Duration) *Digester {
	if interval <= 0 {
		interval = time.Hour
	}
	return &Digester{keys: keys, interval: interval}
}

// due writes the digests whose interval has closed.
func (d *Digester) due(ctx context.Context, w *Worker) {
	now := w.o.Now().UTC().Truncate(time.Second)
	for i := range w.configs {
		tc := &w.configs[i]
		if tc.LogFileValidation {
			// The home region has a digest every interval even if it never had an event.
			w.stream(tc, streamID{Account: tc.Account, HomeRegion: tc.HomeRegion, Trail: tc.Name, Region: tc.HomeRegion})
		}
	}
	for _, s := range w.streams {
		if s.id.Insight {
			continue
		}
		if !s.trail.LogFileValidation {
			if s.state.DigestStart != (time.Time{}) || s.state.Prev != nil || len(s.state.Files) > 0 {
				// Validation was turned off: the next digest, if any, starts a new chain.
				s.state.DigestStart, s.state.Prev, s.state.Files = time.Time{}, nil, nil
				w.saveState(s)
			}
			continue
		}
		if s.state.DigestStart.IsZero() {
			s.state.DigestStart = now
			w.saveState(s)
			continue
		}
		if now.Sub(s.state.DigestStart) >= d.interval && now.After(s.retryAt) {
			d.write(ctx, w, s, now, false)
		}
	}
}

// final writes the last digest of a stream whose trail stopped logging or was
// deleted; the next digest after logging starts again begins a new chain.
func (d *Digester) final(ctx context.Context, w *Worker, s *stream) {
	if !s.trail.LogFileValidation || s.state.DigestStart.IsZero() {
		return
	}
	d.write(ctx, w, s, w.o.Now().UTC().Truncate(time.Second), true)
}

func (d *Digester) write(ctx context.Context, w *Worker, s *stream, end time.Time, last bool) {
	files := len(s.state.Files)
	key, err := d.put(ctx, w, s, end, last)
	w.report(s, trail.DeliveryDigest, end, err)
	if err != nil {
		s.failed(err, w.o.Now())
		if ctx.Err() == nil { // a shutdown cancels the upload: it is retried after the restart
			w.log.Warn("digest delivery failed; will retry", "trail", s.trail.ARN, "region", s.id.Region, "err", err)
		}
		return
	}
	w.log.Info("delivered digest file", "trail", s.trail.ARN, "region", s.id.Region, "bucket", s.trail.S3BucketName, "key", key, "log_files", files)
}

// put writes the digest and returns its key.
func (d *Digester) put(ctx context.Context, w *Worker, s *stream, end time.Time, last bool) (string, error) {
	object := digest.DigestKey(s.trail.S3KeyPrefix, s.id.Account, s.id.Region, s.id.Trail, s.id.HomeRegion, end)
	bucket, err := w.openBucket(ctx, s, object)
	if err != nil {
		return "", err
	}
	dg := &digest.Digest{
		AWSAccountID:    s.id.Account,
		DigestStartTime: digest.Time(s.state.DigestStart),
		DigestEndTime:   digest.Time(end),
		DigestS3Bucket:  bucket.Name(),
		DigestS3Object:  object,
	}
	for _, f := range s.state.Files {
		dg.AddLogFile(digest.LogFile{S3Bucket: f.Bucket, S3Object: f.Key, HashValue: f.Hash, HashAlgorithm: digest.HashAlgorithm,
			NewestEventTime: digest.Time(f.Newest), OldestEventTime: digest.Time(f.Oldest)})
	}
	var prev *digest.Sealed
	if p := s.state.Prev; p != nil {
		prev = &digest.Sealed{Bucket: p.Bucket, Key: p.Key, Hash: p.Hash, Signature: p.Signature}
	}
	dg.Chain(prev)
	key, err := d.keys.Current(s.id.Region, end)
	if err != nil {
		return "", err
	}
	sealed, err := digest.Seal(dg, key)
	if err != nil {
		return "", err
	}
	if err := bucket.Put(ctx, sealed.Key, sealed.Body, sealed.Meta); err != nil {
		return "", fmt.Errorf("put %s: %w", sealed.Key, err)
	}
	s.state.Files = nil
	if last {
		s.state.DigestStart, s.state.Prev = time.Time{}, nil
	} else {
		s.state.DigestStart = end
		s.state.Prev = &digestLink{Bucket: sealed.Bucket, Key: sealed.Key, Hash: sealed.Hash, Signature: sealed.Signature}
	}
	s.backoff, s.retryAt = 0, time.Time{}
	return sealed.Key, w.saveState(s)
}

// SealedKeyStore keeps the digest signing keys in the database, sealed with
// AES-256-GCM under key (32 bytes), so that the database alone reveals no key.
type SealedKeyStore struct {
	db   *pebble.DB
	aead cipher.AEAD
}

// NewSealedKeyStore returns a key store over db.
func NewSealedKeyStore(db *pebble.DB, key []byte) (*SealedKeyStore, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &SealedKeyStore{db: db, aead: aead}, nil
}

var keyRingKey = kv.StateKey(kv.StateDigestKeys, "", "ring")

// Load returns the saved key ring, or nil when none was saved.
func (k *SealedKeyStore) Load() ([]byte, error) {
	v, closer, err := k.db.Get(keyRingKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	ns := k.aead.NonceSize()
	if len(v) < ns {
		return nil, errors.New("delivery: sealed key ring too short")
	}
	return k.aead.Open(nil, v[:ns], v[ns:], keyRingKey)
}

// Save durably replaces the saved key ring.
func (k *SealedKeyStore) Save(b []byte) error {
	nonce := make([]byte, k.aead.NonceSize())
	rand.Read(nonce)
	return k.db.Set(keyRingKey, k.aead.Seal(nonce, nonce, b, keyRingKey), pebble.Sync)
}
