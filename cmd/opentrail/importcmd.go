package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opentrail/opentrail/internal/archive"
	"github.com/opentrail/opentrail/internal/objstore"
)

// Limits of one POST /v1/records.
const (
	importMaxRecords = 500
	importMaxBytes   = 1 << 20
)

// runImport sends the records of CloudTrail archives (a folder or an S3 prefix)
// to a running server, idempotently: the server drops eventIDs it holds, and a
// state file remembers which files were sent completely.
func runImport(args []string) error { return importMain(args, os.Stderr) }

// importMain is runImport writing its progress and summary to out.
func importMain(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: opentrail import [flags] PATH|s3://bucket/prefix")
		fs.PrintDefaults()
	}
	endpoint := fs.String("server", env("http://127.0.0.1:4590", "OPENTRAIL_ENDPOINT"), "the server's URL")
	fs.StringVar(endpoint, "endpoint", *endpoint, "same as --server")
	region := fs.String("region", env("us-east-1", "OPENTRAIL_REGION"), "signing region (the default awsRegion of records without one)")
	start := fs.String("start-time", "", "only events at or after this time (RFC 3339 or YYYY-MM-DD)")
	end := fs.String("end-time", "", "only events at or before this time (RFC 3339 or YYYY-MM-DD)")
	follow := fs.Bool("follow", false, "keep polling for new files")
	interval := fs.Duration("interval", time.Minute, "with --follow, how often to look for new files")
	stateFile := fs.String("state", "", "file remembering the files already imported (default: under the user cache dir)")
	insights := fs.Bool("insights", false, "import CloudTrail-Insight files too")
	workers := fs.Int("workers", 0, "files decoded in parallel (default: number of CPUs)")
	inflight := fs.Int("concurrency", 8, "requests in flight")
	s3Endpoint := fs.String("s3-endpoint", env("", "OPENTRAIL_S3_ENDPOINT"), "S3-compatible endpoint for s3:// sources (default AWS)")
	s3Region := fs.String("s3-region", "", "S3 region")
	s3PathStyle := fs.Bool("s3-path-style", false, "address S3 buckets by path")
	quiet := fs.Bool("quiet", false, "no progress line")
	fs.Parse(args)
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("give one PATH or s3://bucket/prefix")
	}
	src := fs.Arg(0)
	var filter archive.Filter
	var err error
	if filter.Start, err = parseTimeFlag(*start); err != nil {
		return fmt.Errorf("--start-time: %w", err)
	}
	if filter.End, err = parseTimeFlag(*end); err != nil {
		return fmt.Errorf("--end-time: %w", err)
	}
	filter.Insights = *insights
	c, err := newClient(strings.TrimRight(*endpoint, "/"), *region, false)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var store objstore.Store
	if strings.HasPrefix(src, "s3://") {
		s3, err := objstore.NewS3(ctx, objstore.S3Config{Endpoint: *s3Endpoint, Region: *s3Region, PathStyle: *s3PathStyle,
			AccessKeyID: os.Getenv("OPENTRAIL_S3_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("OPENTRAIL_S3_SECRET_ACCESS_KEY")})
		if err != nil {
			return err
		}
		store = s3
	}
	ar, err := archive.Open(ctx, src, store)
	if err != nil {
		return err
	}
	if *stateFile == "" {
		*stateFile = defaultStateFile(src)
	}
	st, err := loadImportState(*stateFile)
	if err != nil {
		return err
	}
	im := &importer{c: c, ar: ar, filter: filter, state: st, workers: *workers, inflight: max(1, *inflight), out: out, quiet: *quiet}
	for {
		if err := im.pass(ctx); err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		if !*follow {
			break
		}
		select {
		case <-time.After(*interval):
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	im.summary()
	if im.failedFiles.Load() > 0 {
		return fmt.Errorf("%d files could not be imported (see above); run again to retry them", im.failedFiles.Load())
	}
	return nil
}

func parseTimeFlag(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time (RFC 3339 or YYYY-MM-DD)", s)
}

// importState is the set of files imported completely, kept in a small JSON file.
type importState struct {
	path string
	mu   sync.Mutex
	Done map[string]bool `json:"done"`
}

func defaultStateFile(src string) string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	name := strings.NewReplacer("/", "_", ":", "_", "\\", "_").Replace(strings.Trim(src, "/"))
	if abs, err := filepath.Abs(src); err == nil && !strings.HasPrefix(src, "s3://") {
		name = strings.NewReplacer("/", "_", "\\", "_", ":", "_").Replace(strings.Trim(abs, "/"))
	}
	return filepath.Join(dir, "opentrail", "import", name+".json")
}

func loadImportState(path string) (*importState, error) {
	st := &importState{path: path, Done: map[string]bool{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	if st.Done == nil {
		st.Done = map[string]bool{}
	}
	return st, nil
}

// save writes the state atomically.
func (s *importState) save() error {
	s.mu.Lock()
	b, err := json.Marshal(s)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.path)
}

func (s *importState) snapshot() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]bool, len(s.Done))
	for k := range s.Done {
		m[k] = true
	}
	return m
}

type importer struct {
	c        *client
	ar       *archive.Archive
	filter   archive.Filter
	state    *importState
	workers  int
	inflight int
	out      io.Writer
	quiet    bool

	started                                      time.Time
	files, totalFiles, corrupt, failedFiles      atomic.Int64
	records, imported, present, skipped, gzBytes atomic.Int64
}

// fileJob tracks the requests of one file: it is done when all succeeded.
type fileJob struct {
	key     string
	pending atomic.Int64
	failed  atomic.Bool
}

type request struct {
	file *fileJob
	body []byte
	n    int
}

// pass imports the files not imported yet.
func (im *importer) pass(ctx context.Context) error {
	files, err := im.ar.List(ctx, im.filter, im.state.snapshot())
	if err != nil {
		return err
	}
	if im.started.IsZero() {
		im.started = time.Now()
	}
	im.totalFiles.Add(int64(len(files)))
	if len(files) == 0 {
		return nil
	}
	reqs := make(chan request, im.inflight*2)
	var wg sync.WaitGroup
	var saveMu sync.Mutex
	lastSave := time.Now()
	finish := func(f *fileJob) {
		if f.pending.Add(-1) != 0 {
			return
		}
		im.files.Add(1)
		if f.failed.Load() {
			im.failedFiles.Add(1)
			return
		}
		im.state.mu.Lock()
		im.state.Done[f.key] = true
		im.state.mu.Unlock()
		saveMu.Lock()
		if time.Since(lastSave) > 2*time.Second {
			lastSave = time.Now()
			if err := im.state.save(); err != nil {
				fmt.Fprintf(im.out, "\nimport: save state: %v\n", err)
			}
		}
		saveMu.Unlock()
	}
	for range im.inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range reqs {
				if err := im.send(ctx, r); err != nil {
					if ctx.Err() == nil {
						fmt.Fprintf(im.out, "\nimport: %s: %v\n", r.file.key, err)
					}
					r.file.failed.Store(true)
				}
				finish(r.file)
			}
		}()
	}
	progressDone := make(chan struct{})
	go im.progress(progressDone)
	derr := im.ar.Decode(ctx, files, im.filter, im.workers, func(res archive.Result) error {
		im.gzBytes.Add(res.File.Size)
		if res.Err != nil {
			im.corrupt.Add(1)
			im.files.Add(1)
			fmt.Fprintf(im.out, "\nimport: skip %v\n", res.Err)
			return nil
		}
		f := &fileJob{key: res.File.Key}
		f.pending.Store(1) // held until all of the file's requests are queued
		var body bytes.Buffer
		n := 0
		flush := func() error {
			if n == 0 {
				return nil
			}
			body.WriteString("]}")
			f.pending.Add(1)
			select {
			case reqs <- request{file: f, body: bytes.Clone(body.Bytes()), n: n}:
			case <-ctx.Done():
				return ctx.Err()
			}
			body.Reset()
			n = 0
			return nil
		}
		for _, rec := range res.Records {
			if len(rec)+32 > importMaxBytes {
				im.skipped.Add(1)
				continue
			}
			if n == importMaxRecords || (n > 0 && body.Len()+len(rec)+3 > importMaxBytes) {
				if err := flush(); err != nil {
					return err
				}
			}
			if n == 0 {
				body.WriteString(`{"Records":[`)
			} else {
				body.WriteByte(',')
			}
			body.Write(rec)
			n++
		}
		if err := flush(); err != nil {
			return err
		}
		finish(f)
		return nil
	})
	close(reqs)
	wg.Wait()
	close(progressDone)
	if err := im.state.save(); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return derr
}

