package policy

import (
	"bytes"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

func buildValid(t *testing.T, files []File) *ir.Config {
	t.Helper()
	cfg, ds := Build(files)
	if len(ds) != 0 {
		t.Fatalf("diagnostics: %s", render(ds))
	}
	return cfg
}

func TestCompileGolden(t *testing.T) {
	for _, name := range []string{"valid", "valid_auth", "valid_ratelimit", "valid_http", "valid_observability"} {
		t.Run(name, func(t *testing.T) {
			cfg := buildValid(t, readFiles(t, "testdata/"+name+".yaml"))
			got, err := json.MarshalIndent(cfg, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden := "testdata/" + name + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if want := mustRead(t, golden); !bytes.Equal(append(got, '\n'), want) {
				t.Errorf("IR differs from %s (run go test -update to see the diff in git):\n%s", golden, got)
			}
		})
	}
}

func TestCompileIgnoresYAMLOrder(t *testing.T) {
	a := buildValid(t, readFiles(t, "testdata/valid.yaml"))
	b := buildValid(t, readFiles(t, "testdata/valid_reordered.yaml"))
	if a.Hash() != b.Hash() {
		t.Errorf("hash %s != %s for the reordered policy", a.Hash(), b.Hash())
	}
}

func TestCompileIgnoresListOrder(t *testing.T) {
	p, ds := Load([]File{{Name: "p.yaml", Content: genPolicy(300)}})
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	want := Compile(p).Hash()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		rng.Shuffle(len(p.Routes), func(i, j int) { p.Routes[i], p.Routes[j] = p.Routes[j], p.Routes[i] })
		rng.Shuffle(len(p.Backends), func(i, j int) { p.Backends[i], p.Backends[j] = p.Backends[j], p.Backends[i] })
		rng.Shuffle(len(p.Gateways), func(i, j int) { p.Gateways[i], p.Gateways[j] = p.Gateways[j], p.Gateways[i] })
		if got := Compile(p).Hash(); got != want {
			t.Fatalf("hash %s after shuffling, want %s", got, want)
		}
	}
}

func TestCompilePrecedence(t *testing.T) {
	src := base + `routes:
  - {name: root, backend: be, auth: none}
  - {name: api, backend: be, match: {pathPrefix: /api}, auth: none}
  - {name: api-users, backend: be, match: {pathPrefix: /api/users}, auth: none}
  - {name: re-short, backend: be, match: {pathRegex: /a.*}, auth: none}
  - {name: re-long, backend: be, match: {pathRegex: /api/.*/x}, auth: none}
  - {name: exact-b, backend: be, match: {path: /b}, auth: none}
  - {name: exact-a, backend: be, match: {path: /zzz}, auth: none}
  - {name: t-plain, backend: be, match: {pathPrefix: /t}, auth: none}
  - {name: t-methods, backend: be, match: {pathPrefix: /t, methods: [GET]}, auth: none}
  - {name: t-one-header, backend: be, match: {pathPrefix: /t, headers: [{name: a, present: true}]}, auth: none}
  - {name: t-two-headers, backend: be, match: {pathPrefix: /t, headers: [{name: a, present: true}, {name: b, present: true}]}, auth: none}
  - {name: t-host, backend: be, match: {pathPrefix: /t, hosts: [x.com]}, auth: none}
  - {name: u-b, backend: be, match: {pathPrefix: /u}, auth: none}
  - {name: u-a, backend: be, match: {pathPrefix: /v}, auth: none}
`
	cfg := buildValid(t, []File{{Name: "p.yaml", Content: []byte(src)}})
	gw, _ := cfg.Gateway("gw")
	tests := []struct {
		vhost string
		want  []string
	}{
		{vhost: "x.com", want: []string{
			"exact-a", "exact-b", "re-long", "re-short", "api-users", "api",
			"t-host", "t-two-headers", "t-one-header", "t-methods", "t-plain", "u-a", "u-b", "root",
		}},
		{vhost: "any", want: []string{
			"exact-a", "exact-b", "re-long", "re-short", "api-users", "api",
			"t-two-headers", "t-one-header", "t-methods", "t-plain", "u-a", "u-b", "root",
		}},
	}
	vhosts := map[string]ir.VirtualHost{}
	for _, vh := range gw.VirtualHosts {
		vhosts[vh.Name] = vh
	}
	for _, tt := range tests {
		t.Run(tt.vhost, func(t *testing.T) {
			var got []string
			for _, r := range vhosts[tt.vhost].Routes {
				got = append(got, r.Name)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("order:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestCompileVirtualHostsAndGateways(t *testing.T) {
	src := `version: 1
gateways:
  - {name: pub, listeners: [{name: http, port: 80}]}
  - {name: int, listeners: [{name: http, port: 80}]}
backends: [{name: be, endpoints: ["10.0.0.1:80"]}]
routes:
  - {name: everywhere, backend: be, auth: none}
  - {name: pub-only, gateway: pub, backend: be, match: {hosts: [b.com, a.com], path: /p}, auth: none}
`
	cfg := buildValid(t, []File{{Name: "p.yaml", Content: []byte(src)}})
	type vhost struct {
		name    string
		domains []string
		routes  []string
	}
	summarize := func(g ir.Gateway) []vhost {
		var out []vhost
		for _, vh := range g.VirtualHosts {
			var names []string
			for _, r := range vh.Routes {
				names = append(names, r.Name)
			}
			out = append(out, vhost{vh.Name, vh.Domains, names})
		}
		return out
	}
	tests := []struct {
		gateway string
		want    []vhost
	}{
		{gateway: "int", want: []vhost{{"any", []string{"*"}, []string{"everywhere"}}}},
		{gateway: "pub", want: []vhost{
			{"a.com", []string{"a.com"}, []string{"pub-only", "everywhere"}},
			{"any", []string{"*"}, []string{"everywhere"}},
			{"b.com", []string{"b.com"}, []string{"pub-only", "everywhere"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.gateway, func(t *testing.T) {
			g, _ := cfg.Gateway(tt.gateway)
			got := summarize(g)
			if !slices.EqualFunc(got, tt.want, func(a, b vhost) bool {
				return a.name == b.name && slices.Equal(a.domains, b.domains) && slices.Equal(a.routes, b.routes)
			}) {
				t.Errorf("virtual hosts:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestCompileEmptyCatchAll(t *testing.T) {
	src := base + "routes: [{name: r, backend: be, match: {hosts: [a.com]}, auth: none}]\n"
	cfg := buildValid(t, []File{{Name: "p.yaml", Content: []byte(src)}})
	vhs := cfg.Gateways[0].VirtualHosts
	if len(vhs) != 2 || vhs[1].Name != "any" || vhs[1].Routes == nil || len(vhs[1].Routes) != 0 {
		t.Errorf("virtual hosts = %+v, want a.com and an empty catch-all", vhs)
	}
}

func TestCompileDefaults(t *testing.T) {
	cfg := buildValid(t, []File{{Name: "p.yaml", Content: []byte(base + "routes: [{name: r, backend: be, auth: none}]\n")}})
	want := &ir.Config{
		Gateways: []ir.Gateway{{
			Name:      "gw",
			Listeners: []ir.Listener{{Name: "http", Address: "0.0.0.0", Port: 8080}},
			VirtualHosts: []ir.VirtualHost{{Name: "any", Domains: []string{"*"}, Routes: []ir.Route{{
				Name: "r", Match: ir.Match{PathPrefix: "/"}, Backend: "be", Timeout: 15 * time.Second,
				Auth: ir.RouteAuth{Public: true},
			}}}},
			Auth: ir.GatewayAuth{StatusOnError: 503, Timeout: 200 * time.Millisecond},
			Edge: ir.Edge{
				StripInternalHeaders: true, MaxRequestHeadersKB: 60, MaxHeadersCount: 100,
				RequestHeadersTimeout: 10 * time.Second, StreamIdleTimeout: 5 * time.Minute, IdleTimeout: time.Hour,
			},
		}},
		Backends: []ir.Backend{{
			Name: "be", Endpoints: []ir.Endpoint{{Host: "10.0.0.1", Port: 80}},
			LoadBalancing: ir.RoundRobin, ConnectTimeout: 5 * time.Second,
		}},
		Auth: ir.Auth{IdentityHeaders: ir.IdentityHeaders{
			UserID: "x-user-id", Roles: "x-user-roles", Tenant: "x-tenant-id", Tier: "x-consumer-tier",
		}},
		RateLimits: ir.RateLimits{FailureMode: ir.FailOpen},
	}
	if cfg.Hash() != want.Hash() {
		got, _ := json.Marshal(cfg)
		wantJSON, _ := json.Marshal(want)
		t.Errorf("config:\n got %s\nwant %s", got, wantJSON)
	}
}

// TestCompileGatewayHTTPPerGateway checks that a gateway's CORS policy and
// compression reach only its own routes, and not a route that sets its
// own, when the routes are shared by several gateways and virtual hosts
// (compiled once, then copied; ir.Route.HTTP is copied on write), and
// that a route that changes nothing has no RouteHTTP at all.
func TestCompileGatewayHTTPPerGateway(t *testing.T) {
	src := `version: 1
gateways:
  - {name: pub, listeners: [{name: http, port: 80}], cors: {allowOrigins: ["https://a.example.com"]}, compression: {}}
  - {name: int, listeners: [{name: http, port: 81}]}
backends: [{name: be, endpoints: ["10.0.0.1:80"]}]
routes:
  - {name: plain, backend: be, auth: none}
  - {name: own, backend: be, auth: none, cors: none, match: {pathPrefix: /own}}
  - {name: hosted, backend: be, auth: none, match: {hosts: [a.com], pathPrefix: /h}}
  - {name: lua, backend: be, auth: none, match: {pathPrefix: /lua}, lua: "function envoy_on_request(h) end"}
`
	cfg := buildValid(t, []File{{Name: "p.yaml", Content: []byte(src)}})
	type want struct{ cors, compression bool }
	tests := []struct {
		gateway string
		routes  map[string]want
	}{
		{gateway: "pub", routes: map[string]want{"plain": {true, true}, "own": {false, true}, "hosted": {true, true}, "lua": {true, true}}},
		{gateway: "int", routes: map[string]want{"plain": {}, "own": {}, "hosted": {}, "lua": {}}},
	}
	for _, tt := range tests {
		t.Run(tt.gateway, func(t *testing.T) {
			g, _ := cfg.Gateway(tt.gateway)
			g.EachRoute(func(r *ir.Route) {
				w := tt.routes[r.Name]
				h := r.HTTPRules()
				if got := (want{h.CORS != nil, h.Compression != nil}); got != w {
					t.Errorf("route %s: CORS, compression set = %v, want %v", r.Name, got, w)
				}
				if w == (want{}) && r.Name != "lua" && r.HTTP != nil {
					t.Errorf("route %s: HTTP = %+v, want nil", r.Name, *r.HTTP)
				}
			})
		})
	}
}
