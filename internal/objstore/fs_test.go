package objstore_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opentrail/opentrail/internal/objstore"
	"github.com/opentrail/opentrail/internal/objstore/objstoretest"
)

func TestFSContract(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store { return objstore.NewFS(t.TempDir()) })
}

func newFSBucket(t *testing.T, root, name string) objstore.Bucket {
	t.Helper()
	ctx := context.Background()
	s := objstore.NewFS(root)
	if err := s.CreateBucket(ctx, name); err != nil {
		t.Fatal(err)
	}
	b, err := s.Bucket(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func reopen(t *testing.T, root, name string) objstore.Bucket {
	t.Helper()
	b, err := objstore.NewFS(root).Bucket(context.Background(), name)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	return b
}

func listKeys(t *testing.T, b objstore.Bucket) []string {
	t.Helper()
	objs, err := b.List(context.Background(), "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	return keys
}

func TestFSLayout(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	b := newFSBucket(t, root, "audit")
	meta := map[string]string{"signature": "abcd"}
	if err := b.Put(ctx, "AWSLogs/1/x.json.gz", []byte("body"), meta); err != nil {
		t.Fatal(err)
	}
	// The body is a plain file an operator can read.
	got, err := os.ReadFile(filepath.Join(root, "audit", "AWSLogs", "1", "x.json.gz"))
	if err != nil || string(got) != "body" {
		t.Fatalf("body file = %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(root, "audit", ".opentrail-meta", "AWSLogs", "1", "x.json.gz")); err != nil {
		t.Fatalf("metadata file: %v", err)
	}
	if keys := listKeys(t, b); !slices.Equal(keys, []string{"AWSLogs/1/x.json.gz"}) {
		t.Errorf("List = %q: metadata must not show", keys)
	}

	// A file copied in by hand is an object without metadata.
	if err := os.WriteFile(filepath.Join(root, "audit", "AWSLogs", "1", "manual"), []byte("m"), 0o600); err != nil {
		t.Fatal(err)
	}
	if body, m, err := b.Get(ctx, "AWSLogs/1/manual"); err != nil || string(body) != "m" || len(m) != 0 {
		t.Errorf("Get(manual) = %q, %v, %v", body, m, err)
	}
	// Overwriting it keeps working.
	if err := b.Put(ctx, "AWSLogs/1/manual", []byte("mm"), meta); err != nil {
		t.Fatal(err)
	}
	if body, m, err := b.Get(ctx, "AWSLogs/1/manual"); err != nil || string(body) != "mm" || !maps.Equal(m, meta) {
		t.Errorf("Get(manual) after Put = %q, %v, %v", body, m, err)
	}
}

func TestFSBucket(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "not-yet")
	s := objstore.NewFS(root)
	if _, err := s.Bucket(ctx, "audit"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Bucket without root = %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("NewFS and Bucket created %s", root)
	}
	if _, err := s.Bucket(ctx, "Bad_Name"); err == nil || errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Bucket(Bad_Name) = %v, want an invalid-name error", err)
	}
	if err := s.CreateBucket(ctx, "audit"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(root, "audit")); err != nil || !fi.IsDir() {
		t.Fatalf("CreateBucket made no folder: %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Bucket(ctx, "file"); err == nil || errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Bucket(file) = %v, want a not-a-directory error", err)
	}
}

func TestFSRejectsEscapingKeys(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	b := newFSBucket(t, root, "audit")
	bad := []string{"", "../escape", "a/../../escape", "/etc/passwd", "a//b", "a/", "./a", "a/./b", "a\x00b", `..\escape`,
		".opentrail-meta/x", "a/.opentrail-tmp-x"}
	for _, key := range bad {
		err := b.Put(ctx, key, []byte("x"), nil)
		if err == nil || !strings.Contains(err.Error(), "invalid key") {
			t.Errorf("Put(%q) = %v, want an invalid key error", key, err)
		}
		if _, _, err := b.Get(ctx, key); err == nil || errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want an invalid key error", key, err)
		}
		if _, _, err := b.Head(ctx, key); err == nil {
			t.Errorf("Head(%q) = nil error", key)
		}
		if err := b.Delete(ctx, key); err == nil {
			t.Errorf("Delete(%q) = nil error", key)
		}
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 {
		t.Errorf("root holds %d entries, want only the bucket", len(entries))
	}
	if keys := listKeys(t, b); len(keys) != 0 {
		t.Errorf("List = %q, want nothing", keys)
	}
	// Prefixes that no valid key has list nothing, and reach nothing.
	for _, prefix := range []string{"../", "/", "a//", "./"} {
		if objs, err := b.List(ctx, prefix, "", 0); err != nil || len(objs) != 0 {
			t.Errorf("List(%q) = %v, %v", prefix, objs, err)
		}
	}
}

// FS cannot hold "a" beside "a/b"; it must say so rather than lose either.
func TestFSFileFolderConflict(t *testing.T) {
	ctx := context.Background()
	b := newFSBucket(t, t.TempDir(), "audit")
	if err := b.Put(ctx, "a", []byte("a"), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "a/b", []byte("ab"), nil); err == nil {
		t.Error("Put(a/b) beside a = nil error")
	}
	if err := b.Put(ctx, "x/y", []byte("xy"), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "x", []byte("x"), nil); err == nil || !strings.Contains(err.Error(), "prefix of other keys") {
		t.Errorf("Put(x) beside x/y = %v, want a prefix error", err)
	}
	if keys := listKeys(t, b); !slices.Equal(keys, []string{"a", "x/y"}) {
		t.Errorf("List = %q, want [a x/y]", keys)
	}
}

func TestFSMetadataSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	b := newFSBucket(t, root, "audit")
	meta := map[string]string{"signature": strings.Repeat("9f", 256), "signature-algorithm": "SHA256withRSA"}
	if err := b.Put(ctx, "d/k.json.gz", []byte("digest"), meta); err != nil {
		t.Fatal(err)
	}
	b = reopen(t, root, "audit")
	body, m, err := b.Get(ctx, "d/k.json.gz")
	if err != nil || string(body) != "digest" || !maps.Equal(m, meta) {
		t.Errorf("Get after reopen = %q, %v, %v", body, m, err)
	}
	if _, m, err := b.Head(ctx, "d/k.json.gz"); err != nil || !maps.Equal(m, meta) {
		t.Errorf("Head after reopen = %v, %v", m, err)
	}
	if keys := listKeys(t, b); !slices.Equal(keys, []string{"d/k.json.gz"}) {
		t.Errorf("List after reopen = %q", keys)
	}
}

// TestFSCrashBeforeRename stops Puts where a crash would hurt most: the new metadata is in
// place and the new body written, but not yet renamed over the key.
func TestFSCrashBeforeRename(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := objstore.NewFS(root)
	if err := s.CreateBucket(ctx, "audit"); err != nil {
		t.Fatal(err)
	}
	b, err := s.Bucket(ctx, "audit")
	if err != nil {
		t.Fatal(err)
	}
	old := map[string]string{"signature": "01"}
	for _, k := range []string{"over/longer", "over/same"} {
		if err := b.Put(ctx, k, []byte("old body"), old); err != nil {
			t.Fatal(err)
		}
	}
	crash := errors.New("simulated crash")
	objstore.SetHookBeforeRename(s, func(string) error { return crash })
	newMeta := map[string]string{"signature": "02"}
	for k, body := range map[string]string{
		"fresh/k":     "new body",
		"over/longer": "a longer new body",
		"over/same":   "new body", // as long as the old one: only the SHA-256 tells them apart
	} {
		if err := b.Put(ctx, k, []byte(body), newMeta); !errors.Is(err, crash) {
			t.Fatalf("Put(%s) = %v, want the simulated crash", k, err)
		}
	}

	check := func(b objstore.Bucket) {
		t.Helper()
		if _, _, err := b.Get(ctx, "fresh/k"); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("Get(fresh/k) = %v, want ErrNotFound: a Put that did not finish must not show", err)
		}
		if _, _, err := b.Head(ctx, "fresh/k"); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("Head(fresh/k) = %v, want ErrNotFound", err)
		}
		for _, k := range []string{"over/longer", "over/same"} {
			body, m, err := b.Get(ctx, k)
			if err != nil || string(body) != "old body" || !maps.Equal(m, old) {
				t.Errorf("Get(%s) = %q, %v, %v; want the old body with its metadata", k, body, m, err)
			}
			obj, m, err := b.Head(ctx, k)
			if err != nil || obj.Size != int64(len("old body")) || !maps.Equal(m, old) {
				t.Errorf("Head(%s) = %+v, %v, %v; want the old object with its metadata", k, obj, m, err)
			}
		}
		// The temporary files left behind never show.
		if keys := listKeys(t, b); !slices.Equal(keys, []string{"over/longer", "over/same"}) {
			t.Errorf("List = %q, want only the old objects", keys)
		}
	}
	check(b)
	b = reopen(t, root, "audit") // as after a restart
	check(b)

	// Puts after the "restart" work, and replace the right metadata.
	for _, k := range []string{"fresh/k", "over/longer", "over/same"} {
		body := "newest " + k
		if err := b.Put(ctx, k, []byte(body), map[string]string{"signature": "03"}); err != nil {
			t.Fatal(err)
		}
		got, m, err := b.Get(ctx, k)
		if err != nil || string(got) != body || m["signature"] != "03" {
			t.Errorf("Get(%s) after recovery = %q, %v, %v", k, got, m, err)
		}
	}
}

func TestFSDetectsChangedBody(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	b := newFSBucket(t, root, "audit")
	if err := b.Put(ctx, "k", []byte("original"), map[string]string{"signature": "01"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "audit", "k"), []byte("tampered"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Get(ctx, "k"); err == nil || errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Get of a changed body = %v, want a mismatch error", err)
	}
	if _, _, err := b.Head(ctx, "k"); err != nil {
		t.Errorf("Head of a changed body of the same size = %v; Head checks sizes only", err)
	}
	// A Put replaces it.
	if err := b.Put(ctx, "k", []byte("replaced"), map[string]string{"signature": "02"}); err != nil {
		t.Fatalf("Put over a changed body: %v", err)
	}
	if body, m, err := b.Get(ctx, "k"); err != nil || string(body) != "replaced" || m["signature"] != "02" {
		t.Errorf("Get after Put = %q, %v, %v", body, m, err)
	}
}
