package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tollgate/tollgate/internal/store"
)

// pushLockTTL is the lease of the store's push lock: the holder renews it
// every third of it for as long as its push runs (however long the ACK
// waits last), so it bounds how long a crashed replica's lock blocks the
// others — the survivors settle its pending event and can push within
// pushLockTTL plus one Follow interval. A holder paused past its lease
// while another replica took the lock cannot write when it resumes: the
// store fences its writes (store.Redis.Lock).
const pushLockTTL = 3 * time.Second

// lockStore takes the store's push lock (a no-op for a directory store),
// waiting up to wait while another replica holds it, then catches up with
// the store, so a change is based on the version every replica serves. It
// returns the store's current version id ("" for an empty store), read
// under the lock: a push compare-and-sets against it, not against the
// version this replica serves, which is older if its proxies refused the
// current one (ha.go's Follow).
func (c *Controller) lockStore(ctx context.Context, wait time.Duration) (unlock func(), current string, err error) {
	unlock, err = c.takeLock(ctx, wait)
	if err != nil {
		return nil, "", err
	}
	if err := c.syncLocked(ctx); err != nil {
		c.log.Warn("catch up with the store before a change", "err", err)
	}
	c.settleOrphansLocked() // recover.go
	current, err = c.store.CurrentID()
	if err != nil {
		unlock()
		return nil, "", fmt.Errorf("read the current version: %w", err)
	}
	return unlock, current, nil
}

// lockRetry is how often a change waiting for the store's lock tries again.
const lockRetry = 20 * time.Millisecond

// takeLock takes the store's lock, trying again every lockRetry for up to
// wait while another replica holds it; then the conflict is returned.
func (c *Controller) takeLock(ctx context.Context, wait time.Duration) (func(), error) {
	deadline := time.Now().Add(wait)
	for {
		unlock, err := c.store.Lock(ctx, pushLockTTL)
		if err == nil || !errors.Is(err, store.ErrConflict) || !time.Now().Before(deadline) {
			return unlock, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(lockRetry):
		}
	}
}

// casBase is the version a push compare-and-sets against: the one the
// caller expected, if any, otherwise the store's current version.
func casBase(expect, current string) string {
	switch expect {
	case "":
		return current
	case expectEmpty:
		return ""
	}
	return expect
}

// expectEmpty as the expected version means "only into an empty store".
const expectEmpty = "\x00empty"

// Seeding retries: replicas that start together race to seed the store.
const (
	seedRetries = 50
	seedBackoff = 200 * time.Millisecond
)

// seed pushes files into an empty store. A replica that loses the race to
// another one seeding (or pushing) waits for it and then serves the store's
// version: --policy only ever seeds an empty store.
func (c *Controller) seed(ctx context.Context, files []store.File, source string) error {
	for tries := 0; ; tries++ {
		_, err := c.PushExpect(ctx, files, "seed", source, expectEmpty)
		if !errors.Is(err, store.ErrConflict) || tries == seedRetries {
			return err
		}
		c.log.Info("another replica is writing the empty store; waiting for its version", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(seedBackoff):
		}
		v, err := c.store.Current()
		if err != nil {
			return err
		}
		if v != nil {
			return c.Restore(ctx, files, source)
		}
	}
}

// checkExpected refuses a push based on a version that is no longer the
// served one.
func checkExpected(prev *served, expect string) error {
	if expect == expectEmpty {
		if prev == nil {
			return nil
		}
		return &store.ConflictError{Current: servedID(prev), Reason: "another replica seeded the store first"}
	}
	if expect == "" || expect == servedID(prev) {
		return nil
	}
	return &store.ConflictError{Expected: expect, Current: servedID(prev), Reason: "the policy changed since the version the push was based on"}
}

// servedID is the id of s's version, or "" for none.
func servedID(s *served) string {
	if s == nil {
		return ""
	}
	return s.version.ID
}

// Follow keeps this replica serving the store's current version when other
// replicas change it: on every change notification of the store (Redis
// pub/sub) and every interval (reconciliation, for lost notifications and
// directory stores), until ctx ends.
//
// A version learned this way is compiled, given to the services and applied
// to this replica's proxies; the history is not written again (the replica
// that pushed it wrote it). If this replica cannot serve it — it does not
// compile here, a service refuses it, or this replica's proxies NACK it —
// the replica keeps serving its previous version, logs the error and does
// not retry that version until the store's current version changes again.
// The pushing replica's own proxies receive the same snapshot, so a policy
// Envoy rejects is normally rolled back by the pusher, and every replica
// follows that rollback.
func (c *Controller) Follow(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Second
	}
	changes := c.store.Changes(ctx)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case _, open := <-changes:
			if !open { // closed: ctx ended
				return
			}
		}
		if err := c.Sync(ctx); err != nil {
			c.log.Error("cannot serve the store's current version; keeping the previous one", "err", err)
		}
		c.SettleOrphans(ctx) // recover.go
	}
}

// Sync serves the store's current version if this replica serves another.
func (c *Controller) Sync(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.syncLocked(ctx)
}

// syncLocked is Sync with c.mu held. It reads the current version's id
// only, and the version itself only when it has something to serve.
func (c *Controller) syncLocked(ctx context.Context) error {
	id, err := c.store.CurrentID()
	if err != nil || id == "" {
		return err
	}
	ov, err := c.overridesKey()
	if err != nil {
		return err
	}
	prev := c.cur.Load()
	same := servedID(prev) == id
	if same && (c.overridesSeen == "" || c.overridesSeen == ov) {
		c.overridesSeen = ov
		return nil
	}
	if !same && c.refused == id {
		return nil
	}
	v, err := c.store.Get(id)
	if err != nil {
		return err // a read error: tried again on the next tick
	}
	if err := c.adopt(ctx, v); err != nil {
		if same {
			c.overridesSeen = ov // not retried until the overrides change again
		} else {
			c.refused = id
		}
		return fmt.Errorf("version %s (made current by another replica): %w", id, err)
	}
	c.refused, c.overridesSeen = "", ov
	if same {
		c.log.Info("serving the endpoint overrides in the store", "version", id)
	} else {
		c.log.Info("serving the version another replica pushed", "version", id, "previous", servedID(prev))
	}
	return nil
}

// overridesKey is the stored endpoint overrides as canonical JSON (map
// keys sorted), to notice another replica's `tollgate endpoints set`.
func (c *Controller) overridesKey() (string, error) {
	m, err := c.store.EndpointOverrides()
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(m)
	return string(b), err
}

// adopt serves v without touching the store or the history.
func (c *Controller) adopt(ctx context.Context, v *store.Version) error {
	cp, err := c.compile(v.Files)
	if err != nil {
		return err
	}
	restore, err := c.swapTables(cp.cfg)
	if err != nil {
		return unservable(err)
	}
	if _, err := c.xds.Apply(ctx, cp.resources); err != nil {
		restore()
		return err
	}
	c.cur.Store(&served{version: v, cfg: cp.cfg, resources: cp.resources})
	return nil
}
