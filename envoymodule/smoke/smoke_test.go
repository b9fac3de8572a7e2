package smoke

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/internal/jwttest"
	"github.com/tollgate/tollgate/policy/ir"
)

// mdKeys are the ext_authz metadata keys the routes copy into x-md-*
// request headers, so that the upstream shows what the module published.
var mdKeys = []string{"route", "method", "consumer", "user_id", "tenant", "tier", "roles"}

func filterConfig(iss *jwttest.Issuer) envoymod.FilterConfig {
	return envoymod.FilterConfig{
		JWT: []ir.JWTProvider{{Name: "corp", Namespace: "corp", Issuer: iss.Issuer, Audiences: []string{iss.Audience},
			JWKS: iss.JWKS(), Algorithms: []string{"RS256"}, MaxLifetime: 2 * time.Hour,
			Claims: ir.ClaimMap{UserID: "sub", Roles: "roles", Tenant: "tenant", Tier: "tier"}}},
		IdentityHeaders: ir.IdentityHeaders{UserID: "x-user-id", Roles: "x-user-roles", Tenant: "x-tenant-id", Tier: "x-consumer-tier"},
		KeyHeader:       "x-api-key",
	}
}

// stringValue is v's JSON in a google.protobuf.StringValue. A FilterConfig
// or RouteConfig without a Contract gets this build's (ContractID), as the
// translator writes it; a wrong one is kept (contract_test.go), and a
// configuration without one is sent as a map.
func stringValue(v any) map[string]any {
	switch c := v.(type) {
	case envoymod.FilterConfig:
		c.Contract = cmp.Or(c.Contract, envoymod.ContractID())
		v = c
	case envoymod.RouteConfig:
		c.Contract = cmp.Or(c.Contract, envoymod.ContractID())
		v = c
	}
	b, _ := json.Marshal(v)
	return map[string]any{"@type": "type.googleapis.com/google.protobuf.StringValue", "value": string(b)}
}

// moduleRoute is a route with the module's per-route config ext.
func moduleRoute(prefix string, ext map[string]string) map[string]any {
	r := plainRoute(prefix)
	r["typed_per_filter_config"] = map[string]any{envoymod.FilterName: map[string]any{
		"@type":                 "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilterPerRoute",
		"dynamic_module_config": map[string]any{"name": "tollgate_envoy", "do_not_close": true},
		"filter_name":           envoymod.FilterName,
		"filter_config":         stringValue(envoymod.RouteConfig{Extensions: ext}),
	}}
	return r
}

func plainRoute(prefix string) map[string]any {
	var add []any
	for _, k := range mdKeys {
		add = append(add, map[string]any{"header": map[string]any{"key": "x-md-" + k,
			"value": "%DYNAMIC_METADATA(envoy.filters.http.ext_authz:" + k + ")%"}})
	}
	return map[string]any{"match": map[string]any{"prefix": prefix}, "route": map[string]any{"cluster": "echo"},
		"request_headers_to_add": add}
}

