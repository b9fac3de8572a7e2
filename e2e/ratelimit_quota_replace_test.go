package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// replaceQuotaPolicy: two gateways sharing the route api (one Envoy each),
// one tier far above any load of the test.
const replaceQuotaPolicy = `version: 1
auth:
  apiKeys: {header: x-api-key}
rateLimits:
  mode: quota
  tiers:
    huge: [{requests: 100000000, per: minute}]
  defaultTier: huge
  failureMode: open
gateways:
  - name: a
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
  - name: b
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: api, match: {pathPrefix: /api}, backend: echo}
backends:
  - {name: echo, endpoints: [%q]}
`

// refusals sends GET /api/x with headers to port every interval for d
// (open loop) and returns the statuses and, per 429, who refused it: the
// backstop (backstopRefusal) or RLQS (a JSON body naming the limit).
func refusals(t *testing.T, port int, headers map[string]string, interval, d time.Duration) (codes, by map[string]int) {
	t.Helper()
	var mu sync.Mutex
	codes, by = map[string]int{}, map[string]int{}
	var wg sync.WaitGroup
	c := harness.NewHTTPClient(true)
	defer c.Close()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for end := time.Now().Add(d); time.Now().Before(end); <-tick.C {
		wg.Go(func() {
			resp, err := c.Get(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/api/x", port), "", headers)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				codes["error"]++
			case backstopRefusal(resp):
				codes["429"]++
				by["backstop"]++
			case resp.Status == 429:
				codes["429"]++
				by["rlqs"]++
			default:
				codes[fmt.Sprint(resp.Status)]++
			}
		})
	}
	wg.Wait()
	return codes, by
}

// TestQuotaReplacedEnvoyIsNotThrottled: one consumer of a 100,000,000 per
// minute tier sends 100 req/s through Envoy A, which is SIGKILLed; Envoy
// B, started at once on the same control plane, serves the same consumer
// at 100 req/s. Nothing may be refused: the dead Envoy's share of the
// limit must not starve its replacement.
func TestQuotaReplacedEnvoyIsNotThrottled(t *testing.T) {
	up := harness.StartUpstream(t, "echo")
	r := startRedisServer(t, harness.FreePort(t))
	pa, pb := harness.FreePort(t), harness.FreePort(t)
	s := startStackWith(t, fmt.Sprintf(replaceQuotaPolicy, pa, pb, up.Addr()), stackOptions{
		args: []string{"--redis", "redis://" + r.addr + "/0", "--key-pepper", "e2e-pepper-0123456789"},
	})
	rl := &rlStack{stack: s}
	key := map[string]string{"x-api-key": rl.key(t, "q-huge-1", "huge")}
	a := s.envoy("a", "rlq-a", "delta")
	codesA, byA := refusals(t, pa, key, 10*time.Millisecond, time.Second)
	_ = a.Kill()
	s.envoy("b", "rlq-b", "delta")
	codesB, byB := refusals(t, pb, key, 10*time.Millisecond, 2*time.Second)
	t.Logf("Envoy A: %v refused by %v; after A's SIGKILL, Envoy B: %v refused by %v", codesA, byA, codesB, byB)
	if codesA["200"] == 0 || codesA["429"]+codesA["error"] > 0 {
		t.Fatalf("Envoy A: %v", codesA)
	}
	if codesB["429"]+codesB["error"] > 0 {
		t.Errorf("Envoy B, replacing A: %v, refused by %v; want no refusal at 100 req/s against 100,000,000/minute", codesB, byB)
		t.Logf("control plane log:\n%s", s.cp.LogTail(40))
	}
}
