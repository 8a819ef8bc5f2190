// Package auth keeps OpenTrail's access keys: who they belong to, what they may
// do, and their secrets, sealed with AES-256-GCM under a master key that lives
// in its own file, so that a copy of the database alone reveals no secret.
//
// SigV4 needs the plaintext secret to recompute a signature, so secrets are
// encrypted rather than hashed.
package auth

import (
	"bytes"
	"cmp"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/kv"
)

// Roles a key can have.
const (
	RoleRoot   = "root"   // the operator: everything, ingest for any account
	RoleAdmin  = "admin"  // everything in its own account
	RoleReader = "reader" // read-only API calls
	RoleWriter = "writer" // ingest only
)

// Key is an access key and its owner. The secret is not part of it.
type Key struct {
	AccessKeyID string    `json:"accessKeyId"`
	Account     string    `json:"account"`
	User        string    `json:"user"`
	Role        string    `json:"role"`
	Created     time.Time `json:"created"`
	Sealed      []byte    `json:"sealed"` // nonce | AES-GCM(secret)
	// Disabled keys fail authentication (AWS's "Inactive"); absent in keys stored before it existed.
	Disabled bool `json:"disabled,omitempty"`
}

// ARN is the key owner's IAM-style ARN.
func (k Key) ARN() string {
	if k.Role == RoleRoot {
		return "arn:aws:iam::" + k.Account + ":root"
	}
	return "arn:aws:iam::" + k.Account + ":user/" + k.User
}

// Errors of the keyring.
var (
	ErrExists   = errors.New("auth: access key already exists")
	ErrNotFound = errors.New("auth: no such access key")
	ErrRootKey  = errors.New("auth: the root key cannot be disabled or deleted; set OPENTRAIL_ROOT_ACCESS_KEY_ID and OPENTRAIL_ROOT_SECRET_ACCESS_KEY and restart to replace it")
)

var (
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
	userRE    = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
)

// Keyring stores keys in the database.
type Keyring struct {
	db     *pebble.DB
	aead   cipher.AEAD
	master []byte

	mu    sync.RWMutex
	cache map[string]cached
}

type cached struct {
	key    Key
	secret string
}

