package app

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/kv"
)

// diskGuards are the checks that keep the data dir's disk from filling up
// (issue 11 §6: a full disk made Pebble panic, and a restart on it spun
// without ever listening). admit refuses records from outside below the
// reserve; floor refuses every journal write (self-audit records too) below a
// quarter of it, so that the database keeps room to flush and compact. Both
// answer 503 ServiceUnavailableException, which AWS SDKs retry, and both
// clear by themselves when space returns.
func diskGuards(dir string, reserveMiB int64, log *slog.Logger) (admit, floor func() error) {
	if reserveMiB <= 0 {
		reserveMiB = 512
	}
	reserve := uint64(reserveMiB) << 20
	var short atomic.Bool // logs the change, not every refusal
	check := func(need uint64) error {
		err := kv.CheckSpace(dir, need)
		var full *kv.DiskFullError
		if !errors.As(err, &full) {
			if err == nil && short.CompareAndSwap(true, false) {
				log.Info("disk space is back: accepting records again", "data_dir", dir)
			}
			return err
		}
		if short.CompareAndSwap(false, true) {
			log.Error("disk nearly full: refusing new records until space is freed", "data_dir", dir,
				"free_mib", full.Free>>20, "reserve_mib", reserve>>20)
		}
		return awsapi.Errorf("ServiceUnavailableException",
			"OpenTrail is short of disk space (%d MiB free, %d MiB kept in reserve) and accepts no records until space is freed; retry later.",
			full.Free>>20, need>>20)
	}
	return func() error { return check(reserve) }, func() error { return check(reserve / 4) }
}

// ballastName is the file under the data dir that holds disk space in reserve
// for a start on a full disk: Pebble must flush its write-ahead log before
// Open returns, and with no space left that flush is retried without end.
const ballastName = "disk-ballast"

// prepareDisk runs before the database opens. With a ballast configured, it
// deletes the ballast when the disk is short of the reserve (so that the
// database can open, serve reads and refuse records), or creates it when there
// is room. Without enough space to flush the write-ahead logs even then, the
// start is refused with a message rather than hanging.
func prepareDisk(dataDir string, reserveMiB, ballastMiB int64, log *slog.Logger) error {
	if reserveMiB <= 0 {
		reserveMiB = 512
	}
	ballast := filepath.Join(dataDir, ballastName)
	reserve, size := uint64(reserveMiB)<<20, uint64(ballastMiB)<<20
	if ballastMiB > 0 {
		_, statErr := os.Stat(ballast)
		full := kv.CheckSpace(dataDir, reserve) != nil
		switch {
		case full && statErr == nil:
			log.Error("disk nearly full: deleting the disk ballast so that OpenTrail can start; records are refused until space is freed",
				"file", ballast, "mib", ballastMiB)
			if err := os.Remove(ballast); err != nil {
				return fmt.Errorf("app: delete disk ballast: %w", err)
			}
		case statErr != nil && kv.CheckSpace(dataDir, reserve+size) == nil:
			if err := allocate(ballast, int64(size)); err != nil {
				os.Remove(ballast)
				log.Warn("cannot create the disk ballast", "file", ballast, "err", err)
			}
		}
	}
	// Pebble flushes what its logs hold before it opens: that needs room.
	var need uint64 = 4 << 20
	logs, _ := filepath.Glob(filepath.Join(dataDir, "db", "*.log"))
	for _, l := range logs {
		if fi, err := os.Stat(l); err == nil {
			need += uint64(fi.Size())
		}
	}
	if err := kv.CheckSpace(dataDir, need); errors.Is(err, kv.ErrDiskFull) {
		return fmt.Errorf("app: cannot start: %w; opening the database needs about %d MiB to flush its write-ahead log: free some space and start again", err, need>>20)
	}
	return nil
}

// allocate creates a file of size bytes whose blocks are really allocated.
func allocate(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := fallocate(f, size); err != nil {
		buf := make([]byte, 1<<20)
		for left := size; left > 0; left -= int64(len(buf)) {
			if _, err := f.Write(buf[:min(int64(len(buf)), left)]); err != nil {
				return err
			}
		}
	}
	return f.Sync()
}
