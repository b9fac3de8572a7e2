package translator

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	dmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/dynamic_modules/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/extauthz/contract"
	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/policy/ir"
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
					if moduleConfigOf(cfg) != nil {
						byModule++
					}
					decided := moduleConfigOf(cfg) != nil || cfg[envoy.JwtAuthnName] != nil ||
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
	for _, m := range listenerHCMs(t, r) {
		all = all && slices.ContainsFunc(m.hcm.GetHttpFilters(), func(hf *hcmv3.HttpFilter) bool {
			return hf.GetName() == envoy.ExtAuthzName
		})
	}
	return all
}

// listenerHCM is one HTTP connection manager of a listener's filter chain.
type listenerHCM struct {
	listener string
	hcm      *hcmv3.HttpConnectionManager
}

// listenerHCMs lists the HTTP connection managers of every filter chain
// of r's listeners, in order (connectionManagers, validate.go).
func listenerHCMs(t *testing.T, r *Resources) []listenerHCM {
	t.Helper()
	var out []listenerHCM
	for _, l := range r.Listeners {
		hcms, err := connectionManagers(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, hcm := range hcms {
			out = append(out, listenerHCM{l.GetName(), hcm})
		}
	}
	return out
}

// moduleConfigOf returns the module's per-route config among a route's
// per-filter configs (keyed moduleFilterName, or the ECDS-served filter's
// name when the module decides signed keys), nil when there is none.
func moduleConfigOf(cfg map[string]*anypb.Any) *anypb.Any {
	for name, a := range cfg {
		if name == moduleFilterName || strings.HasPrefix(name, moduleKeysFilterPrefix) {
			return a
		}
	}
	return nil
}

// checkExtensions returns the context extensions of an ext_authz
// per-route config.
func checkExtensions(t *testing.T, b []byte) map[string]string {
	t.Helper()
	var pr extauthzv3.ExtAuthzPerRoute
	if err := proto.Unmarshal(b, &pr); err != nil {
		t.Fatal(err)
	}
	return pr.GetCheckSettings().GetContextExtensions()
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

// TestModuleEveryLimitedRouteLimited: with the Envoy module on, every
// rate-limited route of every testdata case keeps its limits: the module
// enforces them (its route config has Limits, in quota mode only), or the
// filter path does (a backstop on the route and rate_limit_quota on the
// listener in quota mode; the exact mode as without the module), never
// neither and never both (a request would be counted twice).
func TestModuleEveryLimitedRouteLimited(t *testing.T) {
	byModule, byFilters, charged := 0, 0, 0
	for _, name := range caseNames(t) {
		tc := loadCase(t, name)
		if tc.Gateway == "" || !tc.Config.RateLimits.Quota() {
			continue
		}
		tc.EnvoyModule = "/usr/lib/tollgate/libtollgate_envoy.so"
		r, err := Translate(&tc.Config, tc.Gateway, tc.options())
		if err != nil {
			continue
		}
		limited := limitedRoutes(tc.Config.Gateways)
		rlqs := listenersHave(t, r, envoy.RateLimitQuotaName)
		authz := listenersHave(t, r, envoy.ExtAuthzName)
		for _, er := range allRoutes(r) {
			if !limited[er.GetName()] {
				continue
			}
			cfg := er.GetTypedPerFilterConfig()
			inModule := moduleRouteConfig(t, moduleConfigOf(cfg)).Limits != nil
			inFilters := rlqs && cfg[envoy.LocalRateLimitFilterName(0)] != nil
			if inModule == inFilters {
				t.Errorf("%s: route %q: limits in the module %v, in the filters %v: want exactly one",
					name, er.GetName(), inModule, inFilters)
			}
			// What the module passes (opaque keys) goes to ext_authz, which
			// runs on a route unless its per-route config turns it off
			// (none: it runs, with no context extensions): the charger
			// after it takes the same limits, the Check none.
			if ea := cfg[envoy.ExtAuthzName].GetValue(); inModule && authz && !extAuthzDisabled(t, ea) {
				checkCharged(t, name, r, er.GetName(), cfg, checkExtensions(t, ea))
				charged++
			}
			if inModule {
				byModule++
			} else {
				byFilters++
			}
		}
	}
	if byModule == 0 || byFilters == 0 || charged == 0 {
		t.Fatalf("%d routes limited by the module (%d charged after ext_authz), %d by the filters: the cases exercise too little",
			byModule, charged, byFilters)
	}
	t.Logf("%d routes limited by the module (%d charged after ext_authz), %d by the filters", byModule, charged, byFilters)
}

// checkCharged checks that route's requests admitted by ext_authz are
// charged by the module's charger (right after ext_authz on every
// listener) to the buckets the module charges its own decisions to, and
// not again in the Check (ext: its context extensions).
func checkCharged(t *testing.T, name string, r *Resources, route string, cfg map[string]*anypb.Any, ext map[string]string) {
	t.Helper()
	if ext[contract.KeyRateLimit] != "" {
		t.Errorf("%s: route %q: limits in the module, and in the Check too (%s)", name, route, ext[contract.KeyRateLimit])
	}
	charged := moduleRouteConfig(t, cfg[moduleChargeFilterName]).Limits
	if own := moduleRouteConfig(t, moduleConfigOf(cfg)).Limits; charged == nil || !reflect.DeepEqual(charged, own) {
		t.Errorf("%s: route %q: the charger's limits %+v, want the module's %+v", name, route, charged, own)
	}
	if !filterFollows(t, r, envoy.ExtAuthzName, moduleChargeFilterName) {
		t.Errorf("%s: route %q: a listener lacks the charger right after ext_authz", name, route)
	}
	if err := chargersCharge(t, r); err != "" {
		t.Errorf("%s: route %q: %s", name, route, err)
	}
}

// chargersCharge returns why a listener's charger filter would not charge
// ("" when every one does): it is turned off in the chain, or its config
// is not a charger's (FilterConfig.Charge, with Quota).
func chargersCharge(t *testing.T, r *Resources) string {
	t.Helper()
	for _, m := range listenerHCMs(t, r) {
		for _, hf := range m.hcm.GetHttpFilters() {
			if hf.GetName() != moduleChargeFilterName {
				continue
			}
			var dm dmfilterv3.DynamicModuleFilter
			var s wrapperspb.StringValue
			var fcfg envoymod.FilterConfig
			switch {
			case hf.GetDisabled():
				return "the charger is disabled in " + m.listener + "'s chain"
			case hf.GetTypedConfig().UnmarshalTo(&dm) != nil || dm.GetFilterConfig().UnmarshalTo(&s) != nil ||
				json.Unmarshal([]byte(s.GetValue()), &fcfg) != nil:
				return "the charger's config does not decode"
			case !fcfg.Charge || fcfg.Quota == nil || dm.GetFilterName() != envoymod.FilterName:
				return "the charger's config is not a charger's: " + s.GetValue()
			}
		}
	}
	return ""
}

// filterFollows reports whether every listener's connection manager runs
// filter next right after filter first.
func filterFollows(t *testing.T, r *Resources, first, next string) bool {
	t.Helper()
	for _, m := range listenerHCMs(t, r) {
		hfs := m.hcm.GetHttpFilters()
		i := slices.IndexFunc(hfs, func(hf *hcmv3.HttpFilter) bool { return hf.GetName() == first })
		if i < 0 || i+1 >= len(hfs) || hfs[i+1].GetName() != next {
			return false
		}
	}
	return true
}

// TestModuleLimitsOnlyDropTheQuotaFilters: a gateway whose every limited
// route the module limits runs no set_filter_state, rate_limit_quota or
// backstop filter (their per-request cost is what the module saves).
func TestModuleLimitsOnlyDropTheQuotaFilters(t *testing.T) {
	tc := loadCase(t, "jwt-module-limits")
	r, err := Translate(&tc.Config, tc.Gateway, tc.options())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{envoy.RateLimitQuotaName, envoy.QuotaStateName, envoy.LocalRateLimitFilterName(0)} {
		if listenersHave(t, r, f) {
			t.Errorf("a listener runs %s", f)
		}
	}
}

func limitedRoutes(gws []ir.Gateway) map[string]bool {
	out := map[string]bool{}
	for _, gw := range gws {
		for _, vh := range gw.VirtualHosts {
			for _, rt := range vh.Routes {
				out[rt.Name] = rt.RateLimit.Enabled
			}
		}
	}
	return out
}

// listenersHave reports whether any listener's connection manager runs
// the HTTP filter named name.
func listenersHave(t *testing.T, r *Resources, name string) bool {
	t.Helper()
	for _, m := range listenerHCMs(t, r) {
		if slices.ContainsFunc(m.hcm.GetHttpFilters(), func(hf *hcmv3.HttpFilter) bool { return hf.GetName() == name }) {
			return true
		}
	}
	return false
}

// moduleRouteConfig decodes a route's module config (zero without one).
func moduleRouteConfig(t *testing.T, a *anypb.Any) envoymod.RouteConfig {
	t.Helper()
	var rc envoymod.RouteConfig
	if a == nil {
		return rc
	}
	var pr dmfilterv3.DynamicModuleFilterPerRoute
	if err := a.UnmarshalTo(&pr); err != nil {
		t.Fatal(err)
	}
	var s wrapperspb.StringValue
	if err := pr.GetFilterConfig().UnmarshalTo(&s); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(s.GetValue()), &rc); err != nil {
		t.Fatal(err)
	}
	return rc
}

// TestModuleLimitsWithinTheModuleBounds: a route whose buckets exceed
// what the module holds (envoymod.MaxBucketLimits: here the free tier's
// two limits, two more, and the route's five extra) keeps its limits on
// the filter path: the module refuses such a route's configuration, and
// Envoy then rejects the whole route configuration (every route of the
// gateway 404, e2e TestJWTModuleLimitsMoreThanTheModuleHolds). Every
// module route config of every case stays within the bounds.
func TestModuleLimitsWithinTheModuleBounds(t *testing.T) {
	tc := loadCase(t, "jwt-module-limits")
	units := map[string]time.Duration{"second": time.Second, "minute": time.Minute, "hour": time.Hour,
		"day": 24 * time.Hour, "month": 30 * 24 * time.Hour}
	var extra []ir.Limit
	for u, per := range units {
		extra = append(extra, ir.Limit{Requests: 1000, Per: per, Unit: u})
	}
	for i, tier := range tc.Config.RateLimits.Tiers {
		if tier.Name == "free" {
			tc.Config.RateLimits.Tiers[i].Limits = append(tier.Limits,
				ir.Limit{Requests: 10, Per: time.Second, Unit: "second"}, ir.Limit{Requests: 10000, Per: time.Hour, Unit: "hour"})
		}
	}
	tooMany := false
	for gi := range tc.Config.Gateways {
		for vi := range tc.Config.Gateways[gi].VirtualHosts {
			for ri, rt := range tc.Config.Gateways[gi].VirtualHosts[vi].Routes {
				if rt.Name == "admin" {
					tc.Config.Gateways[gi].VirtualHosts[vi].Routes[ri].RateLimit.Extra = extra
					tooMany = true
				}
			}
		}
	}
	if !tooMany {
		t.Fatal("the case has no route admin")
	}
	r, err := Translate(&tc.Config, tc.Gateway, tc.options())
	if err != nil {
		t.Fatal(err)
	}
	rlqs := listenersHave(t, r, envoy.RateLimitQuotaName)
	for _, er := range allRoutes(r) {
		cfg := er.GetTypedPerFilterConfig()
		rc := moduleRouteConfig(t, moduleConfigOf(cfg))
		if er.GetName() == "admin" && (rc.Limits != nil || !rlqs || cfg[envoy.LocalRateLimitFilterName(0)] == nil) {
			t.Errorf("route admin (9 limits in the free tier's bucket): in the module %v, want the filter path", rc.Limits != nil)
		}
		if rc.Limits == nil {
			continue
		}
		if len(rc.Limits.Tiers) > envoymod.MaxTiers {
			t.Errorf("route %q: %d tiers", er.GetName(), len(rc.Limits.Tiers))
		}
		for _, b := range append(slices.Collect(maps.Values(rc.Limits.Tiers)), rc.Limits.Default, rc.Limits.Unidentified) {
			if len(b.Limits) > envoymod.MaxBucketLimits || len(b.DenyHeaders) > envoymod.MaxDenyHeaders {
				t.Errorf("route %q: bucket %q: %d limits, %d deny headers", er.GetName(), b.ID, len(b.Limits), len(b.DenyHeaders))
			}
		}
	}
}
