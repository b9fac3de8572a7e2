package store

import (
	"errors"
	"fmt"
)

// ErrNotPending is returned by Resolve for an event that is not pending
// (another replica, or a restart, settled it already).
var ErrNotPending = errors.New("the event is not pending")

// Resolution settles a Pending event (Store.Resolve).
type Resolution struct {
	// Seq is the pending event's number.
	Seq int
	// Outcome replaces Pending: Applied, Rejected, Failed or Interrupted.
	Outcome string
	// Message says what happened ("" keeps the pending event's message).
	Message string
	// Revert makes Previous current again, if the event's version is still
	// current (a push the proxies refused). Previous "" leaves the pointer.
	Revert   bool
	Previous string
}

// Messages of the events ResolveOrphans settles.
const (
	recoveredMessage   = "recovered after a restart: the control plane stopped while the proxies applied this version; it stayed current and is served"
	interruptedMessage = "the control plane stopped before this version was served; version %s stayed current"
	supersededMessage  = "the control plane stopped during this push; later events changed the current version"
)

// ResolveOrphans settles the Pending events left in st's history by control
// planes that died mid-push. The newest one, unless a later push, rollback,
// seed or restore event follows it, is Applied when its version is current
// (the store served it since) and Interrupted otherwise; older ones are
// Interrupted. The caller must hold the store's push lock and exclude its
// own process's pushes, so no live push owns a pending event. It returns
// the settled events.
func ResolveOrphans(st Store) ([]Event, error) {
	h, err := st.History()
	if err != nil {
		return nil, err
	}
	var out []Event
	for i, e := range h {
		if e.Outcome != Pending {
			continue
		}
		r := Resolution{Seq: e.Seq, Outcome: Interrupted, Message: supersededMessage}
		if lastMove(h[i+1:]) {
			if r, err = settleHead(st, e); err != nil {
				return out, err
			}
		}
		ev, err := st.Resolve(r)
		if err != nil && !errors.Is(err, ErrNotPending) {
			return out, fmt.Errorf("resolve pending event %d: %w", e.Seq, err)
		}
		if err == nil {
			out = append(out, ev)
		}
	}
	return out, nil
}

// lastMove tells whether no event of later moved the current version (only
// endpoint changes, which keep it, follow).
func lastMove(later []Event) bool {
	for _, e := range later {
		if e.Action != "endpoints" {
			return false
		}
	}
	return true
}

// settleHead is the resolution of the newest pending event e: Applied when
// its version is current, Interrupted otherwise.
func settleHead(st Store, e Event) (Resolution, error) {
	id, err := st.CurrentID()
	if err != nil {
		return Resolution{}, fmt.Errorf("resolve pending event %d: %w", e.Seq, err)
	}
	if id != "" && id == e.Version {
		return Resolution{Seq: e.Seq, Outcome: Applied, Message: recoveredMessage}, nil
	}
	return Resolution{Seq: e.Seq, Outcome: Interrupted, Message: fmt.Sprintf(interruptedMessage, orNone(id))}, nil
}
