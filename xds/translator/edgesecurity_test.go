package translator

import (
	"slices"
	"strings"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// routeConfigOf returns, by listener name, the route configuration its HTTP
// connection manager fetches, checking that the configuration exists.
func routeConfigOf(t *testing.T, r *Resources) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range r.Listeners {
		name := decodeHCM(t, l).GetRds().GetRouteConfigName()
		if !slices.ContainsFunc(r.Routes, func(rc *routev3.RouteConfiguration) bool { return rc.GetName() == name }) {
			t.Fatalf("listener %q: route configuration %q not in the resources", l.GetName(), name)
		}
		out[l.GetName()] = name
	}
	return out
}

// TestRouteConfigNameFollowsHTTPFilters checks the defence against draining
// connections serving new routes with old filters (bindRouteConfig): the
// RDS name changes exactly when the listener's HTTP filters change.
func TestRouteConfigNameFollowsHTTPFilters(t *testing.T) {
	base := routeConfigOf(t, translateCase(t, "minimal"))["http"]
	if l, hash, _ := strings.Cut(base, routeConfigSeparator); l != "http" || len(hash) != 8 {
		t.Fatalf("route configuration name %q, want http_<8 hex digits>", base)
	}
	tests := []struct {
		name    string
		mutate  func(tc *testCase)
		changed bool
	}{
		{"same policy", func(*testCase) {}, false},
		{"a public route more (routes only)", func(tc *testCase) {
			vh := &tc.Config.Gateways[0].VirtualHosts[0]
			r := vh.Routes[0]
			r.Name, r.Match.PathPrefix = "other", "/other"
			vh.Routes = append([]ir.Route{r}, vh.Routes...)
		}, false},
		{"first protected route (ext_authz added)", func(tc *testCase) {
			tc.AuthzAddress = "10.0.0.9:9191"
			tc.Config.Gateways[0].VirtualHosts[0].Routes[0].Auth = ir.RouteAuth{Methods: []string{ir.MethodAPIKey}}
			tc.Config.Auth.APIKeys = &ir.APIKeys{Header: "x-api-key"}
		}, true},
		{"edge strip of internal headers (filter config)", func(tc *testCase) {
			tc.Config.Gateways[0].Edge.StripInternalHeaders = true
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := loadCase(t, "minimal")
			tt.mutate(&tc)
			r, err := Translate(&tc.Config, tc.Gateway, tc.options())
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(r); err != nil {
				t.Fatal(err)
			}
			got := routeConfigOf(t, r)["http"]
			if (got != base) != tt.changed {
				t.Errorf("route configuration %q (was %q), want changed = %v", got, base, tt.changed)
			}
		})
	}
}

// TestRouteConfigNameOfRedirectListener checks that turning redirectHTTPS
// off gives the plaintext listener a route configuration of another name
// than the redirect's (whose chain runs the router only).
func TestRouteConfigNameOfRedirectListener(t *testing.T) {
	tc := loadCase(t, "tls")
	redirect := routeConfigOf(t, translateCase(t, "tls"))
	tc.Config.Gateways[0].RedirectHTTPS = false
	r, err := Translate(&tc.Config, tc.Gateway, tc.options())
	if err != nil {
		t.Fatal(err)
	}
	plain := routeConfigOf(t, r)
	if redirect["http"] == plain["http"] {
		t.Errorf("plaintext listener keeps route configuration %q with and without the redirect", plain["http"])
	}
	if redirect["https"] != plain["https"] {
		t.Errorf("TLS listener's route configuration changed from %q to %q", redirect["https"], plain["https"])
	}
}

// TestPublicRoutesStripAPIKey checks that the edge header mutation removes
// the API-key header on public routes only, keeping a route's query
// mutations, and that without API keys nothing is removed.
func TestPublicRoutesStripAPIKey(t *testing.T) {
	removed := func(r *Resources) map[string][]string {
		out := map[string][]string{}
		for _, rt := range r.Routes[0].GetVirtualHosts()[0].GetRoutes() {
			a := rt.GetTypedPerFilterConfig()[envoy.HeaderMutationName]
			if a == nil {
				continue
			}
			hm := &headermutationv3.HeaderMutationPerRoute{}
			if err := a.UnmarshalTo(hm); err != nil {
				t.Fatal(err)
			}
			for _, m := range hm.GetMutations().GetRequestMutations() {
				out[rt.GetName()] = append(out[rt.GetName()], m.GetRemove())
			}
			if q := len(hm.GetMutations().GetQueryParameterMutations()); q > 0 {
				out[rt.GetName()] = append(out[rt.GetName()], "query")
			}
		}
		return out
	}
	got := removed(translateAuth(t, func(tc *testCase) {
		tc.Config.Gateways[0].VirtualHosts[0].Routes[0].EditHTTP().Query = ir.QueryRules{Remove: []string{"debug"}}
	}))
	want := map[string][]string{"health": {"x-api-key", "query"}, "web": {"x-api-key"}}
	if len(got) != len(want) || !slices.Equal(got["health"], want["health"]) || !slices.Equal(got["web"], want["web"]) {
		t.Errorf("per-route header removals = %v, want %v", got, want)
	}
	if got := removed(translateAuth(t, func(tc *testCase) { tc.Config.Auth.APIKeys = nil })); len(got) != 0 {
		t.Errorf("without API keys: per-route header removals %v, want none", got)
	}
}
