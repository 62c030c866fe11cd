// Package atomicfile writes files so that a crash at any point leaves
// either the old or the new content: write a temporary file, fsync it,
// rename it over the target.
package atomicfile

import "os"

// Write replaces path with data (mode 0600).
func Write(path string, data []byte) error { return write(path, data, true) }

// WriteUnsynced replaces path with data (mode 0600) without waiting for the
// disk: other processes see the old or the new content, and so does the
// disk after a crash of this process, but an unclean shutdown of the
// machine may lose the new one. For state that only matters while the
// machine is up (a --rm container's).
func WriteUnsynced(path string, data []byte) error { return write(path, data, false) }

func write(path string, data []byte, sync bool) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
