package counter

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestRedisConcurrentReplicasAreExact hammers one key through two
// backends with their own clients (two replicas) on one server.
func TestRedisConcurrentReplicasAreExact(t *testing.T) {
	addr := harnessRedis(t)
	replicas := []*RedisBackend{
		NewRedis(newTestClient(t, addr), RedisOptions{Timeout: 5 * time.Second}),
		NewRedis(newTestClient(t, addr), RedisOptions{Timeout: 5 * time.Second}),
	}
	limits := []Limit{
		{Key: "{c:hot}:minute", Requests: 100, Per: time.Minute},
		{Key: "{c:hot}:day", Requests: 1000, Per: 24 * time.Hour},
	}
	var admitted, rejected atomic.Int64
	var wg sync.WaitGroup
	for g := range 50 {
		wg.Go(func() {
			for range 10 {
				allowed, _, err := replicas[g%2].Take(context.Background(), limits)
				switch {
				case err != nil:
					t.Error(err)
				case allowed:
					admitted.Add(1)
				default:
					rejected.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if admitted.Load() != 100 || rejected.Load() != 400 {
		t.Fatalf("admitted %d, rejected %d of 500; want exactly 100 admitted", admitted.Load(), rejected.Load())
	}
	// The day limit was charged by the admitted takes only.
	_, res, err := replicas[0].Take(context.Background(), limits[1:])
	if err != nil || res[0].Remaining != 1000-101 {
		t.Fatalf("day remaining = %+v (%v), want %d", res, err, 1000-101)
	}
}

func TestRedisKeysExpire(t *testing.T) {
	client := newTestClient(t, harnessRedis(t))
	r := NewRedis(client, RedisOptions{Timeout: functionalTimeout})
	ctx := context.Background()
	minute := Limit{Key: "{c:x}:m", Requests: 3, Per: time.Minute}
	short := Limit{Key: "{c:x}:s", Requests: 5, Per: 100 * time.Millisecond}
	if _, _, err := r.Take(ctx, []Limit{minute, short}); err != nil {
		t.Fatal(err)
	}
	pttl, err := client.PTTL(ctx, DefaultPrefix+minute.Key).Result()
	if err != nil || pttl <= 19*time.Second || pttl > 20*time.Second {
		t.Fatalf("PTTL = %v (%v), want ResetAfter, 20s", pttl, err)
	}
	for range 3 { // the third is rejected and must not extend the expiry
		if _, _, err := r.Take(ctx, []Limit{minute}); err != nil {
			t.Fatal(err)
		}
	}
	if pttl, _ := client.PTTL(ctx, DefaultPrefix+minute.Key).Result(); pttl <= 59*time.Second || pttl > time.Minute {
		t.Fatalf("PTTL after three = %v, want ResetAfter, 60s", pttl)
	}
	time.Sleep(60 * time.Millisecond)
	if n, err := client.Exists(ctx, DefaultPrefix+short.Key).Result(); err != nil || n != 0 {
		t.Fatalf("a full bucket's key still exists (%d, %v)", n, err)
	}
}

// TestRedisOneRoundTripPerTake counts commands through a client hook.
func TestRedisOneRoundTripPerTake(t *testing.T) {
	client := newTestClient(t, harnessRedis(t))
	if err := client.Ping(context.Background()).Err(); err != nil { // the connection handshake
		t.Fatal(err)
	}
	hook := &commandCounter{}
	client.AddHook(hook)
	r := NewRedis(client, RedisOptions{Timeout: functionalTimeout})
	ctx := context.Background()
	limits := []Limit{
		{Key: "{c:rt}:s", Requests: 1000, Per: time.Second},
		{Key: "{c:rt}:m", Requests: 10000, Per: time.Minute},
		{Key: "{c:rt}:d", Requests: 100000, Per: 24 * time.Hour},
	}
	take := func() {
		t.Helper()
		if _, _, err := r.Take(ctx, limits); err != nil {
			t.Fatal(err)
		}
	}
	take() // loads the script: EVALSHA (NOSCRIPT), then EVAL
	if names := hook.reset(); len(names) != 2 || names[0] != "evalsha" || names[1] != "eval" {
		t.Fatalf("first take sent %v, want [evalsha eval]", names)
	}
	for range 20 {
		take()
	}
	if trips, names := hook.trips.Load(), hook.reset(); trips != 20 || names[0] != "evalsha" {
		t.Fatalf("20 takes made %d round trips (%v), want 20", trips, names)
	}
	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	hook.reset()
	take() // reloads after a flush (or a restarted server)
	take()
	if trips := hook.trips.Load(); trips != 3 {
		t.Fatalf("two takes after SCRIPT FLUSH made %d round trips, want 3", trips)
	}
}

// TestRedisMatchesTheModel runs random takes on short windows against
// Redis and checks every reply against takeAll and result at the server's
// clock (which the script returns), keys expiring included.
func TestRedisMatchesTheModel(t *testing.T) {
	client := newTestClient(t, harnessRedis(t))
	r := NewRedis(client, RedisOptions{Timeout: time.Second})
	rng := rand.New(rand.NewPCG(3, 4))
	pool := []Limit{
		{Key: "{c:m}:a", Requests: 3, Per: 30 * time.Millisecond},
		{Key: "{c:m}:b", Requests: 2, Per: 20 * time.Millisecond, Burst: 5},
		{Key: "{c:m}:c", Requests: 7, Per: 100 * time.Millisecond},
		{Key: "{c:m}:d", Requests: 1, Per: 10 * time.Millisecond, Burst: 1},
	}
	model := map[string]int64{}
	for step := range 400 {
		limits := pickLimits(rng, pool)
		allowed, now, results, err := r.take(context.Background(), limits)
		if err != nil {
			t.Fatal(err)
		}
		gs, _ := gcraParams(limits, nil)
		tats := make([]int64, len(limits))
		for i, l := range limits {
			tats[i] = model[l.Key]
		}
		if want := takeAll(gs, tats, now); allowed != want {
			t.Fatalf("step %d: Redis allowed %v, the model %v", step, allowed, want)
		}
		for i, l := range limits {
			model[l.Key] = tats[i]
			if want := gs[i].result(tats[i], now); results[i] != want {
				t.Fatalf("step %d, %s: Redis %+v, the model %+v", step, l.Key, results[i], want)
			}
		}
		if rng.IntN(4) == 0 {
			time.Sleep(time.Duration(rng.IntN(8000)) * time.Microsecond)
		}
	}
}

// pickLimits returns one to three distinct limits of pool, in random order.
func pickLimits(rng *rand.Rand, pool []Limit) []Limit {
	perm := rng.Perm(len(pool))
	out := make([]Limit, 1+rng.IntN(3))
	for i := range out {
		out[i] = pool[perm[i]]
	}
	return out
}

func TestRedisNilClient(t *testing.T) {
	_, _, err := NewRedis(nil, RedisOptions{}).Take(context.Background(), []Limit{{Key: "k", Requests: 1, Per: time.Second}})
	if err == nil {
		t.Fatal("a backend without a client decided")
	}
}

func TestNewRedisWarnsWithoutContextTimeouts(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	for _, enabled := range []bool{false, true} {
		c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: enabled})
		t.Cleanup(func() { _ = c.Close() })
		logs.Reset()
		NewRedis(c, RedisOptions{Logger: log})
		if warned := strings.Contains(logs.String(), "ignores context deadlines"); warned == enabled {
			t.Errorf("ContextTimeoutEnabled %v: log %q", enabled, logs.String())
		}
	}
}

func TestRedisPrefix(t *testing.T) {
	client := newTestClient(t, harnessRedis(t))
	r := NewRedis(client, RedisOptions{Prefix: "p:", Timeout: functionalTimeout})
	if _, _, err := r.Take(context.Background(), []Limit{{Key: "{c:p}:k", Requests: 1, Per: time.Second}}); err != nil {
		t.Fatal(err)
	}
	v, err := client.Get(context.Background(), "p:{c:p}:k").Result()
	if _, perr := strconv.ParseInt(v, 10, 64); err != nil || perr != nil {
		t.Fatalf("stored TAT %q (%v): want integer microseconds", v, err)
	}
}

// TestRedisHungServerTimesOut stops the server (SIGSTOP): Take must give
// up at the backend's Timeout.
func TestRedisHungServerTimesOut(t *testing.T) {
	addr := freeAddr(t)
	p := startRedisAt(t, addr)
	r := NewRedis(newTestClient(t, addr), RedisOptions{Timeout: 50 * time.Millisecond})
	l := []Limit{{Key: "{c:h}:k", Requests: 10, Per: time.Second}}
	if _, _, err := r.Take(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(19); err != nil { // SIGSTOP
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Signal(18) }) // SIGCONT
	start := time.Now()
	_, _, err := r.Take(context.Background(), l)
	if elapsed := time.Since(start); err == nil || elapsed > 100*time.Millisecond {
		t.Fatalf("Take on a hung server: err %v after %v, want an error within ~50ms", err, elapsed)
	}
}

var _ redis.Hook = (*commandCounter)(nil)
