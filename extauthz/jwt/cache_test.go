package jwt

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestVerifyCache(t *testing.T) {
	k := sharedKeys()
	kid := map[string]any{"kid": "rsa-1"}
	tests := []struct {
		name      string
		exp       time.Duration // token exp - now
		badSig    bool
		advance   time.Duration // clock move between the two Verify calls
		wantHit   bool          // the second Verify is served by the cache
		wantOK    bool          // the second Verify succeeds
		refreshIv time.Duration
	}{
		{name: "repeated token is a hit", exp: 10 * time.Minute, wantHit: true, wantOK: true},
		{name: "failure is not cached", exp: 10 * time.Minute, badSig: true},
		{name: "entry dies at exp", exp: time.Minute, advance: 2 * time.Minute},
		{name: "entry dies after RefreshInterval", exp: 10 * time.Minute, refreshIv: time.Minute,
			advance: time.Minute + time.Second, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			m := &recMetrics{}
			v := newTestVerifier(t, testProviders(t, k), Options{Now: clock.Now, Metrics: m, RefreshInterval: tt.refreshIv})
			signer := k.rsa
			if tt.badSig {
				signer = k.rsaOther
			}
			tok := sign(t, "RS256", signer, kid, claimsAt(clock.Now(), testIssuer, "exp", clock.Now().Add(tt.exp).Unix()))
			first, err1 := v.Verify(context.Background(), tok)
			clock.Advance(tt.advance)
			second, err2 := v.Verify(context.Background(), tok)

			if (err1 == nil) == tt.badSig || (err2 == nil) != tt.wantOK {
				t.Fatalf("Verify errors: %v then %v", err1, err2)
			}
			wantChecks, wantHits := int64(2), int64(0)
			if tt.wantHit {
				wantChecks, wantHits = 1, 1
				if first != second {
					t.Fatal("the cache hit returned another Identity")
				}
			}
			if got := v.sigChecks.Load(); got != wantChecks {
				t.Fatalf("%d signature checks, want %d", got, wantChecks)
			}
			if hits, misses := m.hits.Load(), m.misses.Load(); hits != wantHits || misses != 2-wantHits {
				t.Fatalf("CacheHit metrics: %d hits, %d misses; want %d, %d", hits, misses, wantHits, 2-wantHits)
			}
		})
	}
}

func TestVerifyCacheBounded(t *testing.T) {
	c := newVerifyCache(100)
	id := &Identity{UserID: "u"}
	for i := range 5000 {
		k := keyOf(fmt.Sprint("token-", i))
		c.put(&k, id, 10, 0, 0)
	}
	total := 0
	for i := range c.shards {
		total += len(c.shards[i].m)
	}
	if limit := cacheShards * c.perShard; total > limit {
		t.Fatalf("cache holds %d entries, want at most %d", total, limit)
	}
	k := keyOf("token-4999")
	if c.get(&k, 0) == nil {
		t.Fatal("the last entry put was evicted")
	}
	if c.get(&k, 10) != nil {
		t.Fatal("an entry is served at its end of life")
	}
}

func TestVerifyCacheDisabled(t *testing.T) {
	if c := newVerifyCache(-1); c != nil {
		t.Fatal("a negative size gives a cache")
	}
	var c *verifyCache
	k := keyOf("t")
	c.put(&k, &Identity{}, 10, 0, 0)
	if c.get(&k, 0) != nil {
		t.Fatal("a disabled cache returned an entry")
	}
	c.purge()
}
