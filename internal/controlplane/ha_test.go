package controlplane

import (
	"context"
	"errors"
	"testing"

	"github.com/tollgate/tollgate/internal/store"
)

// Two controllers on one directory stand in for two replicas on one shared
// store (the Redis store's own contract is tested in package store).
func TestSyncAdoptsAnotherReplicasPushWithoutHistory(t *testing.T) {
	dir := t.TempDir()
	fa, fb := &fakeApplier{}, &fakeApplier{}
	a, b := newTestController(t, dir, fa), newTestController(t, dir, fb)
	ctx := context.Background()
	if _, err := a.Push(ctx, policyFiles(8080), "push", "a"); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(ctx); err != nil || b.Current() == nil || b.Current().ID != a.Current().ID || len(fb.applied) != 1 {
		t.Fatalf("b.Sync: %v; b serves %v, applied %d times; want a's version once", err, b.Current(), len(fb.applied))
	}
	if h, _ := b.History(); len(h) != 1 {
		t.Fatalf("history after a follow: %+v, want only a's push", h)
	}
	// b pushes next, based on a's version: no conflict.
	if _, err := b.Push(ctx, policyFiles(8081), "push", "b"); err != nil {
		t.Fatalf("b's push after following a: %v", err)
	}
	// a has not followed yet: a compare-and-set push based on its stale
	// version is a conflict; a plain push catches up first and succeeds.
	if _, err := a.PushExpect(ctx, policyFiles(8082), "push", "a", a.Current().ID); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale expect-version push: %v, want a conflict", err)
	}
	if _, err := a.Push(ctx, policyFiles(8082), "push", "a"); err != nil {
		t.Fatalf("a's push after catching up: %v", err)
	}
	h, _ := a.History()
	for i, ev := range h {
		if ev.Seq != i+1 || ev.Outcome != store.Applied {
			t.Fatalf("history not linear: %+v", h)
		}
	}
}

func TestSyncDoesNotRetryAVersionItsProxiesRejected(t *testing.T) {
	dir := t.TempDir()
	fa, fb := &fakeApplier{}, &fakeApplier{nack: true}
	a, b := newTestController(t, dir, fa), newTestController(t, dir, fb)
	ctx := context.Background()
	if _, err := a.Push(ctx, policyFiles(8080), "push", "a"); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(ctx); err == nil || b.Current() != nil {
		t.Fatalf("b.Sync with NACKing proxies: %v, serving %v; want an error and nothing adopted", err, b.Current())
	}
	if err := b.Sync(ctx); err != nil || len(fb.applied) != 1 {
		t.Fatalf("second Sync: %v, %d applies; want no retry of the refused version", err, len(fb.applied))
	}
	if h, _ := a.History(); len(h) != 1 || h[0].Outcome != store.Applied {
		t.Fatalf("a follower's NACK wrote history: %+v", h)
	}
}
