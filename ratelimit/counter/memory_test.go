package counter

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestMemoryConcurrentExact(t *testing.T) {
	m := NewMemory(time.Now)
	limits := []Limit{
		{Key: "{c:hot}:m", Requests: 100, Per: time.Minute},
		{Key: "{c:hot}:d", Requests: 1000, Per: 24 * time.Hour},
	}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range 10 {
				if allowed, _, _ := m.Take(context.Background(), limits); allowed {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if admitted.Load() != 100 {
		t.Fatalf("admitted %d, want 100", admitted.Load())
	}
}

// TestMemoryNoDeadlock takes random sets of keys in random orders.
func TestMemoryNoDeadlock(t *testing.T) {
	m := NewMemory(time.Now)
	pool := make([]Limit, 200)
	for i := range pool {
		pool[i] = Limit{Key: fmt.Sprintf("{k%d}", i), Requests: 5, Per: time.Second}
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for range 2000 {
				if _, _, err := m.Take(context.Background(), pickLimits(rng, pool)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestMemoryIsBounded fills the map with short-lived keys and checks that
// full buckets are dropped.
func TestMemoryIsBounded(t *testing.T) {
	clock := newFakeClock()
	m := NewMemory(clock.Now)
	take := func(key string) {
		if _, _, err := m.Take(context.Background(), []Limit{{Key: key, Requests: 1, Per: time.Second}}); err != nil {
			t.Fatal(err)
		}
	}
	const keys, every = 100_000, 200 * time.Microsecond // 20s of keys living 1s
	for i := range keys {
		take(fmt.Sprintf("{ip:%d}", i))
		clock.Advance(every)
	}
	// At most twice the live keys (1s worth), or sweepMinLen per shard.
	live := int(time.Second / every)
	n := m.tats.len()
	t.Logf("%d entries for %d keys, %d live", n, keys, live)
	if n > 2*live+shardCount*sweepMinLen {
		t.Fatal("the expired entries were not swept")
	}
	clock.Advance(time.Minute)
	for i := range shardCount * 16 {
		take(fmt.Sprintf("{late:%d}", i)) // touches every shard after its sweep time
	}
	if n := m.tats.len(); n > shardCount*16 {
		t.Fatalf("%d entries after every bucket filled up, want only the new ones", n)
	}
}

func TestMemoryDefaultClock(t *testing.T) {
	allowed, _, err := NewMemory(nil).Take(context.Background(), []Limit{{Key: "k", Requests: 1, Per: time.Second}})
	if !allowed || err != nil {
		t.Fatal(allowed, err)
	}
}
