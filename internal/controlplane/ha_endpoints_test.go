package controlplane

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/internal/store"
)

// twoBackends is a policy with backends b and c (and extra appended).
func twoBackends(extra string) []store.File {
	return []store.File{{Name: "p.yaml", Content: `version: 1
gateways:
  - name: public
    listeners: [{name: http, port: 8080}]
routes:
  - {name: r, backend: b, auth: none}
  - {name: s, backend: c, auth: none, match: {pathPrefix: /c}}
backends:
  - {name: b, endpoints: ["127.0.0.1:9001"]}
  - {name: c, endpoints: ["127.0.0.1:9002"]}
` + extra}}
}

// twoRedisReplicas returns two controllers on one Redis store, both
// serving twoBackends("").
func twoRedisReplicas(t *testing.T, prefix string) (*Controller, *Controller) {
	t.Helper()
	addr := harness.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	open := func() *store.Redis {
		r, err := store.OpenRedis(ctx, rdb, store.RedisOptions{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, b := New(log, open(), &fakeApplier{}, Options{}), New(log, open(), &fakeApplier{}, Options{})
	if err := a.Restore(ctx, twoBackends(""), "seed"); err != nil {
		t.Fatal(err)
	}
	if err := b.Restore(ctx, nil, ""); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// Endpoint changes through two replicas at once, on different backends:
// they serialise on the store's lock, both succeed and both are stored.
func TestConcurrentEndpointChangesOnTwoReplicasKeepBoth(t *testing.T) {
	a, b := twoRedisReplicas(t, "eps-race:")
	ctx := context.Background()
	for i := range 20 {
		if _, err := a.SetEndpoints(ctx, "b", nil, "reset"); err != nil {
			t.Fatal(err)
		}
		if _, err := a.SetEndpoints(ctx, "c", nil, "reset"); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var ea, eb error
		wg.Add(2)
		go func() { defer wg.Done(); _, ea = a.SetEndpoints(ctx, "b", []string{"127.0.0.1:7001"}, "a") }()
		go func() { defer wg.Done(); _, eb = b.SetEndpoints(ctx, "c", []string{"127.0.0.1:7002"}, "b") }()
		wg.Wait()
		if ea != nil || eb != nil {
			t.Fatalf("round %d: set through a: %v; through b: %v", i, ea, eb)
		}
		if m, _ := a.store.EndpointOverrides(); len(m) != 2 {
			t.Fatalf("round %d: both changes succeeded but the store holds %v; want overrides of b and c", i, m)
		}
	}
}

// A replica that has not followed another replica's push yet catches up
// before an endpoint change: it keeps the other replica's override of a
// backend the newer version added, and records the change against the
// current version.
func TestEndpointChangeOnStaleReplicaCatchesUpFirst(t *testing.T) {
	a, b := twoRedisReplicas(t, "eps-stale:")
	ctx := context.Background()
	if _, err := a.Push(ctx, twoBackends("  - {name: e, endpoints: [\"127.0.0.1:9003\"]}\n"), "push", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetEndpoints(ctx, "e", []string{"127.0.0.1:7003"}, "a"); err != nil {
		t.Fatal(err)
	}
	// b has not followed (its Follow loop is not running).
	if _, err := b.SetEndpoints(ctx, "b", []string{"127.0.0.1:7001"}, "b"); err != nil {
		t.Fatal(err)
	}
	m, _ := a.store.EndpointOverrides()
	if _, ok := m["e"]; !ok {
		t.Errorf("override of e set through a was dropped by b's change: store has %v", m)
	}
	if b.Current().ID != a.Current().ID {
		t.Errorf("b serves %s after its endpoint change, want the current version %s", b.Current().ID, a.Current().ID)
	}
	h, _ := a.store.History()
	if last := h[len(h)-1]; last.Version != a.Current().ID || last.Action != "endpoints" {
		t.Errorf("history's last event %+v, want b's endpoint change on the current version %s", last, a.Current().ID)
	}
}

// A replica whose proxies refused another replica's version can still
// push (a fixed policy, or a rollback): the push compare-and-sets against
// the store's current version, and its proxies take it. Until then its
// endpoints cannot be changed (it serves an older version).
func TestReplicaThatRefusedAVersionCanPushAgain(t *testing.T) {
	dir := t.TempDir()
	fa, fb := &fakeApplier{}, &fakeApplier{}
	a, b := newTestController(t, dir, fa), newTestController(t, dir, fb)
	ctx := context.Background()
	if _, err := a.Push(ctx, policyFiles(8080), "push", "a"); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	first := b.Current().ID
	if _, err := a.Push(ctx, policyFiles(8081), "push", "a"); err != nil {
		t.Fatal(err)
	}
	fb.nack = true
	if err := b.Sync(ctx); err == nil || b.Current().ID != first {
		t.Fatalf("b.Sync with NACKing proxies: %v, serving %s; want a refusal and %s kept", err, b.Current().ID, first)
	}
	fb.nack = false
	if _, err := b.SetEndpoints(ctx, "b", []string{"127.0.0.1:7001"}, "b"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("endpoint change through the replica that refused the current version: %v, want a conflict", err)
	}
	// An explicit --expect-version of b's old version is still a conflict.
	if _, err := b.PushExpect(ctx, policyFiles(8082), "push", "b", first); !errors.Is(err, store.ErrConflict) {
		t.Errorf("push through b expecting its old version %s: %v, want a conflict", first, err)
	}
	for i, port := range []int{8082, 8083} {
		res, err := b.Push(ctx, policyFiles(port), "push", "b")
		if err != nil || !res.Applied {
			t.Fatalf("push %d through b after it refused a version: %+v, %v", i+1, res, err)
		}
		cur, _ := b.store.Current()
		if cur.ID != res.Version || b.Current().ID != res.Version {
			t.Fatalf("after push %d the store's current is %s and b serves %s, want %s", i+1, cur.ID, b.Current().ID, res.Version)
		}
		if got := fb.applied[len(fb.applied)-1]["public"].Listeners[0].GetAddress().GetSocketAddress().GetPortValue(); got != uint32(port) {
			t.Fatalf("b's proxies got a listener on port %d, want %d", got, port)
		}
	}
	if err := a.Sync(ctx); err != nil || a.Current().ID != b.Current().ID {
		t.Errorf("a.Sync: %v; a serves %s, want b's push %s", err, a.Current().ID, b.Current().ID)
	}
	if _, err := b.Rollback(ctx, first, "b"); err != nil {
		t.Errorf("rollback through b: %v", err)
	}
}
