package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/kv"
)

const (
	testAccount = "111122223333"
	testID      = "AKIATESTTESTTEST0001"
	testSecret  = "secret-secret-secret-0001"
)

func openDB(t *testing.T) *pebble.DB {
	t.Helper()
	db, err := kv.Open(t.TempDir(), kv.Options{CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openKeyring(t *testing.T, db *pebble.DB, masterFile string) *Keyring {
	t.Helper()
	k, err := Open(db, masterFile)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestOpenCreatesMasterKey(t *testing.T) {
	db := openDB(t)
	mf := filepath.Join(t.TempDir(), "sub", "master.key")
	k := openKeyring(t, db, mf)
	fi, err := os.Stat(mf)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 32 || fi.Mode().Perm() != 0o600 {
		t.Errorf("master key file: size %d mode %v, want 32 bytes 0600", fi.Size(), fi.Mode().Perm())
	}
	// Reopening reads the same key: what was derived before is derived again.
	if again := openKeyring(t, db, mf); !bytes.Equal(k.DeriveKey("x"), again.DeriveKey("x")) {
		t.Error("reopened keyring derives a different key")
	}

	short := filepath.Join(t.TempDir(), "short.key")
	if err := os.WriteFile(short, make([]byte, 31), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(db, short); err == nil {
		t.Error("Open accepted a 31-byte master key")
	}
}

func TestPutLookupSealsSecret(t *testing.T) {
	db := openDB(t)
	mf := filepath.Join(t.TempDir(), "master.key")
	k := openKeyring(t, db, mf)
	if err := k.Put(Key{AccessKeyID: testID, Account: testAccount, User: "alice", Role: RoleReader}, testSecret); err != nil {
		t.Fatal(err)
	}
	key, secret, ok := k.Lookup(testID)
	if !ok || secret != testSecret || key.Account != testAccount || key.User != "alice" || key.Role != RoleReader {
		t.Fatalf("Lookup = %+v, %q, %v", key, secret, ok)
	}
	if got, want := key.ARN(), "arn:aws:iam::"+testAccount+":user/alice"; got != want {
		t.Errorf("ARN = %q, want %q", got, want)
	}

	// The database alone does not reveal the secret.
	raw, closer, err := db.Get(kv.StateKey(kv.StateAccessKey, "", testID))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(testSecret)) {
		t.Error("the stored key holds the secret in plaintext")
	}
	closer.Close()

	// A fresh keyring (no cache) over the same database and master key unseals it.
	if _, s, ok := openKeyring(t, db, mf).Lookup(testID); !ok || s != testSecret {
		t.Errorf("reopened Lookup = %q, %v", s, ok)
	}
	// Another master key cannot.
	if _, _, ok := openKeyring(t, db, filepath.Join(t.TempDir(), "other.key")).Lookup(testID); ok {
		t.Error("a keyring with another master key unsealed the secret")
	}
	if _, _, ok := k.Lookup("AKIANOSUCHKEY0000000"); ok {
		t.Error("Lookup found a key that was never put")
	}
}

// The sealed secret is bound to its access key ID: copied under another ID it
// does not open.
func TestSealedSecretBoundToID(t *testing.T) {
	db := openDB(t)
	mf := filepath.Join(t.TempDir(), "master.key")
	k := openKeyring(t, db, mf)
	if err := k.Put(Key{AccessKeyID: testID, Account: testAccount, User: "alice", Role: RoleAdmin}, testSecret); err != nil {
		t.Fatal(err)
	}
	raw, closer, err := db.Get(kv.StateKey(kv.StateAccessKey, "", testID))
	if err != nil {
		t.Fatal(err)
	}
	other := "AKIATESTTESTTEST0002"
	moved := bytes.Replace(raw, []byte(testID), []byte(other), 1)
	closer.Close()
	if err := db.Set(kv.StateKey(kv.StateAccessKey, "", other), moved, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := openKeyring(t, db, mf).Lookup(other); ok {
		t.Error("a sealed secret opened under another access key ID")
	}
}

func TestPutRejects(t *testing.T) {
	k := openKeyring(t, openDB(t), filepath.Join(t.TempDir(), "master.key"))
	good := Key{AccessKeyID: testID, Account: testAccount, User: "alice", Role: RoleWriter}
	tests := []struct {
		name   string
		edit   func(*Key)
		secret string
	}{
		{"account not 12 digits", func(k *Key) { k.Account = "12345" }, testSecret},
		{"user with a space", func(k *Key) { k.User = "al ice" }, testSecret},
		{"empty user", func(k *Key) { k.User = "" }, testSecret},
		{"unknown role", func(k *Key) { k.Role = "owner" }, testSecret},
		{"short access key ID", func(k *Key) { k.AccessKeyID = "AKIA" }, testSecret},
		{"short secret", func(*Key) {}, "short"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := good
			tt.edit(&key)
			if err := k.Put(key, tt.secret); err == nil {
				t.Errorf("Put(%+v) accepted", key)
			}
		})
	}

	if err := k.Put(good, testSecret); err != nil {
		t.Fatal(err)
	}
	if err := k.Put(good, testSecret); err != nil {
		t.Errorf("putting the same key again = %v, want nil", err)
	}
	if err := k.Put(good, testSecret+"x"); !errors.Is(err, ErrExists) {
		t.Errorf("putting the ID with another secret = %v, want ErrExists", err)
	}
	other := good
	other.Account = "444455556666"
	if err := k.Put(other, testSecret); !errors.Is(err, ErrExists) {
		t.Errorf("putting the ID for another account = %v, want ErrExists", err)
	}
}

func TestRoot(t *testing.T) {
	db := openDB(t)
	mf := filepath.Join(t.TempDir(), "master.key")
	k := openKeyring(t, db, mf)
	if _, _, ok := k.Root(); ok {
		t.Fatal("Root found before SetRoot")
	}
	if _, err := k.SetRoot(Key{AccessKeyID: testID, Account: testAccount}, testSecret); err != nil {
		t.Fatal(err)
	}
	key, secret, ok := openKeyring(t, db, mf).Root()
	if !ok || key.Role != RoleRoot || secret != testSecret || key.AccessKeyID != testID {
		t.Fatalf("Root = %+v, %q, %v", key, secret, ok)
	}
	if got, want := key.ARN(), "arn:aws:iam::"+testAccount+":root"; got != want {
		t.Errorf("ARN = %q, want %q", got, want)
	}
}

// DeriveKey is part of the format: keys derived from it seal stored data (the
// digest signing keys) and sign NextTokens, so its construction must not change.
func TestDeriveKey(t *testing.T) {
	mf := filepath.Join(t.TempDir(), "master.key")
	master := bytes.Repeat([]byte{7}, 32)
	if err := os.WriteFile(mf, master, 0o600); err != nil {
		t.Fatal(err)
	}
	k := openKeyring(t, openDB(t), mf)
	h := hmac.New(sha256.New, master)
	h.Write([]byte("opentrail/lookup-next-token"))
	if got := k.DeriveKey("lookup-next-token"); !bytes.Equal(got, h.Sum(nil)) {
		t.Errorf("DeriveKey = %x, want HMAC-SHA256(master, \"opentrail/lookup-next-token\") = %x", got, h.Sum(nil))
	}
	if bytes.Equal(k.DeriveKey("a"), k.DeriveKey("b")) {
		t.Error("two labels derive the same key")
	}
}

func TestNewCredentials(t *testing.T) {
	idRE := regexp.MustCompile(`^AKIA[A-Z2-7]{16}$`)
	secretRE := regexp.MustCompile(`^[A-Za-z0-9+/]{40}$`)
	seen := map[string]bool{}
	for range 100 {
		id, secret := NewAccessKeyID(), NewSecret()
		if !idRE.MatchString(id) || !secretRE.MatchString(secret) {
			t.Fatalf("NewAccessKeyID, NewSecret = %q, %q", id, secret)
		}
		if seen[id] {
			t.Fatalf("NewAccessKeyID repeated %q", id)
		}
		seen[id] = true
	}
}
