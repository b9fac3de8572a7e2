package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// topologyPolicy has an API-key route whose consumers get tier limits
// (meter: one long window to count with; tiny: two windows, the day's the
// tighter) and one generated route that every push changes.
const topologyPolicy = `version: 1
auth:
  apiKeys: {header: x-api-key}
rateLimits:
  tiers:
    meter: [{requests: 100000, per: month}]
    tiny: [{requests: 10, per: minute}, {requests: 3, per: day}]
  defaultTier: meter
  failureMode: %s
  mode: exact # the failover tests compare the counters with the admitted requests
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: api, match: {pathPrefix: /api}, backend: one, auth: {methods: [apiKey], roles: [user]}}
  - {name: gen-%d, match: {pathPrefix: /gen-%d}, backend: one, auth: none}
backends:
  - {name: one, endpoints: [%q]}
`

// topoStack is control-plane replicas on one Redis topology (its --store
// and --redis URL) with an Envoy on replica A.
type topoStack struct {
	t        *testing.T
	url      string
	port     int
	upstream string
	a, b     *stack
}

// policy renders topologyPolicy with failure mode fm and generated route gen.
func (ts *topoStack) policy(fm string, gen int) string {
	return fmt.Sprintf(topologyPolicy, fm, ts.port, gen, gen, ts.upstream)
}

// startTopoStack starts replica A seeded with the policy (failure mode fm)
// and an Envoy on it, and replica B when two is set, both with
// --store and --redis set to url exactly as an operator would.
func startTopoStack(t *testing.T, url, fm string, two bool) *topoStack {
	t.Helper()
	ts := &topoStack{t: t, url: url, port: harness.FreePort(t), upstream: harness.StartUpstream(t, "one").Addr()}
	args := []string{"--store", url, "--store-prefix", haPrefix, "--redis", url, "--key-pepper", haPepper}
	ts.a = startStackWith(t, ts.policy(fm, 0), stackOptions{args: args})
	if two {
		ts.b = startStackWith(t, "", stackOptions{args: args})
	}
	ts.a.envoy("public", "topo-a", "delta")
	return ts
}

// createdKey mirrors `tollgate keys create -o json`.
type createdKey struct {
	Key    string
	Record struct{ ID string }
}

// key creates an API key of tier for consumer through s's CLI.
func (ts *topoStack) key(s *stack, consumer, tier string) createdKey {
	ts.t.Helper()
	var k createdKey
	out := s.cli(0, "keys", "create", "--consumer", consumer, "--roles", "user", "--tier", tier, "-o", "json")
	if err := json.Unmarshal([]byte(out), &k); err != nil || k.Key == "" {
		ts.t.Fatalf("keys create: %v %s", err, out)
	}
	return k
}

// call sends GET path with key and returns the status and body.
func (ts *topoStack) call(ctx context.Context, c *harness.HTTPClient, path, key string) (int, string) {
	resp, err := c.Get(ctx, fmt.Sprintf("http://127.0.0.1:%d%s", ts.port, path), "", map[string]string{"x-api-key": key})
	if err != nil {
		return 0, err.Error()
	}
	return resp.Status, string(resp.Body)
}

// checkTopologyFlows runs the Redis-backed flows on ts: API keys created on
// B serve on A's Envoy and a revocation through B takes effect there within
// a second; multi-window limits of several consumers (spread over hash
// slots) admit exactly the tighter window's 3; a push through A is followed
// by B; a stale compare-and-set push is refused; the history is linear and
// the same on both replicas.
func checkTopologyFlows(t *testing.T, ts *topoStack) {
	ctx := testCtx(t, 60*time.Second)
	c := harness.NewHTTPClient(true)
	defer c.Close()
	k := ts.key(ts.b, "flows", "meter")
	if code, body := ts.call(ctx, c, "/api/x", k.Key); code != 200 {
		t.Fatalf("a key created through B: %d %s", code, body)
	}
	for i := range 6 {
		tk := ts.key(ts.a, fmt.Sprintf("tiny-%d", i), "tiny")
		got := []int{}
		for range 5 {
			code, _ := ts.call(ctx, c, "/api/x", tk.Key)
			got = append(got, code)
		}
		if fmt.Sprint(got) != "[200 200 200 429 429]" {
			t.Fatalf("consumer tiny-%d (10/minute and 3/day): statuses %v, want 3×200 then 429", i, got)
		}
	}
	ts.b.cli(0, "keys", "revoke", k.Record.ID)
	if err := harness.WaitFor(testCtx(t, time.Second), func() (bool, error) {
		code, _ := ts.call(ctx, c, "/api/x", k.Key)
		return code == 401, nil
	}); err != nil {
		t.Fatalf("a key revoked through B still served on A's Envoy after 1 s: %v", err)
	}
	checkTopologyPushes(t, ts, ctx, c)
}

// checkTopologyPushes pushes through A (B follows), then a stale
// compare-and-set push through B (refused), and compares the histories.
func checkTopologyPushes(t *testing.T, ts *topoStack, ctx context.Context, c *harness.HTTPClient) {
	base := ts.a.status().Version
	ts.a.cli(0, "push", writeFile(t, "p1.yaml", ts.policy("closed", 1)))
	if err := harness.WaitFor(ctx, func() (bool, error) {
		code, _ := ts.call(ctx, c, "/gen-1", "")
		return code == 200, nil
	}); err != nil {
		t.Fatalf("the push through A was not served: %v", err)
	}
	cur := ts.a.status().Version
	if err := harness.WaitFor(ctx, func() (bool, error) { return ts.b.status().Version == cur, nil }); err != nil {
		t.Fatalf("replica B does not follow the push through A (pub/sub): %v", err)
	}
	_, errOut, code := ts.b.run("push", writeFile(t, "p2.yaml", ts.policy("closed", 2)), "--expect-version", base)
	if code != 1 || !strings.Contains(errOut, "conflict") {
		t.Fatalf("a push expecting the replaced version: exit %d, %s; want a conflict", code, errOut)
	}
	ha, hb := ts.a.history(), ts.b.history()
	checkLinear(t, ha, cur)
	if fmt.Sprint(ha) != fmt.Sprint(hb) || len(ha) != 2 {
		t.Fatalf("histories differ or do not hold the seed and the push:\nA %+v\nB %+v", ha, hb)
	}
}

// TestRedisClusterFlows runs API keys, multi-window rate limits, pushes,
// compare-and-set, history and pub/sub following on a real Redis Cluster
// of three masters and three replicas.
func TestRedisClusterFlows(t *testing.T) {
	rc := harness.StartRedisCluster(t)
	checkTopologyFlows(t, startTopoStack(t, rc.URL(), "closed", true))
}

// TestRedisSentinelFlows runs the same flows through Sentinel (a master, a
// replica, three sentinels).
func TestRedisSentinelFlows(t *testing.T) {
	rs := harness.StartRedisSentinel(t)
	checkTopologyFlows(t, startTopoStack(t, rs.URL(), "closed", true))
}
