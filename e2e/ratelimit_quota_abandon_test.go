package e2e

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/e2e/harness"
)

// abandonPolicy is a gateway whose every consumer has one tier, named
// "abandon", of the limit given first (e.g. "{requests: 30, per: minute}"),
// then one listener per port given, each with its own route configuration
// (so its own backstop), and the echo upstream's address.
const abandonPolicy = `version: 1
auth:
  apiKeys: {header: x-api-key}
rateLimits:
  mode: quota
  tiers:
    abandon: [%s]
  defaultTier: abandon
  failureMode: open
gateways:
  - name: public
    listeners: [%s]
routes:
  - {name: api, match: {pathPrefix: /api}, backend: echo}
backends:
  - {name: echo, endpoints: [%q]}
`

// startAbandonStack starts a control plane serving abandonPolicy with
// limit and ports on a Redis of its own, abandoning a bucket at its first
// idle report (`--rlqs-abandon-after 1`), and returns it with its Redis and
// the upstream's address.
func startAbandonStack(t *testing.T, limit string, ports ...int) (*stack, *redisServer, string) {
	t.Helper()
	up := harness.StartUpstream(t, "echo")
	rd := startRedisServer(t, harness.FreePort(t))
	listeners := make([]string, len(ports))
	for i, p := range ports {
		listeners[i] = fmt.Sprintf("{name: l%d, port: %d, address: 127.0.0.1}", i, p)
	}
	s := startStackWith(t, fmt.Sprintf(abandonPolicy, limit, strings.Join(listeners, ", "), up.Addr()), stackOptions{
		args: []string{"--redis", "redis://" + rd.addr + "/0", "--key-pepper", "e2e-pepper-0123456789",
			"--rlqs-abandon-after", "1"},
	})
	return s, rd, up.Addr()
}

// TestQuotaAbandonedBucketComesBackLimited (~8 s: Envoy's first report
// tick comes 5 s after its first request): with `serve
// --rlqs-abandon-after 1`, a consumer's bucket reported idle, with its
// limit whole again in the account, is abandoned: the server counts it
// (tollgate_rlqs_abandoned_buckets_total), forgets it (tollgate_rlqs_buckets
// back to 0) and releases its participant from the Redis shares; Envoy
// 1.40 (two workers) drops the bucket, so the consumer's next requests
// build a new one, reported at once, and a burst of twice the limit
// admits the limit (30; 31 if the burst meets a refill), never more.
// Envoy stays up throughout.
func TestQuotaAbandonedBucketComesBackLimited(t *testing.T) {
	start := time.Now()
	port := harness.FreePort(t)
	// 30 a minute: a request refills in 2 s, so the idle bucket that used
	// one is abandoned at Envoy's first report tick.
	s, rd, up := startAbandonStack(t, "{requests: 30, per: minute}", port)
	e := s.envoyWith("public", "rlq-abandon", harness.EnvoyOptions{Concurrency: 2, ComponentLogLevel: "rate_limit_quota:debug"})
	r := &rlStack{stack: s, redis: rd, port: port, up: up, proxy: e}
	key := map[string]string{"x-api-key": r.key(t, "q-abandon-1", "abandon")}

	if codes, _ := r.burst(t, 1, 1, "/api/x", key); codes[200] != 1 {
		t.Fatalf("first request: %v, want 200", codes)
	}
	used := time.Now()
	ctx := testCtx(t, 25*time.Second)
	if err := harness.WaitFor(ctx, func() (bool, error) {
		return s.rlqsMetric(t, "tollgate_rlqs_abandoned_buckets_total") >= 1, nil
	}); err != nil {
		t.Fatalf("no bucket abandoned within 25 s of the request: %v\n%s", err, e.LogTail(40))
	}
	t.Logf("abandoned %.1f s after the request", time.Since(used).Seconds())
	if n := s.rlqsMetric(t, "tollgate_rlqs_buckets"); n != 0 {
		t.Fatalf("tollgate_rlqs_buckets = %v after the abandonment, want 0", n)
	}
	if _, shares := quotaKeys(t, rd.addr); shares != 0 {
		t.Fatalf("Redis after the abandonment: %d share entries (want 0: released)", shares)
	}

	codes, _ := r.burst(t, 60, 10, "/api/x", key)
	t.Logf("returning consumer, burst of 60 against 30/minute: %v", codes)
	if codes[200] < 30 || codes[200] > 31 || codes[200]+codes[429] != 60 {
		t.Fatalf("statuses %v, want 30×200 (31 if a refill came during the burst), the rest 429", codes)
	}
	if err := harness.WaitFor(testCtx(t, 2*time.Second), func() (bool, error) {
		return s.rlqsMetric(t, "tollgate_rlqs_buckets") == 1, nil
	}); err != nil {
		t.Fatalf("the returning consumer's bucket was not reported at once (Envoy kept the old one?): %v", err)
	}
	if e.Exited() || !strings.Contains(e.Logs(), "wiped by abandon action") {
		t.Fatalf("Envoy exited or never applied the abandon action:\n%s", e.LogTail(60))
	}
	t.Logf("test took %.1f s", time.Since(start).Seconds())
}

