package apikey

import (
	"strconv"
	"testing"
	"time"
)

func TestCacheTTL(t *testing.T) {
	c := newCache(100, time.Second)
	t0 := time.Now()
	rec := &Record{ID: "a"}
	c.put("h", rec, c.generation(), t0)
	c.put("missing", nil, c.generation(), t0)
	tests := []struct {
		name    string
		hash    string
		at      time.Time
		wantRec *Record
		wantOK  bool
	}{
		{"fresh", "h", t0.Add(999 * time.Millisecond), rec, true},
		{"expired", "h", t0.Add(time.Second), nil, false},
		{"negative entry", "missing", t0, nil, true},
		{"never cached", "other", t0, nil, false},
	}
	for _, tt := range tests {
		got, ok := c.get(tt.hash, tt.at)
		if got != tt.wantRec || ok != tt.wantOK {
			t.Errorf("%s: get = %v, %v; want %v, %v", tt.name, got, ok, tt.wantRec, tt.wantOK)
		}
	}
}

func TestCacheIsBounded(t *testing.T) {
	const size = 64
	c := newCache(size, time.Minute)
	now := time.Now()
	for i := range 10 * size {
		c.put(strconv.Itoa(i), nil, c.generation(), now)
	}
	limit := cacheShards * ((size + cacheShards - 1) / cacheShards)
	if n := c.len(); n > limit {
		t.Errorf("cache holds %d entries, want at most %d", n, limit)
	}
	if _, ok := c.get(strconv.Itoa(10*size-1), now); !ok {
		t.Error("the newest entry was evicted")
	}
}

func TestCacheDropsExpiredEntriesOnPut(t *testing.T) {
	const late = 1000 // enough puts to reach every shard
	c := newCache(100*late, time.Second)
	t0 := time.Now()
	for i := range 100 {
		c.put(strconv.Itoa(i), nil, c.generation(), t0)
	}
	for i := range late {
		c.put("late"+strconv.Itoa(i), nil, c.generation(), t0.Add(2*time.Second))
	}
	if n := c.len(); n != late {
		t.Errorf("cache holds %d entries after expiry, want %d", n, late)
	}
}

// TestCacheRejectsPutsAcrossInvalidation: a lookup that read Redis before
// a revocation must not cache its stale answer after the invalidation.
func TestCacheRejectsPutsAcrossInvalidation(t *testing.T) {
	tests := []struct {
		name       string
		invalidate func(c *cache)
		dropsEntry bool
	}{
		{"invalidate same key", func(c *cache) { c.invalidate("h") }, true},
		{"invalidate other key", func(c *cache) { c.invalidate("other") }, false},
		{"flush", func(c *cache) { c.flush() }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache(100, time.Minute)
			now := time.Now()
			gen := c.generation()
			tt.invalidate(c)
			c.put("h", &Record{ID: "stale"}, gen, now)
			if _, ok := c.get("h", now); ok {
				t.Fatal("a put that raced an invalidation was cached")
			}
			c.put("h", &Record{ID: "fresh"}, c.generation(), now)
			if got, ok := c.get("h", now); !ok || got.ID != "fresh" {
				t.Fatalf("get = %v, %v; want the fresh record", got, ok)
			}
			tt.invalidate(c)
			if _, ok := c.get("h", now); ok == tt.dropsEntry {
				t.Errorf("after the invalidation, cached = %v; want %v", ok, !tt.dropsEntry)
			}
		})
	}
}
