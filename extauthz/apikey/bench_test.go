package apikey

import (
	"testing"

	"github.com/tollgate/tollgate/e2e/harness"
)

// BenchmarkLookup measures Lookup of a valid key: served from the local
// cache, from a real redis-server (cache disabled: one HGETALL per call),
// from the memory store, and the rejection of a malformed key.
func BenchmarkLookup(b *testing.B) {
	addr := harness.StartRedis(b)
	client, _ := newRedisClient(b, addr)
	cached := newRedisStore(b, client, testPepper, RedisOptions{})
	waitFresh(b, cached)
	uncached := newRedisStore(b, client, testPepper, RedisOptions{CacheSize: -1})
	key, _ := mustCreate(b, cached, Record{Consumer: "bench", Roles: []string{"reader", "writer"}, Tier: "gold"})
	mem := NewMemoryStore(testPepper)
	memKey, _ := mustCreate(b, mem, Record{Consumer: "bench", Roles: []string{"reader", "writer"}, Tier: "gold"})
	signer, err := NewSigner(testPepper)
	if err != nil {
		b.Fatal(err)
	}
	signedStore := newRedisStore(b, client, testPepper, RedisOptions{Signer: signer})
	waitFresh(b, signedStore)
	signedKey, _ := mustCreate(b, signedStore, Record{Consumer: "bench", Roles: []string{"reader", "writer"}, Tier: "gold"})
	benchmarks := []struct {
		name    string
		store   Store
		key     string
		wantErr bool
	}{
		{"cached", cached, key, false},
		{"redis", uncached, key, false},
		{"memory", mem, memKey, false},
		{"cached signed", signedStore, signedKey, false},
		{"malformed", cached, key[:keyLen-1] + "!", true},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			ctx := testContext(b)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bm.store.Lookup(ctx, bm.key); (err != nil) != bm.wantErr {
					b.Fatalf("Lookup: %v", err)
				}
			}
		})
	}
}

// BenchmarkLookupParallel is the cached path under concurrent callers.
func BenchmarkLookupParallel(b *testing.B) {
	addr := harness.StartRedis(b)
	client, _ := newRedisClient(b, addr)
	s := newRedisStore(b, client, testPepper, RedisOptions{})
	waitFresh(b, s)
	key, _ := mustCreate(b, s, Record{Consumer: "bench"})
	ctx := testContext(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Lookup(ctx, key); err != nil {
				b.Errorf("Lookup: %v", err)
				return
			}
		}
	})
}