// rlqsMetric is the sum of a tollgate_rlqs_* metric's samples on the
// stack's admin API (0 when absent).
func (s *stack) rlqsMetric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := harness.HTTPGet(testCtx(t, 5*time.Second), "http://"+s.adminAddr+"/metrics", "",
		map[string]string{"Authorization": "Bearer " + testToken})
	if err != nil || resp.Status != 200 {
		t.Fatalf("metrics: %v %v", resp, err)
	}
	sum := 0.0
	sc := bufio.NewScanner(strings.NewReader(string(resp.Body)))
	for sc.Scan() {
		if n, v, ok := strings.Cut(sc.Text(), " "); ok && (n == name || strings.HasPrefix(n, name+"{")) {
			f, _ := strconv.ParseFloat(v, 64)
			sum += f
		}
	}
	return sum
}

// quotaKeys counts the rate-limit TAT keys in Redis at addr and the
// participants of their shares hashes (keys ending in ":q").
func quotaKeys(t *testing.T, addr string) (tats, shares int) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	ctx := context.Background()
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		switch typ, _ := c.Type(ctx, k).Result(); {
		case strings.HasSuffix(k, ":q") && typ == "hash":
			shares += int(c.HLen(ctx, k).Val())
		case typ == "string" && strings.Contains(k, "{c:"):
			tats++
		}
	}
	return tats, shares
}

// TestQuotaAbandonWaitsForAFullAccount (~9 s): a bucket is abandoned only
// once its limits have refilled completely in the account. A returning
// consumer's new bucket passes under ALLOW_ALL until its first
// assignment, held only by each backstop (the full limit per Envoy and
// listener); had an idle bucket that still owed been abandoned, each
// return would let every backstop admit what it holds again. One consumer,
// 6 an hour, one request on the gateway's first listener, idle past
// Envoy's report tick (`--rlqs-abandon-after 1`), then a burst of 12 on
// each listener at once: at most 6 admitted over the whole test (GCRA's
// 6). Before, the bucket was abandoned at the tick and the bursts admitted
// 5 and 6: 12 in all, twice the limit (and again at every return, each
// backstop refilling at the limit's rate).
func TestQuotaAbandonWaitsForAFullAccount(t *testing.T) {
	start := time.Now()
	pa, pb := harness.FreePort(t), harness.FreePort(t)
	// Two listeners: one Envoy, one RLQS bucket per consumer, two backstops.
	s, rd, _ := startAbandonStack(t, "{requests: 6, per: hour}", pa, pb)
	s.envoy("public", "rlq-abandon-full", "delta")
	ra, rb := &rlStack{stack: s, redis: rd, port: pa}, &rlStack{stack: s, redis: rd, port: pb}
	key := map[string]string{"x-api-key": ra.key(t, "q-abandon-full", "abandon")}
	codes, _ := ra.burst(t, 1, 1, "/api/x", key)
	admitted := codes[200]
	// Envoy's first report tick (5 s after its first request) reports the
	// bucket idle: the moment it was abandoned before.
	if err := harness.WaitFor(testCtx(t, 15*time.Second), func() (bool, error) {
		return s.rlqsMetric(t, "tollgate_rlqs_reports_total") >= 2, nil // the bucket's first report, then the tick's
	}); err != nil {
		t.Fatalf("no report tick within 15 s: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // the answer applied
	var wg sync.WaitGroup
	var ca, cb map[int]int
	wg.Go(func() { ca, _ = ra.burst(t, 12, 12, "/api/x", key) })
	wg.Go(func() { cb, _ = rb.burst(t, 12, 12, "/api/x", key) })
	wg.Wait()
	admitted += ca[200] + cb[200]
	t.Logf("6/hour, two listeners: bursts of 12 after the tick: %v and %v; %d admitted in all (abandoned buckets %v); test took %.1f s",
		ca, cb, admitted, s.rlqsMetric(t, "tollgate_rlqs_abandoned_buckets_total"), time.Since(start).Seconds())
	if admitted > 6 {
		t.Fatalf("%d admitted against 6 an hour: the abandoned bucket came back with a fresh limit per backstop", admitted)
	}
}
