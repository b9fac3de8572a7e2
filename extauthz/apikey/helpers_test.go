package apikey

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/e2e/harness"
)

var (
	testPepper  = []byte("0123456789abcdef0123456789abcdef")
	otherPepper = []byte("fedcba9876543210fedcba9876543210")
)

// fakeClock is a settable clock for record timestamps and expiry.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)}
}

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

// countingHook counts the commands a client sends (pipelined ones too),
// but for the GET of the key-store epoch, which a lookup sends at most
// once per epochCheckInterval (TestLookupCarriesEpoch): counted apart.
type countingHook struct {
	n, epochGets atomic.Int64
}

// epochGet reports whether cmd reads the key-store epoch.
func epochGet(cmd redis.Cmder) bool {
	args := cmd.Args()
	return cmd.Name() == "get" && len(args) == 2 && args[1] == excEpochKey
}

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if epochGet(cmd) {
			h.epochGets.Add(1)
		} else {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func (h *countingHook) count() int64 { return h.n.Load() }

func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// newRedisClient returns a client of addr, counting its commands; it is
// closed when the test ends.
func newRedisClient(t testing.TB, addr string) (*redis.Client, *countingHook) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second,
		ReadTimeout: time.Second, WriteTimeout: time.Second, ContextTimeoutEnabled: true})
	h := &countingHook{}
	c.AddHook(h)
	t.Cleanup(func() { _ = c.Close() })
	return c, h
}

// newRedisStore opens a store on client; it is closed when the test ends.
func newRedisStore(t testing.TB, client redis.UniversalClient, pepper []byte, opts RedisOptions) *RedisStore {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	s, err := NewRedisStore(testContext(t), client, pepper, opts)
	if err != nil {
		t.Fatalf("NewRedisStore: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// waitFresh waits until s trusts its cache.
func waitFresh(t testing.TB, s *RedisStore) {
	t.Helper()
	err := harness.WaitFor(testContext(t), func() (bool, error) { return s.sub.fresh(), nil })
	if err != nil {
		t.Fatalf("the store's invalidation subscription never became live: %v", err)
	}
}

// mustCreate creates a key for rec.
func mustCreate(t testing.TB, s Store, rec Record) (string, Record) {
	t.Helper()
	key, stored, err := s.Create(testContext(t), rec)
	if err != nil {
		t.Fatalf("Create(%+v): %v", rec, err)
	}
	return key, stored
}

// proxy is a TCP proxy to a Redis server that a test can freeze (hold all
// traffic, connections open: a silent network partition) or cut (close
// every connection and refuse new ones: Redis down).
type proxy struct {
	target string
	ln     net.Listener

	mu     sync.Mutex
	cond   *sync.Cond
	frozen bool
	cut    bool
	conns  map[net.Conn]struct{}
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &proxy{target: target, ln: ln, conns: make(map[net.Conn]struct{})}
	p.cond = sync.NewCond(&p.mu)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.set(false, true)
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

// set changes the mode; cutting closes every open connection.
func (p *proxy) set(frozen, cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen, p.cut = frozen, cut
	if cut {
		for c := range p.conns {
			_ = c.Close()
		}
		clear(p.conns)
	}
	p.cond.Broadcast()
}

func (p *proxy) accept() {
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.serve(down)
	}
}

func (p *proxy) serve(down net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = down.Close()
		return
	}
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		_ = down.Close()
		_ = up.Close()
		return
	}
	p.conns[down], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	go p.pipe(up, down)
	p.pipe(down, up)
}

// pipe copies src to dst, holding data while frozen.
func (p *proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.wait() {
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a closed connection
		}
	}
}

// wait blocks while frozen; it reports false once cut.
func (p *proxy) wait() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.frozen && !p.cut {
		p.cond.Wait()
	}
	return !p.cut
}
