package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// TestJWTModuleLimitsTwoRouteTablesInTurn: a push that changes a tier's
// limit (three: 3/minute → 4/minute) and replaces the listener (CORS on
// a route adds a filter) leaves two route tables live, the draining
// connections' (3/minute) and the new listener's (4/minute), both
// charging the module's one bucket of the consumer (the charger's opaque
// keys share that table). With Redis down and failureMode open, the
// quota server answers ALLOW_ALL and the module's local limits alone
// hold the consumer ("open and local: the local limits"). A consumer of
// three, 1 used before the push, sends 20 requests in turn on a draining
// connection and on a new one: at most 3 more are admitted (4 a minute in
// all, give or take the refill). Before, each switch between the two
// tables' limits restarted the bucket's burst: all 20 were admitted.
func TestJWTModuleLimitsTwoRouteTablesInTurn(t *testing.T) {
	n := startNativeEnv(t)
	pa, pb := harness.FreePort(t), harness.FreePort(t)
	policy := strings.Replace(n.policy(t, jwtModuleLimitsPolicy, pa, pb), "FAILURE", "open", 1)
	s := n.stack(t, policy, "--envoy-module", harness.BuildEnvoyModule(t))
	e := s.envoyWith("a", "jm-two-tables", harness.EnvoyOptions{DrainTime: 24 * time.Hour}) // no drain close in the test
	m := &moduleLimits{rlStack: &rlStack{stack: s, redis: n.redis, port: pa, up: n.upstream.Addr(), proxy: e}, env: n, portB: pb}
	tok := m.token("two-tables", "three")
	old := dialKeepAliveConn(t, pa)
	if resp := old.get(t, "/api/x", tok); resp.StatusCode != 200 {
		t.Fatalf("before the push: %d", resp.StatusCode)
	}
	pushed := strings.Replace(policy, "three: [{requests: 3, per: minute}]", "three: [{requests: 4, per: minute}]", 1)
	pushed = strings.Replace(pushed, "backend: echo, auth: {methods: [jwt]}}",
		`backend: echo, auth: {methods: [jwt]}, cors: {allowOrigins: ["https://app.example.com"], allowMethods: [GET]}}`, 1)
	pushReplacingListener(t, s, e, pushed)
	reports := s.transformMetric(t, "tollgate_rlqs_reports_total")
	m.redis.kill(t)
	// The module's next report (≤ 5 s) meets the dead Redis: the answer is
	// open's ALLOW_ALL, and the module's local limits alone decide.
	if err := harness.WaitFor(testCtx(t, 15*time.Second), func() (bool, error) {
		return s.transformMetric(t, "tollgate_rlqs_reports_total") > reports, nil
	}); err != nil {
		t.Fatalf("no report after Redis died: %v", err)
	}
	time.Sleep(100 * time.Millisecond) // its answer reaches Envoy right after the server counts it
	fresh := dialKeepAliveConn(t, pa)
	var got []int
	admitted := 0
	for i := range 20 {
		c := old
		if i%2 == 1 {
			c = fresh
		}
		code := c.get(t, "/api/x", tok).StatusCode
		got = append(got, code)
		switch code {
		case 200:
			admitted++
		case 429:
		default:
			t.Fatalf("request %d: %d", i+1, code)
		}
	}
	t.Logf("three 3/minute → 4/minute, 1 used before the push, Redis down (open), draining and new connection in turn: %v", got)
	if admitted > 3 {
		t.Errorf("%d admitted after the push, want at most 3 (4 a minute, 1 used)", admitted)
	}
}
