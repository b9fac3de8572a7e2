package controlplane

import (
	"context"
	"errors"

	"github.com/tollgate/tollgate/internal/store"
)

// SettleOrphans settles the pending history events of pushes whose control
// plane died during the ACK wait (store.ResolveOrphans): Applied when the
// version stayed current (it is what every replica serves), Interrupted
// otherwise. It runs after Restore, on every Follow tick and, under the
// push lock, before every change. It only acts when it can take the
// store's push lock at once: a live push on another replica holds that
// lock for as long as its event is pending (renewing its lease), and a
// crashed replica's lock expires pushLockTTL after its last renewal, so its
// orphan is settled on the first Follow tick after that. Errors are
// logged: the pending event stays and explains the current version.
func (c *Controller) SettleOrphans(ctx context.Context) {
	c.mu.Lock() // this replica's own pushes settle their events themselves
	defer c.mu.Unlock()
	if !c.hasPending() {
		return
	}
	unlock, err := c.store.Lock(ctx, pushLockTTL)
	if err != nil {
		if !errors.Is(err, store.ErrConflict) {
			c.log.Warn("settle pending history events: take the push lock", "err", err)
		}
		return
	}
	defer unlock()
	c.settleOrphansLocked()
}

// hasPending tells whether the history holds a pending event.
func (c *Controller) hasPending() bool {
	h, err := c.store.History()
	if err != nil {
		return false
	}
	for _, e := range h {
		if e.Outcome == store.Pending {
			return true
		}
	}
	return false
}

// settleOrphansLocked is SettleOrphans with c.mu and the store's push lock
// held.
func (c *Controller) settleOrphansLocked() {
	settled, err := store.ResolveOrphans(c.store)
	for _, e := range settled {
		c.log.Warn("settled the pending event of a push whose control plane stopped",
			"seq", e.Seq, "version", e.Version, "action", e.Action, "outcome", e.Outcome)
	}
	if err != nil {
		c.log.Warn("settle pending history events", "err", err)
	}
}
