package counter

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"
)

// TestOverLimitShedsRedisLoad: once Redis rejected a key, the following
// takes are rejected locally, with decreasing RetryAfter, until it may
// admit again.
func TestOverLimitShedsRedisLoad(t *testing.T) {
	client := newTestClient(t, harnessRedis(t))
	if err := client.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	hook := &commandCounter{}
	client.AddHook(hook)
	c := NewOverLimitCache(NewRedis(client, RedisOptions{Timeout: functionalTimeout}), time.Now)
	limits := []Limit{
		{Key: "{c:abuse}:s", Requests: 5, Per: time.Second},
		{Key: "{c:abuse}:d", Requests: 1000, Per: 24 * time.Hour},
	}
	ok, last := 0, Result{RetryAfter: time.Hour}
	for range 100 {
		allowed, res, err := c.Take(context.Background(), limits)
		if err != nil {
			t.Fatal(err)
		}
		if allowed {
			ok++
			continue
		}
		if res[0].Remaining != 0 || res[0].RetryAfter <= 0 || res[0].RetryAfter > last.RetryAfter || res[0].ResetAfter < res[0].RetryAfter {
			t.Fatalf("rejection %+v after %+v", res[0], last)
		}
		if res[1].Remaining < 994 || res[1].RetryAfter != 0 {
			t.Fatalf("the day limit in a cached rejection: %+v", res[1])
		}
		last = res[0]
	}
	// 5 admitted + the first rejection (+1 for loading the script).
	if trips := hook.trips.Load(); ok != 5 || trips > 7 {
		t.Fatalf("admitted %d, %d round trips for 100 takes; want 5 and at most 7", ok, trips)
	}
	time.Sleep(last.RetryAfter)
	if allowed, res, err := c.Take(context.Background(), limits); err != nil || !allowed {
		t.Fatalf("after RetryAfter: %v %+v %v", allowed, res, err)
	}
}

// TestOverLimitDecidesLikeItsBackend drives a cached and an uncached
// memory backend on one clock with random takes: with one replica, every
// decision and every result must be the same.
func TestOverLimitDecidesLikeItsBackend(t *testing.T) {
	clock := newFakeClock()
	cached := NewOverLimitCache(NewMemory(clock.Now), clock.Now)
	plain := NewMemory(clock.Now)
	rng := rand.New(rand.NewPCG(5, 6))
	pool := []Limit{
		{Key: "{c:o}:a", Requests: 3, Per: time.Second},
		{Key: "{c:o}:b", Requests: 5, Per: 2 * time.Second, Burst: 8},
		{Key: "{c:o}:c", Requests: 10, Per: time.Minute},
		{Key: "{c:o}:d", Requests: 1, Per: 300 * time.Millisecond},
	}
	shortcuts := 0
	for step := range 5000 {
		limits := pickLimits(rng, pool)
		a1, r1, err1 := cached.Take(context.Background(), limits)
		a2, r2, err2 := plain.Take(context.Background(), limits)
		if err1 != nil || err2 != nil || a1 != a2 {
			t.Fatalf("step %d: cached %v (%v), backend %v (%v)", step, a1, err1, a2, err2)
		}
		for i := range limits {
			if r1[i] != r2[i] {
				t.Fatalf("step %d, %s: cached %+v, backend %+v", step, limits[i].Key, r1[i], r2[i])
			}
		}
		if !a1 && cachedHit(cached, limits, clock) {
			shortcuts++
		}
		clock.Advance(time.Duration(rng.IntN(150_000)) * time.Microsecond)
	}
	if shortcuts == 0 {
		t.Fatal("no rejections: the test tests nothing")
	}
}

func TestOverLimitForgets(t *testing.T) {
	clock := newFakeClock()
	c := NewOverLimitCache(NewMemory(clock.Now), clock.Now)
	l := []Limit{{Key: "{c:g}:k", Requests: 1, Per: time.Second}}
	for range 3 {
		if _, _, err := c.Take(context.Background(), l); err != nil {
			t.Fatal(err)
		}
	}
	if c.blocks.len() != 1 {
		t.Fatalf("%d blocks, want 1", c.blocks.len())
	}
	clock.Advance(time.Second)
	if allowed, _, _ := c.Take(context.Background(), l); !allowed || c.blocks.len() != 0 {
		t.Fatalf("after the block: allowed %v, %d blocks left", allowed, c.blocks.len())
	}
}

// cachedHit reports whether the cache would answer limits by itself.
func cachedHit(c *OverLimitCache, limits []Limit, clock *fakeClock) bool {
	gs, _ := gcraParams(limits, nil)
	_, hit := c.blocked(limits, gs, micros(clock.Now()))
	return hit
}

// slowBackend is a backend on a fake clock whose round trips take time:
// the clock moves by before until the backend decides and by after until
// its answer is back.
type slowBackend struct {
	Backend
	clock         *fakeClock
	before, after time.Duration
}

func (b *slowBackend) Take(ctx context.Context, limits []Limit) (bool, []Result, error) {
	b.clock.Advance(b.before)
	defer b.clock.Advance(b.after)
	return b.Backend.Take(ctx, limits)
}

// TestOverLimitRetryAfterIsNeverEarly: with round trips that take time, a
// rejection answered from the cache gives a RetryAfter after which the
// backend admits, late by at most the round trip. It was early by the
// trip's first half (measured from the trip's start): a client that waited
// it was refused again (TestContractOverLimitRedis failed so under load).
func TestOverLimitRetryAfterIsNeverEarly(t *testing.T) {
	clock := newFakeClock()
	inner := NewMemory(clock.Now)
	const half = 3 * time.Millisecond
	c := NewOverLimitCache(&slowBackend{Backend: inner, clock: clock, before: half, after: half}, clock.Now)
	l := []Limit{{Key: "{c:e}:k", Requests: 1, Per: 100 * time.Millisecond}}
	// At 0 ms the first take leaves; the backend admits it at 3 ms (the
	// next fits at 103 ms). The second leaves at 6 ms and is rejected at 9.
	for _, want := range []bool{true, false} {
		if ok, _, err := c.Take(context.Background(), l); err != nil || ok != want {
			t.Fatalf("take: allowed %v, err %v; want %v", ok, err, want)
		}
	}
	allowed, res, err := c.Take(context.Background(), l) // at 12 ms
	if err != nil || allowed || !cachedHit(c, l, clock) {
		t.Fatalf("third take: allowed %v, err %v; want a rejection from the cache", allowed, err)
	}
	truth := 103*time.Millisecond - 12*time.Millisecond
	if got := res[0].RetryAfter; got < truth || got > truth+2*half {
		t.Fatalf("RetryAfter %v, want from %v (never early) to %v (late by at most the round trip)", got, truth, truth+2*half)
	}
	clock.Advance(res[0].RetryAfter)
	if ok, r, _ := inner.Take(context.Background(), l); !ok {
		t.Fatalf("the backend refuses after the cache's RetryAfter %v: %+v", res[0].RetryAfter, r[0])
	}
}
