package digest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// DefaultKeyPeriod is how long a signing key stays current before the ring rotates it.
const DefaultKeyPeriod = 30 * 24 * time.Hour

// keyBits is the size of the RSA keys the ring makes.
const keyBits = 2048

// Key is one region's signing key with its validity window: the key signs digests whose
// end time falls in [ValidityStartTime, ValidityEndTime).
type Key struct {
	Region                             string
	Private                            *rsa.PrivateKey
	ValidityStartTime, ValidityEndTime time.Time
	Fingerprint                        string // hex MD5 of the DER PKCS#1 public key
	der                                []byte // the DER PKCS#1 public key
}

// Public is the key as ListPublicKeys gives it.
func (k *Key) Public() PublicKey {
	return PublicKey{Value: k.der, ValidityStartTime: k.ValidityStartTime, ValidityEndTime: k.ValidityEndTime, Fingerprint: k.Fingerprint}
}

// PublicKey is one entry of ListPublicKeys. On the wire Value is a blob, so base64 of the
// DER once: the SDKs decode it to these bytes, and the AWS CLI (which leaves blobs
// undecoded) base64-decodes it itself before loading it.
type PublicKey struct {
	Value                              []byte // DER PKCS#1 RSAPublicKey
	ValidityStartTime, ValidityEndTime time.Time
	Fingerprint                        string // hex MD5 of Value
}

// KeyStore keeps the ring's saved form, which holds private keys: the caller encrypts it
// at rest. Load returns nil and no error when nothing was ever saved.
type KeyStore interface {
	Load() ([]byte, error)
	Save([]byte) error
}

// KeyRing holds the signing keys of every region, rotating each region's key once its
// period is over. Rotated-out keys stay, with their windows, so ListPublicKeys keeps
// returning them for old digests. Safe for concurrent use.
type KeyRing struct {
	store  KeyStore
	period time.Duration

	mu   sync.Mutex
	keys map[string][]*Key // by region, ordered by ValidityStartTime, windows disjoint
}

// ---------------------------------------------------------------------------------------
// Part of the format: the saved form of a KeyRing, read back by every later version.
// ---------------------------------------------------------------------------------------

const keyRingVersion = 1

type keyRingFile struct {
	Version int         `json:"version"`
	Keys    []keyRecord `json:"keys"`
}

type keyRecord struct {
	Region            string    `json:"region"`
	PrivateKey        []byte    `json:"privateKey"` // DER PKCS#1 RSAPrivateKey (base64 in JSON)
	ValidityStartTime time.Time `json:"validityStartTime"`
	ValidityEndTime   time.Time `json:"validityEndTime"`
}

// ---------------------------------------------------------------------------------------

// OpenKeyRing loads the ring saved in store (an empty ring if none). Keys rotate every
// period (DefaultKeyPeriod if zero).
func OpenKeyRing(store KeyStore, period time.Duration) (*KeyRing, error) {
	if period <= 0 {
		period = DefaultKeyPeriod
	}
	r := &KeyRing{store: store, period: period, keys: map[string][]*Key{}}
	b, err := store.Load()
	if err != nil {
		return nil, fmt.Errorf("digest: load key ring: %w", err)
	}
	if len(b) == 0 {
		return r, nil
	}
	var f keyRingFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("digest: load key ring: %w", err)
	}
	if f.Version != keyRingVersion {
		return nil, fmt.Errorf("digest: load key ring: version %d, want %d", f.Version, keyRingVersion)
	}
	for i, rec := range f.Keys {
		priv, err := x509.ParsePKCS1PrivateKey(rec.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("digest: load key ring: key %d (%s): %w", i, rec.Region, err)
		}
		k := newKey(rec.Region, priv, rec.ValidityStartTime, rec.ValidityEndTime)
		r.keys[k.Region] = append(r.keys[k.Region], k)
	}
	for _, ks := range r.keys {
		slices.SortFunc(ks, func(a, b *Key) int { return a.ValidityStartTime.Compare(b.ValidityStartTime) })
	}
	return r, nil
}

