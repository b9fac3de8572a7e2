package apikey

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/e2e/harness"
)

// envoyTimeout is Envoy's default ext_authz timeout, the deadline of every
// Check (it travels as grpc-timeout).
const envoyTimeout = 200 * time.Millisecond

// startRedisProcess starts a redis-server the test can signal.
func startRedisProcess(t *testing.T) (string, *harness.Process) {
	t.Helper()
	port := harness.FreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p := harness.StartProcess(t, "redis", "redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	ctx := testContext(t)
	if err := harness.WaitFor(ctx, func() (bool, error) { return harness.RedisPing(ctx, addr) == nil, nil }); err != nil {
		t.Fatalf("redis did not start: %v", err)
	}
	return addr, p
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(level string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range strings.Split(s.b.String(), "\n") {
		if strings.Contains(l, "level="+level) {
			out = append(out, l)
		}
	}
	return out
}

// lookupResult is one timed Lookup.
type lookupResult struct {
	start time.Duration // since the fault
	took  time.Duration
	err   error
}

// lookupsDuring runs Lookups of key, each with Envoy's deadline, 200 per
// second for d, and returns them in start order.
func lookupsDuring(s *RedisStore, key string, fault time.Time, d time.Duration) []lookupResult {
	var (
		mu  sync.Mutex
		out []lookupResult
		wg  sync.WaitGroup
	)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for end := time.Now().Add(d); time.Now().Before(end); <-tick.C {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), envoyTimeout)
			defer cancel()
			start := time.Now()
			_, err := s.Lookup(ctx, key)
			r := lookupResult{start: start.Sub(fault), took: time.Since(start), err: err}
			mu.Lock()
			out = append(out, r)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.SortFunc(out, func(a, b lookupResult) int { return int(a.start - b.start) })
	return out
}

// TestRedisLookupAnswersBeforeEnvoysTimeout kills, then SIGSTOPs (a stopped
// Redis accepts connections and never answers: the worst case), the Redis
// of a store whose client keeps go-redis's default timeouts and retries.
// Every Lookup with Envoy's 200 ms deadline must return ErrUnavailable
// well before that deadline; once the breaker is open (after the first
// failures), lookups fail in microseconds; the outage logs one WARN line;
// and lookups succeed again within 2 s of Redis's return.
func TestRedisLookupAnswersBeforeEnvoysTimeout(t *testing.T) {
	for _, kind := range []string{"kill", "stop"} {
		t.Run(kind, func(t *testing.T) {
			addr, p := startRedisProcess(t)
			client := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
			t.Cleanup(func() { _ = client.Close() })
			var logs syncBuffer
			s := newRedisStore(t, client, testPepper, RedisOptions{CacheSize: -1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			key, _ := mustCreate(t, s, Record{Consumer: "c"})
			if _, err := s.Lookup(testContext(t), key); err != nil {
				t.Fatal(err)
			}
			fault := time.Now()
			if kind == "kill" {
				_ = p.Kill()
			} else if err := p.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			results := lookupsDuring(s, key, fault, 2*time.Second)
			checkOutage(t, results)
			if warns := logs.lines("WARN"); len(warns) != 1 {
				t.Errorf("%d WARN lines during the outage, want 1:\n%s", len(warns), strings.Join(warns, "\n"))
			}
			if kind == "kill" {
				restartRedisOn(t, addr)
				mustCreateRaw(t, addr, s, key) // the restarted Redis is empty
			} else if err := p.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			back := time.Now()
			err := harness.WaitFor(testContext(t), func() (bool, error) {
				ctx, cancel := context.WithTimeout(context.Background(), envoyTimeout)
				defer cancel()
				_, err := s.Lookup(ctx, key)
				return err == nil, nil
			})
			if err != nil || time.Since(back) > 2*time.Second {
				t.Errorf("lookups recovered %v after Redis came back (%v), want within 2s", time.Since(back), err)
			}
			t.Logf("recovered %v after Redis came back; logs:\n%s", time.Since(back).Round(time.Millisecond), logs.b.String())
		})
	}
}

// checkOutage checks the lookups made during an outage: all unavailable,
// all well within Envoy's deadline, and fast once the breaker is open.
// fastFail bounds a lookup the open breaker refused without asking Redis:
// a quarter of Envoy's deadline, far below what a lookup that waited for
// Redis takes.
const fastFail = envoyTimeout / 4

func checkOutage(t *testing.T, results []lookupResult) {
	t.Helper()
	var slowAfterOpen int
	var worst time.Duration
	for _, r := range results {
		if !errors.Is(r.err, ErrUnavailable) {
			t.Fatalf("lookup at %v: %v, want ErrUnavailable", r.start, r.err)
		}
		worst = max(worst, r.took)
		// The store answers at 3/4 of the deadline; the rest is slack for a
		// loaded machine (tests run in parallel under -race on 2 cores).
		if r.took > envoyTimeout*19/20 {
			t.Errorf("lookup at %v took %v: Envoy (timeout %v) would answer its own 403", r.start, r.took, envoyTimeout)
		}
		// Failing fast means not waiting for Redis: a lookup that waited
		// takes most of the budget (a probe's 3/4), one that did not takes
		// microseconds plus whatever the scheduler of a loaded 2-core
		// machine adds (10-40 ms seen with -race and other packages'
		// tests running).
		if r.start > 2*envoyTimeout && r.took > fastFail {
			slowAfterOpen++
		}
	}
	t.Logf("%d lookups during the outage, slowest %v, %d slower than %v after the first %v",
		len(results), worst, slowAfterOpen, fastFail, 2*envoyTimeout)
	// Probes (2 per second) may take the full budget; nothing else may.
	if slowAfterOpen > 6 {
		t.Errorf("%d lookups slower than %v once the breaker should be open", slowAfterOpen, fastFail)
	}
}

// restartRedisOn starts a new redis-server on addr's port.
func restartRedisOn(t *testing.T, addr string) {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	harness.StartProcess(t, "redis-2", "redis-server", "--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	ctx := testContext(t)
	if err := harness.WaitFor(ctx, func() (bool, error) { return harness.RedisPing(ctx, addr) == nil, nil }); err != nil {
		t.Fatalf("redis did not restart: %v", err)
	}
}

// mustCreateRaw stores key's record again in the (empty) Redis at addr,
// as s would have.
func mustCreateRaw(t *testing.T, addr string, s *RedisStore, key string) {
	t.Helper()
	id, err := Parse(key)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	rec := Record{ID: id, Consumer: "c", CreatedAt: time.Now().UTC()}
	if err := c.HSet(testContext(t), recordKey(s.hash.sum(key)), encodeFields(t, rec)...).Err(); err != nil {
		t.Fatal(err)
	}
}
