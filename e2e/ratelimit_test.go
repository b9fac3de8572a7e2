package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonrl "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate/tollgate/e2e/harness"
)

const rateLimitPolicy = `version: 1
auth:
  apiKeys: {header: x-api-key}
rateLimits:
  tiers:
    free: [{requests: 100, per: minute}, {requests: 1000, per: day}]
    tiny: [{requests: 10, per: minute}, {requests: 3, per: day}]
    pro: [{requests: 1000, per: minute}]
    enterprise: unlimited
  defaultTier: free
  anonymous: [{requests: 5, per: minute}]
  failureMode: %s
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: api, match: {pathPrefix: /api}, backend: echo}
  - {name: shadowed, match: {pathPrefix: /shadow}, backend: echo, rateLimit: {shadow: true}}
  - {name: open, match: {pathPrefix: /open}, backend: echo, auth: none}
  - {name: perip, match: {pathPrefix: /perip}, backend: echo, rateLimit: {consumer: false, extra: [{requests: 3, per: minute}], by: [clientIP]}}
backends:
  - {name: echo, endpoints: [%q]}
`

// rlStack is a gateway with API keys and rate limits on a real Redis.
type rlStack struct {
	*stack
	redis *redisServer
	port  int
	up    string
	proxy *harness.Envoy
}

func startRateLimitStack(t *testing.T, failureMode string) *rlStack {
	return startRedisStack(t, "rl-0", func(port int, up string) string {
		return fmt.Sprintf(rateLimitPolicy, failureMode, port, up)
	})
}

// startRedisStack starts an echo upstream, a Redis, a control plane on it
// serving policy(port, upstream address) and one Envoy (node) of the
// gateway "public" listening on port.
func startRedisStack(t *testing.T, node string, policy func(port int, up string) string) *rlStack {
	up := harness.StartUpstream(t, "echo")
	r := startRedisServer(t, harness.FreePort(t))
	port := harness.FreePort(t)
	s := startStackWith(t, policy(port, up.Addr()), stackOptions{
		args: []string{"--redis", "redis://" + r.addr + "/0", "--key-pepper", "e2e-pepper-0123456789"},
	})
	e := s.envoy("public", node, "delta")
	return &rlStack{stack: s, redis: r, port: port, up: up.Addr(), proxy: e}
}

// key creates an API key of tier for a new consumer (extra: more keys
// create flags, e.g. --format opaque).
func (r *rlStack) key(t *testing.T, consumer, tier string, extra ...string) string {
	var created struct{ Key string }
	out := r.cli(0, append([]string{"keys", "create", "--consumer", consumer, "--tier", tier, "-o", "json"}, extra...)...)
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Key == "" {
		t.Fatalf("keys create: %v %s", err, out)
	}
	return created.Key
}

