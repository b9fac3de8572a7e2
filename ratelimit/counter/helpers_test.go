package counter

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/e2e/harness"
)

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newTestClient returns a client of the Redis server at addr that honours
// context deadlines and does not retry (so a dead server fails fast).
func newTestClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// startRedisAt starts a redis-server on addr (a port known to be free, or
// the port of a server just killed) and waits until it answers.
func startRedisAt(t testing.TB, addr string) *harness.Process {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skipf("redis-server not on PATH: %v", err)
	}
	_, port, _ := net.SplitHostPort(addr)
	p := harness.StartProcessSpec(t, harness.ProcessSpec{Name: "redis-" + addr, Bin: bin, Args: []string{
		"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir(),
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = harness.WaitFor(ctx, func() (bool, error) {
		if p.Exited() {
			return false, harness.Permanent(errors.New("redis-server exited"))
		}
		if err := harness.RedisPing(ctx, addr); err != nil {
			return false, err
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("start redis-server on %s: %v\n%s", addr, err, p.LogTail(20))
	}
	return p
}

// freeAddr is a free loopback address.
func freeAddr(t testing.TB) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(harness.FreePort(t)))
}

// commandCounter is a go-redis hook counting the commands sent (a
// pipeline counts as one round trip).
type commandCounter struct {
	trips atomic.Int64
	mu    sync.Mutex
	names []string
}

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.trips.Add(1)
		c.mu.Lock()
		c.names = append(c.names, cmd.Name())
		c.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.trips.Add(1)
		return next(ctx, cmds)
	}
}

func (c *commandCounter) reset() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := c.names
	c.names = nil
	c.trips.Store(0)
	return names
}

// countingBackend counts Takes and can be made to fail.
type countingBackend struct {
	Backend
	takes atomic.Int64
	fail  atomic.Pointer[error]
}

func (b *countingBackend) Take(ctx context.Context, limits []Limit) (bool, []Result, error) {
	b.takes.Add(1)
	if err := b.fail.Load(); err != nil {
		return false, nil, *err
	}
	return b.Backend.Take(ctx, limits)
}

func (b *countingBackend) setFail(err error) {
	if err == nil {
		b.fail.Store(nil)
		return
	}
	b.fail.Store(&err)
}

// harnessRedis starts a throw-away redis-server for the test.
func harnessRedis(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skipf("redis-server not on PATH: %v", err)
	}
	return harness.StartRedis(t)
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
