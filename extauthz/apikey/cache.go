package apikey

import (
	"container/list"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// cacheShards spreads the cache over several locks so parallel lookups of
// different keys do not contend.
const cacheShards = 16

// cache is a bounded TTL cache of lookup results keyed by the key's HMAC.
// A nil *Record entry is a cached "not found". Entries are evicted oldest
// first; since they all live for the same TTL, the oldest is also the
// first to expire.
//
// Invalidation races with lookups: a lookup that read Redis before a
// revocation must not cache its (stale) answer after the invalidation.
// Every invalidation therefore bumps gen, and put only stores an answer
// when gen has not moved since the lookup read it (checked under the
// shard lock that invalidations of the same key also take).
type cache struct {
	ttl    time.Duration
	seed   maphash.Seed
	gen    atomic.Uint64
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu    sync.RWMutex
	limit int
	items map[string]*list.Element // of *cacheItem
	order list.List                // insertion order, oldest in front
}

type cacheItem struct {
	hash    string
	rec     *Record // nil: not found
	expires time.Time
}

func newCache(size int, ttl time.Duration) *cache {
	c := &cache{ttl: ttl, seed: maphash.MakeSeed()}
	limit := max(1, (size+cacheShards-1)/cacheShards)
	for i := range c.shards {
		c.shards[i].limit = limit
		c.shards[i].items = make(map[string]*list.Element)
	}
	return c
}

func (c *cache) shard(h string) *cacheShard {
	return &c.shards[maphash.String(c.seed, h)%cacheShards]
}

// generation returns the token a lookup passes to put.
func (c *cache) generation() uint64 { return c.gen.Load() }

// get returns the cached result for h, if fresh.
func (c *cache) get(h string, now time.Time) (*Record, bool) {
	s := c.shard(h)
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.items[h]
	if !ok {
		return nil, false
	}
	it := e.Value.(*cacheItem)
	if !now.Before(it.expires) {
		return nil, false
	}
	return it.rec, true
}

// put caches rec for h unless an invalidation happened since gen was read.
func (c *cache) put(h string, rec *Record, gen uint64, now time.Time) {
	s := c.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if e, ok := s.items[h]; ok {
		s.order.Remove(e)
	}
	s.items[h] = s.order.PushBack(&cacheItem{hash: h, rec: rec, expires: now.Add(c.ttl)})
	for s.order.Len() > s.limit {
		s.removeFront()
	}
	for s.order.Len() > 0 && !now.Before(s.order.Front().Value.(*cacheItem).expires) {
		s.removeFront()
	}
}

func (s *cacheShard) removeFront() {
	it := s.order.Remove(s.order.Front()).(*cacheItem)
	delete(s.items, it.hash)
}

// invalidate drops h and fails the puts of lookups in flight.
func (c *cache) invalidate(h string) {
	s := c.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	c.gen.Add(1)
	if e, ok := s.items[h]; ok {
		s.order.Remove(e)
		delete(s.items, h)
	}
}

// flush drops everything and fails the puts of lookups in flight.
func (c *cache) flush() {
	c.gen.Add(1)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.items = make(map[string]*list.Element)
		s.order.Init()
		s.mu.Unlock()
	}
}

// len returns the number of entries, expired ones included.
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += s.order.Len()
		s.mu.RUnlock()
	}
	return n
}
