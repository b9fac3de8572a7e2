package oauth2

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

type tokenHash = [sha256.Size]byte

// cache is a bounded cache of introspection answers keyed by the token's
// SHA-256, each with its own expiry. A nil *Result is a cached "inactive".
// When full it evicts the oldest entry.
type cache struct {
	mu    sync.RWMutex
	limit int
	items map[tokenHash]*list.Element // of *cacheItem
	order list.List                   // insertion order, oldest in front
}

type cacheItem struct {
	key     tokenHash
	res     *Result
	expires time.Time
}

func newCache(limit int) *cache {
	return &cache{limit: limit, items: make(map[tokenHash]*list.Element)}
}

// get returns the answer cached for k, if it has not expired at now.
func (c *cache) get(k tokenHash, now time.Time) (*Result, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.items[k]
	if !ok {
		return nil, false
	}
	it := e.Value.(*cacheItem)
	if !now.Before(it.expires) {
		return nil, false
	}
	return it.res, true
}

// put caches res for k until expires.
func (c *cache) put(k tokenHash, res *Result, expires, now time.Time) {
	if !now.Before(expires) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.order.Remove(e)
	}
	c.items[k] = c.order.PushBack(&cacheItem{key: k, res: res, expires: expires})
	for c.order.Len() > c.limit {
		c.removeFront()
	}
	for c.order.Len() > 0 && !now.Before(c.order.Front().Value.(*cacheItem).expires) {
		c.removeFront()
	}
}

func (c *cache) removeFront() {
	it := c.order.Remove(c.order.Front()).(*cacheItem)
	delete(c.items, it.key)
}

// len returns the number of entries, expired ones included.
func (c *cache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.order.Len()
}
