package counter

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/policy/ir"
)

var errDown = errors.New("redis down")

// fallbackFixture is a Fallback on a failing-at-will memory primary.
type fallbackFixture struct {
	clock   *fakeClock
	primary *countingBackend
	local   *countingBackend
	hooked  []error
	mu      sync.Mutex
	f       *Fallback
}

func newFallbackFixture(t *testing.T, mode string) *fallbackFixture {
	t.Helper()
	x := &fallbackFixture{clock: newFakeClock()}
	x.primary = &countingBackend{Backend: NewMemory(x.clock.Now)}
	x.local = &countingBackend{Backend: NewMemory(x.clock.Now)}
	hook := func(err error) {
		x.mu.Lock()
		defer x.mu.Unlock()
		x.hooked = append(x.hooked, err)
	}
	f, err := NewFallback(x.primary, x.local, mode, hook, WithClock(x.clock.Now), WithBackoff(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	x.f = f
	return x
}

func threePerMinute() []Limit { return []Limit{{Key: "{c:f}:m", Requests: 3, Per: time.Minute}} }

func TestFallbackHealthyUsesThePrimary(t *testing.T) {
	x := newFallbackFixture(t, ir.FailClosed)
	for range 5 {
		if _, _, err := x.f.Take(context.Background(), threePerMinute()); err != nil {
			t.Fatal(err)
		}
	}
	if x.primary.takes.Load() != 5 || x.local.takes.Load() != 0 || len(x.hooked) != 0 {
		t.Fatalf("primary %d, local %d, hook %v", x.primary.takes.Load(), x.local.takes.Load(), x.hooked)
	}
}

func TestFallbackModes(t *testing.T) {
	tests := []struct {
		mode     string
		wantOK   int // of 5
		wantErrs int
	}{
		{ir.FailOpen, 5, 0},
		{ir.FailClosed, 0, 5},
		{ir.FailLocal, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			x := newFallbackFixture(t, tt.mode)
			x.primary.setFail(errDown)
			ok, errs := 0, 0
			for range 5 {
				allowed, results, err := x.f.Take(context.Background(), threePerMinute())
				switch {
				case err != nil:
					errs++
					if !errors.Is(err, errDown) && !errors.Is(err, ErrPrimaryDown) {
						t.Errorf("error %v is neither the primary's nor ErrPrimaryDown", err)
					}
				case allowed:
					ok++
				}
				if err == nil && len(results) != 1 || tt.mode == ir.FailOpen && results[0] != (Result{}) {
					t.Errorf("results = %+v", results)
				}
			}
			if ok != tt.wantOK || errs != tt.wantErrs {
				t.Fatalf("ok %d, errors %d; want %d, %d", ok, errs, tt.wantOK, tt.wantErrs)
			}
			if x.primary.takes.Load() != 1 {
				t.Errorf("the primary was tried %d times within the backoff, want 1", x.primary.takes.Load())
			}
			if len(x.hooked) != 5 || !errors.Is(x.hooked[0], errDown) || !errors.Is(x.hooked[4], ErrPrimaryDown) {
				t.Errorf("hook got %v", x.hooked)
			}
		})
	}
}

func TestFallbackRecovers(t *testing.T) {
	x := newFallbackFixture(t, ir.FailOpen)
	x.primary.setFail(errDown)
	take := func() Result {
		t.Helper()
		_, res, err := x.f.Take(context.Background(), threePerMinute())
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	take() // fails, starts the backoff
	x.clock.Advance(499 * time.Millisecond)
	take()
	if x.primary.takes.Load() != 1 {
		t.Fatal("the primary was tried within the backoff")
	}
	x.clock.Advance(time.Millisecond)
	take() // the probe, fails again
	take()
	if x.primary.takes.Load() != 2 {
		t.Fatalf("primary tried %d times, want 2 (one probe)", x.primary.takes.Load())
	}
	x.primary.setFail(nil)
	x.clock.Advance(500 * time.Millisecond)
	if r := take(); r.Remaining != 2 {
		t.Fatalf("after recovery: %+v, want the primary's result", r)
	}
	take()
	if x.primary.takes.Load() != 4 {
		t.Fatalf("primary tried %d times, want every take once healthy", x.primary.takes.Load())
	}
}

// blockingBackend blocks every Take until release is closed, then fails.
type blockingBackend struct {
	calls   atomic.Int64
	release chan struct{}
}

func (b *blockingBackend) Take(context.Context, []Limit) (bool, []Result, error) {
	b.calls.Add(1)
	<-b.release
	return false, nil, errDown
}

func TestFallbackProbesOnce(t *testing.T) {
	clock := newFakeClock()
	primary := &blockingBackend{release: make(chan struct{})}
	f, err := NewFallback(primary, nil, ir.FailOpen, nil, WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	f.skipUntil.Store(clock.Now().UnixNano()) // down, backoff just over
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if allowed, _, err := f.Take(context.Background(), threePerMinute()); err != nil || !allowed {
				t.Errorf("open mode: %v %v", allowed, err)
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	close(primary.release)
	wg.Wait()
	if n := primary.calls.Load(); n != 1 {
		t.Fatalf("%d concurrent probes, want 1", n)
	}
}

func TestFallbackPassesCallerErrorsThrough(t *testing.T) {
	x := newFallbackFixture(t, ir.FailOpen)
	_, _, err := x.f.Take(context.Background(), []Limit{{Key: "k", Requests: 0, Per: time.Second}})
	if !errors.Is(err, ErrInvalidLimit) {
		t.Fatalf("invalid limit: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	x.primary.setFail(context.Canceled)
	if _, _, err := x.f.Take(ctx, threePerMinute()); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled take: %v", err)
	}
	x.primary.setFail(nil)
	if _, _, err := x.f.Take(context.Background(), threePerMinute()); err != nil || x.primary.takes.Load() != 3 || len(x.hooked) != 0 {
		t.Fatalf("caller errors started a backoff: %v, primary %d, hook %v", err, x.primary.takes.Load(), x.hooked)
	}
}

func TestNewFallbackRejects(t *testing.T) {
	m := NewMemory(nil)
	if _, err := NewFallback(nil, m, ir.FailOpen, nil); err == nil {
		t.Error("no primary accepted")
	}
	if _, err := NewFallback(m, nil, ir.FailLocal, nil); err == nil {
		t.Error("local mode without a local backend accepted")
	}
	for _, mode := range []string{"", "sometimes"} {
		if _, err := NewFallback(m, m, mode, nil); err == nil {
			t.Errorf("mode %q accepted", mode)
		}
	}
	f, err := NewFallback(m, nil, ir.FailOpen, nil)
	if err != nil || f.SetMode(ir.FailClosed) != nil || f.SetMode(ir.FailLocal) == nil {
		t.Fatalf("SetMode: %v", err)
	}
}

// TestFallbackRedisKilledAndRestarted kills redis-server mid-test, checks
// every failure mode, restarts it on the same port and waits for the
// fallbacks to use it again by themselves.
func TestFallbackRedisKilledAndRestarted(t *testing.T) {
	addr := freeAddr(t)
	p := startRedisAt(t, addr)
	redisBackend := NewRedis(newTestClient(t, addr), RedisOptions{Timeout: 50 * time.Millisecond})
	primary := &countingBackend{Backend: redisBackend}
	var hooked atomic.Int64
	fallbacks := map[string]*Fallback{}
	for _, mode := range []string{ir.FailOpen, ir.FailClosed, ir.FailLocal} {
		f, err := NewFallback(primary, NewMemory(nil), mode, func(error) { hooked.Add(1) }, WithBackoff(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		fallbacks[mode] = f
	}
	limits := []Limit{{Key: "{c:k}:m", Requests: 3, Per: time.Minute}}
	if _, _, err := fallbacks[ir.FailClosed].Take(context.Background(), limits); err != nil {
		t.Fatal(err)
	}
	if err := p.Kill(); err != nil && !p.Exited() {
		t.Fatal(err)
	}
	// Also with a client on go-redis defaults (3 retries with backoff).
	defaults := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = defaults.Close() })
	for _, b := range []Backend{redisBackend, NewRedis(defaults, RedisOptions{Logger: discardLogger()})} {
		start := time.Now()
		if _, _, err := b.Take(context.Background(), limits); err == nil || time.Since(start) > 100*time.Millisecond {
			t.Fatalf("Take on a dead server: %v after %v, want an error within the timeout", err, time.Since(start))
		}
	}
	checkFailureModes(t, fallbacks, limits)
	if hooked.Load() == 0 {
		t.Error("the hook never heard of the failure")
	}
	startRedisAt(t, addr)
	for mode, f := range fallbacks {
		waitPrimary(t, mode, f, primary, limits)
	}
}

// checkFailureModes takes 5 times through each fallback while Redis is down.
func checkFailureModes(t *testing.T, fallbacks map[string]*Fallback, limits []Limit) {
	t.Helper()
	for mode, f := range fallbacks {
		ok, errs := 0, 0
		for range 5 {
			start := time.Now()
			allowed, _, err := f.Take(context.Background(), limits)
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Errorf("%s: a take with Redis down took %v", mode, d)
			}
			switch {
			case err != nil:
				errs++
			case allowed:
				ok++
			}
		}
		want := map[string][2]int{ir.FailOpen: {5, 0}, ir.FailClosed: {0, 5}, ir.FailLocal: {3, 0}}[mode]
		if ok != want[0] || errs != want[1] {
			t.Errorf("%s with Redis down: %d admitted, %d errors; want %v", mode, ok, errs, want)
		}
	}
}

// waitPrimary waits until f's takes are decided by the primary again.
func waitPrimary(t *testing.T, mode string, f *Fallback, primary *countingBackend, limits []Limit) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := harness.WaitFor(ctx, func() (bool, error) {
		before := primary.takes.Load()
		_, results, err := f.Take(context.Background(), limits)
		return err == nil && primary.takes.Load() > before && results[0].ResetAfter > 0, err
	})
	if err != nil {
		t.Fatalf("%s: the primary is not used again after the restart: %v", mode, err)
	}
}
