package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// TestObservability checks, through the real Envoy, the access log, the
// Prometheus series of Envoy and tollgate, and tracing from the edge to the
// upstream and the authz and rate-limit services.
func TestObservability(t *testing.T) {
	o := startObservabilityStack(t)
	o.apiKey = o.key(t, "alice")
	t.Run("access log line of an authenticated call", o.testAccessLogAuthenticated)
	t.Run("denied call is logged with its status and no user", o.testAccessLogDenied)
	t.Run("one line per request and the route counter reads N", o.testRouteCounter)
	t.Run("route with accessLog off is counted but not logged", o.testAccessLogOff)
	t.Run("route sampled at 50% logs about half its requests", o.testAccessLogSampled)
	t.Run("gRPC access-log service gets the entries with the identity", o.testGRPCAccessLog)
	t.Run("trace: edge span, upstream traceparent, authz span, no rate-limit hop", o.testTrace)
	t.Run("incoming traceparent is continued", o.testTraceContinued)
	t.Run("tollgate metrics parse and name the policy's routes", o.testTollgateMetrics)
	t.Run("tollgate top shows the route's traffic", o.testTop)
	t.Run("a push is acknowledged and measured", o.testPushMeasured)
	t.Run("dashboard queries name exported metrics", o.testDashboard)
	t.Run("a client's x-envoy-original-path reaches neither the upstream nor the access log", o.testForgedOriginalPath)
	// Last: its requests would change the counts the subtests above check.
	t.Run("a route without limits logs no rate_limit", o.testAccessLogNoLimits)
	if dir := os.Getenv("TOLLGATE_OBS_DUMP"); dir != "" {
		o.dump(t, dir)
	}
}

// testAccessLogAuthenticated checks: access log line of an authenticated call.
func (o *obsStack) testAccessLogAuthenticated(t *testing.T) {
	code, echo := o.get(t, "/api/orders?x=1", map[string]string{"x-api-key": o.apiKey, "user-agent": "obs-test"})
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	rid := echo.Headers["X-Request-Id"]
	line := o.waitAccessLines(t, 1, func(m map[string]any) bool { return m["request_id"] == rid })[0]
	want := map[string]any{
		"method": "GET", "path": "/api/orders?x=1", "route": "api", "status": 200.0, "response_flags": "-",
		"upstream_cluster": "echo", "client_ip": "127.0.0.1", "user_id": "alice", "consumer": "alice",
		"tier": "free", "auth_method": "apiKey", "rate_limit": "ok", "user_agent": "obs-test",
		"trace_id": traceIDOf(echo.Headers["Traceparent"]),
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %#v, want %#v", k, line[k], v)
		}
	}
	for _, k := range []string{"duration_ms", "upstream_duration_ms", "bytes_in", "bytes_out"} {
		if _, ok := line[k].(float64); !ok {
			t.Errorf("%s = %#v, want a number", k, line[k])
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(line["timestamp"])); err != nil {
		t.Errorf("timestamp %v: %v", line["timestamp"], err)
	}
	if line["upstream_host"] == nil || line["bytes_out"].(float64) <= 0 {
		t.Errorf("upstream_host %v, bytes_out %v", line["upstream_host"], line["bytes_out"])
	}
	if t.Failed() {
		t.Logf("line: %v", line)
	}
}

// testAccessLogDenied checks: denied call is logged with its status and no user.
func (o *obsStack) testAccessLogDenied(t *testing.T) {
	if code, _ := o.get(t, "/api/denied", nil); code != 401 {
		t.Fatalf("status %d, want 401", code)
	}
	line := o.waitAccessLines(t, 1, func(m map[string]any) bool { return m["path"] == "/api/denied" })[0]
	if line["status"] != 401.0 || line["route"] != "api" || line["user_id"] != nil || line["response_flags"] != "UAEX" {
		t.Fatalf("line %v", line)
	}
}