// envoyConfig is a static bootstrap: the module filter, then the router;
// /jwt (any caller), /admin (role admin), /fwd (credentials forwarded) and
// /norq (no requirement: fail closed) carry per-route configs, /public
// none.
func envoyConfig(fc envoymod.FilterConfig, listen, admin, upstream int) map[string]any {
	jwt := func(route string, extra ...string) map[string]string {
		ext := map[string]string{"route": route, "methods": "jwt"}
		for i := 0; i+1 < len(extra); i += 2 {
			ext[extra[i]] = extra[i+1]
		}
		return ext
	}
	hcm := map[string]any{
		"@type":       "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
		"stat_prefix": "ingress",
		"route_config": map[string]any{"virtual_hosts": []any{map[string]any{"name": "all", "domains": []string{"*"},
			"routes": []any{moduleRoute("/jwt", jwt("orders")), moduleRoute("/admin", jwt("admin", "roles", "admin")),
				moduleRoute("/fwd", jwt("fwd", "forward_credentials", "true")), moduleRoute("/norq", nil),
				plainRoute("/public")}}}},
		"http_filters": []any{
			map[string]any{"name": envoymod.FilterName, "typed_config": map[string]any{
				"@type":                 "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
				"dynamic_module_config": map[string]any{"name": "tollgate_envoy", "do_not_close": true},
				"filter_name":           envoymod.FilterName,
				"filter_config":         stringValue(fc),
			}},
			map[string]any{"name": "envoy.filters.http.router", "typed_config": map[string]any{
				"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
		},
	}
	return map[string]any{
		"admin": map[string]any{"address": sockAddr(admin)},
		"static_resources": map[string]any{
			"listeners": []any{map[string]any{"name": "in", "address": sockAddr(listen),
				"filter_chains": []any{map[string]any{"filters": []any{map[string]any{
					"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}}}}}},
			"clusters": []any{map[string]any{"name": "echo", "type": "STATIC", "connect_timeout": "1s",
				"load_assignment": map[string]any{"cluster_name": "echo", "endpoints": []any{map[string]any{
					"lb_endpoints": []any{map[string]any{"endpoint": map[string]any{"address": sockAddr(upstream)}}}}}}}},
		},
	}
}

func sockAddr(port int) map[string]any {
	return map[string]any{"socket_address": map[string]any{"address": "127.0.0.1", "port_value": port}}
}

// answer is one response as the test sees it.
type answer struct {
	status   int
	header   http.Header
	body     string
	upstream map[string]string // the echo's view of the request (200 only)
}

func get(t *testing.T, listen int, path string, headers map[string]string) answer {
	t.Helper()
	return do(t, listen, http.MethodGet, path, headers, nil)
}

// do sends a request with method and body (nil: none) to the Envoy
// listening on listen; an upstream answer (200) is decoded.
func do(t *testing.T, listen int, method, path string, headers map[string]string, body io.Reader) answer {
	t.Helper()
	req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", listen, path), body)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if a.status == http.StatusOK {
		if err := json.Unmarshal(b, &a.upstream); err != nil {
			t.Fatalf("%s: upstream answer %q: %v", path, b, err)
		}
	}
	return a
}

// identityView is what a test compares of an allowed request upstream:
// identity headers, credentials and the published metadata.
func identityView(up map[string]string) map[string]string {
	v := map[string]string{}
	for _, k := range []string{"x-user-id", "x-user-roles", "x-tenant-id", "x-consumer-tier", "authorization", "x-tollgate-client-ip"} {
		if val, ok := up[k]; ok {
			v[k] = val
		}
	}
	for _, k := range mdKeys {
		v["x-md-"+k] = up["x-md-"+k]
	}
	return v
}

// goDecisions counts the module's decisions made in Go so far (debug log).
func goDecisions(p *envoyProc) int { return strings.Count(p.log(), "msg=decided") }

func waitLog(p *envoyProc, want int) int {
	for range 50 {
		if n := goDecisions(p); n >= want {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
	return goDecisions(p)
}

func TestModuleInEnvoy(t *testing.T) {
	envoyBin := os.Getenv("ENVOY_BIN")
	if envoyBin == "" {
		t.Skip("ENVOY_BIN not set")
	}
	fx := newFixture(t)
	p := startEnvoy(t, envoyBin, fx.soDir, envoyConfig(filterConfig(fx.iss), fx.listen, fx.admin, fx.upstream), fx.listen, fx.admin)
	s := session{t: t, p: p, iss: fx.iss}
	t.Run("valid token, then the same token from the table", s.validTwice)
	t.Run("refusals", s.refusals)
	t.Run("public route untouched", s.public)
	t.Run("forwarded credentials", s.forwarded)
	t.Run("ABI version and shutdown", s.shutdown)
	if t.Failed() {
		t.Logf("envoy log:\n%s", p.log())
	}
}

// fixture is what every smoke test starts from: the module's directory,
// an issuer, an echo upstream's port and two free ports for Envoy.
type fixture struct {
	soDir                   string
	iss                     *jwttest.Issuer
	upstream, listen, admin int
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	iss, err := jwttest.New("https://idp.test", "api.test")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(echoUpstream(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return fixture{soDir: moduleDir(t), iss: iss, upstream: port, listen: freePort(t), admin: freePort(t)}
}

type session struct {
	t   *testing.T
	p   *envoyProc
	iss *jwttest.Issuer
}

func (s session) token(t *testing.T, claims map[string]any) string {
	t.Helper()
	now := time.Now()
	c := map[string]any{"iss": s.iss.Issuer, "aud": s.iss.Audience, "sub": "alice", "roles": []string{"user"},
		"tenant": "t1", "tier": "gold", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	maps.Copy(c, claims)
	for k, v := range c {
		if v == nil {
			delete(c, k)
		}
	}
	tok, err := s.iss.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
