package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Store is a policy store shared by the control plane's replicas: a local
// directory (Dir, one replica) or Redis (Redis, any number of replicas).
type Store interface {
	// Current returns the current version, or nil when the store is empty.
	Current() (*Version, error)
	// CurrentID returns the id of the current version, or "" when the
	// store is empty, without reading the version itself: a push or a
	// follower that only compares ids does not pay for decoding the
	// version's files (several MB for a large policy). The id is not
	// checked against the stored versions; Get does that.
	CurrentID() (string, error)
	// Get returns a stored version (ErrNotFound when unknown).
	Get(id string) (*Version, error)
	// History returns the events, oldest first.
	History() ([]Event, error)
	// Put stores v without making it current.
	Put(v *Version) error
	// SetCurrent makes the stored version id current unconditionally.
	SetCurrent(id string) error
	// SwapCurrent makes the stored version id current if the current
	// version is still old ("" for an empty store); otherwise it returns a
	// *ConflictError and changes nothing.
	SwapCurrent(old, id string) error
	// Append adds ev to the history, numbering it.
	Append(ev Event) (Event, error)
	// Begin makes the stored version ev.Version current if the current
	// version is still old ("" for an empty store) and appends ev (whose
	// outcome should be Pending), numbered, in the same crash-safe step: a
	// crash never leaves ev.Version current without ev in the history. A
	// stale old gives a *ConflictError, an unknown version ErrNotFound; in
	// both cases nothing changes.
	Begin(old string, ev Event) (Event, error)
	// StageBegin prepares Begin(old, ev) ahead of time, as far as it can
	// without changing anything that a reader, or the store after a
	// crash, sees (Dir writes and syncs the new history and current
	// pointer to temporary files; Redis prepares nothing). The returned
	// StagedBegin's Commit does the rest; its outcome is that of
	// Begin(old, ev) at the time of Commit, whatever changed in between.
	StageBegin(old string, ev Event) StagedBegin
	// Resolve settles the Pending event r.Seq (ErrNotPending when it is not
	// pending, or no longer in the history) and, if r.Revert and its
	// version is still current, makes r.Previous current again first, in
	// the same crash-safe step. It returns the settled event.
	Resolve(r Resolution) (Event, error)
	// EndpointOverrides returns the endpoint overrides by backend.
	EndpointOverrides() (map[string]EndpointOverride, error)
	// SetEndpointOverrides replaces them (and, for Redis, tells the other
	// replicas through Changes).
	SetEndpointOverrides(m map[string]EndpointOverride) error
	// Lock takes the store's push lock for at most ttl, so pushes through
	// different replicas are serialised and the history stays linear. A
	// lock held by another push gives a *ConflictError.
	Lock(ctx context.Context, ttl time.Duration) (unlock func(), err error)
	// Changes returns a channel that receives when the current version may
	// have been changed by another replica and is closed once ctx ends, or
	// nil when the store cannot tell (callers poll Current).
	Changes(ctx context.Context) <-chan struct{}
}

// StagedBegin is a Begin prepared by Store.StageBegin.
type StagedBegin interface {
	// Commit does the Begin: same result, errors and crash states.
	Commit() (Event, error)
	// Discard drops what was prepared; it does nothing after Commit. Call
	// it when Commit is not called.
	Discard()
}

// lateBegin is a StagedBegin that prepared nothing: Commit is begin(old,
// ev).
type lateBegin struct {
	begin func(old string, ev Event) (Event, error)
	old   string
	ev    Event
}

func (l lateBegin) Commit() (Event, error) { return l.begin(l.old, l.ev) }
func (l lateBegin) Discard()               {}

// ErrConflict is wrapped by every *ConflictError.
var ErrConflict = errors.New("conflict")

// ConflictError is a change refused because another replica changed the
// store first (or is changing it right now).
type ConflictError struct {
	// Expected is the current version the change was based on.
	Expected string
	// Current is the store's current version ("" when unknown).
	Current string
	// Reason says what happened.
	Reason string
}

func (e *ConflictError) Error() string {
	msg := fmt.Sprintf("conflict: %s", e.Reason)
	if e.Expected != "" || e.Current != "" {
		msg += fmt.Sprintf(" (expected current version %s, the store has %s)", orNone(e.Expected), orNone(e.Current))
	}
	return msg + "; fetch the current policy (tollgate get) and push again"
}

// Unwrap lets errors.Is(err, ErrConflict) match.
func (e *ConflictError) Unwrap() error { return ErrConflict }

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
