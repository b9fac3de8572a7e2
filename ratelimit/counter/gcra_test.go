package counter

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

func TestNewGCRA(t *testing.T) {
	tests := []struct {
		name           string
		limit          Limit
		wantT, wantTau int64
		wantErr        bool
	}{
		{"100 per minute", Limit{Requests: 100, Per: time.Minute}, 600_000, 99 * 600_000, false},
		{"burst 0 means requests", Limit{Requests: 5, Per: time.Second}, 200_000, 4 * 200_000, false},
		{"burst above requests", Limit{Requests: 10, Per: time.Second, Burst: 20}, 100_000, 19 * 100_000, false},
		{"burst below requests means requests", Limit{Requests: 10, Per: time.Second, Burst: 3}, 100_000, 9 * 100_000, false},
		{"one per window: no tolerance", Limit{Requests: 1, Per: time.Second}, 1_000_000, 0, false},
		{"3 per day", Limit{Requests: 3, Per: 24 * time.Hour}, 28_800_000_000, 2 * 28_800_000_000, false},
		{"T truncates to the microsecond", Limit{Requests: 3, Per: time.Second}, 333_333, 2 * 333_333, false},
		{"rates above 1/µs are capped", Limit{Requests: 5_000_000, Per: time.Second}, 1, 4_999_999, false},
		{"huge request count", Limit{Requests: 1 << 40, Per: time.Second}, 1, 1<<40 - 1, false},
		{"request count beyond the largest bucket", Limit{Requests: 1 << 63, Per: time.Second}, 0, 0, true},
		{"no requests", Limit{Requests: 0, Per: time.Second}, 0, 0, true},
		{"no window", Limit{Requests: 1}, 0, 0, true},
		{"sub-microsecond window", Limit{Requests: 1, Per: time.Nanosecond}, 0, 0, true},
		{"negative window", Limit{Requests: 1, Per: -time.Second}, 0, 0, true},
		{"bucket too large", Limit{Requests: 1, Per: time.Hour, Burst: 1 << 30}, 0, 0, true},
		{"largest bucket", Limit{Requests: 1, Per: time.Microsecond, Burst: 1 << 51}, 1, 1<<51 - 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := newGCRA(tt.limit)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidLimit) {
					t.Fatalf("err = %v, want ErrInvalidLimit", err)
				}
				return
			}
			if err != nil || g.interval != tt.wantT || g.tolerance != tt.wantTau {
				t.Fatalf("got T=%d τ=%d err=%v, want T=%d τ=%d", g.interval, g.tolerance, err, tt.wantT, tt.wantTau)
			}
		})
	}
}

func TestGCRAResult(t *testing.T) {
	g := gcra{interval: 100, tolerance: 400} // bucket of 5, T = 100µs
	const now = 1_000_000
	tests := []struct {
		name string
		tat  int64
		want Result
	}{
		{"absent: full bucket", 0, Result{Remaining: 5}},
		{"TAT in the past: full bucket", now - 50, Result{Remaining: 5}},
		{"one taken", now + 100, Result{Remaining: 4, ResetAfter: 100 * time.Microsecond}},
		{"part of a cell refilled", now + 150, Result{Remaining: 3, ResetAfter: 150 * time.Microsecond}},
		{"last one admissible", now + 400, Result{Remaining: 1, ResetAfter: 400 * time.Microsecond}},
		{"empty, next soon", now + 401, Result{Remaining: 0, ResetAfter: 401 * time.Microsecond, RetryAfter: time.Microsecond}},
		{"empty", now + 500, Result{Remaining: 0, ResetAfter: 500 * time.Microsecond, RetryAfter: 100 * time.Microsecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := g.result(tt.tat, now); got != tt.want {
				t.Fatalf("result = %+v, want %+v", got, tt.want)
			}
			if admits := g.admits(tt.tat, now); admits != (tt.want.RetryAfter == 0) {
				t.Fatalf("admits = %v with RetryAfter %v", admits, tt.want.RetryAfter)
			}
		})
	}
}

// bucket is the reference: a token bucket whose level is kept in
// microseconds of credit (T per request), refilled continuously.
type bucket struct {
	level, last int64
	seen        bool
}

func (b *bucket) refill(g gcra, now int64) {
	capacity := g.interval + g.tolerance
	if !b.seen {
		b.level, b.seen = capacity, true
	} else if now > b.last {
		b.level = min(capacity, b.level+now-b.last)
	}
	b.last = max(b.last, now)
}

// TestGCRAIsATokenBucket drives takeAll and a continuous token bucket with
// the same random requests over two limits and checks that they agree on
// every decision and result.
func TestGCRAIsATokenBucket(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		gs := []gcra{randomGCRA(rng), randomGCRA(rng)}
		tats := make([]int64, 2)
		ref := make([]bucket, 2)
		now := int64(1_000_000_000)
		for step := range 200 {
			now += rng.Int64N(3 * gs[rng.IntN(2)].interval)
			for i := range ref {
				ref[i].refill(gs[i], now)
			}
			wantAllowed := ref[0].level >= gs[0].interval && ref[1].level >= gs[1].interval
			if wantAllowed {
				ref[0].level -= gs[0].interval
				ref[1].level -= gs[1].interval
			}
			next := append([]int64(nil), tats...)
			if allowed := takeAll(gs, next, now); allowed != wantAllowed {
				t.Fatalf("round %d step %d: allowed %v, the token bucket says %v", round, step, allowed, wantAllowed)
			}
			tats = next
			for i, g := range gs {
				if got, want := g.result(tats[i], now), refResult(g, ref[i].level); got != want {
					t.Fatalf("round %d step %d limit %d: %+v, want %+v", round, step, i, got, want)
				}
			}
		}
	}
}

func randomGCRA(rng *rand.Rand) gcra {
	interval := 1 + rng.Int64N(1000)
	return gcra{interval: interval, tolerance: interval * rng.Int64N(6)}
}

// refResult is a Result from a token bucket's level (µs of credit).
func refResult(g gcra, level int64) Result {
	d := g.interval + g.tolerance - level
	return Result{
		Remaining:  uint64(level / g.interval),
		ResetAfter: time.Duration(d) * time.Microsecond,
		RetryAfter: time.Duration(max(0, g.interval-level)) * time.Microsecond,
	}
}
