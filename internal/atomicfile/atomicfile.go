// Package atomicfile replaces files so that a reader, or the file system
// after a crash, sees either the old content or the new one, never a part.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces path with b: a temporary file in the same directory (mode
// 0600), fsync, rename over path, fsync of the directory.
func Write(path string, b []byte) error { return place(path, b, os.Rename, true) }

// Create writes b to path (mode 0600) only when path does not exist yet,
// failing with an error that wraps fs.ErrExist otherwise: a temporary
// file, fsync, a hard link to path, fsync of the directory. Of several
// writers racing to create path, exactly one wins, and no reader ever sees
// a partial file.
func Create(path string, b []byte) error { return place(path, b, os.Link, false) }

// place writes b to a synced temporary file beside path, moves it there
// with move (rename, or link: then the temporary file is removed) and
// syncs the directory.
func place(path string, b []byte, move func(oldpath, newpath string) error, renames bool) error {
	s, err := Stage(path, b)
	if err != nil {
		return err
	}
	defer s.Discard()
	return s.commit(move, renames)
}

// Staged is content written and synced to a temporary file beside its
// destination, not yet in place: what Write does before it renames. A
// crash leaves at most the temporary file (named .tmp-*), which no reader
// of path sees. Staging lets a caller sync several files at once and still
// put them in place in the order it needs, each rename made durable before
// the next.
type Staged struct {
	tmp, path string
	// renamed: Commit moved tmp to path, so the name tmp is no longer
	// this Staged's (another writer's CreateTemp may reuse it).
	renamed bool
}

// Stage writes b to a synced temporary file (mode 0600) in path's
// directory. Commit puts it at path; Discard removes it.
func Stage(path string, b []byte) (*Staged, error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*") // mode 0600
	if err != nil {
		return nil, err
	}
	s := &Staged{tmp: f.Name(), path: path}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.Discard()
		return nil, err
	}
	return s, nil
}

// Commit replaces path with the staged content (rename) and syncs the
// directory, as Write does after its fsync.
func (s *Staged) Commit() error { return s.commit(os.Rename, true) }

// Discard removes the temporary file if it was not committed; after a
// Commit that renamed it, it does nothing.
func (s *Staged) Discard() {
	if !s.renamed {
		_ = os.Remove(s.tmp)
	}
}

// commit moves tmp to path with move (renames says whether move renames,
// so that tmp is gone) and syncs the directory.
func (s *Staged) commit(move func(oldpath, newpath string) error, renames bool) error {
	if err := move(s.tmp, s.path); err != nil {
		return err
	}
	s.renamed = renames
	dir, err := os.Open(filepath.Dir(s.path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}
