package translator

import (
	"testing"

	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/envoy"
)

// TestModuleEveryProtectedRouteDecided: with the Envoy module on, every
// testdata case translated (mixed, key, OAuth 2.0, exact rate limits, Lua
// routes...) leaves no protected route undecided. The module passes a
// route without its per-route config untouched, and so does jwt_authn, so
// each protected route must carry the module's config, a jwt_authn
// requirement (the native key and mixed paths), or reach an ext_authz
// filter of its listener that it does not disable.
func TestModuleEveryProtectedRouteDecided(t *testing.T) {
	checked, byModule := 0, 0
	for _, name := range caseNames(t) {
		tc := loadCase(t, name)
		if tc.Gateway == "" {
			continue
		}
		tc.EnvoyModule = "/usr/lib/tollgate/libtollgate_envoy.so"
		r, err := Translate(&tc.Config, tc.Gateway, tc.options())
		if err != nil {
			continue // a case that does not translate serves nothing
		}
		protected := map[string]bool{}
		for _, gw := range tc.Config.Gateways {
			for _, vh := range gw.VirtualHosts {
				for _, rt := range vh.Routes {
					protected[rt.Name] = !rt.Auth.Public
				}
			}
		}
		extAuthz := listenersHaveExtAuthz(t, r)
		for _, rc := range r.Routes {
			for _, vh := range rc.GetVirtualHosts() {
				for _, er := range vh.GetRoutes() {
					if !protected[er.GetName()] {
						continue
					}
					cfg := er.GetTypedPerFilterConfig()
					checked++
					if cfg[moduleFilterName] != nil {
						byModule++
					}
					decided := cfg[moduleFilterName] != nil || cfg[envoy.JwtAuthnName] != nil ||
						(extAuthz && !extAuthzDisabled(t, cfg[envoy.ExtAuthzName].GetValue()))
					if !decided {
						t.Errorf("%s: protected route %q reaches the upstream undecided (per-filter configs %v)",
							name, er.GetName(), keys(cfg))
					}
				}
			}
		}
	}
	if checked == 0 || byModule == 0 {
		t.Fatalf("%d protected routes checked, %d of them the module's: the cases exercise nothing", checked, byModule)
	}
	t.Logf("%d protected routes checked, %d decided by the module", checked, byModule)
}

// listenersHaveExtAuthz reports whether every listener's connection
// manager runs the ext_authz filter.
func listenersHaveExtAuthz(t *testing.T, r *Resources) bool {
	t.Helper()
	all := len(r.Listeners) > 0
	for _, l := range r.Listeners {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				var hcm hcmv3.HttpConnectionManager
				if f.GetTypedConfig().UnmarshalTo(&hcm) != nil {
					continue
				}
				has := false
				for _, hf := range hcm.GetHttpFilters() {
					has = has || hf.GetName() == envoy.ExtAuthzName
				}
				all = all && has
			}
		}
	}
	return all
}

func extAuthzDisabled(t *testing.T, b []byte) bool {
	t.Helper()
	if b == nil {
		return false
	}
	var pr extauthzv3.ExtAuthzPerRoute
	if err := proto.Unmarshal(b, &pr); err != nil {
		t.Fatal(err)
	}
	return pr.GetDisabled()
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
