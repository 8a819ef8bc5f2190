package lake

import (
	"os"

	"golang.org/x/sys/unix"
)

// punchHole frees the disk blocks of f's bytes [off, off+n) and keeps its size
// and every other offset: reads of the range return zeros.
func punchHole(f *os.File, off, n int64) error {
	return unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
}
