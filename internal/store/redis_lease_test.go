package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/e2e/harness"
)

// twoReplicas opens two stores (two control-plane replicas) on one Redis.
func twoReplicas(t *testing.T) (a, b *Redis) {
	t.Helper()
	addr := harness.StartRedis(t)
	open := func() *Redis {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { rdb.Close() })
		r, err := OpenRedis(context.Background(), rdb, RedisOptions{Prefix: "t:"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	return open(), open()
}

// TestRedisLockIsRenewedWhileHeld: a live holder keeps the lock far beyond
// its TTL (a long ACK wait), and releasing it frees it at once.
func TestRedisLockIsRenewedWhileHeld(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := context.Background()
	unlock, err := a.Lock(ctx, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // > 3 TTLs
	if _, err := b.Lock(ctx, 300*time.Millisecond); !errors.Is(err, ErrConflict) {
		t.Fatalf("second replica's Lock while the first renews it: %v, want a conflict", err)
	}
	unlock()
	unlockB, err := b.Lock(ctx, 300*time.Millisecond)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlockB()
}

// TestRedisLockExpiresWhenTheHolderStopsRenewing: a holder that stops
// renewing (a dead replica) frees the lock one TTL later.
func TestRedisLockExpiresWhenTheHolderStopsRenewing(t *testing.T) {
	a, b := twoReplicas(t)
	a.renewEvery = time.Hour // never renews: a SIGKILLed replica
	ctx := context.Background()
	if _, err := a.Lock(ctx, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		unlock, err := b.Lock(ctx, 300*time.Millisecond)
		if err == nil {
			unlock()
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Fatalf("the dead holder's lock still blocks after %s: %v", time.Since(start), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("lock taken over after %s, want within the 300ms TTL (+ slack)", d)
	}
}

// TestRedisFenceRefusesAStaleHolder: a holder paused past its lease while
// another replica took the lock and pushed cannot write anything when it
// resumes (fencing); the other replica's push stays current and the
// history linear.
func TestRedisFenceRefusesAStaleHolder(t *testing.T) {
	a, b := twoReplicas(t)
	a.renewEvery = time.Hour // paused: its renewals never run
	ctx := context.Background()
	for _, v := range []*Version{version("aaaaaa", "a"), version("bbbbbb", "b")} {
		if err := a.Put(v); err != nil {
			t.Fatal(err)
		}
	}
	unlockA, err := a.Lock(ctx, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer unlockA()
	pending, err := a.Begin("", Event{Version: "aaaaaa", Action: "push", Outcome: Pending})
	if err != nil {
		t.Fatalf("the holder's Begin: %v", err)
	}
	time.Sleep(400 * time.Millisecond) // the lease expires
	unlockB := takeLock(t, b)
	if _, err := ResolveOrphans(b); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Begin("aaaaaa", Event{Version: "bbbbbb", Action: "push", Outcome: Pending}); err != nil {
		t.Fatalf("the new holder's Begin: %v", err)
	}
	unlockB()

	// a resumes: every write it tries is refused.
	writes := map[string]error{
		"Resolve(revert)": func() error {
			_, err := a.Resolve(Resolution{Seq: pending.Seq, Outcome: Rejected, Revert: true, Previous: "aaaaaa"})
			return err
		}(),
		"SetCurrent":  a.SetCurrent("aaaaaa"),
		"SwapCurrent": a.SwapCurrent("bbbbbb", "aaaaaa"),
		"Append": func() error {
			_, err := a.Append(Event{Version: "aaaaaa", Action: "endpoints", Outcome: Applied})
			return err
		}(),
		"SetEndpointOverrides": a.SetEndpointOverrides(map[string]EndpointOverride{"x": {}}),
	}
	for name, err := range writes {
		if !errors.Is(err, ErrConflict) {
			t.Errorf("the stale holder's %s: %v, want refused (lost lease)", name, err)
		}
	}
	if cur, _ := b.Current(); cur == nil || cur.ID != "bbbbbb" {
		t.Fatalf("current %v, want bbbbbb (the new holder's push)", cur)
	}
	h, _ := b.History()
	if len(h) != 2 || h[0].Outcome == Pending || h[1].Version != "bbbbbb" || h[1].Seq != h[0].Seq+1 {
		t.Fatalf("history %+v, want the settled first push then the second", h)
	}
	if ov, _ := b.EndpointOverrides(); len(ov) != 0 {
		t.Fatalf("overrides %v written by the stale holder", ov)
	}
}

// TestRedisFenceLetsAnExpiredUncontendedHolderWrite: a holder whose lease
// expired while nobody took the lock still writes (lockseq unchanged), and
// its next renewal takes the lock back.
func TestRedisFenceLetsAnExpiredUncontendedHolderWrite(t *testing.T) {
	a, _ := twoReplicas(t)
	a.renewEvery = time.Hour
	if err := a.Put(version("aaaaaa", "a")); err != nil {
		t.Fatal(err)
	}
	unlock, err := a.Lock(context.Background(), 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	time.Sleep(250 * time.Millisecond)
	if err := a.SwapCurrent("", "aaaaaa"); err != nil {
		t.Fatalf("write after an uncontended expiry: %v", err)
	}
}

// takeLock takes r's lock, waiting for a previous holder's lease to end.
func takeLock(t *testing.T, r *Redis) func() {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		unlock, err := r.Lock(context.Background(), 200*time.Millisecond)
		if err == nil {
			return unlock
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
