package objstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"unicode/utf8"
)

// The on-disk layout of FS. Part of the format, never to change: data directories written by
// one version are read by the next.
//
//	<root>/<bucket>/<key>                   the object's body, byte for byte
//	<root>/<bucket>/.opentrail-meta/<key>   its metadata, a JSON fsMeta
//	<root>/<bucket>/.opentrail-bucket.json  who may deliver into the bucket, a JSON Access (optional)
//	.opentrail-tmp-*                        files being written, in the directory of their target
//
// Every name FS keeps for itself starts with fsReserved: keys with such a segment are refused
// and List skips such names, so neither metadata nor temporary files ever show as objects.
const (
	fsReserved   = ".opentrail-"
	fsMetaDir    = ".opentrail-meta"
	fsTempPrefix = ".opentrail-tmp-"
	fsAccessFile = ".opentrail-bucket.json"
	maxKeyLen    = 1024 // S3's limit, in bytes
)

// fsMeta is the content of a metadata file. Versions holds the metadata of the current body,
// newest first: Put records the new version before it renames the new body into place and keeps
// the version of the body it replaces, so whichever body a crash leaves behind, one version
// describes it. Size and SHA256 (hex) say which.
type fsMeta struct {
	Versions []fsVersion `json:"versions"`
}

type fsVersion struct {
	Size   int64             `json:"size"`
	SHA256 string            `json:"sha256"`
	Meta   map[string]string `json:"meta,omitempty"`
}

// FS is a Store on local folders, laid out as described at fsReserved: a body is a plain file
// an operator can read, and its metadata sits in a parallel tree under .opentrail-meta.
//
// Put is atomic and durable: body and metadata are written to temporary files, fsynced and
// renamed into place, metadata first, and the directories are fsynced. Get checks the body
// against the SHA-256 recorded by Put and fails on a mismatch.
//
// Against S3, FS refuses keys that are not clean relative paths (see checkKey; CloudTrail's
// always are), cannot hold both "a" and "a/b", and leaves empty directories behind on Delete.
// One process at a time may use a root.
type FS struct {
	// Owner owns every bucket whose .opentrail-bucket.json names no owner (or
	// that has none, such as a folder made with mkdir); "" = such buckets have
	// no owner and any account may deliver into them.
	Owner string

	root    string
	absRoot string // names the root in fsLocks
	// hookBeforeRename, for tests, runs when Put has written the new metadata and the body's
	// temporary file but not yet renamed it: an error stops Put there as a crash would, leaving
	// the temporary file behind.
	hookBeforeRename func(key string) error
}

// NewFS returns a Store keeping its buckets as folders under root. It touches nothing on disk:
// root is created by the first CreateBucket.
func NewFS(root string) *FS {
	abs, err := filepath.Abs(root)
	if err != nil {
		abs = root
	}
	return &FS{root: root, absRoot: abs}
}

// CreateBucket creates the bucket's folder (no error if it exists).
func (f *FS) CreateBucket(ctx context.Context, name string) error {
	if err := ValidBucketName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := mkdirAllSync(filepath.Join(f.root, name)); err != nil {
		return fmt.Errorf("objstore: create bucket %s: %w", name, err)
	}
	return nil
}

