package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// trafficPolicy exercises every load-balancing and traffic feature on one
// gateway; {name} placeholders are upstream addresses (or ports).
const trafficPolicy = `version: 1
auth:
  apiKeys: {}
gateways:
  - name: public
    listeners: [{name: http, port: {port}, address: 127.0.0.1}]
routes:
  - {name: rr, match: {pathPrefix: /rr}, backend: rr, auth: none}
  - {name: lr, match: {pathPrefix: /lr}, backend: lr, auth: none}
  - {name: rnd, match: {pathPrefix: /rnd}, backend: rnd, auth: none}
  - {name: ring, match: {pathPrefix: /ring}, backend: ring, auth: none}
  - {name: maglev, match: {pathPrefix: /maglev}, backend: maglev, auth: none}
  - {name: sticky, match: {pathPrefix: /sticky}, backend: sticky, auth: none}
  - {name: weighted, match: {pathPrefix: /weighted}, backend: weighted, auth: none}
  - name: split
    match: {pathPrefix: /split}
    backends: [{name: split-a, weight: 80}, {name: split-b, weight: 20}]
    auth: none
  - {name: mirror, match: {pathPrefix: /mirror}, backend: main, mirror: {backend: shadow}, auth: none}
  - {name: dns, match: {pathPrefix: /dns}, backend: dns, auth: none}
  - name: retry
    match: {pathPrefix: /retry}
    backend: flaky
    retries: {attempts: 2, on: [5xx, reset, connect-failure], perTryTimeout: 1s, backoff: {base: 2ms, max: 10ms}}
    auth: none
  - {name: hc, match: {pathPrefix: /hc}, backend: hc, auth: none}
  - {name: outlier, match: {pathPrefix: /outlier}, backend: outlier, auth: none}
  - {name: eds, match: {pathPrefix: /eds}, backend: eds, auth: none}
  - {name: cb, match: {pathPrefix: /cb}, backend: cb, auth: none}
  - name: split-auth
    match: {pathPrefix: /sauth}
    backends: [{name: split-a, weight: 1}, {name: split-b, weight: 1}]
  - name: split-limited
    match: {pathPrefix: /slimit}
    backends: [{name: split-a, weight: 1}, {name: split-b, weight: 1}]
    auth: none
    rateLimit: {extra: [{requests: 3, per: minute}]}
  - {name: idle, match: {pathPrefix: /idle}, backend: cb, idleTimeout: 100ms, auth: none}
backends:
  - {name: rr, endpoints: ["{u1}", "{u2}", "{u3}"]}
  - {name: lr, endpoints: ["{u1}", "{u2}", "{u3}"], loadBalancing: least_request}
  - {name: rnd, endpoints: ["{u1}", "{u2}", "{u3}"], loadBalancing: random}
  - {name: ring, endpoints: ["{u1}", "{u2}", "{u3}"], loadBalancing: {policy: ring_hash, hashOn: {header: x-user}}}
  - {name: maglev, endpoints: ["{u1}", "{u2}", "{u3}"], loadBalancing: {policy: maglev, hashOn: {header: x-user}}}
  - {name: sticky, endpoints: ["{u1}", "{u2}", "{u3}"], loadBalancing: {policy: ring_hash, hashOn: {cookie: {name: tg-sticky, ttl: 1h}}}}
  - name: weighted
    endpoints: [{address: "{u1}", weight: 3}, {address: "{u2}", weight: 1, zone: zone-b}]
  - {name: split-a, endpoints: ["{sa}"]}
  - {name: split-b, endpoints: ["{sb}"]}
  - {name: main, endpoints: ["{main}"]}
  - {name: shadow, endpoints: ["{shadow}"]}
  - {name: dns, dns: "localhost:{dnsport}"}
  - {name: flaky, endpoints: ["{good}", "{bad}"]}
  - name: hc
    endpoints: ["{h1}", "{h2}"]
    healthCheck: {path: /healthz, interval: 300ms, timeout: 300ms, healthyThreshold: 1, unhealthyThreshold: 2}
  - name: outlier
    endpoints: ["{o1}", "{o2}"]
    outlierDetection: {consecutive5xx: 3, interval: 200ms, baseEjectionTime: 30s, maxEjectionPercent: 50}
  - {name: eds, endpoints: ["{eds}"]}
  - {name: cb, endpoints: ["{cb}"], circuitBreakers: {maxConnections: 1, maxPendingRequests: 1, maxRequests: 1}}
`

