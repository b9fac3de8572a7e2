package counter

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// benchLimits are n limits of one consumer that always admit.
func benchLimits(n int) []Limit {
	pers := []time.Duration{time.Second, time.Minute, 24 * time.Hour}
	limits := make([]Limit, n)
	for i := range limits {
		limits[i] = Limit{Key: "{c:bench}:" + strconv.Itoa(i), Requests: 1 << 40, Per: pers[i%len(pers)]}
	}
	return limits
}

func benchTake(b *testing.B, backend Backend, limits []Limit, wantAllowed bool) {
	b.Helper()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		allowed, _, err := backend.Take(ctx, limits)
		if err != nil || allowed != wantAllowed {
			b.Fatalf("allowed %v, err %v", allowed, err)
		}
	}
}

func BenchmarkTake(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run("memory/limits="+strconv.Itoa(n), func(b *testing.B) {
			benchTake(b, NewMemory(time.Now), benchLimits(n), true)
		})
	}
	addr := harnessRedis(b)
	for _, n := range []int{1, 3} {
		b.Run("redis/limits="+strconv.Itoa(n), func(b *testing.B) {
			benchTake(b, NewRedis(newTestClient(b, addr), RedisOptions{Timeout: time.Second}), benchLimits(n), true)
		})
	}
	b.Run("overlimit-hit/limits=3", func(b *testing.B) {
		limits := benchLimits(3)
		limits[0].Requests, limits[0].Per = 1, time.Hour
		c := NewOverLimitCache(NewRedis(newTestClient(b, addr), RedisOptions{Timeout: time.Second}), time.Now)
		for range 2 { // admitted, then rejected by Redis and remembered
			if _, _, err := c.Take(context.Background(), limits); err != nil {
				b.Fatal(err)
			}
		}
		benchTake(b, c, limits, false)
	})
}

func BenchmarkTakeParallel(b *testing.B) {
	b.Run("memory/limits=3", func(b *testing.B) {
		m := NewMemory(time.Now)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			limits := benchLimits(3)
			for pb.Next() {
				if _, _, err := m.Take(context.Background(), limits); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("redis/limits=3", func(b *testing.B) {
		r := NewRedis(newTestClient(b, harnessRedis(b)), RedisOptions{Timeout: time.Second})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			limits := benchLimits(3)
			for pb.Next() {
				if _, _, err := r.Take(context.Background(), limits); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