// Open opens the keyring; the master key is read from masterKeyFile, created (0600) if absent.
func Open(db *pebble.DB, masterKeyFile string) (*Keyring, error) {
	mk, err := os.ReadFile(masterKeyFile)
	if errors.Is(err, os.ErrNotExist) {
		mk = make([]byte, 32)
		rand.Read(mk)
		if err := writeFileSync(masterKeyFile, mk); err != nil {
			return nil, fmt.Errorf("auth: create master key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("auth: read master key: %w", err)
	}
	if len(mk) != 32 {
		return nil, fmt.Errorf("auth: master key %s has %d bytes, want 32", masterKeyFile, len(mk))
	}
	block, err := aes.NewCipher(mk)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Keyring{db: db, aead: aead, master: mk, cache: map[string]cached{}}, nil
}

func writeFileSync(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Lookup returns an enabled key and its secret: a disabled key is not found.
func (k *Keyring) Lookup(accessKeyID string) (Key, string, bool) {
	key, secret, ok := k.get(accessKeyID)
	if !ok || key.Disabled {
		return Key{}, "", false
	}
	return key, secret, true
}

// Get returns a key, enabled or not, without its secret.
func (k *Keyring) Get(accessKeyID string) (Key, bool) {
	key, _, ok := k.get(accessKeyID)
	return key, ok
}

func (k *Keyring) get(accessKeyID string) (Key, string, bool) {
	k.mu.RLock()
	c, ok := k.cache[accessKeyID]
	k.mu.RUnlock()
	if ok {
		return c.key, c.secret, true
	}
	b, closer, err := k.db.Get(kv.StateKey(kv.StateAccessKey, "", accessKeyID))
	if err != nil {
		return Key{}, "", false
	}
	var key Key
	err = json.Unmarshal(b, &key)
	closer.Close()
	if err != nil {
		return Key{}, "", false
	}
	secret, err := k.open(key)
	if err != nil {
		return Key{}, "", false
	}
	k.mu.Lock()
	k.cache[accessKeyID] = cached{key: key, secret: secret}
	k.mu.Unlock()
	return key, secret, true
}

// List returns the keys of account ("" = every account), sorted by account, user and ID.
func (k *Keyring) List(account string) ([]Key, error) {
	prefix := kv.StatePrefix(kv.StateAccessKey, "")
	it, err := k.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("auth: list keys: %w", err)
	}
	defer it.Close()
	var keys []Key
	for it.First(); it.Valid(); it.Next() {
		var key Key
		if err := json.Unmarshal(it.Value(), &key); err != nil {
			return nil, fmt.Errorf("auth: list keys: %s: %w", it.Key(), err)
		}
		if account == "" || key.Account == account {
			key.Sealed = nil
			keys = append(keys, key)
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("auth: list keys: %w", err)
	}
	slices.SortFunc(keys, func(a, b Key) int {
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.User, b.User), cmp.Compare(a.AccessKeyID, b.AccessKeyID))
	})
	return keys, nil
}

func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// SetDisabled disables or enables a key. The root key cannot be disabled.
func (k *Keyring) SetDisabled(accessKeyID string, disabled bool) (Key, error) {
	key, secret, ok := k.get(accessKeyID)
	if !ok {
		return Key{}, ErrNotFound
	}
	if key.Role == RoleRoot {
		return Key{}, ErrRootKey
	}
	key.Disabled = disabled
	if err := k.store(key, secret); err != nil {
		return Key{}, err
	}
	return key, nil
}

// Delete removes a key for good. The root key cannot be deleted.
func (k *Keyring) Delete(accessKeyID string) (Key, error) {
	key, _, ok := k.get(accessKeyID)
	if !ok {
		return Key{}, ErrNotFound
	}
	if key.Role == RoleRoot {
		return Key{}, ErrRootKey
	}
	return key, k.remove(accessKeyID)
}

func (k *Keyring) remove(accessKeyID string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.db.Delete(kv.StateKey(kv.StateAccessKey, "", accessKeyID), pebble.Sync); err != nil {
		return fmt.Errorf("auth: delete key: %w", err)
	}
	delete(k.cache, accessKeyID)
	return nil
}

// store writes key (sealed already) and updates the cache.
func (k *Keyring) store(key Key, secret string) error {
	b, err := json.Marshal(key)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.db.Set(kv.StateKey(kv.StateAccessKey, "", key.AccessKeyID), b, pebble.Sync); err != nil {
		return fmt.Errorf("auth: store key: %w", err)
	}
	k.cache[key.AccessKeyID] = cached{key: key, secret: secret}
	return nil
}

func (k *Keyring) open(key Key) (string, error) {
	ns := k.aead.NonceSize()
	if len(key.Sealed) < ns {
		return "", errors.New("auth: sealed secret too short")
	}
	plain, err := k.aead.Open(nil, key.Sealed[:ns], key.Sealed[ns:], []byte(key.AccessKeyID))
	if err != nil {
		return "", fmt.Errorf("auth: unseal %s: %w", key.AccessKeyID, err)
	}
	return string(plain), nil
}

// Put stores a key with the given secret. It fails with ErrExists when the ID is
// taken by a key with different owner or secret; putting the same key again is a no-op.
func (k *Keyring) Put(key Key, secret string) error {
	if !accountRE.MatchString(key.Account) {
		return fmt.Errorf("auth: account %q is not 12 digits", key.Account)
	}
	if key.Role != RoleRoot && !userRE.MatchString(key.User) {
		return fmt.Errorf("auth: user name %q must be 1-64 of letters, digits and +=,.@_-", key.User)
	}
	switch key.Role {
	case RoleRoot, RoleAdmin, RoleReader, RoleWriter:
	default:
		return fmt.Errorf("auth: role %q is not one of admin, reader, writer", key.Role)
	}
	if len(key.AccessKeyID) < 16 || len(key.AccessKeyID) > 128 || len(secret) < 16 {
		return errors.New("auth: access key IDs need 16-128 characters and secrets at least 16")
	}
	if old, oldSecret, ok := k.get(key.AccessKeyID); ok {
		if old.Account == key.Account && old.User == key.User && old.Role == key.Role && oldSecret == secret {
			return nil
		}
		return ErrExists
	}
	if key.Created.IsZero() {
		key.Created = time.Now().UTC()
	}
	nonce := make([]byte, k.aead.NonceSize())
	rand.Read(nonce)
	key.Sealed = k.aead.Seal(nonce, nonce, []byte(secret), []byte(key.AccessKeyID))
	return k.store(key, secret)
}

// Create makes a new random key for user in account with role.
func (k *Keyring) Create(account, user, role string) (Key, string, error) {
	key := Key{AccessKeyID: NewAccessKeyID(), Account: account, User: user, Role: role}
	secret := NewSecret()
	if err := k.Put(key, secret); err != nil {
		return Key{}, "", err
	}
	key, _, _ = k.Lookup(key.AccessKeyID)
	return key, secret, nil
}

// Root returns the stored root key, if any.
func (k *Keyring) Root() (Key, string, bool) {
	b, closer, err := k.db.Get(kv.StateKey(kv.StateRootKey, "", "root"))
	if err != nil {
		return Key{}, "", false
	}
	id := string(b)
	closer.Close()
	return k.Lookup(id)
}

// SetRoot makes key the root key. A different root key stored before (another ID, or the same
// ID with another secret) is deleted and returned as replaced, so that only one root key exists.
func (k *Keyring) SetRoot(key Key, secret string) (replaced *Key, err error) {
	key.Role = RoleRoot
	if old, oldSecret, ok := k.Root(); ok && (old.AccessKeyID != key.AccessKeyID || oldSecret != secret || old.Account != key.Account) {
		if err := k.remove(old.AccessKeyID); err != nil {
			return nil, err
		}
		old.Sealed = nil
		replaced = &old
	}
	if err := k.Put(key, secret); err != nil {
		return nil, err
	}
	if err := k.db.Set(kv.StateKey(kv.StateRootKey, "", "root"), []byte(key.AccessKeyID), pebble.Sync); err != nil {
		return nil, fmt.Errorf("auth: store root key: %w", err)
	}
	return replaced, nil
}

const keyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// NewAccessKeyID returns a random ID shaped like AWS's long-term keys (AKIA + 16).
func NewAccessKeyID() string { return "AKIA" + randomString(keyAlphabet, 16) }

// NewSecret returns a random 40-character secret access key.
func NewSecret() string {
	return randomString("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 40)
}

func randomString(alphabet string, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// DeriveKey returns a 32-byte key for one purpose (e.g. signing NextTokens),
// derived from the master key so that no further secret file is needed.
func (k *Keyring) DeriveKey(label string) []byte {
	h := hmac.New(sha256.New, k.master)
	h.Write([]byte("opentrail/" + label))
	return h.Sum(nil)
}
