package auth

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/opentrail/opentrail/internal/kv"
)

// TestMasterKeyCheck: a missing or replaced master.key with sealed keys
// present is refused at Open (issue 11 §6: the server started and every
// non-root key failed); so is a wrong key for a database from before the check
// value, which gets one when the key is right.
func TestMasterKeyCheck(t *testing.T) {
	dir := t.TempDir()
	db, err := kv.Open(filepath.Join(dir, "db"), kv.Options{CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mkFile := filepath.Join(dir, "master.key")
	k, err := Open(db, mkFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := k.Create("123456789012", "alice", RoleAdmin); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(mkFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(db, mkFile); err != nil {
		t.Fatalf("reopen with the right key: %v", err)
	}
	other := append([]byte(nil), good...)
	other[0] ^= 1
	kcv := kv.StateKey(kv.StateMasterKeyCheck, "", "kcv")
	for _, c := range []struct {
		name    string
		key     []byte // nil: no file
		noCheck bool   // a database from before the check value
	}{
		{"missing", nil, false},
		{"altered", other, false},
		{"altered, no check value yet", other, true},
	} {
		os.Remove(mkFile)
		if c.key != nil {
			if err := os.WriteFile(mkFile, c.key, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if c.noCheck {
			if err := db.Delete(kcv, pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := Open(db, mkFile); !errors.Is(err, ErrMasterKey) {
			t.Errorf("%s: Open = %v, want ErrMasterKey", c.name, err)
		}
	}
	os.Remove(mkFile)
	if err := os.WriteFile(mkFile, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(db, mkFile); err != nil {
		t.Fatalf("the right key, no check value yet: %v", err)
	}
	if _, closer, err := db.Get(kcv); err != nil {
		t.Fatalf("check value not stored: %v", err)
	} else {
		closer.Close()
	}
}
