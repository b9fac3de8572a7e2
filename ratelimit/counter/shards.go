package counter

import (
	"hash/maphash"
	"math/bits"
	"sync"
	"time"
)

const (
	// shardCount is the number of shards of a shardedMap; a uint64 bit set
	// names the shards one Take holds.
	shardCount = 64
	// sweepEvery is how often (µs) a shard in use drops expired entries.
	sweepEvery = int64(10 * time.Second / time.Microsecond)
	// sweepMinLen is the size under which a shard never sweeps for growth.
	sweepMinLen = 256
)

// expirer is a value of a shardedMap: expired reports whether it can be
// dropped at now (µs), which must be the same as if it were absent.
type expirer interface {
	expired(now int64) bool
}

// shard is one lock's worth of a shardedMap.
type shard[V expirer] struct {
	mu        sync.Mutex
	m         map[string]V
	nextSweep int64 // µs
	sweepLen  int   // sweep when the map grows to this size
}

// shardedMap is a map from counter keys to values that expire, split over
// shardCount mutexes. Every Take locks the shards of its keys, in
// ascending order (so concurrent Takes cannot deadlock), which makes the
// Take atomic across its limits.
//
// Memory is bounded: a shard drops its expired entries every sweepEvery,
// and as soon as it has doubled since its last sweep, so it holds at most
// twice its live entries (or sweepMinLen) — amortised O(1) per insert.
type shardedMap[V expirer] struct {
	seed   maphash.Seed
	shards [shardCount]shard[V]
}

func newShardedMap[V expirer]() *shardedMap[V] {
	s := &shardedMap[V]{seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].m = make(map[string]V)
		s.shards[i].sweepLen = sweepMinLen
	}
	return s
}

func (s *shardedMap[V]) shardOf(key string) *shard[V] {
	return &s.shards[maphash.String(s.seed, key)%shardCount]
}

// lock locks the shards of every limit's key and returns them as a set.
func (s *shardedMap[V]) lock(limits []Limit) uint64 {
	var set uint64
	for _, l := range limits {
		set |= 1 << (maphash.String(s.seed, l.Key) % shardCount)
	}
	for rest := set; rest != 0; rest &= rest - 1 {
		s.shards[bits.TrailingZeros64(rest)].mu.Lock()
	}
	return set
}

// unlock sweeps the shards of set when due, then unlocks them.
func (s *shardedMap[V]) unlock(set uint64, now int64) {
	for rest := set; rest != 0; rest &= rest - 1 {
		sh := &s.shards[bits.TrailingZeros64(rest)]
		if now >= sh.nextSweep || len(sh.m) >= sh.sweepLen {
			sh.sweep(now)
		}
		sh.mu.Unlock()
	}
}

// get returns key's value, dropping it when expired. The caller holds the
// key's shard.
func (s *shardedMap[V]) get(key string, now int64) (V, bool) {
	sh := s.shardOf(key)
	v, ok := sh.m[key]
	if ok && v.expired(now) {
		delete(sh.m, key)
		var zero V
		return zero, false
	}
	return v, ok
}

// put stores key's value. The caller holds the key's shard.
func (s *shardedMap[V]) put(key string, v V) { s.shardOf(key).m[key] = v }

// len counts the entries, expired or not (for tests).
func (s *shardedMap[V]) len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

func (sh *shard[V]) sweep(now int64) {
	for k, v := range sh.m {
		if v.expired(now) {
			delete(sh.m, k)
		}
	}
	sh.nextSweep = now + sweepEvery
	sh.sweepLen = max(2*len(sh.m), sweepMinLen)
}
