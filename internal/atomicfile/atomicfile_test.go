package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesWithMode0600AndLeavesNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	for _, content := range []string{"first", "second"} {
		if err := Write(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("content %q, %v; want %q", got, err, content)
		}
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", info.Mode().Perm(), err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("directory holds %d entries (%v), want only the file", len(entries), err)
	}
}

func TestWriteFailsInAMissingDirectory(t *testing.T) {
	if err := Write(filepath.Join(t.TempDir(), "missing", "f"), []byte("x")); err == nil {
		t.Fatal("Write into a missing directory succeeded")
	}
}

// TestCreateOnlyOnce: Create writes a new file 0600 and refuses, with
// fs.ErrExist, to replace one that exists.
func TestCreateOnlyOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	if err := Create(path, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := Create(path, []byte("two")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Create: %v, want fs.ErrExist", err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "one" {
		t.Fatalf("content %q, %v; want the first write", b, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the file (the linked temporary file removed)", len(entries))
	}
}

// TestStageCommitDiscard: staged content is invisible at path until
// Commit; Discard leaves path as it was and no temporary file behind.
func TestStageCommitDiscard(t *testing.T) {
	for _, commit := range []bool{true, false} {
		dir := t.TempDir()
		path := filepath.Join(dir, "f")
		if err := Write(path, []byte("old")); err != nil {
			t.Fatal(err)
		}
		s, err := Stage(path, []byte("new"))
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); string(b) != "old" {
			t.Fatalf("staged content visible before Commit: %q", b)
		}
		want := "old"
		if commit {
			if err := s.Commit(); err != nil {
				t.Fatal(err)
			}
			want = "new"
		}
		s.Discard()
		if b, err := os.ReadFile(path); err != nil || string(b) != want {
			t.Errorf("commit %v: content %q, %v; want %q", commit, b, err, want)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Errorf("commit %v: directory holds %d entries, want only the file", commit, len(entries))
		}
	}
}

// TestDiscardAfterCommitLeavesTheNameAlone: once committed, a Staged no
// longer owns its temporary name; another writer's temporary file that
// happens to get the same name survives Discard.
func TestDiscardAfterCommitLeavesTheNameAlone(t *testing.T) {
	dir := t.TempDir()
	s, err := Stage(filepath.Join(dir, "f"), []byte("new"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	// Another writer's CreateTemp picks the now free name.
	if err := os.WriteFile(s.tmp, []byte("someone else's"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Discard()
	if b, err := os.ReadFile(s.tmp); err != nil || string(b) != "someone else's" {
		t.Fatalf("another writer's temporary file after Discard: %q, %v; want it untouched", b, err)
	}
}
