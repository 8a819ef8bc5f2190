// Package archive reads CloudTrail archives: the gzip log files CloudTrail (or
// an OpenTrail trail) writes under AWSLogs/, in a local folder or an S3 prefix,
// including organization trails' AWSLogs/<org-id>/<account>/ layout. It finds
// the log files, skips digests and other objects, decodes files in parallel and
// yields their records as raw JSON. A corrupt file is reported, not fatal.
package archive

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/klauspost/compress/gzip"

	"github.com/opentrail/opentrail/internal/objstore"
)

// File is one log file of an archive.
type File struct {
	Key  string    // path relative to the archive root, with "/" separators (the S3 key for S3)
	Size int64     // compressed bytes
	Time time.Time // the delivery time in its name; zero when the name has none
}

// Archive is a folder or S3 prefix of CloudTrail log files.
type Archive struct {
	src    string
	dir    string          // folder archives
	bucket objstore.Bucket // S3 archives
	prefix string
}

// Open opens src, a folder path or s3://bucket/prefix; S3 is reached through
// store (nil: the AWS SDK's default configuration).
func Open(ctx context.Context, src string, store objstore.Store) (*Archive, error) {
	a := &Archive{src: src}
	if rest, ok := strings.CutPrefix(src, "s3://"); ok {
		bucket, prefix, _ := strings.Cut(rest, "/")
		if bucket == "" {
			return nil, fmt.Errorf("archive: %s: no bucket", src)
		}
		if store == nil {
			s3, err := objstore.NewS3(ctx, objstore.S3Config{})
			if err != nil {
				return nil, err
			}
			store = s3
		}
		b, err := store.Bucket(ctx, bucket)
		if err != nil {
			return nil, fmt.Errorf("archive: %s: %w", src, err)
		}
		a.bucket, a.prefix = b, prefix
		return a, nil
	}
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	if !st.IsDir() {
		a.dir, a.prefix = filepath.Dir(src), filepath.Base(src)
		return a, nil
	}
	a.dir = src
	return a, nil
}

// String is the archive's source as given.
func (a *Archive) String() string { return a.src }

// keyTimeRE finds the delivery time in a log file's name: ..._20211204T0325Z_....json.gz
var keyTimeRE = regexp.MustCompile(`_(\d{8}T\d{4})Z_[^/]*\.json\.gz$`)

// IsLogFile reports whether key is a CloudTrail log file: a .json.gz object, not a
// digest; insight files only when insights is set.
func IsLogFile(key string, insights bool) bool {
	if !strings.HasSuffix(key, ".json.gz") {
		return false
	}
	if strings.Contains(key, "/CloudTrail-Digest/") || strings.Contains(key, "_CloudTrail-Digest_") {
		return false
	}
	if strings.Contains(key, "/CloudTrail-Insight/") || strings.Contains(key, "_CloudTrail-Insight_") {
		return insights
	}
	return true
}

// KeyTime is the delivery time in key's name, or zero.
func KeyTime(key string) time.Time {
	m := keyTimeRE.FindStringSubmatch(key)
	if m == nil {
		return time.Time{}
	}
	t, err := time.Parse("20060102T1504", m[1])
	if err != nil {
		return time.Time{}
	}
	return t
}

// Filter selects files and records.
type Filter struct {
	Start, End time.Time // eventTime range, inclusive; zero = open
	Insights   bool      // include CloudTrail-Insight files
	// Late is how long after an event its file may be delivered (default 2h):
	// files named later than End+Late are skipped.
	Late time.Duration
}

// keeps reports whether a file delivered at t can hold events in the range.
func (f Filter) keeps(t time.Time) bool {
	if t.IsZero() {
		return true
	}
	if !f.Start.IsZero() && t.Before(f.Start.Truncate(time.Minute)) {
		return false // a file holds events from before its delivery only
	}
	late := f.Late
	if late == 0 {
		late = 2 * time.Hour
	}
	return f.End.IsZero() || !t.After(f.End.Add(late))
}

// List returns the archive's log files that f keeps, in key order, skipping
// keys in done.
func (a *Archive) List(ctx context.Context, f Filter, done map[string]bool) ([]File, error) {
	var files []File
	add := func(key string, size int64) {
		if IsLogFile(key, f.Insights) && !done[key] {
			if t := KeyTime(key); f.keeps(t) {
				files = append(files, File{Key: key, Size: size, Time: t})
			}
		}
	}
	if a.bucket != nil {
		after := ""
		for {
			objs, err := a.bucket.List(ctx, a.prefix, after, 1000)
			if err != nil {
				return nil, fmt.Errorf("archive: list %s: %w", a.src, err)
			}
			for _, o := range objs {
				add(o.Key, o.Size)
			}
			if len(objs) < 1000 {
				break
			}
			after = objs[len(objs)-1].Key
		}
		return files, nil
	}
	root := a.dir
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if a.prefix != "" && !strings.HasPrefix(rel, a.prefix) && !strings.HasPrefix(a.prefix, rel) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && path != root {
				return fs.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		add(rel, info.Size())
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("archive: list %s: %w", a.src, err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Key < files[j].Key })
	return files, nil
}

