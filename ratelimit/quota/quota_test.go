package quota

import (
	"context"
	"fmt"
	"math"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/ratelimit/counter"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestCombine(t *testing.T) {
	tests := []struct {
		name      string
		ws        []window
		cap, rate float64
	}{
		{"one window", []window{{per: time.Minute, cap: 80, rate: 4.0 / 3}}, 80, 4.0 / 3},
		{"day ample: the minute binds alone", []window{{per: 24 * time.Hour, cap: 900, rate: 0.01}, {per: time.Minute, cap: 100, rate: 1.6}}, 100, 1.6},
		{"day nearly spent: it binds", []window{{per: time.Minute, cap: 100, rate: 1.6}, {per: 24 * time.Hour, cap: 50, rate: 0.01}}, 50, 0.01},
		{"day just short of C+f·h binds", []window{{per: time.Minute, cap: 10, rate: 1}, {per: 24 * time.Hour, cap: 21.9, rate: 0.5}}, 10, 0.5},
		{"day covering C+f·h does not", []window{{per: time.Minute, cap: 10, rate: 1}, {per: 24 * time.Hour, cap: 22, rate: 0.5}}, 10, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, r := combine(tt.ws, 12*time.Second)
			if c != tt.cap || r != tt.rate {
				t.Fatalf("combine = %v, %v; want %v, %v", c, r, tt.cap, tt.rate)
			}
		})
	}
}

func TestTokenBucketWholeSecondsAndAtLeastOne(t *testing.T) {
	tests := []struct {
		cap, rate       float64
		fill            time.Duration
		max, perFill    uint32
		intervalSeconds int64
	}{
		{100, 100.0 / 60, time.Minute, 100, 100, 60},
		{0, 0, time.Minute, 1, 1, 60}, // exhausted: one token, one per fill
		{80.9, 0.8 * 100 / 60, time.Minute, 80, 80, 60},
		{5, 1, 1500 * time.Millisecond, 5, 1, 1}, // never a sub-second interval
		{1e12, 1e12, time.Hour, math.MaxUint32, math.MaxUint32, 3600},
	}
	for _, tt := range tests {
		tb := tokenBucket(tt.cap, tt.rate, tt.fill)
		if tb.GetMaxTokens() != tt.max || tb.GetTokensPerFill().GetValue() != tt.perFill ||
			tb.GetFillInterval().GetSeconds() != tt.intervalSeconds || tb.GetFillInterval().GetNanos() != 0 {
			t.Errorf("tokenBucket(%v, %v, %v) = %v", tt.cap, tt.rate, tt.fill, tb)
		}
		if err := tb.Validate(); err != nil {
			t.Errorf("tokenBucket(%v, %v, %v) invalid: %v", tt.cap, tt.rate, tt.fill, err)
		}
	}
}

var minuteLimit = counter.Limit{Key: "{c:alice}:tier:100r60s0b", Requests: 100, Per: time.Minute}

// accounts returns the accounts under test: memory, and Redis when
// redis-server is installed.
func accounts(t *testing.T) map[string]func(*fakeClock) Account {
	out := map[string]func(*fakeClock) Account{
		"memory": func(c *fakeClock) Account { return NewMemoryAccount(c.Now) },
	}
	if _, err := exec.LookPath("redis-server"); err == nil {
		out["redis"] = func(*fakeClock) Account {
			client := redis.NewClient(&redis.Options{Addr: harness.StartRedis(t), ContextTimeoutEnabled: true})
			t.Cleanup(func() { _ = client.Close() })
			return NewRedisAccount(client, "", time.Second)
		}
	}
	return out
}

// TestAccountContract runs the Account contract against both accounts
// (Redis on its own clock: the steps take well under a second).
func TestAccountContract(t *testing.T) {
	for name, mk := range accounts(t) {
		t.Run(name, func(t *testing.T) {
			clock := &fakeClock{now: time.Now()}
			a := mk(clock)
			ctx := context.Background()
			settle := func(p string, used uint64, demand float64) KeyState {
				t.Helper()
				st, err := a.Settle(ctx, Settlement{Participant: p, Limits: []counter.Limit{minuteLimit}, Used: used, Demand: demand, Hold: time.Minute})
				if err != nil || len(st) != 1 {
					t.Fatalf("Settle: %v %v", st, err)
				}
				return st[0]
			}
			first := settle("A", 1, 1)
			if first.Remaining != 99 || first.Share != 1 || first.Grant != 99 {
				t.Fatalf("first report: %+v, want 99 remaining, the whole share, a grant of 99", first)
			}
			// B arrives while A holds everything: no tokens are left for it
			// yet, but it gets its floor of the rate, 0.1/2 (a new Envoy
			// is never refused outright: e2e TestQuotaReplacedEnvoyIsNotThrottled).
			if b := settle("B", 0, 2); math.Abs(b.Share-0.05) > 1e-9 || b.Grant != 0 {
				t.Fatalf("B while A holds all: %+v, want share 0.05, grant 0", b)
			}
			// A reports 80% of the demand: it keeps 0.9×0.8+0.05 = 0.77.
			a1 := settle("A", 19, 8)
			if a1.Remaining != 80 || math.Abs(a1.Share-0.77) > 1e-9 {
				t.Fatalf("A after 20 used: %+v, want 80 remaining, share 0.77", a1)
			}
			// A's grant is its share of what is left: 0.77 × 80.
			if math.Abs(a1.Grant-0.77*80) > 1e-6 {
				t.Fatalf("A's grant %v, want %v", a1.Grant, 0.77*80)
			}
			b1 := settle("B", 0, 2)
			if math.Abs(b1.Share-0.23) > 1e-9 {
				t.Fatalf("B's share: %v, want 0.23", b1.Share)
			}
			// B gets at most what A cannot be holding: 80 − 61.6 − refill.
			if b1.Grant > 80-a1.Grant+1e-6 || b1.Grant+a1.Grant > 80+1e-6 {
				t.Fatalf("grants %v + %v exceed the 80 left", a1.Grant, b1.Grant)
			}
			if sum := a1.Share + b1.Share; sum > 1+1e-9 {
				t.Fatalf("shares add up to %v", sum)
			}
			// Charges beyond the bucket run into debt, bounded.
			if over := settle("A", 1000, 8); over.Remaining != 0 {
				t.Fatalf("after overuse: %+v", over)
			}
		})
	}
}

