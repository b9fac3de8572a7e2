package e2e

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// quotaPolicy is rateLimitPolicy's shape in quota mode: Envoy enforces the
// limits (RLQS + local backstop), no RLS call per request.
const quotaPolicy = `version: 1
auth:
  apiKeys: {header: x-api-key}
rateLimits:
  mode: quota
  tiers:
    tiny: [{requests: 10, per: minute}]
    busy: [{requests: 600, per: minute}]
    enterprise: unlimited
  defaultTier: tiny
  anonymous: [{requests: 5, per: minute}]
  failureMode: %s
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: api, match: {pathPrefix: /api}, backend: echo}
  - {name: open, match: {pathPrefix: /open}, backend: echo, auth: none}
backends:
  - {name: echo, endpoints: [%q]}
`

func startQuotaStack(t *testing.T, failureMode string) *rlStack {
	up := harness.StartUpstream(t, "echo")
	r := startRedisServer(t, harness.FreePort(t))
	port := harness.FreePort(t)
	s := startStackWith(t, fmt.Sprintf(quotaPolicy, failureMode, port, up.Addr()), stackOptions{
		args: []string{"--redis", "redis://" + r.addr + "/0", "--key-pepper", "e2e-pepper-0123456789"},
	})
	s.envoy("public", "rlq-0", "delta")
	return &rlStack{stack: s, redis: r, port: port, up: up.Addr()}
}

// TestQuotaColdStartBurstIsExact: in quota mode, a burst of twice a never
// seen consumer's limit in concurrent requests admits exactly the limit;
// every 429 carries a Retry-After after which a retry is admitted (the
// limit refills at its rate); an unlimited tier is never limited and never
// counted in Redis.
func TestQuotaColdStartBurstIsExact(t *testing.T) {
	r := startQuotaStack(t, "open")
	key := map[string]string{"x-api-key": r.key(t, "q-tiny-1", "tiny")}
	codes, retry := r.burst(t, 20, 10, "/api/x", key)
	t.Logf("cold-start burst of 20 (limit 10/minute): %v", codes)
	if codes[200] != 10 || codes[429] != 10 {
		t.Fatalf("statuses %v, want exactly 10×200 and 10×429", codes)
	}
	maxRetry := 0
	for _, ra := range retry {
		if ra < 1 || ra > 60 {
			t.Fatalf("Retry-After %d out of range (1..60)", ra)
		}
		maxRetry = max(maxRetry, ra)
	}
	// The limit refills at 10/minute: one request every 6 s. A retry
	// after the largest Retry-After seen is admitted.
	time.Sleep(time.Duration(maxRetry) * time.Second)
	resp, err := harness.HTTPGet(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/api/x", r.port), "", key)
	if err != nil || resp.Status != 200 {
		t.Fatalf("after Retry-After %ds: %v %v", maxRetry, resp, err)
	}
	if codes, _ := r.burst(t, 5, 5, "/api/x", key); codes[200] != 0 {
		t.Fatalf("right after the refilled request: %v, want no more 200s", codes)
	}
	t.Run("anonymous: exactly 5 per client address", func(t *testing.T) {
		if codes, _ := r.burst(t, 10, 5, "/open/x", nil); codes[200] != 5 {
			t.Fatalf("statuses %v, want 5×200", codes)
		}
	})
	t.Run("unlimited tier", func(t *testing.T) {
		k := map[string]string{"x-api-key": r.key(t, "q-ent-1", "enterprise")}
		before := redisCalls(t, r.redis.addr, "evalsha") + redisCalls(t, r.redis.addr, "eval")
		if codes, _ := r.burst(t, 200, 10, "/api/x", k); codes[200] != 200 {
			t.Fatalf("statuses %v", codes)
		}
		if after := redisCalls(t, r.redis.addr, "evalsha") + redisCalls(t, r.redis.addr, "eval"); after != before {
			t.Errorf("an unlimited tier cost %d Redis scripts", after-before)
		}
	})
}

// retryAfterOf parses a Retry-After header value (seconds).
func retryAfterOf(v string) int { n, _ := strconv.Atoi(v); return n }