// Read returns a file's compressed bytes.
func (a *Archive) Read(ctx context.Context, key string) ([]byte, error) {
	if a.bucket != nil {
		b, _, err := a.bucket.Get(ctx, key)
		return b, err
	}
	return os.ReadFile(filepath.Join(a.dir, filepath.FromSlash(key)))
}

// ErrCorrupt reports a log file that is not gzip'd {"Records":[...]}.
var ErrCorrupt = errors.New("archive: corrupt log file")

var gzPool sync.Pool

// Records decompresses a log file and returns its records as compact JSON,
// keeping those whose eventTime lies in f's range.
func Records(gz []byte, f Filter) ([][]byte, int, error) {
	zr, _ := gzPool.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(bytes.NewReader(gz))
	} else {
		err = zr.Reset(bytes.NewReader(gz))
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	defer gzPool.Put(zr)
	// The gzip trailer holds the size mod 2^32: read into a buffer of that size.
	hint := 0
	if len(gz) >= 4 {
		hint = int(binary.LittleEndian.Uint32(gz[len(gz)-4:]))
	}
	buf := bytes.NewBuffer(make([]byte, 0, min(max(hint, 512)+512, 1<<30)))
	if _, err := buf.ReadFrom(zr); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	body := buf.Bytes()
	recs, err := Split(body, f)
	return recs, len(body), err
}

// Split returns the records of a {"Records":[...]} document, each as compact
// JSON. A compact document of nothing but Records, as CloudTrail writes them,
// is split by a single validating scan; anything else by the JSON decoder.
func Split(body []byte, f Filter) ([][]byte, error) {
	if recs, ok := splitCompact(body, f); ok {
		return recs, nil
	}
	return splitDecode(body, f)
}

// splitCompact splits body if it is exactly {"Records":[...]} with no
// whitespace and no escaped member names; ok is false otherwise, or when body
// is not valid JSON, and the decoder then says what is wrong.
func splitCompact(body []byte, f Filter) ([][]byte, bool) {
	const head = `{"Records":[`
	b := bytes.TrimRight(body, " \t\r\n")
	if !bytes.HasPrefix(b, []byte(head)) || !bytes.HasSuffix(b, []byte("]}")) {
		return nil, false
	}
	b = b[:len(b)-2]
	recs := make([][]byte, 0, bytes.Count(b, []byte(`{"eventVersion"`))+1)
	v := validator{}
	for i := len(head); i < len(b); {
		if b[i] != '{' {
			return nil, false
		}
		end, ok := v.value(b, i, 0)
		if !ok {
			return nil, false
		}
		rec := b[i:end:end]
		if end < len(b) {
			if b[end] != ',' || end+1 == len(b) {
				return nil, false
			}
			end++
		}
		i = end
		if !f.Start.IsZero() || !f.End.IsZero() {
			if t, ok := EventTime(rec); ok && ((!f.Start.IsZero() && t.Before(f.Start)) || (!f.End.IsZero() && t.After(f.End))) {
				continue
			}
		}
		recs = append(recs, rec)
	}
	return recs, true
}

// validator checks compact JSON as jsontext's decoder does by default: valid
// UTF-8, no duplicate member names.
type validator struct {
	names [][][]byte // member names per open object depth
}

const maxDepth = 10000

// value returns the end of the value at b[i] if it is valid compact JSON.
func (v *validator) value(b []byte, i, depth int) (int, bool) {
	if i >= len(b) || depth > maxDepth {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		return stringEnd(b, i)
	case c == '{':
		for len(v.names) <= depth {
			v.names = append(v.names, nil)
		}
		names := v.names[depth][:0]
		i++
		if i < len(b) && b[i] == '}' {
			return i + 1, true
		}
		for {
			end, ok := stringEnd(b, i)
			if !ok {
				return 0, false
			}
			name := b[i:end]
			if bytes.IndexByte(name, '\\') >= 0 {
				return 0, false // leave escaped names to the decoder
			}
			for _, n := range names {
				if bytes.Equal(n, name) {
					return 0, false
				}
			}
			names = append(names, name)
			if end >= len(b) || b[end] != ':' {
				return 0, false
			}
			if i, ok = v.value(b, end+1, depth+1); !ok || i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case ',':
				i++
			case '}':
				v.names[depth] = names[:0]
				return i + 1, true
			default:
				return 0, false
			}
		}
	case c == '[':
		i++
		if i < len(b) && b[i] == ']' {
			return i + 1, true
		}
		for {
			var ok bool
			if i, ok = v.value(b, i, depth+1); !ok || i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case ',':
				i++
			case ']':
				return i + 1, true
			default:
				return 0, false
			}
		}
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	default:
		return number(b, i)
	}
}

func literal(b []byte, i int, lit string) (int, bool) {
	if bytes.HasPrefix(b[i:], []byte(lit)) {
		return i + len(lit), true
	}
	return 0, false
}

