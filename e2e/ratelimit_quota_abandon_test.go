package e2e

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/e2e/harness"
)

// abandonPolicy limits every consumer to 6 requests an hour: nothing
// refills during the test, so what a returning consumer is admitted shows
// what the account remembers.
const abandonPolicy = `version: 1
auth:
  apiKeys: {header: x-api-key}
rateLimits:
  mode: quota
  tiers:
    hourly: [{requests: 6, per: hour}]
  defaultTier: hourly
  failureMode: open
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: api, match: {pathPrefix: /api}, backend: echo}
backends:
  - {name: echo, endpoints: [%q]}
`

// TestQuotaAbandonedBucketComesBackLimited (~8 s: Envoy's first report
// tick comes 5 s after its first request): with `serve
// --rlqs-abandon-after 1`, a consumer's bucket reported idle once is
// abandoned: the server counts it
// (tollgate_rlqs_abandoned_buckets_total), forgets it (tollgate_rlqs_buckets
// back to 0) and releases its participant from the Redis shares, while the
// limit's TAT stays; Envoy 1.40 (two workers) drops the bucket, so the
// consumer's next requests build a new one, reported at once, and a burst
// of twice the limit admits exactly what the limit has left (6 per hour, 1
// used before: 5), never a fresh limit. Envoy stays up throughout.
func TestQuotaAbandonedBucketComesBackLimited(t *testing.T) {
	start := time.Now()
	up := harness.StartUpstream(t, "echo")
	rd := startRedisServer(t, harness.FreePort(t))
	port := harness.FreePort(t)
	s := startStackWith(t, fmt.Sprintf(abandonPolicy, port, up.Addr()), stackOptions{
		args: []string{"--redis", "redis://" + rd.addr + "/0", "--key-pepper", "e2e-pepper-0123456789",
			"--rlqs-abandon-after", "1"},
	})
	e := s.envoyWith("public", "rlq-abandon", harness.EnvoyOptions{Concurrency: 2, ComponentLogLevel: "rate_limit_quota:debug"})
	r := &rlStack{stack: s, redis: rd, port: port, up: up.Addr(), proxy: e}
	key := map[string]string{"x-api-key": r.key(t, "q-abandon-1", "hourly")}

	if codes, _ := r.burst(t, 1, 1, "/api/x", key); codes[200] != 1 {
		t.Fatalf("first request: %v, want 200", codes)
	}
	used := time.Now()
	ctx := testCtx(t, 20*time.Second)
	if err := harness.WaitFor(ctx, func() (bool, error) {
		return s.rlqsMetric(t, "tollgate_rlqs_abandoned_buckets_total") >= 1, nil
	}); err != nil {
		t.Fatalf("no bucket abandoned within 20 s of the request: %v\n%s", err, e.LogTail(40))
	}
	t.Logf("abandoned %.1f s after the request", time.Since(used).Seconds())
	if n := s.rlqsMetric(t, "tollgate_rlqs_buckets"); n != 0 {
		t.Fatalf("tollgate_rlqs_buckets = %v after the abandonment, want 0", n)
	}
	tats, shares := quotaKeys(t, rd.addr)
	if tats == 0 || shares != 0 {
		t.Fatalf("Redis after the abandonment: %d TAT keys (want ≥ 1: the account stays), %d share entries (want 0: released)", tats, shares)
	}

	codes, _ := r.burst(t, 12, 6, "/api/x", key)
	t.Logf("returning consumer, burst of 12 against 6/hour with 1 used: %v", codes)
	if codes[200] != 5 || codes[429] != 7 {
		t.Fatalf("statuses %v, want exactly 5×200 and 7×429", codes)
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
