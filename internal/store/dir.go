package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/tollgate/tollgate/internal/atomicfile"
)

// Dir stores versions in a local directory:
//
//	current            id of the current version
//	history.json       events, oldest first
//	versions/<id>.json one Version each
//
// Versions no longer named by the last Keep events, other than the current
// one, are deleted.
type Dir struct {
	path string
	keep int
	mu   sync.Mutex
	// stopAfter names a step of Begin or Resolve after which they stop, as
	// a crash would (tests only; "" never stops).
	stopAfter string
}

var versionID = regexp.MustCompile(`^[0-9a-f]{6,64}$`)

// OpenDir opens (creating it if needed) a store in path that keeps the
// versions of the last keep events (default 50). It removes the temporary
// files (.tmp-*) that a process which died while writing the store left:
// a directory store has one writer, its control plane, and no file is
// ever read from a temporary name, so none of them is anyone's.
func OpenDir(path string, keep int) (*Dir, error) {
	if keep <= 0 {
		keep = 50
	}
	if err := os.MkdirAll(filepath.Join(path, "versions"), 0o700); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	removeTemporaryFiles(path, filepath.Join(path, "versions"))
	return &Dir{path: path, keep: keep}, nil
}

// removeTemporaryFiles removes the atomicfile temporary files (.tmp-*) in
// dirs, best effort.
func removeTemporaryFiles(dirs ...string) {
	for _, dir := range dirs {
		names, _ := filepath.Glob(filepath.Join(dir, ".tmp-*"))
		for _, name := range names {
			_ = os.Remove(name)
		}
	}
}

// Current returns the current version, or nil when the store is empty.
func (d *Dir) Current() (*Version, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, err := os.ReadFile(filepath.Join(d.path, "current"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read current version: %w", err)
	}
	return d.get(strings.TrimSpace(string(b)))
}

// CurrentID returns the id of the current version, or "" when the store
// is empty, reading only the current pointer.
func (d *Dir) CurrentID() (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	id, err := d.currentID()
	if err != nil {
		return "", fmt.Errorf("read current version: %w", err)
	}
	return id, nil
}

// Get returns the version id.
func (d *Dir) Get(id string) (*Version, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.get(id)
}

func (d *Dir) get(id string) (*Version, error) {
	if !versionID.MatchString(id) {
		return nil, fmt.Errorf("version %q: %w", id, ErrNotFound)
	}
	b, err := os.ReadFile(d.versionPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("version %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read version %s: %w", id, err)
	}
	var v Version
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("decode version %s: %w", id, err)
	}
	return &v, nil
}

// History returns the events, oldest first.
func (d *Dir) History() ([]Event, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.history()
}

func (d *Dir) history() ([]Event, error) {
	_, h, err := d.readHistory()
	return h, err
}

// readHistory returns the history file's bytes (nil when there is none)
// and its events.
func (d *Dir) readHistory() ([]byte, []Event, error) {
	b, err := os.ReadFile(filepath.Join(d.path, "history.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read history: %w", err)
	}
	var h []Event
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, nil, fmt.Errorf("decode history: %w", err)
	}
	return b, h, nil
}

// Put stores v. It does not make v current.
func (d *Dir) Put(v *Version) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !versionID.MatchString(v.ID) {
		return fmt.Errorf("store version: bad id %q", v.ID)
	}
	if err := writeJSON(d.versionPath(v.ID), v); err != nil {
		return fmt.Errorf("store version %s: %w", v.ID, err)
	}
	return nil
}

// SetCurrent makes the stored version id current.
func (d *Dir) SetCurrent(id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := os.Stat(d.versionPath(id)); err != nil {
		return fmt.Errorf("set current version %s: %w", id, ErrNotFound)
	}
	return d.writeCurrent(id)
}

// writeCurrent replaces the current pointer with id.
func (d *Dir) writeCurrent(id string) error {
	if err := atomicfile.Write(filepath.Join(d.path, "current"), []byte(id+"\n")); err != nil {
		return fmt.Errorf("store current version: %w", err)
	}
	return nil
}

// Append adds ev to the history, numbering it, and prunes versions that
// fell out of it. It returns ev with its sequence number.
func (d *Dir) Append(ev Event) (Event, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	h, err := d.history()
	if err != nil {
		return ev, err
	}
	h, ev = d.appended(h, ev)
	if err := writeJSON(filepath.Join(d.path, "history.json"), h); err != nil {
		return ev, fmt.Errorf("store history: %w", err)
	}
	return ev, d.prune(h)
}

// prune deletes stored versions that neither the history nor current names.
func (d *Dir) prune(h []Event) error {
	keep := map[string]bool{}
	for _, e := range h {
		keep[e.Version] = true
	}
	if b, err := os.ReadFile(filepath.Join(d.path, "current")); err == nil {
		keep[strings.TrimSpace(string(b))] = true
	}
	entries, err := os.ReadDir(filepath.Join(d.path, "versions"))
	if err != nil {
		return fmt.Errorf("prune versions: %w", err)
	}
	for _, e := range entries {
		id := strings.TrimSuffix(e.Name(), ".json")
		if !keep[id] {
			_ = os.Remove(filepath.Join(d.path, "versions", e.Name()))
		}
	}
	return nil
}

func (d *Dir) versionPath(id string) string {
	return filepath.Join(d.path, "versions", id+".json")
}

func writeJSON(path string, v any) error {
	b, err := marshalIndent(v)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b)
}

// marshalIndent is the encoding of the store's files.
func marshalIndent(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }
