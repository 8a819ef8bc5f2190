package kv

import (
	"errors"
	"fmt"
)

// ErrDiskFull is the error (errors.Is) of a write refused for lack of disk space.
var ErrDiskFull = errors.New("kv: disk full")

// DiskFullError says how much room the disk under a dir has and how much it should keep.
type DiskFullError struct {
	Dir           string
	Free, Reserve uint64 // bytes
}

func (e *DiskFullError) Error() string {
	return fmt.Sprintf("kv: disk full: %d MiB free under %s, below the %d MiB kept in reserve", e.Free>>20, e.Dir, e.Reserve>>20)
}

func (e *DiskFullError) Is(target error) bool { return target == ErrDiskFull }

// CheckSpace returns a *DiskFullError when the file system holding dir has
// less than reserve bytes available. Writers check it before they write, so
// that the database itself never runs out of space: Pebble cannot go on after
// a failed log write (its Fatalf), and a flush that cannot complete is retried
// without end (issue 11 §6).
func CheckSpace(dir string, reserve uint64) error {
	free, err := freeBytes(dir)
	if err != nil {
		return fmt.Errorf("kv: free space under %s: %w", dir, err)
	}
	if free < reserve {
		return &DiskFullError{Dir: dir, Free: free, Reserve: reserve}
	}
	return nil
}