// trafficStack is the stack, its Envoy and the upstreams of trafficPolicy.
type trafficStack struct {
	s      *stack
	envoy  *harness.Envoy
	port   int
	ups    map[string]*trafficUpstream
	client *harness.HTTPClient
}

func (ts *trafficStack) policy(edsUpstream string) string {
	pairs := []string{"{port}", fmt.Sprint(ts.port), "{dnsport}", ts.ups["dns"].port(), "{eds}", ts.ups[edsUpstream].addr}
	for name, u := range ts.ups {
		pairs = append(pairs, "{"+name+"}", u.addr)
	}
	return strings.NewReplacer(pairs...).Replace(trafficPolicy)
}

// get sends GET path with headers and returns the status and upstream.
func (ts *trafficStack) get(t *testing.T, path string, headers map[string]string) (int, string, http.Header) {
	t.Helper()
	resp, err := ts.client.Get(testCtx(t, 10*time.Second), fmt.Sprintf("http://127.0.0.1:%d%s", ts.port, path), "", headers)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Status, resp.Header.Get("X-Upstream"), resp.Header
}

// spread sends n requests to path and counts them per upstream; every one
// must succeed.
func (ts *trafficStack) spread(t *testing.T, path string, n int) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for i := range n {
		code, up, _ := ts.get(t, fmt.Sprintf("%s/%d", path, i), nil)
		if code != http.StatusOK {
			t.Fatalf("GET %s/%d = %d from %q", path, i, code, up)
		}
		counts[up]++
	}
	t.Logf("%s: %d requests: %v", path, n, counts)
	return counts
}

func TestTrafficAgainstRealEnvoy(t *testing.T) {
	ts := &trafficStack{port: harness.FreePort(t), ups: map[string]*trafficUpstream{}, client: harness.NewHTTPClient(true)}
	defer ts.client.Close()
	for _, n := range []string{"u1", "u2", "u3", "sa", "sb", "main", "shadow", "dns", "good", "bad", "h1", "h2", "o1", "o2", "e1", "e2", "e3", "cb"} {
		ts.ups[n] = startTrafficUpstream(t, n)
	}
	ts.ups["bad"].failing.Store(true)
	ts.s = startStack(t, ts.policy("e1"))
	ts.envoy = ts.s.envoy("public", "traffic-0", "delta")

	testBalancing(t, ts)
	t.Run("auth and rate limits apply to a split", func(t *testing.T) {
		if code, _, _ := ts.get(t, "/sauth", nil); code != http.StatusUnauthorized {
			t.Errorf("GET /sauth without a key = %d, want 401 from ext_authz", code)
		}
		var codes []int
		for range 5 {
			code, _, _ := ts.get(t, "/slimit", nil)
			codes = append(codes, code)
		}
		if fmt.Sprint(codes) != "[200 200 200 429 429]" {
			t.Errorf("5 requests against a limit of 3 per minute: %v", codes)
		}
	})
	t.Run("mirror reaches the shadow", func(t *testing.T) { testMirror(t, ts) })
	t.Run("dns backend", func(t *testing.T) {
		if code, up, _ := ts.get(t, "/dns/x", nil); code != 200 || up != "dns" {
			t.Fatalf("GET /dns/x = %d from %q, want 200 from dns", code, up)
		}
	})
	t.Run("retries hide a failing endpoint", func(t *testing.T) {
		c := ts.spread(t, "/retry", 100) // spread fails on any non-200
		if ts.ups["bad"].served.Load() == 0 || c["good"] != 100 {
			t.Errorf("bad endpoint tried %d times, good answered %d of 100", ts.ups["bad"].served.Load(), c["good"])
		}
	})
	t.Run("health checks remove and restore", func(t *testing.T) { testHealthChecks(t, ts) })
	t.Run("outlier detection ejects", func(t *testing.T) { testOutlier(t, ts) })
	t.Run("circuit breakers", func(t *testing.T) { testCircuitBreakers(t, ts) })
	t.Run("idle timeout", func(t *testing.T) {
		start := time.Now()
		code, _, _ := ts.get(t, "/idle/slow", nil)
		if took := time.Since(start); code != http.StatusGatewayTimeout || took > 350*time.Millisecond {
			t.Fatalf("GET /idle/slow (upstream silent for 400ms, idleTimeout 100ms) = %d after %v, want 504 after ~100ms", code, took)
		}
	})
	t.Run("endpoints set is EDS only", func(t *testing.T) { testEndpointsSet(t, ts) })
}

