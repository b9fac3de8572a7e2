package harness

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/upstream"
)

const testBootstrap = `
admin:
  address:
    socket_address: {address: 127.0.0.1, port_value: 0}
static_resources:
  listeners:
  - name: test_listener
    address:
      socket_address: {address: 127.0.0.1, port_value: %d}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/proxy/"}
                route: {cluster: echo}
              - match: {prefix: "/"}
                direct_response: {status: 200, body: {inline_string: "hello from envoy"}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: echo
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: echo
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {address: 127.0.0.1, port_value: %d}
`

func TestEnvoyLifecycle(t *testing.T) {
	var pid int
	var listener string
	t.Run("running", func(t *testing.T) {
		echo := StartUpstream(t, "echo")
		port := FreePort(t)
		listener = fmt.Sprintf("http://127.0.0.1:%d", port)
		e := StartEnvoy(t, fmt.Appendf(nil, testBootstrap, port, echo.Port()), EnvoyOptions{})
		pid = e.Pid()
		ctx := testContext(t)
		if err := e.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		checkDirectResponse(t, e, listener)
		checkProxied(t, e, listener, echo)
		dump, err := e.ConfigDump(ctx, "static_listeners")
		if err != nil || !bytes.Contains(dump, []byte(`"test_listener"`)) {
			t.Fatalf("ConfigDump(static_listeners) = %.200s, %v; want test_listener", dump, err)
		}
		if err := e.WaitConfigDump(ctx, "static_clusters", func(d []byte) bool {
			return bytes.Contains(d, []byte(`"echo"`))
		}); err != nil {
			t.Fatal(err)
		}
	})
	if !processGone(pid) {
		t.Errorf("envoy (pid %d) still runs after its test ended", pid)
	}
	if _, err := HTTPGet(testContext(t), listener, "", nil); err == nil {
		t.Errorf("listener %s still answers after Envoy's test ended", listener)
	}
}

func checkDirectResponse(t *testing.T, e *Envoy, listener string) {
	t.Helper()
	ctx := testContext(t)
	resp, err := HTTPGet(ctx, listener+"/", "any.host", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusOK || string(resp.Body) != "hello from envoy" {
		t.Fatalf("GET / = %d %q, want 200 hello from envoy", resp.Status, resp.Body)
	}
	if err := e.WaitStat(ctx, "http.ingress.downstream_rq_2xx", func(v int64) bool { return v >= 1 }); err != nil {
		t.Fatal(err)
	}
	stats, err := e.Stats(ctx, `^http\.ingress\.`)
	if err != nil {
		t.Fatal(err)
	}
	if stats["http.ingress.downstream_rq_total"] < 1 {
		t.Errorf("Stats = %v, want http.ingress.downstream_rq_total >= 1", stats)
	}
	for name := range stats {
		if !strings.HasPrefix(name, "http.ingress.") {
			t.Errorf("Stats returned %s outside the filter", name)
		}
	}
}

func checkProxied(t *testing.T, e *Envoy, listener string, echo *upstream.Server) {
	t.Helper()
	ctx := testContext(t)
	resp, err := HTTPGet(ctx, listener+"/proxy/x", "api.test", map[string]string{"X-Req": "42"})
	if err != nil {
		t.Fatal(err)
	}
	var got upstream.Echo
	if err := resp.JSON(&got); err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusOK || resp.Header.Get(upstream.HeaderName) != "echo" ||
		got.Path != "/proxy/x" || got.Host != "api.test" || got.Headers["X-Req"] != "42" {
		t.Fatalf("GET /proxy/x = %d %+v", resp.Status, got)
	}
	if echo.Requests() != 1 {
		t.Errorf("upstream saw %d requests, want 1", echo.Requests())
	}
	if err := e.WaitStat(ctx, "cluster.echo.upstream_rq_200", func(v int64) bool { return v == 1 }); err != nil {
		t.Fatal(err)
	}
}

func TestParseStats(t *testing.T) {
	body := []byte("a.b: 3\ncluster.x:y.z: 12\nhist: P0(nan,1) P25(nan,2)\ntext: \"v\"\nnocolon\n")
	got := parseStats(body)
	want := map[string]int64{"a.b": 3, "cluster.x:y.z": 12}
	if len(got) != len(want) {
		t.Fatalf("parseStats = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("parseStats[%s] = %d, want %d", k, got[k], v)
		}
	}
}