// send posts one request, retrying what may succeed later.
func (im *importer) send(ctx context.Context, r request) error {
	backoff := 200 * time.Millisecond
	for attempt := 0; ; attempt++ {
		var out struct{ Accepted, Duplicates int }
		err := im.c.post(ctx, "/v1/records", r.body, &out)
		if err == nil {
			im.records.Add(int64(r.n))
			im.imported.Add(int64(out.Accepted - out.Duplicates))
			im.present.Add(int64(out.Duplicates))
			return nil
		}
		retry := strings.Contains(err.Error(), "HTTP 5") || strings.Contains(err.Error(), "HTTP 429") || !strings.Contains(err.Error(), "HTTP ")
		if !retry || attempt >= 5 || ctx.Err() != nil {
			return err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (im *importer) progress(done chan struct{}) {
	if im.quiet {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			el := time.Since(im.started).Seconds()
			fmt.Fprintf(im.out, "\rfiles %d/%d  records %d (new %d, present %d)  %.0f records/s  %.1f MB/s gz   ",
				im.files.Load(), im.totalFiles.Load(), im.records.Load(), im.imported.Load(), im.present.Load(),
				float64(im.records.Load())/el, float64(im.gzBytes.Load())/el/1e6)
		}
	}
}

func (im *importer) summary() {
	el := time.Since(im.started)
	if im.started.IsZero() {
		el = 0
	}
	rate := 0.0
	if el > 0 {
		rate = float64(im.records.Load()) / el.Seconds()
	}
	fmt.Fprintf(im.out, "\rimported %d new records, %d already present, from %d files (%d corrupt, %d failed",
		im.imported.Load(), im.present.Load(), im.files.Load(), im.corrupt.Load(), im.failedFiles.Load())
	if s := im.skipped.Load(); s > 0 {
		fmt.Fprintf(im.out, ", %d records over 1 MiB skipped", s)
	}
	fmt.Fprintf(im.out, ") in %s: %.0f records/s, %.1f MB/s compressed\n", el.Round(time.Millisecond), rate, float64(im.gzBytes.Load())/max(el.Seconds(), 1e-9)/1e6)
}
