package translator

import (
	"slices"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// TestHTTPFilterOrder checks the agreed decode order: header_mutation →
// cors → ext_authz → ratelimit → compressors → lua → identity guard →
// router.
func TestHTTPFilterOrderWithHTTPFeatures(t *testing.T) {
	tc := loadCase(t, "http-features")
	r := &tc.Config.Gateways[0].VirtualHosts[0].Routes[3] // users, forwarded to a backend
	r.Auth = ir.RouteAuth{Methods: []string{ir.MethodAPIKey}}
	r.RateLimit = ir.RouteRateLimit{Enabled: true, Consumer: true} // taken in the ext_authz Check
	// A public rate-limited route keeps the ratelimit filter.
	tc.Config.Gateways[0].VirtualHosts[0].Routes[1].RateLimit = ir.RouteRateLimit{Enabled: true, Anonymous: true}
	opts := Options{AuthzAddress: "127.0.0.1:18001", RateLimitAddress: "127.0.0.1:18002"}
	res, err := Translate(&tc.Config, tc.Gateway, opts)
	if err != nil {
		t.Fatal(err)
	}
	hcms, err := connectionManagers(res.Listeners[0])
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range hcms[0].GetHttpFilters() {
		name := f.GetName()
		if strings.HasPrefix(name, envoy.CompressorName+".") {
			name = envoy.CompressorName + "." + strings.Split(name, ".")[4] // drop the settings id
		}
		got = append(got, name)
	}
	want := []string{
		envoy.HeaderMutationName, envoy.CORSName, envoy.ExtAuthzName, envoy.RateLimitName,
		envoy.CompressorName + ".brotli", envoy.CompressorName + ".gzip", envoy.CompressorName + ".gzip",
		envoy.IdentitySnapshotName, envoy.LuaName, envoy.IdentityGuardName, envoy.RouterName,
	}
	if !slices.Equal(got, want) {
		t.Errorf("filters\n got %q\nwant %q", got, want)
	}
}

// TestHTTPFeatureFiltersOnlyWhenUsed checks that a gateway without CORS,
// compression or Lua gets none of those filters nor per-route configs.
func TestHTTPFeatureFiltersOnlyWhenUsed(t *testing.T) {
	res := translateCase(t, "minimal")
	hcms, err := connectionManagers(res.Listeners[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range hcms[0].GetHttpFilters() {
		if n := f.GetName(); n == envoy.CORSName || n == envoy.LuaName || n == envoy.IdentityGuardName || n == envoy.IdentitySnapshotName || strings.HasPrefix(n, envoy.CompressorName) {
			t.Errorf("gateway without transformations has filter %q", n)
		}
	}
	for _, rt := range res.Routes[0].GetVirtualHosts()[0].GetRoutes() {
		if len(rt.GetTypedPerFilterConfig()) != 0 {
			t.Errorf("route %q has per-filter configs %v", rt.GetName(), rt.GetTypedPerFilterConfig())
		}
	}
}

// TestCompressorsPerRoute checks that each route enables only its own
// compressors: the others are disabled on it.
func TestCompressorsPerRoute(t *testing.T) {
	res := translateCase(t, "http-features")
	for _, rt := range res.Routes[0].GetVirtualHosts()[0].GetRoutes() {
		var enabled []string
		hcms, _ := connectionManagers(res.Listeners[0])
		for _, f := range hcms[0].GetHttpFilters() {
			if strings.HasPrefix(f.GetName(), envoy.CompressorName) {
				if _, disabled := rt.GetTypedPerFilterConfig()[f.GetName()]; !disabled {
					enabled = append(enabled, strings.Split(f.GetName(), ".")[4])
				}
			}
		}
		want := map[string][]string{"users": {"gzip"}, "orders": nil}[rt.GetName()]
		if rt.GetName() != "users" && rt.GetName() != "orders" {
			want = []string{"brotli", "gzip"} // the gateway's
		}
		if !slices.Equal(enabled, want) {
			t.Errorf("route %q: compressors %v enabled, want %v", rt.GetName(), enabled, want)
		}
	}
}

// TestIdentityGuardOnlyOnLuaRoutes checks that the identity snapshot and
// guard run on the routes with a Lua script and are turned off on every
// other route.
func TestIdentityGuardOnlyOnLuaRoutes(t *testing.T) {
	tc := loadCase(t, "http-features")
	res, err := Translate(&tc.Config, tc.Gateway, Options{AuthzAddress: "127.0.0.1:18001"})
	if err != nil {
		t.Fatal(err)
	}
	lua := map[string]bool{}
	tc.Config.Gateways[0].EachRoute(func(r *ir.Route) { lua[r.Name] = r.HTTPRules().Lua != "" })
	for _, rt := range res.Routes[0].GetVirtualHosts()[0].GetRoutes() {
		for _, name := range []string{envoy.IdentitySnapshotName, envoy.IdentityGuardName} {
			if _, off := rt.GetTypedPerFilterConfig()[name]; off == lua[rt.GetName()] {
				t.Errorf("route %q (lua %v): %s turned off = %v", rt.GetName(), lua[rt.GetName()], name, off)
			}
		}
	}
}