// Bucket returns the bucket in folder <root>/<name>, or ErrNotFound.
func (f *FS) Bucket(ctx context.Context, name string) (Bucket, error) {
	if err := ValidBucketName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir := filepath.Join(f.root, name)
	fi, err := os.Stat(dir)
	if isNotExist(err) {
		return nil, fmt.Errorf("bucket %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("objstore: bucket %s: %w", name, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("objstore: bucket %s: %s is not a directory", name, dir)
	}
	return &fsBucket{fs: f, name: name, dir: dir}, nil
}

// fsLocks serialise operations on a key, striped by hash, across every FS of the process (two
// on one root must not interleave): Put reads the metadata it replaces.
var fsLocks [64]sync.Mutex

func (f *FS) lock(bucket, key string) *sync.Mutex {
	h := fnv.New32a()
	for _, s := range []string{f.absRoot, bucket, key} {
		io.WriteString(h, s)
		h.Write([]byte{0})
	}
	return &fsLocks[h.Sum32()%uint32(len(fsLocks))]
}

type fsBucket struct {
	fs   *FS
	name string
	dir  string
}

func (b *fsBucket) Name() string { return b.name }

// paths returns where key's body and metadata live.
func (b *fsBucket) paths(key string) (body, meta string) {
	rel := filepath.FromSlash(key)
	return filepath.Join(b.dir, rel), filepath.Join(b.dir, fsMetaDir, rel)
}

func (b *fsBucket) Put(ctx context.Context, key string, body []byte, meta map[string]string) (err error) {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("objstore: put %s/%s: %w", b.name, key, err)
		}
	}()
	mu := b.fs.lock(b.name, key)
	mu.Lock()
	defer mu.Unlock()

	bodyPath, metaPath := b.paths(key)
	dir := filepath.Dir(bodyPath)
	if err := mkdirAllSync(dir); err != nil {
		return err
	}
	if err := mkdirAllSync(filepath.Dir(metaPath)); err != nil {
		return err
	}
	cur, err := b.current(bodyPath, metaPath)
	if err != nil {
		return err
	}

	tmp, err := writeTemp(dir, body)
	if err != nil {
		return err
	}
	crashed := false
	defer func() {
		if err != nil && !crashed {
			os.Remove(tmp)
		}
	}()

	sum := sha256.Sum256(body)
	m := fsMeta{Versions: []fsVersion{{Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:]), Meta: lowerMeta(meta)}}}
	if cur != nil {
		m.Versions = append(m.Versions, *cur)
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(metaPath, mb); err != nil {
		return err
	}
	if h := b.fs.hookBeforeRename; h != nil {
		if err := h(key); err != nil {
			crashed = true
			return err
		}
	}
	if err := os.Rename(tmp, bodyPath); err != nil {
		return err
	}
	return syncDir(dir)
}

// current returns the version describing the body now stored at bodyPath, or nil if there is
// none. Only callers holding the key's lock may use it.
func (b *fsBucket) current(bodyPath, metaPath string) (*fsVersion, error) {
	fi, err := os.Lstat(bodyPath)
	if isNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, errors.New("key is a prefix of other keys (\"a\" beside \"a/b\"), which FS cannot store")
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", bodyPath)
	}
	m, err := readMeta(metaPath)
	if err != nil {
		return nil, err
	}
	v, err := m.version(fi.Size(), nil, func() ([]byte, error) { return os.ReadFile(bodyPath) })
	if errors.Is(err, errBodyMismatch) {
		return nil, nil // nothing worth keeping: the Put replaces a body Get refuses anyway
	}
	if err != nil {
		return nil, err
	}
	if v.SHA256 == "" { // a body copied in by hand: record what it is, in case it stays
		body, err := os.ReadFile(bodyPath)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(body)
		v = fsVersion{Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:])}
	}
	return &v, nil
}

func (b *fsBucket) Get(ctx context.Context, key string) ([]byte, map[string]string, error) {
	if err := checkKey(key); err != nil {
		return nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	mu := b.fs.lock(b.name, key)
	mu.Lock()
	defer mu.Unlock()

	bodyPath, metaPath := b.paths(key)
	fi, err := os.Lstat(bodyPath)
	if isNotExist(err) || err == nil && !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("get %s/%s: %w", b.name, key, ErrNotFound)
	}
	var body []byte
	if err == nil {
		body, err = os.ReadFile(bodyPath)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("objstore: get %s/%s: %w", b.name, key, err)
	}
	m, err := readMeta(metaPath)
	if err != nil {
		return nil, nil, fmt.Errorf("objstore: get %s/%s: %w", b.name, key, err)
	}
	v, err := m.version(int64(len(body)), body, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("objstore: get %s/%s: %w", b.name, key, err)
	}
	return body, lowerMeta(v.Meta), nil
}