// testAccessLogNoLimits checks: a route without rate limits (rateLimit:
// none) logs no rate_limit key (docs/reference/access-log.md: absent on
// routes without limits), not an empty string; a limited route logs it.
func (o *obsStack) testAccessLogNoLimits(t *testing.T) {
	_, echo := o.get(t, "/open/no-limits", nil)
	line := o.waitAccessLines(t, 1, func(m map[string]any) bool { return m["request_id"] == echo.Headers["X-Request-Id"] })[0]
	if v, ok := line["rate_limit"]; ok {
		t.Errorf("route open (rateLimit: none) logged rate_limit %#v, want no key; line %v", v, line)
	}
	// A signed key's limits come from Envoy's ratelimit filter, an opaque
	// key's from the ext_authz Check: both decisions are logged.
	for _, key := range []string{o.apiKey, o.key(t, "bob", "--format", "opaque")} {
		_, echo = o.get(t, "/api/limited", map[string]string{"x-api-key": key})
		line = o.waitAccessLines(t, 1, func(m map[string]any) bool { return m["request_id"] == echo.Headers["X-Request-Id"] })[0]
		if line["rate_limit"] != "ok" {
			t.Errorf("route api, key %.6s…: logged rate_limit %#v, want \"ok\"", key, line["rate_limit"])
		}
	}
	// Refused before its limits (no key): no decision, no key.
	if code, _ := o.get(t, "/api/no-key", nil); code != 401 {
		t.Fatalf("no key: %d, want 401", code)
	}
	line = o.waitAccessLines(t, 1, func(m map[string]any) bool { return m["path"] == "/api/no-key" })[0]
	if v, ok := line["rate_limit"]; ok {
		t.Errorf("a 401 on route api logged rate_limit %#v, want no key", v)
	}
}

// testRouteCounter checks: one line per request and the route counter reads N.
func (o *obsStack) testRouteCounter(t *testing.T) {
	const n = 12
	for i := range n {
		if code, _ := o.get(t, fmt.Sprintf("/open/%d", i), nil); code != 200 {
			t.Fatalf("status %d", code)
		}
	}
	o.waitAccessLines(t, n, routeIs("open"))
	o.waitCounter(t, "envoy_vhost_route_upstream_rq_total", map[string]string{"envoy_route": "open"}, n)
	fams := o.envoyStats(t)
	if got, _ := sumWhere(fams, "envoy_vhost_route_upstream_rq_xx", map[string]string{"envoy_route": "open", "envoy_response_code_class": "2"}); got != n {
		t.Errorf("2xx of route open = %v, want %d", got, n)
	}
	// Histograms are merged at Envoy's stats flush (every 5 s).
	o.waitCounter(t, "envoy_vhost_route_upstream_rq_time", map[string]string{"envoy_route": "open"}, n)
}

// testAccessLogOff checks: route with accessLog off is counted but not logged.
func (o *obsStack) testAccessLogOff(t *testing.T) {
	for range 3 {
		if code, _ := o.get(t, "/quiet", nil); code != 200 {
			t.Fatalf("status %d", code)
		}
	}
	o.waitCounter(t, "envoy_vhost_route_upstream_rq_total", map[string]string{"envoy_route": "quiet"}, 3)
	// A later line proves Envoy flushed its log after the quiet calls.
	_, echo := o.get(t, "/open/flush", nil)
	o.waitAccessLines(t, 1, func(m map[string]any) bool { return m["request_id"] == echo.Headers["X-Request-Id"] })
	if lines := o.accessLines(routeIs("quiet")); len(lines) != 0 {
		t.Fatalf("%d lines for route quiet, want none", len(lines))
	}
}

// testTrace checks: trace: edge span, upstream traceparent, authz span and,
// the api route taking its rate limits in the ext_authz call, no rate-limit
// service span. The key is opaque: a signed one is decided in Envoy, with
// no ext_authz call (TestAPIKeyNativeAdmitsWithoutExtAuthz).
func (o *obsStack) testTrace(t *testing.T) {
	_, echo := o.get(t, "/api/traced", map[string]string{"x-api-key": o.key(t, "tracer", "--format", "opaque")})
	traceID := traceIDOf(echo.Headers["Traceparent"])
	if traceID == "" {
		t.Fatalf("upstream saw no traceparent: %v", echo.Headers)
	}
	var edge, authz, rl []receivedSpan
	err := harness.WaitFor(testCtx(t, 15*time.Second), func() (bool, error) {
		edge = o.otlp.find(traceID, func(s receivedSpan) bool { return s.service == "tollgate-public" && s.attrs["tollgate.route"] == "api" })
		authz = o.otlp.find(traceID, func(s receivedSpan) bool {
			return s.service == "tollgate" && s.name == "/envoy.service.auth.v3.Authorization/Check"
		})
		rl = o.otlp.find(traceID, func(s receivedSpan) bool {
			return s.service == "tollgate" && s.name == "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit"
		})
		return len(edge) > 0 && len(authz) > 0, nil
	})
	if err == nil && len(rl) > 0 {
		err = fmt.Errorf("%d rate-limit service spans, want none (one hop)", len(rl))
	}
	if err != nil {
		t.Fatalf("trace %s: edge %v, authz %v, ratelimit %v; all spans: %v", traceID, edge, authz, rl, o.otlp.all())
	}
	if edge[0].name != "api" {
		t.Errorf("edge span named %q, want the route name", edge[0].name)
	}
	if authz[0].attrs["tollgate.route"] != "api" {
		t.Errorf("authz span attributes %v", authz[0].attrs)
	}
}

