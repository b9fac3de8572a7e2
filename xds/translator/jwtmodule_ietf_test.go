package translator

import (
	"strings"
	"testing"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/extauthz/envoymod"
)

// TestModuleIETFHeadersAreTheFilterPaths: with rateLimits.ietfHeaders the
// module keeps its routes (moduleTakesLimits), and each of their buckets
// carries exactly the RateLimit-Policy and RateLimit the filter path's
// header filters write for the same tier when the same policy is
// translated without the module (an absent or unknown tier: the default
// bucket, on_no_match; no headers: no IETF), with no headers filter
// config left on the route (the module writes them, once).
func TestModuleIETFHeadersAreTheFilterPaths(t *testing.T) {
	tc := loadCase(t, "jwt-module-limits-ietf")
	filters := tc
	filters.EnvoyModule = ""
	byFilters := routeIETFHeaders(t, ietfTranslate(t, filters))
	checked, none := 0, 0
	for _, er := range allRoutes(ietfTranslate(t, tc)) {
		pf := er.GetTypedPerFilterConfig()
		limits := moduleRouteConfig(t, moduleConfigOf(pf)).Limits
		if limits == nil {
			continue
		}
		if pf[envoy.RateLimitHeadersName] != nil || pf[envoy.RateLimitHeadersStaticName] != nil {
			t.Errorf("route %s: limits in the module and a headers filter config", er.GetName())
		}
		want := byFilters[er.GetName()]
		for tier, b := range limits.Tiers {
			checkModuleIETF(t, er.GetName()+"/"+tier, b, tierHeaders(want, tier))
		}
		checkModuleIETF(t, er.GetName()+"/default", limits.Default, tierHeaders(want, ""))
		checkModuleIETF(t, er.GetName()+"/unidentified", limits.Unidentified, nil)
		checked++
		for _, b := range limits.Tiers {
			if b.IETF == nil {
				none++
			}
		}
	}
	if checked < 3 || none == 0 {
		t.Fatalf("%d routes limited by the module, %d tiers without headers: the case exercises too little", checked, none)
	}
}

// ietfTranslate translates tc and validates the result.
func ietfTranslate(t *testing.T, tc testCase) *Resources {
	t.Helper()
	r, err := Translate(&tc.Config, tc.Gateway, tc.options())
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(r); err != nil {
		t.Fatal(err)
	}
	return r
}

// routeIETFHeaders is each route's headers by tier as the filter path
// writes them (ietfRouteHeaders; a static config under ""), nil for none.
func routeIETFHeaders(t *testing.T, r *Resources) map[string]map[string][]string {
	t.Helper()
	out := map[string]map[string][]string{}
	for _, er := range allRoutes(r) {
		pf := er.GetTypedPerFilterConfig()
		out[er.GetName()] = ietfRouteHeaders(t, pf[envoy.RateLimitHeadersName])
		if static := staticRouteHeaders(t, pf[envoy.RateLimitHeadersStaticName]); static != nil {
			out[er.GetName()] = map[string][]string{"": static}
		}
	}
	return out
}

// tierHeaders is what cases write for tier: its own case, else
// on_no_match's.
func tierHeaders(cases map[string][]string, tier string) []string {
	if h, ok := cases[tier]; ok {
		return h
	}
	return cases[""]
}

// checkModuleIETF checks that bucket b writes want (the filter path's
// ratelimit-policy and ratelimit formatter values; nil: nothing).
func checkModuleIETF(t *testing.T, name string, b envoymod.LimitBucket, want []string) {
	t.Helper()
	if b.IETF == nil {
		if want != nil {
			t.Errorf("%s: no IETF headers, the filter path writes %q", name, want)
		}
		return
	}
	lit := func(s string) string { return strings.ReplaceAll(s, "%", "%%") }
	got := []string{b.IETF.Policy, lit(b.IETF.RateLimitR) + "%RESP(x-ratelimit-remaining)%" +
		lit(b.IETF.RateLimitT) + "%RESP(x-ratelimit-reset)%"}
	if want == nil || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("%s: IETF headers %q, the filter path writes %q", name, got, want)
	}
}
