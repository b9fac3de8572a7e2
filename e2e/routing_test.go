package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/internal/upstream"
)

// upstreams starts one echo upstream per name.
func upstreams(t *testing.T, names ...string) map[string]*upstream.Server {
	out := map[string]*upstream.Server{}
	for _, n := range names {
		out[n] = harness.StartUpstream(t, n)
	}
	return out
}

// backendsYAML renders a backends: section with one backend per upstream.
func backendsYAML(us map[string]*upstream.Server) string {
	var b strings.Builder
	b.WriteString("backends:\n")
	for name, u := range us {
		fmt.Fprintf(&b, "  - name: %s\n    endpoints: [%q]\n", name, u.Addr())
	}
	return b.String()
}

const routingPolicy = `version: 1
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: users, match: {pathPrefix: /api/users}, backend: users, auth: none}
  - name: users-v2
    match: {pathPrefix: /api/users, headers: [{name: x-api-version, exact: "2"}]}
    backend: users-v2
    auth: none
  - {name: exact, match: {path: /exact}, backend: exact, auth: none}
  - {name: items, match: {pathRegex: "/items/[0-9]+"}, backend: items, auth: none}
  - {name: host, match: {hosts: [api.example.com], pathPrefix: /}, backend: host, auth: none}
  - {name: submit-post, match: {path: /submit, methods: [POST]}, backend: post, auth: none}
  - {name: submit-get, match: {path: /submit, methods: [GET]}, backend: get, auth: none}
  - {name: rewrite, match: {pathPrefix: /rw/}, backend: exact, rewrite: {pathPrefix: /inner/}, auth: none}
  - {name: strip, match: {pathPrefix: /strip/me}, backend: exact, rewrite: {pathPrefix: /}, auth: none}
`

func TestRoutingAgainstRealEnvoy(t *testing.T) {
	us := upstreams(t, "users", "users-v2", "exact", "items", "host", "post", "get")
	port := harness.FreePort(t)
	s := startStack(t, fmt.Sprintf(routingPolicy, port)+backendsYAML(us))
	s.envoy("public", "routing-0", "delta")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	tests := []struct {
		name, method, path, host string
		headers                  map[string]string
		wantStatus               int
		wantUpstream             string
	}{
		{"prefix", "GET", "/api/users/42", "", nil, 200, "users"},
		{"prefix and header", "GET", "/api/users/42", "", map[string]string{"x-api-version": "2"}, 200, "users-v2"},
		{"header value mismatch", "GET", "/api/users/42", "", map[string]string{"x-api-version": "3"}, 200, "users"},
		{"exact", "GET", "/exact", "", nil, 200, "exact"},
		{"exact is not a prefix", "GET", "/exact/more", "", nil, 404, ""},
		{"regex", "GET", "/items/123", "", nil, 200, "items"},
		{"regex must match the whole path", "GET", "/items/abc", "", nil, 404, ""},
		{"host", "GET", "/anything", "api.example.com", nil, 200, "host"},
		{"host with port", "GET", "/anything", "api.example.com:8080", nil, 200, "host"},
		{"longer prefix wins inside a host", "GET", "/api/users/1", "api.example.com", nil, 200, "users"},
		{"other host", "GET", "/anything", "other.example.com", nil, 404, ""},
		{"method POST", "POST", "/submit", "", nil, 200, "post"},
		{"method GET", "GET", "/submit", "", nil, 200, "get"},
		{"method not routed", "DELETE", "/submit", "", nil, 404, ""},
		{"unmatched", "GET", "/nowhere", "", nil, 404, ""},
	}
	client := harness.NewHTTPClient(false)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := client.Do(testCtx(t, 10*time.Second), tt.method, base+tt.path, tt.host, tt.headers, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tt.wantStatus || resp.Header.Get("X-Upstream") != tt.wantUpstream {
				t.Fatalf("%s %s (host %q) = %d from %q, want %d from %q; body %s",
					tt.method, tt.path, tt.host, resp.Status, resp.Header.Get("X-Upstream"), tt.wantStatus, tt.wantUpstream, resp.Body)
			}
		})
	}
	rewrites := []struct{ path, want string }{
		{"/rw/a/b?q=1", "/inner/a/b"},
		{"/strip/me/a/b", "/a/b"}, // "/" on a prefix without a trailing slash: no "//a/b"
		{"/strip/me//a", "/a"},    // the slashes after the prefix are swallowed
		{"/strip/me", "/"},
	}
	for _, rw := range rewrites {
		t.Run("rewrite "+rw.path, func(t *testing.T) {
			resp, err := client.Get(testCtx(t, 10*time.Second), base+rw.path, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			var echo upstream.Echo
			if err := resp.JSON(&echo); err != nil {
				t.Fatal(err)
			}
			if resp.Status != http.StatusOK || echo.Path != rw.want {
				t.Fatalf("GET %s: status %d, upstream saw path %q, want %q", rw.path, resp.Status, echo.Path, rw.want)
			}
		})
	}
}

const roundRobinPolicy = `version: 1
gateways:
  - name: public
    listeners: [{name: http, port: %d, address: 127.0.0.1}]
routes:
  - {name: all, backend: pool, auth: none}
backends:
  - name: pool
    endpoints: [%q, %q, %q]
    loadBalancing: round_robin
`

func TestRoundRobinSpreadsEvenly(t *testing.T) {
	us := upstreams(t, "a", "b", "c")
	port := harness.FreePort(t)
	s := startStack(t, fmt.Sprintf(roundRobinPolicy, port, us["a"].Addr(), us["b"].Addr(), us["c"].Addr()))
	s.envoy("public", "rr-0", "delta")
	client := harness.NewHTTPClient(true)
	defer client.Close()
	counts := map[string]int{}
	const total = 300
	for i := 0; i < total; i++ {
		resp, err := client.Get(testCtx(t, 10*time.Second), fmt.Sprintf("http://127.0.0.1:%d/x/%d", port, i), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != 200 {
			t.Fatalf("request %d: status %d", i, resp.Status)
		}
		counts[resp.Header.Get("X-Upstream")]++
	}
	t.Logf("distribution over %d requests: %v", total, counts)
	for _, name := range []string{"a", "b", "c"} {
		if n := counts[name]; n < 90 || n > 110 {
			t.Errorf("upstream %s got %d of %d requests, want 100±10%%", name, n, total)
		}
	}
}
