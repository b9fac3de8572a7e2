package acme

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/tollgate/tollgate/internal/atomicfile"
)

// KV is where Storage keeps its entries, by slash-separated name
// (accounts/<id>.json, certificates/<name>.pem, secrets.json and, for a
// shared store, challenges/<token>): a local directory (OpenStorage) or a
// store shared by several control-plane replicas (internal/store's Redis,
// through NewSharedStorage).
type KV interface {
	// Get returns the entry, or an error wrapping fs.ErrNotExist.
	Get(name string) ([]byte, error)
	// Put replaces the entry; ttl > 0 makes it expire.
	Put(name string, b []byte, ttl time.Duration) error
	// Delete removes the entry (absent is no error).
	Delete(name string) error
}

// Locker is implemented by a KV shared by several replicas: TryLock takes
// the lock name for ttl, keeping it (renewing the ttl) until unlock is
// called; held is false when another holder has it.
type Locker interface {
	TryLock(name string, ttl time.Duration) (unlock func(), held bool, err error)
}

// Watcher is implemented by a shared KV that announces changes: Changes
// receives (coalesced) after any replica replaced a durable entry (a new
// certificate, say), until ctx ends. Pub/sub may drop messages, so Managers
// also poll.
type Watcher interface {
	Changes(ctx context.Context) <-chan struct{}
}

// dirKV is a KV in a local directory: every file written atomically with
// mode 0600 in directories of mode 0700; ttl is ignored.
type dirKV string

func (d dirKV) path(name string) string { return filepath.Join(string(d), filepath.FromSlash(name)) }

func (d dirKV) Get(name string) ([]byte, error) { return os.ReadFile(d.path(name)) }

func (d dirKV) Put(name string, b []byte, _ time.Duration) error {
	p := d.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(p, b)
}

func (d dirKV) Delete(name string) error {
	if err := os.Remove(d.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}