// burst sends n requests over `workers` keep-alive connections as fast as
// they go and returns the responses' statuses and Retry-After values.
func (r *rlStack) burst(t *testing.T, n, workers int, path string, headers map[string]string) (codes map[int]int, retryAfter []int) {
	t.Helper()
	var mu sync.Mutex
	codes = map[int]int{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := harness.NewHTTPClient(true)
			defer c.Close()
			for next.Add(1) <= int64(n) {
				resp, err := c.Get(context.Background(), fmt.Sprintf("http://127.0.0.1:%d%s", r.port, path), "", headers)
				mu.Lock()
				if err != nil {
					codes[0]++
				} else {
					codes[resp.Status]++
					if resp.Status == 429 {
						ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
						retryAfter = append(retryAfter, ra)
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return codes, retryAfter
}

func TestRateLimitTiers(t *testing.T) {
	r := startRateLimitStack(t, "open")
	t.Run("free: exactly 100 of 150", func(t *testing.T) {
		codes, retry := r.burst(t, 150, 10, "/api/x", map[string]string{"x-api-key": r.key(t, "free-1", "free")})
		if codes[200] != 100 || codes[429] != 50 {
			t.Fatalf("statuses %v, want exactly 100×200 and 50×429", codes)
		}
		for _, ra := range retry {
			if ra < 1 || ra > 60 {
				t.Fatalf("Retry-After %d out of range (1..60)", ra)
			}
		}
	})
	t.Run("Retry-After is honest", func(t *testing.T) {
		key := map[string]string{"x-api-key": r.key(t, "free-2", "free")}
		r.burst(t, 100, 10, "/api/x", key)
		resp, err := harness.HTTPGet(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/api/x", r.port), "", key)
		if err != nil || resp.Status != 429 {
			t.Fatalf("101st request: %v %v", resp, err)
		}
		ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		start := time.Now()
		ctx := testCtx(t, time.Duration(ra+5)*time.Second)
		if err := harness.WaitFor(ctx, func() (bool, error) {
			resp, err := harness.HTTPGet(ctx, fmt.Sprintf("http://127.0.0.1:%d/api/x", r.port), "", key)
			return err == nil && resp.Status == 200, nil
		}); err != nil {
			t.Fatalf("not admitted after Retry-After %ds: %v", ra, err)
		}
		if waited := time.Since(start); waited > time.Duration(ra)*time.Second+time.Second {
			t.Errorf("admitted after %s, Retry-After said %ds", waited, ra)
		}
	})
	t.Run("headers on every response", func(t *testing.T) {
		resp, err := harness.HTTPGet(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/api/x", r.port), "",
			map[string]string{"x-api-key": r.key(t, "free-3", "free")})
		if err != nil || resp.Status != 200 {
			t.Fatalf("%v %v", resp, err)
		}
		for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit", "RateLimit-Policy"} {
			if resp.Header.Get(h) == "" {
				t.Errorf("response lacks %s (headers %v)", h, resp.Header)
			}
		}
		if resp.Header.Get("X-RateLimit-Remaining") != "99" {
			t.Errorf("X-RateLimit-Remaining = %q, want 99", resp.Header.Get("X-RateLimit-Remaining"))
		}
	})
	t.Run("pro is not limited at 150", func(t *testing.T) {
		if codes, _ := r.burst(t, 150, 10, "/api/x", map[string]string{"x-api-key": r.key(t, "pro-1", "pro")}); codes[200] != 150 {
			t.Fatalf("statuses %v", codes)
		}
	})
	t.Run("enterprise is never limited and never counted", func(t *testing.T) {
		key := map[string]string{"x-api-key": r.key(t, "ent-1", "enterprise")}
		before := redisCalls(t, r.redis.addr, "evalsha") + redisCalls(t, r.redis.addr, "eval")
		if codes, _ := r.burst(t, 300, 10, "/api/x", key); codes[200] != 300 {
			t.Fatalf("statuses %v", codes)
		}
		if after := redisCalls(t, r.redis.addr, "evalsha") + redisCalls(t, r.redis.addr, "eval"); after != before {
			t.Errorf("an unlimited tier cost %d rate-limit scripts", after-before)
		}
	})
	t.Run("per-day bites independently of per-minute", func(t *testing.T) {
		if codes, _ := r.burst(t, 8, 2, "/api/x", map[string]string{"x-api-key": r.key(t, "tiny-1", "tiny")}); codes[200] != 3 {
			t.Fatalf("statuses %v, want 3×200 (3/day under 10/minute)", codes)
		}
	})
	t.Run("shadow counts but never rejects", func(t *testing.T) {
		if codes, _ := r.burst(t, 150, 10, "/shadow/x", map[string]string{"x-api-key": r.key(t, "free-4", "free")}); codes[200] != 150 {
			t.Fatalf("statuses %v", codes)
		}
	})
	t.Run("anonymous routes are limited per client IP", func(t *testing.T) {
		if codes, _ := r.burst(t, 8, 2, "/open/x", nil); codes[200] != 5 {
			t.Fatalf("from 127.0.0.1: %v, want 5×200", codes)
		}
		if n := r.fromIP(t, "127.0.0.2", 8, "/open/x"); n != 5 {
			t.Fatalf("from 127.0.0.2: %d×200, want 5", n)
		}
	})
}

// fromIP sends n requests from a given loopback source address and counts 200s.
func (r *rlStack) fromIP(t *testing.T, ip string, n int, path string) int {
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	ok := 0
	for i := 0; i < n; i++ {
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", r.port, path))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			ok++
		}
	}
	return ok
}

func TestRateLimitRedisOutage(t *testing.T) {
	for _, tt := range []struct {
		mode       string
		wantDuring int
	}{{"open", 200}, {"closed", 503}} {
		t.Run(tt.mode, func(t *testing.T) {
			r := startRateLimitStack(t, tt.mode)
			key := map[string]string{"x-api-key": r.key(t, "o-"+tt.mode, "free")}
			if codes, _ := r.burst(t, 5, 1, "/api/x", key); codes[200] != 5 {
				t.Fatalf("before the outage: %v", codes)
			}
			r.redis.kill(t)
			ctx := testCtx(t, 15*time.Second)
			if err := harness.WaitFor(ctx, func() (bool, error) {
				codes, _ := r.burst(t, 1, 1, "/open/y", nil) // public: no key lookup needed
				return codes[tt.wantDuring] == 1, nil
			}); err != nil {
				t.Fatalf("with Redis down, failure mode %s did not give %d: %v", tt.mode, tt.wantDuring, err)
			}
			r.redis.restart(t)
			if err := harness.WaitFor(ctx, func() (bool, error) {
				codes, _ := r.burst(t, 1, 1, "/open/z", nil)
				return codes[200] == 1 || codes[429] == 1, nil
			}); err != nil {
				t.Fatalf("rate limiting did not recover after Redis came back: %v", err)
			}
		})
	}
}

// redisServer is a redis-server the test can kill and restart on its port.
type redisServer struct {
	addr string
	port int
	proc *harness.Process
}

func startRedisServer(t *testing.T, port int) *redisServer {
	r := &redisServer{addr: fmt.Sprintf("127.0.0.1:%d", port), port: port}
	r.restart(t)
	return r
}

func (r *redisServer) restart(t *testing.T) {
	t.Helper()
	r.proc = harness.StartProcess(t, "redis", "redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no")
	ctx := testCtx(t, 10*time.Second)
	if err := harness.WaitFor(ctx, func() (bool, error) { return harness.RedisPing(ctx, r.addr) == nil, nil }); err != nil {
		t.Fatalf("redis did not start: %v", err)
	}
}

func (r *redisServer) kill(t *testing.T) {
	_ = r.proc.Kill()
}

// TestRateLimitExactAcrossReplicas runs two `serve --only ratelimit`
// replicas on one Redis and the control plane's store, and sends 500
// decisions for one consumer from 50 concurrent clients spread over both:
// exactly the tier's 100 are admitted. The failure mode is closed, so a
// decision Redis could not make in time (a loaded machine) is an error,
// never an uncounted admission: admitted is then short of 100 by at most
// the errors, and never above it.
func TestRateLimitExactAcrossReplicas(t *testing.T) {
	r := startRateLimitStack(t, "closed")
	var clients []rlsv3.RateLimitServiceClient
	for i := 0; i < 2; i++ {
		addr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
		harness.StartProcess(t, fmt.Sprintf("tollgate-ratelimit-%d", i), r.bin, "serve", "--only", "ratelimit",
			"--data-dir", r.dataDir, "--ratelimit-addr", addr, "--admin-addr", fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)),
			"--redis", "redis://"+r.redis.addr+"/0")
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		clients = append(clients, rlsv3.NewRateLimitServiceClient(conn))
	}
	req := &rlsv3.RateLimitRequest{Domain: "tollgate", Descriptors: []*commonrl.RateLimitDescriptor{{Entries: []*commonrl.RateLimitDescriptor_Entry{
		{Key: "route", Value: "api"}, {Key: "consumer", Value: "exact-1"}, {Key: "tier", Value: "free"}}}}}
	ctx := testCtx(t, 20*time.Second)
	for _, c := range clients { // both replicas follow the store and answer
		if err := harness.WaitFor(ctx, func() (bool, error) {
			_, err := c.ShouldRateLimit(ctx, &rlsv3.RateLimitRequest{Domain: "other"})
			return err == nil, nil
		}); err != nil {
			t.Fatalf("replica not serving: %v", err)
		}
	}
	var admitted, errs atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				resp, err := clients[(g+i)%2].ShouldRateLimit(ctx, req)
				switch {
				case err != nil:
					errs.Add(1)
				case resp.GetOverallCode() == rlsv3.RateLimitResponse_OK:
					admitted.Add(1)
				}
			}
		}(g)
	}
	wg.Wait()
	a, e := admitted.Load(), errs.Load()
	if a > 100 || a+e < 100 || e > 25 {
		t.Fatalf("admitted %d of 500 (errors %d), want exactly 100 (fewer only by errors, at most 25)", a, e)
	}
	t.Logf("admitted %d of 500 across two replicas, %d decisions failed closed", a, e)
}