// testTraceContinued checks: incoming traceparent is continued.
func (o *obsStack) testTraceContinued(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	_, echo := o.get(t, "/open/continued", map[string]string{"traceparent": parent})
	if got := traceIDOf(echo.Headers["Traceparent"]); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("upstream traceparent %q, want trace 4bf92f…", echo.Headers["Traceparent"])
	}
}

// testTollgateMetrics checks: tollgate metrics parse and name the policy's routes.
func (o *obsStack) testTollgateMetrics(t *testing.T) {
	fams := o.tollgateStats(t)
	if got, _ := sumWhere(fams, "tollgate_xds_connected_proxies", map[string]string{"gateway": "public"}); got != 1 {
		t.Errorf("connected proxies of public = %v, want 1", got)
	}
	if got, _ := sumWhere(fams, "tollgate_ratelimit_decisions_total", map[string]string{"route": "api", "decision": "ok"}); got < 2 {
		t.Errorf("rate-limit ok decisions of route api = %v, want >= 2", got)
	}
	if got, _ := sumWhere(fams, "tollgate_authz_checks_total", map[string]string{"route": "api", "decision": "deny", "status": "401"}); got != 1 {
		t.Errorf("401 denials of route api = %v, want 1", got)
	}
	if _, series := sumWhere(fams, "tollgate_policy_info", map[string]string{"version": o.status().Version}); series != 1 {
		t.Errorf("tollgate_policy_info has no series for the served version")
	}
	for _, name := range []string{"tollgate_authz_checks_total", "tollgate_authz_check_duration_seconds", "tollgate_snapshot_build_seconds", "tollgate_xds_push_duration_seconds"} {
		if _, series := sumWhere(fams, name, nil); series == 0 {
			t.Errorf("%s: no series", name)
		}
	}
}

// testTop checks: tollgate top shows the route's traffic.
func (o *obsStack) testTop(t *testing.T) {
	done := make(chan struct{})
	go func() { // traffic while top samples
		defer close(done)
		c := harness.NewHTTPClient(true)
		defer c.Close()
		for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); {
			_, _ = c.Get(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/open/top", o.port), "", nil)
		}
	}()
	out := o.cli(0, "top", "--envoy", o.envoy.AdminURL(), "--once", "--interval", "1s", "-o", "json")
	<-done
	var rows []struct {
		Route    string
		RPS      float64
		Requests float64
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("top -o json: %v\n%s", err, out)
	}
	for _, r := range rows {
		if r.Route == "open" && r.Requests > 0 && r.RPS > 0 {
			return
		}
	}
	t.Fatalf("top shows no traffic on route open: %s", out)
}

// testPushMeasured checks: a push is acknowledged and measured.
func (o *obsStack) testPushMeasured(t *testing.T) {
	policy := strings.Replace(o.policy, "routes:\n", "routes:\n  - {name: extra, match: {pathPrefix: /extra}, backend: echo, auth: none}\n", 1)
	o.cli(0, "push", writeFile(t, "policy.yaml", policy))
	fams := o.tollgateStats(t)
	if got, _ := sumWhere(fams, "tollgate_xds_push_ack_seconds", map[string]string{"gateway": "public"}); got < 1 {
		t.Errorf("push-to-ACK observations of gateway public = %v, want >= 1", got)
	}
	if code, _ := o.get(t, "/extra", nil); code != 200 {
		t.Errorf("new route: status %d", code)
	}
}

// testDashboard checks: dashboard queries name exported metrics.
func (o *obsStack) testDashboard(t *testing.T) {
	checkDashboard(t, "exact", nil, o.envoyStats(t), o.tollgateStats(t))
}

