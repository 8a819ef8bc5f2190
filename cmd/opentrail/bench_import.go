package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// benchImport measures `opentrail import` end to end: it writes an archive of
// CloudTrail log files in AWS's layout (the seed's Lambda records, fresh IDs),
// starts a server as a child process and imports the archive into it twice:
// the first pass stores every record, the second finds them all present.
func benchImport(args []string) error {
	fs := newFlags("opentrail bench import", "[flags]", "Starts a server and measures opentrail import over a generated archive (or --archive).", "opentrail bench import --records 1000000")
	total := fs.Int("records", 1_000_000, "records in the generated archive")
	perFile := fs.Int("per-file", 1000, "records per log file")
	src := fs.String("archive", "", "import this archive instead of generating one")
	dataDir := fs.String("data-dir", "", "server data dir (default: a new temporary one, removed after)")
	if err := parseBench(fs, args); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "opentrail-bench-import-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if *src == "" {
		*src = filepath.Join(tmp, "archive")
		t0 := time.Now()
		gz, err := writeBenchArchive(*src, *total, *perFile)
		if err != nil {
			return err
		}
		fmt.Printf("archive: %d records in %d files, %.1f MB compressed (written in %s)\n",
			*total, (*total+*perFile-1) / *perFile, float64(gz)/1e6, time.Since(t0).Round(time.Millisecond))
	}
	dir := *dataDir
	if dir == "" {
		dir = filepath.Join(tmp, "data")
	}
	srv, err := startBenchServer(dir)
	if err != nil {
		return err
	}
	defer srv.stop()
	os.Setenv("OPENTRAIL_ACCESS_KEY_ID", srv.keyID)
	os.Setenv("OPENTRAIL_SECRET_ACCESS_KEY", srv.secret)
	for i, pass := range []string{"first import (all new)", "second import (all present)"} {
		state := filepath.Join(tmp, fmt.Sprintf("state-%d.json", i))
		fmt.Printf("%s: ", pass)
		if err := importMain([]string{"--server", srv.endpoint, "--state", state, "--quiet", *src}, os.Stdout); err != nil {
			return err
		}
	}
	fmt.Printf("server RSS %.0f MiB\n", srv.rssMiB())
	return nil
}

// writeBenchArchive writes total records into gzip log files of perFile
// records under root, in AWS's key layout, and returns their compressed size.
func writeBenchArchive(root string, total, perFile int) (int64, error) {
	rng := rand.New(rand.NewPCG(7, 7))
	now := time.Now().UTC().Truncate(time.Hour)
	var size int64
	for k := 0; k < total; k += perFile {
		n := min(perFile, total-k)
		body := genRecords("import", k, n, k/perFile%3 != 0, time.Hour, now, rng)
		at := now.Add(time.Duration(k/perFile) * time.Second)
		key := filepath.Join("AWSLogs", "123456789012", "CloudTrail", "ap-northeast-1", at.Format("2006/01/02"),
			fmt.Sprintf("123456789012_CloudTrail_ap-northeast-1_%s_%08x.json.gz", at.Format("20060102T1504Z"), k))
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(body)
		if err := zw.Close(); err != nil {
			return 0, err
		}
		path := filepath.Join(root, key)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return 0, err
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			return 0, err
		}
		size += int64(buf.Len())
	}
	return size, nil
}