// TestRateLimitInOneHop: an API-key route takes its limits inside the
// ext_authz call. Through the real Envoy: a burst of 150 from a free key
// gives exactly 100×200 and 50×429 with Retry-After, while Envoy makes 150
// ext_authz calls and not one call to the rate-limit service (its cluster
// and its filter's stats stay at 0); a cached key costs exactly one Redis
// command per request (the GCRA script); a client cannot choose the
// client IP a per-IP limit counts (x-tollgate-client-ip is Envoy's).
func TestRateLimitInOneHop(t *testing.T) {
	r := startRateLimitStack(t, "open")
	ctx := testCtx(t, 30*time.Second)
	stat := func(name string) int64 {
		v, _, err := r.proxy.Stat(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	rlsCalls := func() int64 {
		return stat("cluster.tollgate_ratelimit.upstream_rq_total") + stat("cluster.echo.ratelimit.ok") +
			stat("cluster.echo.ratelimit.over_limit") + stat("cluster.echo.ratelimit.error")
	}
	// Opaque keys go to ext_authz, which takes the limits; signed keys are
	// decided in Envoy and take them from the rate-limit service: one hop
	// either way.
	key := map[string]string{"x-api-key": r.key(t, "onehop-1", "free", "--format", "opaque")}
	rlsBefore, authzBefore := rlsCalls(), stat("cluster.tollgate_authz.upstream_rq_total")
	codes, retry := r.burst(t, 150, 10, "/api/x", key)
	if codes[200] != 100 || codes[429] != 50 || len(retry) != 50 {
		t.Fatalf("statuses %v (%d Retry-After), want exactly 100×200 and 50×429 with Retry-After", codes, len(retry))
	}
	for _, ra := range retry {
		if ra < 1 || ra > 60 {
			t.Fatalf("Retry-After %d out of range (1..60)", ra)
		}
	}
	rls, authz := rlsCalls()-rlsBefore, stat("cluster.tollgate_authz.upstream_rq_total")-authzBefore
	t.Logf("150 requests: %d ext_authz calls, %d rate-limit service calls", authz, rls)
	if rls != 0 || authz != 150 {
		t.Errorf("ext_authz calls %d, rate-limit service calls %d; want 150 and 0 (one hop per request)", authz, rls)
	}

	t.Run("a signed key: one rate-limit service call, no ext_authz call", func(t *testing.T) {
		key := map[string]string{"x-api-key": r.key(t, "onehop-signed", "free")}
		rlsBefore, authzBefore := stat("cluster.tollgate_ratelimit.upstream_rq_total"), stat("cluster.tollgate_authz.upstream_rq_total")
		if codes, _ := r.burst(t, 150, 10, "/api/x", key); codes[200] != 100 || codes[429] != 50 {
			t.Fatalf("statuses %v, want exactly 100×200 and 50×429", codes)
		}
		rls := stat("cluster.tollgate_ratelimit.upstream_rq_total") - rlsBefore
		authz := stat("cluster.tollgate_authz.upstream_rq_total") - authzBefore
		if rls != 150 || authz != 0 {
			t.Errorf("signed key: ext_authz calls %d, rate-limit service calls %d; want 0 and 150", authz, rls)
		}
	})

	t.Run("a cached key costs one Redis command", func(t *testing.T) {
		key := map[string]string{"x-api-key": r.key(t, "onehop-2", "pro", "--format", "opaque")}
		r.burst(t, 1, 1, "/api/x", key) // caches the key
		before, start := redisCommandStats(t, r.redis.addr), time.Now()
		const n = 20
		if codes, _ := r.burst(t, n, 1, "/api/x", key); codes[200] != n {
			t.Fatalf("statuses %v", codes)
		}
		after := redisCommandStats(t, r.redis.addr)
		// The API-key exceptions watcher polls its table's version and the
		// key store's epoch (one MGET every 200 ms) whatever the requests do.
		polls := int64(time.Since(start)/(200*time.Millisecond)) + 1
		// commandstats also counts the calls a script makes (the GCRA
		// script: TIME, GET and SET once per limit; pro has one limit).
		inScript := map[string]bool{"time": true, "get": true, "set": true}
		scripts, other := int64(0), map[string]int64{}
		for cmd, v := range after {
			switch d := v - before[cmd]; {
			case d == 0 || cmd == "info" || cmd == "ping" || cmd == "publish" || cmd == "hello" || cmd == "client":
			case cmd == "evalsha" || cmd == "eval":
				scripts += d
			case inScript[cmd] && d == n:
			case cmd == "get" && d >= n && d <= n+polls:
			case cmd == "mget" && d <= polls:
			default:
				other[cmd] = d
			}
		}
		t.Logf("%d requests with a cached key: %d scripts, other commands %v", n, scripts, other)
		if scripts != n || len(other) != 0 {
			t.Errorf("%d requests ran %d scripts and other commands %v; want exactly one script each and nothing else", n, scripts, other)
		}
	})

	t.Run("the client IP is Envoy's", func(t *testing.T) {
		spoofed := 0
		for i := 0; i < 6; i++ {
			h := map[string]string{"x-api-key": key["x-api-key"], "x-tollgate-client-ip": fmt.Sprintf("10.9.9.%d", i)}
			if codes, _ := r.burst(t, 1, 1, "/perip/x", h); codes[200] == 1 {
				spoofed++
			}
		}
		if spoofed != 3 {
			t.Fatalf("admitted %d of 6 with a different x-tollgate-client-ip each, want 3 (one counter: the peer)", spoofed)
		}
	})
}

// redisCommandStats returns the calls of every command Redis has run.
func redisCommandStats(t *testing.T, addr string) map[string]int64 {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, l := range strings.Split(info, "\r\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(l, "cmdstat_"), ":calls=")
		if !ok || !strings.HasPrefix(l, "cmdstat_") {
			continue
		}
		var n int64
		fmt.Sscan(strings.SplitN(rest, ",", 2)[0], &n)
		out[name] = n
	}
	return out
}
