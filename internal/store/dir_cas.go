package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// SwapCurrent makes id current if old is current. A directory store has one
// writer (its control plane), so the check is under the store's mutex.
func (d *Dir) SwapCurrent(old, id string) error {
	d.mu.Lock()
	cur, err := d.currentID()
	d.mu.Unlock()
	if err != nil {
		return err
	}
	if cur != old {
		return &ConflictError{Expected: old, Current: cur, Reason: "the current version changed"}
	}
	return d.SetCurrent(id)
}

func (d *Dir) currentID() (string, error) {
	b, err := os.ReadFile(filepath.Join(d.path, "current"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// Lock is a no-op: one process writes a directory store, and its
// controller serialises pushes itself.
func (d *Dir) Lock(context.Context, time.Duration) (func(), error) { return func() {}, nil }

// Changes returns nil: a directory store is polled.
func (d *Dir) Changes(context.Context) <-chan struct{} { return nil }
