package auth

import (
	"errors"
	"path/filepath"
	"testing"
)

func newKeyring(t *testing.T) *Keyring {
	t.Helper()
	return openKeyring(t, openDB(t), filepath.Join(t.TempDir(), "master.key"))
}

// TestDisableEnableDelete: a disabled key is not found by Lookup (so SigV4 fails), but is listed
// and can be enabled again; a deleted key is gone; the root key can be neither.
func TestDisableEnableDelete(t *testing.T) {
	k := newKeyring(t)
	if _, err := k.SetRoot(Key{AccessKeyID: "AKIAROOTROOTROOT0001", Account: "111122223333"}, "root-secret-root-secret"); err != nil {
		t.Fatal(err)
	}
	a, _, err := k.Create("111122223333", "alice", RoleReader)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := k.Create("444455556666", "bob", RoleWriter)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.SetDisabled(a.AccessKeyID, true); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := k.Lookup(a.AccessKeyID); ok {
		t.Fatal("a disabled key is still found by Lookup")
	}
	if got, ok := k.Get(a.AccessKeyID); !ok || !got.Disabled {
		t.Fatalf("Get of a disabled key: %+v %v", got, ok)
	}
	all, err := k.List("")
	if err != nil || len(all) != 3 {
		t.Fatalf("List all: %v %+v", err, all)
	}
	mine, err := k.List("111122223333")
	if err != nil || len(mine) != 2 || mine[0].User != "" || mine[1].User != "alice" || !mine[1].Disabled || mine[1].Sealed != nil {
		t.Fatalf("List of one account: %v %+v", err, mine)
	}
	if _, err := k.SetDisabled(a.AccessKeyID, false); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := k.Lookup(a.AccessKeyID); !ok {
		t.Fatal("an enabled key is not found")
	}
	if _, err := k.Delete(b.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	if _, ok := k.Get(b.AccessKeyID); ok {
		t.Fatal("a deleted key is still there")
	}
	if _, err := k.Delete(b.AccessKeyID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}
	if _, err := k.Delete("AKIAROOTROOTROOT0001"); !errors.Is(err, ErrRootKey) {
		t.Fatalf("deleting the root key: %v", err)
	}
	if _, err := k.SetDisabled("AKIAROOTROOTROOT0001", true); !errors.Is(err, ErrRootKey) {
		t.Fatalf("disabling the root key: %v", err)
	}
}

// TestSetRootReplaces: a different root key replaces the stored one instead of adding a
// second root key (issue 12); the same one again changes nothing.
func TestSetRootReplaces(t *testing.T) {
	k := newKeyring(t)
	first := Key{AccessKeyID: "AKIAROOTROOTROOT0001", Account: "111122223333"}
	if old, err := k.SetRoot(first, "first-secret-first-secret"); err != nil || old != nil {
		t.Fatalf("first root: %v %v", old, err)
	}
	if old, err := k.SetRoot(first, "first-secret-first-secret"); err != nil || old != nil {
		t.Fatalf("same root again: %v %v", old, err)
	}
	old, err := k.SetRoot(Key{AccessKeyID: "AKIAROOTROOTROOT0002", Account: "111122223333"}, "second-secret-second-secret")
	if err != nil || old == nil || old.AccessKeyID != first.AccessKeyID {
		t.Fatalf("new root: %+v %v", old, err)
	}
	if _, _, ok := k.Lookup(first.AccessKeyID); ok {
		t.Fatal("the replaced root key still authenticates")
	}
	if root, _, ok := k.Root(); !ok || root.AccessKeyID != "AKIAROOTROOTROOT0002" {
		t.Fatalf("root is %+v", root)
	}
	// The same ID with a new secret replaces the secret.
	if old, err := k.SetRoot(Key{AccessKeyID: "AKIAROOTROOTROOT0002", Account: "111122223333"}, "third-secret-third-secret"); err != nil || old == nil {
		t.Fatalf("new secret: %+v %v", old, err)
	}
	if _, secret, _ := k.Lookup("AKIAROOTROOTROOT0002"); secret != "third-secret-third-secret" {
		t.Fatal("the root secret was not replaced")
	}
	keys, _ := k.List("")
	if len(keys) != 1 {
		t.Fatalf("%d keys after replacing the root key, want 1", len(keys))
	}
}