// stringEnd returns the end of the valid JSON string at b[i].
func stringEnd(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	ascii := true
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			if !ascii && !utf8.Valid(b[i+1:j]) {
				return 0, false
			}
			return j + 1, true
		case c == '\\':
			j++
			if j >= len(b) {
				return 0, false
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				r, ok := hex4(b, j+1)
				if !ok {
					return 0, false
				}
				j += 4
				switch {
				case 0xDC00 <= r && r <= 0xDFFF:
					return 0, false // a lone low surrogate
				case 0xD800 <= r && r <= 0xDBFF:
					// A high surrogate must be followed by a low one.
					if j+2 >= len(b) || b[j+1] != '\\' || b[j+2] != 'u' {
						return 0, false
					}
					lo, ok := hex4(b, j+3)
					if !ok || lo < 0xDC00 || lo > 0xDFFF {
						return 0, false
					}
					j += 6
				}
			default:
				return 0, false
			}
		case c < 0x20:
			return 0, false
		case c >= 0x80:
			ascii = false
		}
	}
	return 0, false
}

// hex4 reads the 4 hex digits at b[i].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, h := range b[i : i+4] {
		switch {
		case '0' <= h && h <= '9':
			h -= '0'
		case 'a' <= h && h <= 'f':
			h -= 'a' - 10
		case 'A' <= h && h <= 'F':
			h -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(h)
	}
	return r, true
}

// number returns the end of the valid JSON number at b[i].
func number(b []byte, i int) (int, bool) {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && '1' <= b[j] && b[j] <= '9':
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
	default:
		return 0, false
	}
	if j < len(b) && b[j] == '.' {
		j++
		k := j
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
		if j == k {
			return 0, false
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		k := j
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
		if j == k {
			return 0, false
		}
	}
	return j, true
}

// splitDecode is Split by the JSON decoder.
func splitDecode(body []byte, f Filter) ([][]byte, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	bad := func(err error) ([][]byte, error) { return nil, fmt.Errorf("%w: %v", ErrCorrupt, err) }
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return bad(errors.New("not a JSON object"))
	}
	var recs [][]byte
	found := false
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return bad(err)
		}
		if tok.String() != "Records" {
			if err := dec.SkipValue(); err != nil {
				return bad(err)
			}
			continue
		}
		found = true
		if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '[' {
			return bad(errors.New("Records is not an array"))
		}
		for dec.PeekKind() != ']' {
			v, err := dec.ReadValue()
			if err != nil {
				return bad(err)
			}
			if v.Kind() != '{' {
				return bad(errors.New("a record is not an object"))
			}
			if !f.Start.IsZero() || !f.End.IsZero() {
				if t, ok := EventTime(v); ok && ((!f.Start.IsZero() && t.Before(f.Start)) || (!f.End.IsZero() && t.After(f.End))) {
					continue
				}
			}
			rec := make([]byte, 0, len(v))
			rec = append(rec, v...)
			if err := (*jsontext.Value)(&rec).Compact(); err != nil {
				return bad(err)
			}
			recs = append(recs, rec)
		}
		if _, err := dec.ReadToken(); err != nil {
			return bad(err)
		}
	}
	if !found {
		return bad(errors.New("no Records"))
	}
	return recs, nil
}

var eventTimeKey = []byte(`"eventTime":`)

// EventTime reads a record's top-level eventTime without parsing the record
// (CloudTrail writes it before any nested object that could hold the name).
func EventTime(rec []byte) (time.Time, bool) {
	i := bytes.Index(rec, eventTimeKey)
	if i < 0 {
		return time.Time{}, false
	}
	rest := bytes.TrimLeft(rec[i+len(eventTimeKey):], " \t\r\n")
	if len(rest) < 2 || rest[0] != '"' {
		return time.Time{}, false
	}
	end := bytes.IndexByte(rest[1:], '"')
	if end < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(rest[1:1+end]))
	return t, err == nil
}

// Result is one decoded file.
type Result struct {
	File    File
	Records [][]byte
	Bytes   int // uncompressed size
	Err     error
}

// Decode reads and decodes files with workers goroutines (default NumCPU) and
// calls fn for each, from one goroutine, in no particular order. It stops at
// fn's first error or when ctx ends; a file that cannot be read or decoded is
// passed to fn with Err set.
func (a *Archive) Decode(ctx context.Context, files []File, f Filter, workers int, fn func(Result) error) error {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan File)
	results := make(chan Result, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for file := range jobs {
				r := Result{File: file}
				gz, err := a.Read(ctx, file.Key)
				if err != nil {
					r.Err = fmt.Errorf("read %s: %w", file.Key, err)
				} else {
					r.Records, r.Bytes, r.Err = Records(gz, f)
					if r.Err != nil {
						r.Err = fmt.Errorf("%s: %w", file.Key, r.Err)
					}
				}
				select {
				case results <- r:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for _, file := range files {
			select {
			case jobs <- file:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	var err error
	for r := range results {
		if err == nil {
			if err = fn(r); err != nil {
				cancel()
			}
		}
	}
	if err == nil {
		err = ctx.Err()
	}
	return err
}