// TestMemoryAccountExpiresParticipants: a participant whose hold passed
// no longer counts.
func TestMemoryAccountExpiresParticipants(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	a := NewMemoryAccount(clock.Now)
	ctx := context.Background()
	s := Settlement{Participant: "A", Limits: []counter.Limit{minuteLimit}, Demand: 1, Hold: 10 * time.Second}
	if _, err := a.Settle(ctx, s); err != nil {
		t.Fatal(err)
	}
	clock.Advance(11 * time.Second)
	s.Participant = "B"
	st, err := a.Settle(ctx, s)
	if err != nil || st[0].Share != 1 {
		t.Fatalf("B after A expired: %v %v", st, err)
	}
}

func TestByTag(t *testing.T) {
	got := fmt.Sprint(byTag([]counter.Limit{{Key: "{c:a}:tier:x"}, {Key: "{ip:1}:anon:y"}, {Key: "{c:a}:route:z"}}))
	if got != "[[0 2] [1]]" {
		t.Fatalf("byTag = %s", got)
	}
}

// redisAccount is a RedisAccount on a throw-away redis-server, or skips.
// accountKinds builds, by name, the two Accounts the tests that hold for
// both run against: memory, and Redis (skipped without redis-server).
func accountKinds(tb testing.TB) map[string]func() Account {
	return map[string]func() Account{
		"memory": func() Account { return NewMemoryAccount(time.Now) },
		"redis":  func() Account { return redisAccount(tb) },
	}
}

func redisAccount(tb testing.TB) Account {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Skip("redis-server not installed")
	}
	client := redis.NewClient(&redis.Options{Addr: harness.StartRedis(tb), ContextTimeoutEnabled: true})
	tb.Cleanup(func() { _ = client.Close() })
	return NewRedisAccount(client, "", time.Second)
}

// TestAccountNewcomerDemand: a participant's first settlement among others
// counts its demand as at least their mean, so that the next settlement of
// a busy participant leaves it half the rate (0.05 + 0.9 × 10/20), not
// the 0.87 its one-request first report would (0.05 + 0.9 × 10/11). Both
// accounts run the same math.
func TestAccountNewcomerDemand(t *testing.T) {
	for name, mk := range accounts(t) {
		t.Run(name, func(t *testing.T) {
			a := mk(&fakeClock{now: time.Now()})
			settle := func(p string, demand float64) KeyState {
				t.Helper()
				st, err := a.Settle(context.Background(), Settlement{Participant: p, Limits: []counter.Limit{minuteLimit}, Used: 1, Demand: demand, Hold: time.Minute})
				if err != nil || len(st) != 1 {
					t.Fatalf("Settle: %v %v", st, err)
				}
				return st[0]
			}
			settle("A", 10)
			settle("C", 1)
			if got := settle("A", 10).Share; math.Abs(got-0.5) > 1e-9 {
				t.Errorf("busy participant's share after a newcomer: %v, want 0.5", got)
			}
		})
	}
}

// TestMemoryAccountForgetsIdleKeys: keys whose bucket has refilled and
// whose participants' holds have passed are dropped (one entry per client
// address ever seen no longer accumulates), while a key still in use keeps
// its TAT through the sweeps.
func TestMemoryAccountForgetsIdleKeys(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	a := NewMemoryAccount(clock.Now)
	ctx := context.Background()
	settle := func(key string, used uint64) KeyState {
		t.Helper()
		l := minuteLimit
		l.Key = key
		st, err := a.Settle(ctx, Settlement{Participant: "envoy-1", Limits: []counter.Limit{l}, Used: used, Demand: 1, Hold: 15 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return st[0]
	}
	oneOffs := func(prefix string, n int) {
		for i := range n {
			settle(fmt.Sprintf("ip:%s.%d.%d", prefix, i/256, i%256), 1)
		}
	}
	settle("busy", 90)
	oneOffs("192.0", 3*minSweep) // sweeps run; every key is still in use
	if n := a.keys(); n != 3*minSweep+1 {
		t.Fatalf("%d keys while all are in use, want %d", n, 3*minSweep+1)
	}
	if st := settle("busy", 0); st.Remaining != 10 {
		t.Fatalf("busy after the sweeps: %+v, want its 10 remaining (its TAT kept)", st)
	}
	clock.Advance(2 * time.Minute) // every bucket refilled, every hold passed
	for round := range 10 {
		oneOffs(fmt.Sprintf("10.%d", round), minSweep)
		clock.Advance(2 * time.Minute)
	}
	if n := a.keys(); n > 2*minSweep {
		t.Errorf("%d keys held after %d one-off keys, want at most %d", n, 10*minSweep, 2*minSweep)
	}
	if st := settle("busy", 0); st.Remaining != 100 {
		t.Errorf("busy after its window: %+v, want a full bucket", st)
	}
}
