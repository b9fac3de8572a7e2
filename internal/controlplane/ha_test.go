package controlplane

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/e2e/harness"
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

// Two replicas start together on an empty Redis store with different
// --policy files: the one that loses the push lock waits and serves the
// winner's version; its own file seeds nothing.
func TestSeedRaceServesTheWinnersVersion(t *testing.T) {
	addr := harness.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	open := func() *store.Redis {
		r, err := store.OpenRedis(ctx, rdb, store.RedisOptions{Prefix: "seed:"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, b := New(log, open(), &fakeApplier{}, Options{}), New(log, open(), &fakeApplier{}, Options{})
	// a holds the lock as if it were mid-seed when b starts.
	unlock, err := open().Lock(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Restore(ctx, policyFiles(9090), "file:b.yaml") }()
	time.Sleep(3 * seedBackoff) // let b hit the held lock and retry (a unit test of a retry loop)
	unlock()
	if err := a.Restore(ctx, policyFiles(8080), "file:a.yaml"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("b.Restore: %v", err)
	}
	if a.Current() == nil || b.Current() == nil || a.Current().ID != b.Current().ID {
		t.Fatalf("a serves %v, b serves %v; want one seeded version", a.Current(), b.Current())
	}
	// Usually a seeds; b's retry may win the race after the unlock instead.
	// Either way exactly one seed is recorded.
	if h, _ := a.History(); len(h) != 1 || h[0].Action != "seed" || h[0].Version != a.Current().ID {
		t.Fatalf("history %+v, want exactly one seed, of the served version", h)
	}
}

// An endpoint override set through one replica reaches the other replica's
// proxies (an override changes no version, so the follower compares the
// stored overrides too).
func TestSyncFollowsEndpointOverrides(t *testing.T) {
	addr := harness.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	open := func() *store.Redis {
		r, err := store.OpenRedis(ctx, rdb, store.RedisOptions{Prefix: "eps:"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	fa, fb := &fakeApplier{}, &fakeApplier{}
	a, b := New(log, open(), fa, Options{}), New(log, open(), fb, Options{})
	if err := a.Restore(ctx, policyFiles(8080), "seed"); err != nil {
		t.Fatal(err)
	}
	if err := b.Restore(ctx, nil, ""); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(ctx); err != nil || len(fb.applied) != 1 {
		t.Fatalf("b.Sync before any override: %v, %d applies; want no new apply", err, len(fb.applied))
	}
	if _, err := a.SetEndpoints(ctx, "b", []string{"127.0.0.1:9002"}, "test"); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(ctx); err != nil || len(fb.applied) != 2 {
		t.Fatalf("b.Sync after a's override: %v, %d applies; want a second apply", err, len(fb.applied))
	}
	cla := fb.applied[1]["public"].Endpoints
	if len(cla) != 1 || !strings.Contains(cla[0].String(), "9002") {
		t.Fatalf("b serves endpoints %v, want the override 127.0.0.1:9002", cla)
	}
	if err := b.Sync(ctx); err != nil || len(fb.applied) != 2 {
		t.Fatalf("b.Sync again: %v, %d applies; want none", err, len(fb.applied))
	}
}