func newKey(region string, priv *rsa.PrivateKey, start, end time.Time) *Key {
	der := x509.MarshalPKCS1PublicKey(&priv.PublicKey)
	return &Key{Region: region, Private: priv, ValidityStartTime: start.UTC(), ValidityEndTime: end.UTC(), Fingerprint: fingerprint(der), der: der}
}

// Current returns region's key for signing a digest that ends at t: the key whose window
// holds t. Past the newest window it makes the next key (the first one for a new
// region); otherwise it stretches the window that follows t back to t. A new key or
// window is saved before it is returned: a key whose public half could be lost must
// never sign.
func (r *KeyRing) Current(region string, t time.Time) (*Key, error) {
	t = t.UTC().Truncate(time.Second)
	r.mu.Lock()
	defer r.mu.Unlock()
	ks := r.keys[region]
	for i := len(ks) - 1; i >= 0; i-- {
		if k := ks[i]; !t.Before(k.ValidityStartTime) && t.Before(k.ValidityEndTime) {
			c := *k
			return &c, nil
		}
	}
	next := slices.Clone(ks)
	var k *Key
	if i := slices.IndexFunc(ks, func(k *Key) bool { return k.ValidityStartTime.After(t) }); i >= 0 {
		// t is before a window and in none: a clock set back, or a hole left by a server
		// that was down. Widen the window that follows t rather than have two keys claim
		// one time.
		c := *ks[i]
		c.ValidityStartTime = t
		k, next[i] = &c, &c
	} else {
		start := t
		if len(ks) > 0 {
			// Follow on from the newest window unless t is a whole period past it.
			if last := ks[len(ks)-1].ValidityEndTime; t.Before(last.Add(r.period)) {
				start = last
			}
		}
		priv, err := rsa.GenerateKey(rand.Reader, keyBits)
		if err != nil {
			return nil, fmt.Errorf("digest: new key for %s: %w", region, err)
		}
		k = newKey(region, priv, start, start.Add(r.period))
		next = append(next, k)
	}
	if err := r.save(region, next); err != nil {
		return nil, err
	}
	r.keys[region] = next
	c := *k
	return &c, nil
}

// save stores the ring as it would be with region's keys replaced by ks.
func (r *KeyRing) save(region string, ks []*Key) error {
	f := keyRingFile{Version: keyRingVersion}
	regions := make([]string, 0, len(r.keys)+1)
	for reg := range r.keys {
		regions = append(regions, reg)
	}
	if _, ok := r.keys[region]; !ok {
		regions = append(regions, region)
	}
	slices.Sort(regions)
	for _, reg := range regions {
		list := r.keys[reg]
		if reg == region {
			list = ks
		}
		for _, k := range list {
			f.Keys = append(f.Keys, keyRecord{Region: reg, PrivateKey: x509.MarshalPKCS1PrivateKey(k.Private),
				ValidityStartTime: k.ValidityStartTime, ValidityEndTime: k.ValidityEndTime})
		}
	}
	b, err := json.Marshal(&f)
	if err != nil {
		return fmt.Errorf("digest: save key ring: %w", err)
	}
	if err := r.store.Save(b); err != nil {
		return fmt.Errorf("digest: save key ring: %w", err)
	}
	return nil
}

// PublicKeys is ListPublicKeys for region: the keys whose windows meet [start, end], both
// ends inclusive, oldest first.
func (r *KeyRing) PublicKeys(region string, start, end time.Time) []PublicKey {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []PublicKey
	for _, k := range r.keys[region] {
		if !k.ValidityStartTime.After(end) && !k.ValidityEndTime.Before(start) {
			out = append(out, k.Public())
		}
	}
	return out
}

// FileKeyStore keeps a key ring in a file (mode 0600), replaced atomically on Save.
func FileKeyStore(path string) KeyStore { return fileKeyStore(path) }

type fileKeyStore string

func (p fileKeyStore) Load() ([]byte, error) {
	b, err := os.ReadFile(string(p))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

func (p fileKeyStore) Save(b []byte) (err error) {
	dir := filepath.Dir(string(p))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".keyring-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(b); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), string(p)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