func (b *fsBucket) Head(ctx context.Context, key string) (Object, map[string]string, error) {
	if err := checkKey(key); err != nil {
		return Object{}, nil, err
	}
	if err := ctx.Err(); err != nil {
		return Object{}, nil, err
	}
	mu := b.fs.lock(b.name, key)
	mu.Lock()
	defer mu.Unlock()

	bodyPath, metaPath := b.paths(key)
	fi, err := os.Lstat(bodyPath)
	if isNotExist(err) || err == nil && !fi.Mode().IsRegular() {
		return Object{}, nil, fmt.Errorf("head %s/%s: %w", b.name, key, ErrNotFound)
	}
	if err != nil {
		return Object{}, nil, fmt.Errorf("objstore: head %s/%s: %w", b.name, key, err)
	}
	m, err := readMeta(metaPath)
	if err != nil {
		return Object{}, nil, fmt.Errorf("objstore: head %s/%s: %w", b.name, key, err)
	}
	v, err := m.version(fi.Size(), nil, func() ([]byte, error) { return os.ReadFile(bodyPath) })
	if err != nil {
		return Object{}, nil, fmt.Errorf("objstore: head %s/%s: %w", b.name, key, err)
	}
	return Object{Key: key, Size: fi.Size(), LastModified: fi.ModTime()}, lowerMeta(v.Meta), nil
}

// Delete removes the body, then the metadata: a crash in between leaves metadata without a
// body, which no read sees and the next Put of the key replaces.
func (b *fsBucket) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	mu := b.fs.lock(b.name, key)
	mu.Lock()
	defer mu.Unlock()

	bodyPath, metaPath := b.paths(key)
	for _, p := range []string{bodyPath, metaPath} {
		fi, err := os.Lstat(p)
		if isNotExist(err) || err == nil && fi.IsDir() {
			continue
		}
		if err == nil {
			err = os.Remove(p)
		}
		if err == nil {
			err = syncDir(filepath.Dir(p))
		}
		if err != nil {
			return fmt.Errorf("objstore: delete %s/%s: %w", b.name, key, err)
		}
	}
	return nil
}

// List walks the folders in S3 order, which is the byte order of whole keys: within a folder
// it visits a subfolder "a" as "a/", so "a-b" < "a/…" < "ab", and it skips subfolders that
// cannot hold keys matching prefix or after startAfter.
func (b *fsBucket) List(ctx context.Context, prefix, startAfter string, max int) ([]Object, error) {
	// Start in the deepest folder the prefix names.
	dirKey := prefix[:strings.LastIndexByte(prefix, '/')+1]
	if dirKey != "" && checkKey(strings.TrimSuffix(dirKey, "/")) != nil {
		return nil, nil // no stored key can start so
	}
	w := lister{ctx: ctx, prefix: prefix, startAfter: startAfter, max: max}
	if _, err := w.walk(filepath.Join(b.dir, filepath.FromSlash(dirKey)), dirKey); err != nil {
		return nil, fmt.Errorf("objstore: list %s prefix %q: %w", b.name, prefix, err)
	}
	return w.out, nil
}

type lister struct {
	ctx                context.Context
	prefix, startAfter string
	max                int
	out                []Object
}

// walk lists folder dir, whose keys start with dirKey; it reports whether List has all it wants.
func (w *lister) walk(dir, dirKey string) (done bool, err error) {
	if err := w.ctx.Err(); err != nil {
		return false, err
	}
	entries, err := os.ReadDir(dir)
	if isNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	type item struct {
		sortKey string // the entry's name, with "/" after a folder's
		entry   fs.DirEntry
	}
	items := make([]item, 0, len(entries))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), fsReserved) {
			continue
		}
		switch {
		case e.IsDir():
			items = append(items, item{e.Name() + "/", e})
		case e.Type().IsRegular():
			items = append(items, item{e.Name(), e})
		}
	}
	slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.sortKey, b.sortKey) })

	for _, it := range items {
		full := dirKey + it.sortKey
		if it.entry.IsDir() {
			if !strings.HasPrefix(full, w.prefix) && !strings.HasPrefix(w.prefix, full) {
				continue
			}
			// Every key in the folder starts with full; if full sorts before startAfter without
			// being its prefix, so do they all.
			if full < w.startAfter && !strings.HasPrefix(w.startAfter, full) {
				continue
			}
			done, err := w.walk(filepath.Join(dir, it.entry.Name()), full)
			if done || err != nil {
				return done, err
			}
			continue
		}
		if !strings.HasPrefix(full, w.prefix) || full <= w.startAfter {
			continue
		}
		fi, err := it.entry.Info()
		if isNotExist(err) {
			continue // deleted meanwhile
		}
		if err != nil {
			return false, err
		}
		w.out = append(w.out, Object{Key: full, Size: fi.Size(), LastModified: fi.ModTime()})
		if w.max > 0 && len(w.out) >= w.max {
			return true, nil
		}
	}
	return false, nil
}