// testBalancing checks every load-balancing policy, affinity, endpoint
// weights and the weighted split.
func testBalancing(t *testing.T, ts *trafficStack) {
	t.Run("round robin is even", func(t *testing.T) {
		for name, n := range ts.spread(t, "/rr", 300) {
			if n < 90 || n > 110 {
				t.Errorf("%s got %d of 300, want 100±10", name, n)
			}
		}
	})
	for _, path := range []string{"/lr", "/rnd"} {
		t.Run(path+" reaches every endpoint", func(t *testing.T) {
			if c := ts.spread(t, path, 150); len(c) != 3 {
				t.Errorf("reached %d endpoints, want 3: %v", len(c), c)
			}
		})
	}
	for _, path := range []string{"/ring", "/maglev"} {
		t.Run(path+" same header same endpoint", func(t *testing.T) { testConsistentHash(t, ts, path) })
	}
	t.Run("cookie affinity", func(t *testing.T) { testCookieAffinity(t, ts) })
	t.Run("endpoint weights", func(t *testing.T) {
		c := ts.spread(t, "/weighted", 400)
		if share := float64(c["u1"]) / 400; share < 0.70 || share > 0.80 {
			t.Errorf("weight-3 endpoint got %.2f of the requests, want 0.75±0.05: %v", share, c)
		}
	})
	t.Run("weighted split within 5 percent", func(t *testing.T) {
		c := ts.spread(t, "/split", 1000)
		if a := c["sa"]; a < 750 || a > 850 {
			t.Errorf("split-a got %d of 1000, want 800±50: %v", a, c)
		}
	})
}

func testConsistentHash(t *testing.T, ts *trafficStack, path string) {
	seen := map[string]bool{}
	for i := range 30 {
		user := map[string]string{"x-user": fmt.Sprintf("user-%d", i)}
		_, first, _ := ts.get(t, path, user)
		for range 5 {
			if code, up, _ := ts.get(t, path, user); code != 200 || up != first {
				t.Fatalf("user-%d: %d from %q, then from %q", i, code, first, up)
			}
		}
		seen[first] = true
	}
	if len(seen) < 2 {
		t.Errorf("30 users all hashed to %v, want a spread", seen)
	}
}

func testCookieAffinity(t *testing.T, ts *trafficStack) {
	seen := map[string]bool{}
	for range 10 {
		_, first, h := ts.get(t, "/sticky", nil)
		cookie := ""
		for _, c := range (&http.Response{Header: h}).Cookies() {
			if c.Name == "tg-sticky" {
				cookie = c.Name + "=" + c.Value
			}
		}
		if cookie == "" {
			t.Fatalf("no tg-sticky cookie set: %v", h["Set-Cookie"])
		}
		for range 5 {
			if _, up, _ := ts.get(t, "/sticky", map[string]string{"Cookie": cookie}); up != first {
				t.Fatalf("cookie %s: first %q, then %q", cookie, first, up)
			}
		}
		seen[first] = true
	}
	// Envoy generated one cookie value for this client (it derives it from the
	// connection); other values must spread over the endpoints.
	for i := range 30 {
		_, up, _ := ts.get(t, "/sticky", map[string]string{"Cookie": fmt.Sprintf("tg-sticky=client-%d", i)})
		seen[up] = true
	}
	if len(seen) < 2 {
		t.Errorf("31 cookie values all landed on %v, want a spread", seen)
	}
}

