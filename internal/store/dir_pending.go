package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tollgate/tollgate/internal/atomicfile"
)

// errStopped is a Begin or Resolve stopped by Dir.stopAfter (tests).
var errStopped = errors.New("stopped after a step, as a crash would")

// Steps of Begin and Resolve that Dir.stopAfter can stop after.
const (
	stepBeginHistory   = "begin:history"
	stepResolveCurrent = "resolve:current"
)

func (d *Dir) stop(step string) error {
	if d.stopAfter == step {
		return errStopped
	}
	return nil
}

// Begin makes ev.Version current if old is current and appends ev. It
// writes the history first and the current pointer second, each replaced
// atomically and synced: a crash between them leaves a pending event whose
// version is not current, which ResolveOrphans settles as Interrupted. The
// new pointer is written to its temporary file and synced while the
// history is written (one fsync less on the push's path); it replaces the
// pointer only once the history's rename is durable.
func (d *Dir) Begin(old string, ev Event) (Event, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.begin(old, ev)
}

// begin is Begin with d.mu held.
func (d *Dir) begin(old string, ev Event) (Event, error) {
	if err := d.canBegin(old, ev.Version); err != nil {
		return ev, err
	}
	h, err := d.history()
	if err != nil {
		return ev, err
	}
	h, ev = d.appended(h, ev)
	staged := d.stageCurrent(ev.Version)
	err = writeJSON(filepath.Join(d.path, "history.json"), h)
	next, serr := staged()
	if next != nil {
		defer next.Discard()
	}
	if err != nil {
		return ev, fmt.Errorf("store history: %w", err)
	}
	if err := d.stop(stepBeginHistory); err != nil {
		return ev, err
	}
	if serr == nil {
		serr = next.Commit()
	}
	if serr != nil {
		return ev, fmt.Errorf("store current version: %w", serr)
	}
	return ev, d.prune(h)
}

// canBegin checks what Begin(old, ev) needs, with d.mu held: old is
// current and the version id is stored.
func (d *Dir) canBegin(old, id string) error {
	cur, err := d.currentID()
	if err != nil {
		return fmt.Errorf("read current version: %w", err)
	}
	if cur != old {
		return &ConflictError{Expected: old, Current: cur, Reason: "the current version changed"}
	}
	if !versionID.MatchString(id) {
		return fmt.Errorf("set current version %q: %w", id, ErrNotFound)
	}
	if _, err := os.Stat(d.versionPath(id)); err != nil {
		return fmt.Errorf("set current version %s: %w", id, ErrNotFound)
	}
	return nil
}

// stageCurrent starts staging the current pointer id (written and synced
// to a temporary file, not in place) and returns the function that waits
// for it.
func (d *Dir) stageCurrent(id string) func() (*atomicfile.Staged, error) {
	type result struct {
		s   *atomicfile.Staged
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := atomicfile.Stage(filepath.Join(d.path, "current"), []byte(id+"\n"))
		done <- result{s, err}
	}()
	return func() (*atomicfile.Staged, error) {
		r := <-done
		return r.s, r.err
	}
}

// appended is h with ev appended, numbered, and trimmed to d.keep events.
func (d *Dir) appended(h []Event, ev Event) ([]Event, Event) {
	ev.Seq = 1
	if len(h) > 0 {
		ev.Seq = h[len(h)-1].Seq + 1
	}
	h = append(h, ev)
	if len(h) > d.keep {
		h = h[len(h)-d.keep:]
	}
	return h, ev
}

// Resolve settles the pending event r.Seq. A revert writes the current
// pointer first and the history second: a crash between them leaves a
// pending event whose version is not current, which ResolveOrphans settles
// as Interrupted.
func (d *Dir) Resolve(r Resolution) (Event, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	h, err := d.history()
	if err != nil {
		return Event{}, err
	}
	i := pendingIndex(h, r.Seq)
	if i < 0 {
		return Event{}, fmt.Errorf("resolve event %d: %w", r.Seq, ErrNotPending)
	}
	if r.Revert && r.Previous != "" {
		cur, err := d.currentID()
		if err != nil {
			return Event{}, fmt.Errorf("read current version: %w", err)
		}
		if cur == h[i].Version {
			if err := d.writeCurrent(r.Previous); err != nil {
				return Event{}, err
			}
		}
	}
	if err := d.stop(stepResolveCurrent); err != nil {
		return Event{}, err
	}
	h[i] = settled(h[i], r)
	if err := writeJSON(filepath.Join(d.path, "history.json"), h); err != nil {
		return Event{}, fmt.Errorf("store history: %w", err)
	}
	return h[i], nil
}

// pendingIndex is the index of the pending event seq in h, or -1.
func pendingIndex(h []Event, seq int) int {
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Seq == seq {
			if h[i].Outcome != Pending {
				return -1
			}
			return i
		}
	}
	return -1
}

// settled is the pending event e with r's outcome and message.
func settled(e Event, r Resolution) Event {
	e.Outcome = r.Outcome
	if r.Message != "" {
		e.Message = r.Message
	}
	return e
}
