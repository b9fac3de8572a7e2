package counter

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/e2e/harness"
)

// backends returns the backends every contract test runs against: memory
// on a clock the test moves, and Redis (server time) with a no-op advance.
func backends(t *testing.T) map[string]struct {
	b       Backend
	advance func(time.Duration)
} {
	now := time.Unix(1_700_000_000, 0)
	mem := NewMemory(func() time.Time { return now })
	addr := harness.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { client.Close() })
	return map[string]struct {
		b       Backend
		advance func(time.Duration)
	}{
		"memory": {mem, func(d time.Duration) { now = now.Add(d) }},
		"redis":  {NewRedis(client, RedisOptions{Timeout: time.Second}), nil},
	}
}

func take(t *testing.T, b Backend, n int, limits ...Limit) (ok int, last []Result) {
	t.Helper()
	for i := 0; i < n; i++ {
		allowed, res, err := b.Take(context.Background(), limits)
		if err != nil {
			t.Fatal(err)
		}
		if allowed {
			ok++
		}
		last = res
	}
	return ok, last
}

func TestContract(t *testing.T) {
	for name, be := range backends(t) {
		t.Run(name, func(t *testing.T) {
			k := func(s string) string { return "{" + name + "}:" + s + fmt.Sprint(time.Now().UnixNano()) }
			t.Run("exactly N of N+k", func(t *testing.T) {
				ok, last := take(t, be.b, 150, Limit{Key: k("a"), Requests: 100, Per: time.Minute})
				if ok != 100 || last[0].Remaining != 0 || last[0].RetryAfter <= 0 || last[0].RetryAfter > time.Second {
					t.Fatalf("admitted %d, last %+v; want 100 and a retry under 0.6 s", ok, last[0])
				}
			})
			t.Run("all or nothing", func(t *testing.T) {
				sec, day := Limit{Key: k("s"), Requests: 2, Per: time.Second}, Limit{Key: k("d"), Requests: 5, Per: 24 * time.Hour}
				if ok, _ := take(t, be.b, 4, sec, day); ok != 2 {
					t.Fatalf("admitted %d, want 2", ok)
				}
				// The per-second refusals charged nothing: 3 left today.
				if ok, _ := take(t, be.b, 5, day); ok != 3 {
					t.Fatalf("per-day admitted %d afterwards, want 3", ok)
				}
			})
			t.Run("per-day bites under per-minute", func(t *testing.T) {
				if ok, _ := take(t, be.b, 8, Limit{Key: k("m"), Requests: 10, Per: time.Minute}, Limit{Key: k("dd"), Requests: 3, Per: 24 * time.Hour}); ok != 3 {
					t.Fatalf("admitted %d, want 3", ok)
				}
			})
			t.Run("burst above the rate", func(t *testing.T) {
				if ok, _ := take(t, be.b, 20, Limit{Key: k("b"), Requests: 5, Per: time.Second, Burst: 10}); ok != 10 {
					t.Fatalf("admitted %d, want the burst of 10", ok)
				}
			})
			t.Run("remaining and reset", func(t *testing.T) {
				_, res := take(t, be.b, 1, Limit{Key: k("r"), Requests: 3, Per: time.Minute})
				if res[0].Remaining != 2 || res[0].ResetAfter < 19*time.Second || res[0].ResetAfter > 20*time.Second {
					t.Fatalf("after one of 3/minute: %+v", res[0])
				}
			})
			if be.advance != nil {
				t.Run("retry after", func(t *testing.T) {
					l := Limit{Key: k("ra"), Requests: 2, Per: time.Minute}
					_, res := take(t, be.b, 3, l)
					be.advance(res[0].RetryAfter - time.Millisecond)
					if ok, _ := take(t, be.b, 1, l); ok != 0 {
						t.Fatal("admitted before RetryAfter")
					}
					be.advance(time.Millisecond)
					if ok, _ := take(t, be.b, 1, l); ok != 1 {
						t.Fatal("not admitted at RetryAfter")
					}
				})
			}
		})
	}
}

// TestRedisExactUnderConcurrency hammers one key from 50 goroutines through
// two backends with their own clients, like two service replicas.
func TestRedisExactUnderConcurrency(t *testing.T) {
	addr := harness.StartRedis(t)
	var bs []Backend
	for i := 0; i < 2; i++ {
		c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 32})
		t.Cleanup(func() { c.Close() })
		bs = append(bs, NewRedis(c, RedisOptions{Timeout: 5 * time.Second}))
	}
	l := Limit{Key: "{c:acme}:tier:x", Requests: 100, Per: time.Hour}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				ok, _, err := bs[g%2].Take(context.Background(), []Limit{l})
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					admitted.Add(1)
				}
			}
		}(g)
	}
	wg.Wait()
	if n := admitted.Load(); n != 100 {
		t.Fatalf("admitted %d of 500 concurrent requests, want exactly 100", n)
	}
}

func TestRedisKeysExpireAndOneRoundTrip(t *testing.T) {
	addr := harness.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	var calls atomic.Int64
	c.AddHook(countHook{&calls})
	b := NewRedis(c, RedisOptions{})
	if _, _, err := b.Take(context.Background(), []Limit{{Key: "{c:a}:1", Requests: 10, Per: time.Minute}, {Key: "{c:a}:2", Requests: 5, Per: time.Second}}); err != nil {
		t.Fatal(err)
	}
	calls.Store(0)
	if _, _, err := b.Take(context.Background(), []Limit{{Key: "{c:a}:1", Requests: 10, Per: time.Minute}, {Key: "{c:a}:2", Requests: 5, Per: time.Second}}); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("a Take of two limits cost %d Redis round trips, want 1", n)
	}
	ttl, err := c.PTTL(context.Background(), "tollgate:rl:{c:a}:1").Result()
	if err != nil || ttl <= 0 || ttl > 13*time.Second {
		t.Errorf("PTTL = %v, %v; want the time until the bucket is full (12 s)", ttl, err)
	}
}

func TestRedisDownIsAnErrorWithinTheTimeout(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)), MaxRetries: -1})
	defer c.Close()
	start := time.Now()
	if _, _, err := NewRedis(c, RedisOptions{Timeout: 50 * time.Millisecond}).Take(context.Background(), []Limit{{Key: "k", Requests: 1, Per: time.Second}}); err == nil {
		t.Fatal("no error with Redis down")
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("failing took %s", d)
	}
}

type countHook struct{ n *atomic.Int64 }

func (h countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