// readMeta reads a metadata file; a missing one (a body copied in by hand) has no versions.
func readMeta(path string) (fsMeta, error) {
	var m fsMeta
	b, err := os.ReadFile(path)
	if isNotExist(err) {
		return m, nil
	}
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("metadata file %s: %w", path, err)
	}
	return m, nil
}

// version returns the version describing a body of the given size, checking body's SHA-256 when
// body is given and reading the body (with read) only when the size does not settle it. A body
// without recorded versions has no metadata.
func (m fsMeta) version(size int64, body []byte, read func() ([]byte, error)) (fsVersion, error) {
	if len(m.Versions) == 0 {
		return fsVersion{Size: size}, nil
	}
	var sized []fsVersion
	for _, v := range m.Versions {
		if v.Size == size {
			sized = append(sized, v)
		}
	}
	if body == nil && len(sized) == 1 {
		return sized[0], nil
	}
	if body == nil && len(sized) > 1 {
		var err error
		if body, err = read(); err != nil {
			return fsVersion{}, err
		}
	}
	if body != nil {
		sum := sha256.Sum256(body)
		for _, v := range sized {
			if want, err := hex.DecodeString(v.SHA256); err == nil && bytes.Equal(want, sum[:]) {
				return v, nil
			}
		}
	}
	return fsVersion{}, errBodyMismatch
}

var errBodyMismatch = errors.New("body does not match its recorded size and SHA-256: changed outside OpenTrail or corrupted")

// checkKey refuses keys that are not clean relative slash paths, so that no key can reach
// outside its bucket's folder or into the names FS keeps for itself.
func checkKey(key string) error {
	bad := func(why string) error { return fmt.Errorf("objstore: invalid key %q: %s", key, why) }
	switch {
	case key == "":
		return bad("empty")
	case len(key) > maxKeyLen:
		return bad(fmt.Sprintf("longer than %d bytes", maxKeyLen))
	case !utf8.ValidString(key):
		return bad("not UTF-8")
	case strings.ContainsRune(key, 0):
		return bad("contains NUL")
	case strings.ContainsRune(key, '\\'):
		return bad(`contains "\"`)
	case key[0] == '/':
		return bad("absolute")
	}
	for _, seg := range strings.Split(key, "/") {
		switch {
		case seg == "":
			return bad("empty path segment")
		case seg == "." || seg == "..":
			return bad(fmt.Sprintf("path segment %q", seg))
		case strings.HasPrefix(seg, fsReserved):
			return bad(fmt.Sprintf("path segment starts with %q, reserved for OpenTrail", fsReserved))
		}
	}
	if !filepath.IsLocal(filepath.FromSlash(key)) {
		return bad("not a local path on this system")
	}
	return nil
}

// writeTemp writes body to a new temporary file in dir and fsyncs it.
func writeTemp(dir string, body []byte) (string, error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	name := filepath.Join(dir, fsTempPrefix+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	_, err = f.Write(body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// writeFileAtomic replaces path with data durably: temporary file, fsync, rename, fsync folder.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := writeTemp(dir, data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// mkdirAllSync is os.MkdirAll that also fsyncs the parent of each folder it creates, so the new
// folders survive a crash.
func mkdirAllSync(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if !isNotExist(err) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirAllSync(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	// Synced even if another goroutine made the folder: it may not have synced yet.
	return syncDir(parent)
}

func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // folders cannot be fsynced there; renames are durable once the files are
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// isNotExist also counts a path through a file ("a/b" where "a" is an object) as missing.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}
