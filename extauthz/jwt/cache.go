package jwt

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"unsafe"
)

// cacheShards is the number of independently locked parts of the
// verification cache (a power of two).
const cacheShards = 64

// cacheKey is the SHA-256 of a token: the cache never holds tokens.
type cacheKey [sha256.Size]byte

// keyOf hashes token without copying it. sha256.Sum256 only reads its
// argument and keeps no reference, so viewing the string's bytes is safe.
func keyOf(token string) cacheKey {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}

type cacheEntry struct {
	id    *Identity
	until int64 // Unix nanoseconds; the entry is dead from then on
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[cacheKey]cacheEntry
	_  [32]byte // keeps neighbouring shards' locks off one cache line
}

// verifyCache holds successful verifications only, keyed by the token's
// SHA-256. It is a sharded map with a bounded size per shard: a full shard
// first drops its dead entries, then an arbitrary live one (Go's map
// iteration order is random, which makes this random eviction). A nil
// *verifyCache is a disabled cache.
type verifyCache struct {
	shards   [cacheShards]cacheShard
	perShard int
	// gen counts the purges: put caches nothing verified before the
	// latest (its caller read gen before it read the keys).
	gen atomic.Uint64
}

// newVerifyCache returns a cache of about size entries, nil for size <= 0.
func newVerifyCache(size int) *verifyCache {
	if size <= 0 {
		return nil
	}
	c := &verifyCache{perShard: max(1, (size+cacheShards-1)/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]cacheEntry)
	}
	return c
}

func (c *verifyCache) shard(k *cacheKey) *cacheShard {
	return &c.shards[k[0]&(cacheShards-1)]
}

// get returns the identity cached for k if it is still alive at now.
func (c *verifyCache) get(k *cacheKey, now int64) *Identity {
	if c == nil {
		return nil
	}
	s := c.shard(k)
	s.mu.RLock()
	e, ok := s.m[*k]
	s.mu.RUnlock()
	if !ok || now >= e.until {
		return nil
	}
	return e.id
}

// generation returns the number of purges so far, for put.
func (c *verifyCache) generation() uint64 {
	if c == nil {
		return 0
	}
	return c.gen.Load()
}

// put caches id for k until the Unix nanosecond until, unless the cache
// was purged since gen (generation, read before id was verified): id may
// then come from a withdrawn key. purge raises gen before it clears a
// shard and put reads it under the shard's lock, so an entry put with an
// old gen is refused or cleared.
func (c *verifyCache) put(k *cacheKey, id *Identity, until, now int64, gen uint64) {
	if c == nil || until <= now {
		return
	}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if _, ok := s.m[*k]; !ok && len(s.m) >= c.perShard {
		s.evict(now, c.perShard)
	}
	s.m[*k] = cacheEntry{id: id, until: until}
}

// evict makes room for one entry. The caller holds s.mu.
func (s *cacheShard) evict(now int64, limit int) {
	for k, e := range s.m {
		if now >= e.until {
			delete(s.m, k)
		}
	}
	for k := range s.m {
		if len(s.m) < limit {
			return
		}
		delete(s.m, k)
	}
}

// purge drops every entry, for when a provider's keys were withdrawn.
func (c *verifyCache) purge() {
	if c == nil {
		return
	}
	c.gen.Add(1)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.m)
		s.mu.Unlock()
	}
}