func testMirror(t *testing.T, ts *trafficStack) {
	for range 20 {
		if code, up, _ := ts.get(t, "/mirror", nil); code != 200 || up != "main" {
			t.Fatalf("GET /mirror = %d from %q", code, up)
		}
	}
	err := harness.WaitFor(testCtx(t, 5*time.Second), func() (bool, error) {
		return ts.ups["shadow"].shadowed.Load() >= 20, nil
	})
	if err != nil {
		t.Fatalf("shadow got %d mirrored requests of 20: %v", ts.ups["shadow"].shadowed.Load(), err)
	}
}

// untilOnly waits until n consecutive requests to path all come from want,
// and returns when the last request that did not came back (the switch).
func untilOnly(t *testing.T, ts *trafficStack, path, want string, n int, within time.Duration) time.Time {
	t.Helper()
	last := time.Now()
	err := harness.WaitFor(testCtx(t, within), func() (bool, error) {
		for range n {
			if code, up, _ := ts.get(t, path, nil); code != 200 || up != want {
				last = time.Now()
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("%s never served only by %s: %v", path, want, err)
	}
	return last
}

func testHealthChecks(t *testing.T, ts *trafficStack) {
	h2 := ts.ups["h2"]
	start := time.Now()
	h2.unhealth.Store(true)
	// interval 300ms × unhealthyThreshold 2 = 600ms, plus up to one
	// interval until the next check starts and a check timeout.
	removed := untilOnly(t, ts, "/hc", "h1", 15, 3*time.Second).Sub(start)
	t.Logf("unhealthy endpoint removed after %v", removed)
	// Two failed checks 300ms apart: at least one interval, at most
	// interval × threshold + one interval until the next check + timeout.
	if removed < 220*time.Millisecond || removed > 1500*time.Millisecond {
		t.Errorf("removal took %v, want 300ms..1.2s (interval × unhealthyThreshold, give or take one check)", removed)
	}
	h2.unhealth.Store(false)
	start = time.Now()
	err := harness.WaitFor(testCtx(t, 3*time.Second), func() (bool, error) {
		for range 4 {
			if _, up, _ := ts.get(t, "/hc", nil); up == "h2" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("healthy endpoint not restored: %v", err)
	}
	restored := time.Since(start)
	t.Logf("endpoint restored after %v", restored)
	// One good check (≤ 300ms) plus the 300ms merge window.
	if restored > 1200*time.Millisecond {
		t.Errorf("restoring took %v, want about interval × healthyThreshold + one merge window (600ms)", restored)
	}
}

func testOutlier(t *testing.T, ts *trafficStack) {
	ts.ups["o2"].failing.Store(true)
	untilOnly(t, ts, "/outlier", "o1", 15, 5*time.Second)
	ctx := testCtx(t, 5*time.Second)
	if err := ts.envoy.WaitStat(ctx, "cluster.outlier.outlier_detection.ejections_enforced_consecutive_5xx", func(v int64) bool { return v >= 1 }); err != nil {
		t.Fatal(err)
	}
	if got := ts.ups["o2"].served.Load(); got > 10 {
		t.Errorf("the failing endpoint served %d requests before its ejection, want about 3", got)
	}
}

// testCircuitBreakers sends 8 concurrent slow requests to a backend that
// allows one connection, one request and one pending request: the others
// overflow at once with a 503.
func testCircuitBreakers(t *testing.T, ts *trafficStack) {
	const n = 8
	codes := make(chan int, n)
	for range n {
		go func() {
			c := harness.NewHTTPClient(false)
			defer c.Close()
			resp, err := c.Get(testCtx(t, 10*time.Second), fmt.Sprintf("http://127.0.0.1:%d/cb/slow", ts.port), "", nil)
			if err != nil {
				codes <- 0
				return
			}
			codes <- resp.Status
		}()
	}
	counts := map[int]int{}
	for range n {
		counts[<-codes]++
	}
	t.Logf("%d concurrent requests: %v", n, counts)
	if counts[200] < 1 || counts[503] < 1 || counts[200]+counts[503] != n {
		t.Errorf("want 200s for the admitted requests and 503s for the overflow, got %v", counts)
	}
	overflow, _, err := ts.envoy.Stat(testCtx(t, 5*time.Second), "cluster.cb.upstream_rq_pending_overflow")
	if err != nil || overflow != int64(counts[503]) {
		t.Errorf("cluster.cb.upstream_rq_pending_overflow = %d (%v), want %d (one per 503)", overflow, err, counts[503])
	}
}

// otherTypeUpdates returns the LDS, CDS and RDS update counters (the route
// configuration is named after the listener and its filters' hash).
func otherTypeUpdates(t *testing.T, e *harness.Envoy) map[string]int64 {
	t.Helper()
	stats, err := e.Stats(testCtx(t, 5*time.Second), `^(listener_manager\.lds|cluster_manager\.cds|http\.http\.rds\.http_[0-9a-f]{8})\.update_(attempt|success)$`)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 6 {
		t.Fatalf("want 6 LDS/CDS/RDS counters, got %v", stats)
	}
	return stats
}

func testEndpointsSet(t *testing.T, ts *trafficStack) {
	before := otherTypeUpdates(t, ts.envoy)
	edsBefore, _, _ := ts.envoy.Stat(testCtx(t, 5*time.Second), "cluster.eds.update_success")
	start := time.Now()
	out := ts.s.cli(0, "endpoints", "set", "eds", ts.ups["e2"].addr)
	acked := time.Since(start)
	untilOnly(t, ts, "/eds", "e2", 5, 5*time.Second)
	t.Logf("tollgate endpoints set returned (proxies ACKed) after %v, traffic moved after %v:\n%s", acked, time.Since(start), out)
	if after := otherTypeUpdates(t, ts.envoy); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("LDS/CDS/RDS updated by endpoints set:\nbefore %v\nafter  %v", before, after)
	}
	if eds, _, _ := ts.envoy.Stat(testCtx(t, 5*time.Second), "cluster.eds.update_success"); eds <= edsBefore {
		t.Errorf("cluster.eds.update_success = %d, was %d: no EDS update", eds, edsBefore)
	}
	// The override survives a control-plane restart.
	if err := ts.s.cp.Stop(); err != nil {
		t.Fatal(err)
	}
	ts.s.startServe("")
	var v struct {
		Overridden bool     `json:"overridden"`
		Endpoints  []string `json:"endpoints"`
	}
	if err := json.Unmarshal([]byte(ts.s.cli(0, "endpoints", "get", "eds", "-o", "json")), &v); err != nil {
		t.Fatal(err)
	}
	if !v.Overridden || len(v.Endpoints) != 1 || v.Endpoints[0] != ts.ups["e2"].addr {
		t.Fatalf("after restart: %+v", v)
	}
	untilOnly(t, ts, "/eds", "e2", 5, 5*time.Second)
	// A push that changes the backend's endpoints replaces the override.
	ts.s.cli(0, "push", writeFile(t, "next.yaml", ts.policy("e3")))
	untilOnly(t, ts, "/eds", "e3", 5, 10*time.Second)
	if out := ts.s.cli(0, "endpoints", "get", "eds"); !strings.Contains(out, "from the policy") {
		t.Errorf("endpoints get after the push:\n%s", out)
	}
}
