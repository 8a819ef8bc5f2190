package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opentrail/opentrail/internal/archive"
	"github.com/opentrail/opentrail/internal/ingest"
)

// runImport sends the records of CloudTrail archives (a folder or an S3 prefix)
// to a running server, idempotently: the server drops eventIDs it holds, and a
// state file remembers which files were sent completely.
func runImport(args []string) error { return importMain(args, os.Stderr) }

// importMain is runImport writing its progress and summary to out.
func importMain(args []string, out io.Writer) error {
	fs := newFlags("opentrail import", "[flags] PATH|s3://bucket/prefix",
		`Sends the records of CloudTrail log files (a folder such as an AWSLogs/ tree, or an S3 prefix) to a
running server, idempotently: the server drops eventIDs it holds, and a state file remembers the files
sent completely. Each record goes to the account its recipientAccountId names (a record without one:
the signing key's account); a writer or admin key may only send records of its own account, the root
key any account's. The summary says which accounts the records went to. Files that are not gzip'd
{"Records":[...]} are listed and make the command fail (after the others are imported).`,
		"opentrail import --start-time 2024-01-01 ./AWSLogs\nopentrail import --follow s3://my-trail-bucket/AWSLogs/")
	cf := addClientFlags(fs, "signing region (the default awsRegion of records without one)")
	server := fs.String("server", "", "same as --endpoint")
	start := fs.String("start-time", "", "only events at or after this time (RFC 3339 or YYYY-MM-DD)")
	end := fs.String("end-time", "", "only events at or before this time (RFC 3339 or YYYY-MM-DD)")
	follow := fs.Bool("follow", false, "keep polling for new files")
	interval := fs.Duration("interval", time.Minute, "with --follow, how often to look for new files")
	stateFile := fs.String("state", "", "file remembering the files already imported (default: under the user cache dir)")
	insights := fs.Bool("insights", false, "import CloudTrail-Insight files too")
	workers := fs.Int("workers", 0, "files decoded in parallel (default: number of CPUs)")
	inflight := fs.Int("concurrency", 8, "requests in flight")
	s3f := addS3Flags(fs, "for s3:// sources: ")
	quiet := fs.Bool("quiet", false, "no progress line (it is drawn only when stderr is a terminal)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(1, "one PATH or s3://bucket/prefix"); err != nil {
		return err
	}
	if fs.given["server"] && !fs.given["endpoint"] {
		*cf.endpoint = *server
	}
	src := fs.Arg(0)
	var filter archive.Filter
	var err error
	if filter.Start, err = parseTimeFlag(*start); err != nil {
		return usagef("--start-time: %v", err)
	}
	if filter.End, err = parseTimeFlag(*end); err != nil {
		return usagef("--end-time: %v", err)
	}
	filter.Insights = *insights
	c, err := cf.connect(context.Background(), false)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	store, err := s3f.storeFor(ctx, src)
	if err != nil {
		return err
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
	// A request that fails for a reason that may heal is sent up to five more times.
	rc := c.records(5)
	rc.Retry = ingest.Transient // a wrong key fails at once, not after 6 s of retries per request
	im := &importer{c: rc, ar: ar, filter: filter, state: st, workers: *workers, inflight: max(1, *inflight), out: out,
		progressLine: !*quiet && isTerminal(out), accounts: map[string]int64{}}
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
	var errs []string
	if n := len(im.corruptFiles); n > 0 {
		list := im.corruptFiles[:min(n, 20)]
		more := ""
		if n > len(list) {
			more = fmt.Sprintf("\n  ... and %d more", n-len(list))
		}
		errs = append(errs, fmt.Sprintf("%d files are corrupt and were not imported:\n  %s%s", n, strings.Join(list, "\n  "), more))
	}
	if n := im.failedFiles.Load(); n > 0 {
		errs = append(errs, fmt.Sprintf("%d files could not be imported (see above); run again to retry them", n))
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// isTerminal reports whether w is a terminal, where a progress line redrawn with \r belongs.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
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
	c        *ingest.Client
	ar       *archive.Archive
	filter   archive.Filter
	state    *importState
	workers  int
	inflight int
	out      io.Writer
	// progressLine draws a progress line, redrawn each second: only on a terminal.
	progressLine bool

	started                                      time.Time
	files, totalFiles, corrupt, failedFiles      atomic.Int64
	records, imported, present, skipped, gzBytes atomic.Int64
	totalGzBytes                                 atomic.Int64

	mu           sync.Mutex
	corruptFiles []string         // keys of the files that are not gzip'd {"Records":[...]}
	accounts     map[string]int64 // records accepted by recipientAccountId ("" = the key's account)
}

// fileJob tracks the requests of one file: it is done when all succeeded.
type fileJob struct {
	key     string
	pending atomic.Int64
	failed  atomic.Bool
}

type request struct {
	file     *fileJob
	body     []byte
	n        int
	accounts map[string]int // records by recipientAccountId
}

// recipientAccount returns a compact record's recipientAccountId, "" when it has none. It is
// the last member of that name: CloudTrail writes it at the top level after the nested parameters.
func recipientAccount(rec []byte) string {
	const member = `"recipientAccountId":"`
	i := bytes.LastIndex(rec, []byte(member))
	if i < 0 {
		return ""
	}
	v := rec[i+len(member):]
	j := bytes.IndexByte(v, '"')
	if j < 0 {
		return ""
	}
	return string(v[:j])
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
	for _, f := range files {
		im.totalGzBytes.Add(f.Size)
	}
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
				fmt.Fprintf(im.out, "%simport: save state: %v\n", im.lineStart(), err)
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
						fmt.Fprintf(im.out, "%simport: %s: %v\n", im.lineStart(), r.file.key, err)
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
			im.mu.Lock()
			im.corruptFiles = append(im.corruptFiles, res.File.Key)
			im.mu.Unlock()
			fmt.Fprintf(im.out, "%simport: skip %v\n", im.lineStart(), res.Err)
			return nil
		}
		f := &fileJob{key: res.File.Key}
		f.pending.Store(1) // held until all of the file's requests are queued
		for _, batch := range ingest.Batches(res.Records) {
			body := ingest.Body(batch)
			if len(body) > ingest.MaxRequestBytes {
				// A record larger than a request, alone in its batch: no server takes it.
				im.skipped.Add(int64(len(batch)))
				continue
			}
			accounts := map[string]int{}
			for _, rec := range batch {
				accounts[recipientAccount(rec)]++
			}
			f.pending.Add(1)
			select {
			case reqs <- request{file: f, body: body, n: len(batch), accounts: accounts}:
			case <-ctx.Done():
				return ctx.Err()
			}
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

// send posts one request (retried by the client while the error may heal) and counts its records.
func (im *importer) send(ctx context.Context, r request) error {
	out, err := im.c.Post(ctx, r.body)
	if err != nil {
		return err
	}
	im.records.Add(int64(r.n))
	im.imported.Add(int64(out.Accepted - out.Duplicates))
	im.present.Add(int64(out.Duplicates))
	im.mu.Lock()
	for a, n := range r.accounts {
		im.accounts[a] += int64(n)
	}
	im.mu.Unlock()
	return nil
}

// lineStart ends the progress line before a message, when one is drawn.
func (im *importer) lineStart() string {
	if im.progressLine {
		return "\n"
	}
	return ""
}

func (im *importer) progress(done chan struct{}) {
	if !im.progressLine {
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
			gz, total := im.gzBytes.Load(), im.totalGzBytes.Load()
			eta := "?"
			if gz > 0 && total >= gz {
				eta = (time.Duration(el*float64(total-gz)/float64(gz)) * time.Second).Round(time.Second).String()
			}
			fmt.Fprintf(im.out, "\rfiles %d/%d  records %d (new %d, present %d)  %.0f records/s  %.1f MB/s gz  ETA %s   ",
				im.files.Load(), im.totalFiles.Load(), im.records.Load(), im.imported.Load(), im.present.Load(),
				float64(im.records.Load())/el, float64(gz)/el/1e6, eta)
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
	if im.progressLine {
		fmt.Fprint(im.out, "\r")
	}
	fmt.Fprintf(im.out, "imported %d new records, %d already present, from %d files (%d corrupt, %d failed",
		im.imported.Load(), im.present.Load(), im.files.Load(), im.corrupt.Load(), im.failedFiles.Load())
	if s := im.skipped.Load(); s > 0 {
		fmt.Fprintf(im.out, ", %d records over 1 MiB skipped", s)
	}
	fmt.Fprintf(im.out, ") in %s: %.0f records/s, %.1f MB/s compressed\n", el.Round(time.Millisecond), rate, float64(im.gzBytes.Load())/max(el.Seconds(), 1e-9)/1e6)
	im.mu.Lock()
	defer im.mu.Unlock()
	if len(im.accounts) == 0 {
		return
	}
	accts := make([]string, 0, len(im.accounts))
	for a := range im.accounts {
		accts = append(accts, a)
	}
	slices.Sort(accts)
	parts := make([]string, len(accts))
	for i, a := range accts {
		name := a
		if a == "" {
			name = "the key's account (records without recipientAccountId)"
		}
		parts[i] = fmt.Sprintf("%s: %d", name, im.accounts[a])
	}
	fmt.Fprintf(im.out, "records by account: %s\n", strings.Join(parts, ", "))
}
