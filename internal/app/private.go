package app

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// privateDataDir makes everything under dir readable by its owner only,
// whatever mode a pre-created dir or an earlier version left (issue 11 §6):
// folders 0700, files 0600 (symbolic links are not followed). New files get
// those modes through the process umask, which is narrowed to 077.
func privateDataDir(dir string) error {
	setUmask()
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o600)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			return nil
		case d.IsDir():
			mode = 0o700
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm() != mode {
			if err := os.Chmod(path, mode); err != nil {
				return fmt.Errorf("app: make %s private: %w", path, err)
			}
		}
		return nil
	})
}
