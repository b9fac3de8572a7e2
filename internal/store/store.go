// Package store persists accepted policy versions and their history.
//
// Contract: every file is replaced atomically (written to a temporary name,
// synced and renamed), so a crash leaves the old or the new file, never a
// torn one. The control plane stores a version and makes it current before
// it pushes it, so a crash mid-push restarts on the newer version. The
// control plane reads Current before it serves xDS, so a restarted control
// plane serves the last accepted policy, never an empty or older one.
//
// The history always explains the current version: a push makes its
// version current and records a Pending event in one step (Begin), and
// settles that event once the proxies answered (Resolve), reverting the
// current pointer in the same step when they refused it. A crash in
// between leaves the Pending event at the head of the history;
// ResolveOrphans settles it after a restart (Applied when its version is
// still current, Interrupted otherwise). So the current version is always
// the one of the newest Applied or Pending event that moved it; the only
// exception, a directory store stopped between its two writes, leaves a
// Pending event whose version is not current (the Applied event before it
// names the current one), and that event is settled as Interrupted.
package store

import (
	"errors"
	"time"
)

// File is one policy source file.
type File struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

// Version is one stored policy version: its source and identity.
type Version struct {
	// ID is the policy's content hash.
	ID        string    `json:"id"`
	Files     []File    `json:"files"`
	CreatedAt time.Time `json:"createdAt"`
}

// Event is one entry of the history, newest last.
type Event struct {
	Seq     int    `json:"seq"`
	Version string `json:"version"`
	Action  string `json:"action"` // push, rollback, seed, restore
	Outcome string `json:"outcome"`
	Message string `json:"message,omitempty"` // what went wrong, or what an endpoints change did
	// Reason says why, in the pusher's words (push -m); it is stored with
	// the event in every store.
	Reason string    `json:"reason,omitempty"`
	Source string    `json:"source,omitempty"` // who or what pushed (CLI host, file)
	At     time.Time `json:"at"`
}

// Outcomes of an event.
const (
	Applied  = "applied"
	Rejected = "rejected"
	// Failed is a push that could not be applied for another reason than
	// a proxy's rejection (the ACK wait ended, for one).
	Failed = "failed"
	// Pending is a push or rollback whose version is current while the
	// proxies apply it; it is resolved to another outcome when the push
	// ends, or by ResolveOrphans after its control plane died.
	Pending = "pending"
	// Interrupted is a pending event whose control plane died before the
	// version was served: another version stayed current.
	Interrupted = "interrupted"
)

// ErrNotFound is returned for an unknown version.
var ErrNotFound = errors.New("version not found")
