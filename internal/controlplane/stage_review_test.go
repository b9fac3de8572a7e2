package controlplane

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tollgate/tollgate/internal/store"
)

// TestConcurrentPushesRollbacksKeepHistoryLinear: pushes, rollbacks,
// endpoint changes and orphan settling race on one controller with a
// directory store (each push stages its Begin while it translates): the
// history stays linear with one settled event per successful push or
// rollback, the store's current version is the served one and is the
// newest applied policy event, and no temporary file is left.
func TestConcurrentPushesRollbacksKeepHistoryLinear(t *testing.T) {
	dir := t.TempDir()
	c := newTestController(t, dir, &fakeApplier{})
	ctx := context.Background()
	first, err := c.Push(ctx, policyFiles(8080), "push", "test")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	moves := 1
	count := func(err error, res *PushResult) {
		if err != nil {
			t.Error(err)
			return
		}
		if !res.Unchanged {
			mu.Lock()
			moves++
			mu.Unlock()
		}
	}
	for i := range 8 {
		wg.Go(func() {
			res, err := c.Push(ctx, policyFiles(8081+i), "push", "test")
			count(err, res)
		})
		wg.Go(func() {
			res, err := c.Rollback(ctx, first.Version, "test")
			count(err, res)
		})
		wg.Go(func() { c.SettleOrphans(ctx) })
	}
	wg.Wait()
	h, err := c.History()
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != moves {
		t.Fatalf("%d events for %d pushes and rollbacks that moved the version: %+v", len(h), moves, h)
	}
	for i, e := range h {
		if e.Outcome != store.Applied || (i > 0 && e.Seq != h[i-1].Seq+1) {
			t.Fatalf("event %d: %+v", i, e)
		}
	}
	cur, err := c.store.CurrentID()
	if err != nil || cur != h[len(h)-1].Version || c.Current().ID != cur {
		t.Fatalf("store current %s (%v), served %s; want the last event's %s", cur, err, c.Current().ID, h[len(h)-1].Version)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".tmp-*")); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
}
