// Package atomicfile replaces files so that a reader, or the file system
// after a crash, sees either the old content or the new one, never a part.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces path with b: a temporary file in the same directory (mode
// 0600), fsync, rename over path, fsync of the directory.
func Write(path string, b []byte) error { return place(path, b, os.Rename) }

// Create writes b to path (mode 0600) only when path does not exist yet,
// failing with an error that wraps fs.ErrExist otherwise: a temporary
// file, fsync, a hard link to path, fsync of the directory. Of several
// writers racing to create path, exactly one wins, and no reader ever sees
// a partial file.
func Create(path string, b []byte) error { return place(path, b, os.Link) }

// place writes b to a synced temporary file beside path, moves it there
// with move (rename or link) and syncs the directory.
func place(path string, b []byte, move func(oldpath, newpath string) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := move(f.Name(), path); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}