// testGRPCAccessLog checks: gRPC access-log service gets the entries with
// the identity.
func (o *obsStack) testGRPCAccessLog(t *testing.T) {
	if code, _ := o.get(t, "/api/als", map[string]string{"x-api-key": o.apiKey}); code != 200 {
		t.Fatalf("status %d", code)
	}
	var got []alsEntry
	err := harness.WaitFor(testCtx(t, 10*time.Second), func() (bool, error) {
		got = o.als.find("/api/als")
		return len(got) > 0, nil
	})
	if err != nil || len(got) != 1 {
		t.Fatalf("access-log service entries for /api/als: %+v (%v), want one", got, err)
	}
	if e := got[0]; e.route != "api" || e.userID != "alice" || e.status != 200 || e.logName != "tollgate-public" {
		t.Fatalf("entry %+v, want route api, user alice, status 200, log tollgate-public", e)
	}
	if n := len(o.als.find("/quiet")); n != 0 {
		t.Errorf("%d entries for route quiet (accessLog: off), want none", n)
	}
}

// testAccessLogSampled checks: route sampled at 50% logs about half its
// requests. Envoy decides from the random request ID, so the count is
// binomial(60, 0.5): outside 10..50 with a probability below 1e-6.
func (o *obsStack) testAccessLogSampled(t *testing.T) {
	const n = 60
	for i := range n {
		if code, _ := o.get(t, fmt.Sprintf("/sampled/%d", i), nil); code != 200 {
			t.Fatalf("status %d", code)
		}
	}
	o.waitCounter(t, "envoy_vhost_route_upstream_rq_total", map[string]string{"envoy_route": "sampled"}, n)
	_, echo := o.get(t, "/open/flush-sampled", nil) // a later line: the log is flushed past the sampled calls
	o.waitAccessLines(t, 1, func(m map[string]any) bool { return m["request_id"] == echo.Headers["X-Request-Id"] })
	if got := len(o.accessLines(routeIs("sampled"))); got < 10 || got > 50 {
		t.Fatalf("%d of %d requests of route sampled logged, want about half", got, n)
	} else {
		t.Logf("%d of %d requests logged at 50%%", got, n)
	}
}

// testForgedOriginalPath checks: a client's x-envoy-original-path (where
// Envoy records a rewritten path, which the access log prefers) reaches
// neither the upstream nor the access log, whether the request is
// forwarded or denied by ext_authz.
func (o *obsStack) testForgedOriginalPath(t *testing.T) {
	forged := map[string]string{"x-envoy-original-path": "/forged"}
	code, echo := o.get(t, "/open/real?q=1", forged)
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	if v, ok := echo.Headers["X-Envoy-Original-Path"]; ok {
		t.Errorf("the upstream got the client's x-envoy-original-path %q", v)
	}
	for path, want := range map[string]int{"/open/real?q=1": 200, "/api/real": 401} {
		resp, err := harness.HTTPGet(testCtx(t, 10*time.Second), fmt.Sprintf("http://127.0.0.1:%d%s", o.port, path), "", forged)
		if err != nil || resp.Status != want {
			t.Fatalf("GET %s: %v %v, want %d", path, resp, err, want)
		}
		rid := resp.Header.Get("X-Request-Id")
		line := o.waitAccessLines(t, 1, func(m map[string]any) bool { return m["request_id"] == rid })[0]
		if line["path"] != path {
			t.Errorf("GET %s (status %d): access log path %v, want the real path", path, resp.Status, line["path"])
		}
		t.Logf("GET %s: status %d, logged path %v", path, resp.Status, line["path"])
	}
	// Envoy answers an escaped slash with a redirect before any filter runs
	// (UNESCAPE_AND_REDIRECT): the client's copy is still in the request.
	const escaped = "/open/a%2Fb?forged=1"
	resp, err := harness.HTTPGet(testCtx(t, 10*time.Second), fmt.Sprintf("http://127.0.0.1:%d%s", o.port, escaped), "", forged)
	if err != nil || resp.Status != 307 {
		t.Fatalf("GET %s: %v %v, want Envoy's 307", escaped, resp, err)
	}
	// Envoy has unescaped the path when it answers; that is the path logged.
	line := o.waitAccessLines(t, 1, func(m map[string]any) bool { return m["status"] == float64(307) })[0]
	if line["path"] != "/open/a/b?forged=1" {
		t.Errorf("GET %s (Envoy's 307): access log path %v, want the real (unescaped) path /open/a/b?forged=1", escaped, line["path"])
	}
}
