package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// File is one policy source: Name is what diagnostics call it (usually the
// path), Content its YAML text.
type File struct {
	Name    string
	Content []byte
}

// ReadPath reads the policy at path: the file itself, or, for a directory,
// every *.yaml and *.yml file directly in it (not in subdirectories), sorted
// by name. It returns an error if path cannot be read or the directory holds
// no policy file.
func ReadPath(path string) ([]File, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	if !info.IsDir() {
		f, err := readFile(path)
		if err != nil {
			return nil, err
		}
		return []File{f}, nil
	}
	return readDir(path)
}

func readDir(dir string) ([]File, error) {
	entries, err := os.ReadDir(dir) // sorted by file name
	if err != nil {
		return nil, fmt.Errorf("read policy directory: %w", err)
	}
	var files []File
	for _, e := range entries {
		if e.IsDir() || !isYAMLName(e.Name()) {
			continue
		}
		f, err := readFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("read policy directory %s: %w", dir, errNoPolicyFiles)
	}
	return files, nil
}

var errNoPolicyFiles = errors.New("no *.yaml or *.yml files")

func readFile(path string) (File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return File{}, fmt.Errorf("read policy file: %w", err)
	}
	return File{Name: path, Content: b}, nil
}

func isYAMLName(name string) bool {
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}
