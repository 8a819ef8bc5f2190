//go:build !linux

package lake

import (
	"errors"
	"os"
)

// punchHole is Linux's fallocate(FALLOC_FL_PUNCH_HOLE); elsewhere block files
// keep the space of expired records.
func punchHole(*os.File, int64, int64) error { return errors.ErrUnsupported }
