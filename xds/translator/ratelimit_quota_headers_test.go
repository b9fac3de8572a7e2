package translator

import (
	"slices"
	"testing"
	"time"

	xdsmatcherv3 "github.com/cncf/xds/go/xds/type/matcher/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	compositev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/composite/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	networkinputsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/matching/common_inputs/network/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// TestHeaderSetNamesTheReportedBucket: RateLimit names the limit whose
// backstop bucket the first backstop filter reports (the one that refills
// from empty soonest; on a tie the smaller fill rate; on equal rates the
// tier's, whose action comes first), and RateLimit-Policy lists every
// limit in exact mode's format and order.
func TestHeaderSetNamesTheReportedBucket(t *testing.T) {
	lim := func(n uint64, per time.Duration) ir.Limit { return ir.Limit{Requests: n, Per: per} }
	for _, tt := range []struct {
		name           string
		primary, extra []namedLimit
		want           envoy.RateLimitHeaderSet
	}{
		{"same refill, the tier refills slower", []namedLimit{{"tiny", lim(5, time.Minute)}, {"tiny", lim(50, time.Hour)}},
			[]namedLimit{{"api", lim(20, time.Minute)}},
			envoy.RateLimitHeaderSet{Policy: `"tiny";q=5;w=60, "tiny";q=50;w=3600, "api";q=20;w=60`, Name: "tiny"}},
		{"same refill, the extra refills slower", []namedLimit{{"gold", lim(100, time.Minute)}}, []namedLimit{{"api", lim(20, time.Minute)}},
			envoy.RateLimitHeaderSet{Policy: `"gold";q=100;w=60, "api";q=20;w=60`, Name: "api"}},
		{"the tier's second refills first", []namedLimit{{"pro", lim(10, time.Second)}}, []namedLimit{{"api", lim(1, time.Minute)}},
			envoy.RateLimitHeaderSet{Policy: `"pro";q=10;w=1, "api";q=1;w=60`, Name: "pro"}},
		{"the extra minute refills before the tier's hour", []namedLimit{{"pro", lim(1000, time.Hour)}}, []namedLimit{{"api", lim(5, time.Minute)}},
			envoy.RateLimitHeaderSet{Policy: `"pro";q=1000;w=3600, "api";q=5;w=60`, Name: "api"}},
		{"a burst refills later", []namedLimit{{"b", ir.Limit{Requests: 10, Per: time.Second, Burst: 600}}}, []namedLimit{{"api", lim(30, time.Minute)}},
			envoy.RateLimitHeaderSet{Policy: `"b";q=10;w=1, "api";q=30;w=60`, Name: "api"}},
		{"equal buckets: the tier's", []namedLimit{{"t", lim(60, time.Minute)}}, []namedLimit{{"api", ir.Limit{Requests: 1, Per: time.Second, Burst: 60}}},
			envoy.RateLimitHeaderSet{Policy: `"t";q=60;w=60, "api";q=1;w=1`, Name: "t"}},
		{"unlimited tier: the route's", nil, []namedLimit{{"api", lim(20, time.Minute)}},
			envoy.RateLimitHeaderSet{Policy: `"api";q=20;w=60`, Name: "api"}},
		{"anonymous", []namedLimit{{"anonymous", lim(3, time.Minute)}}, nil,
			envoy.RateLimitHeaderSet{Policy: `"anonymous";q=3;w=60`, Name: "anonymous"}},
		{"no limits: none", nil, nil, envoy.RateLimitHeaderSet{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := headerSet(tt.primary, tt.extra); got != tt.want {
				t.Errorf("headerSet = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// ietfCase translates the ratelimit_quota_ietf case (ratelimit_quota with
// rateLimits.ietfHeaders).
func ietfCase(t *testing.T, name string) *Resources {
	t.Helper()
	tc := loadCase(t, name)
	r, err := Translate(&tc.Config, tc.Gateway, tc.options())
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestIETFHeadersLayout: with rateLimits.ietfHeaders the composite filter
// sits right after RLQS and before the first backstop filter (so it reads
// the backstop's X-RateLimit-* on the way back and never sees RLQS's
// denials), disabled unless a route enables it; every limited route maps
// each tier to its headers, an absent or unknown tier (on_no_match) to the
// default tier's (an unlimited tier on a route without extra limits, which
// this case lacks, gets none: e2e TestQuotaIETFHeaders); a route whose
// requests all get one set (no tiers: extra or anonymous limits only) has
// the static filter instead; a route without limits neither. Without the
// setting there is neither the filter nor a route config.
func TestIETFHeadersLayout(t *testing.T) {
	r := ietfCase(t, "ratelimit_quota_ietf")
	hcm := decodeHCM(t, r.Listeners[0])
	names := filterNames(hcm)
	i := slices.Index(names, envoy.RateLimitQuotaName)
	want := []string{envoy.RateLimitQuotaName, envoy.RateLimitHeadersName, envoy.RateLimitHeadersStaticName, envoy.LocalRateLimitFilterName(0)}
	if i < 0 || len(names) < i+4 || !slices.Equal(names[i:i+4], want) || !hcm.GetHttpFilters()[i+1].GetDisabled() || !hcm.GetHttpFilters()[i+2].GetDisabled() {
		t.Fatalf("filters %v, want %v, the headers filters disabled", names, want)
	}
	free := []string{`"free";q=100;w=60, "free";q=1000;w=86400, "orders";q=20;w=1`, `"orders";r=%RESP(x-ratelimit-remaining)%;t=%RESP(x-ratelimit-reset)%`}
	wantHeaders := map[string]map[string][]string{ // route -> tier ("" on_no_match) -> ratelimit-policy, ratelimit
		"orders": {"enterprise": {`"orders";q=20;w=1`, free[1]}, "free": free, "": free,
			"pro": {`"pro";q=1000;w=60, "orders";q=20;w=1`, free[1]}},
		"export": {"enterprise": {`"export";q=500;w=3600`, `"export";r=%RESP(x-ratelimit-remaining)%;t=%RESP(x-ratelimit-reset)%`},
			"free": {`"free";q=100;w=60, "free";q=1000;w=86400, "export";q=500;w=3600`, `"free";r=%RESP(x-ratelimit-remaining)%;t=%RESP(x-ratelimit-reset)%`},
			"pro":  {`"pro";q=1000;w=60, "export";q=500;w=3600`, `"pro";r=%RESP(x-ratelimit-remaining)%;t=%RESP(x-ratelimit-reset)%`},
			"":     {`"free";q=100;w=60, "free";q=1000;w=86400, "export";q=500;w=3600`, `"free";r=%RESP(x-ratelimit-remaining)%;t=%RESP(x-ratelimit-reset)%`}},
		"search": {"": {`"search";q=100;w=60`, `"search";r=%RESP(x-ratelimit-remaining)%;t=%RESP(x-ratelimit-reset)%`}},
		"web":    {"": {`"anonymous";q=5;w=60`, `"anonymous";r=%RESP(x-ratelimit-remaining)%;t=%RESP(x-ratelimit-reset)%`}},
		"health": nil,
	}
	for _, rc := range r.Routes {
		for _, vh := range rc.GetVirtualHosts() {
			for _, rt := range vh.GetRoutes() {
				pf := rt.GetTypedPerFilterConfig()
				got := ietfRouteHeaders(t, pf[envoy.RateLimitHeadersName])
				if static := staticRouteHeaders(t, pf[envoy.RateLimitHeadersStaticName]); static != nil {
					if got != nil {
						t.Errorf("route %s: both headers filters configured", rt.GetName())
					}
					got = map[string][]string{"": static}
				}
				if !equalCases(got, wantHeaders[rt.GetName()]) {
					t.Errorf("route %s: %q, want %q", rt.GetName(), got, wantHeaders[rt.GetName()])
				}
				if tiered := len(wantHeaders[rt.GetName()]) > 1; tiered != (pf[envoy.RateLimitHeadersName] != nil) {
					t.Errorf("route %s: composite config %v, want it only where the headers depend on the tier", rt.GetName(), !tiered)
				}
			}
		}
	}
	off := ietfCase(t, "ratelimit_quota")
	for _, name := range []string{envoy.RateLimitHeadersName, envoy.RateLimitHeadersStaticName} {
		if slices.Contains(filterNames(decodeHCM(t, off.Listeners[0])), name) {
			t.Errorf("ietfHeaders off: the %s filter is in the chain", name)
		}
		for _, rc := range off.Routes {
			for _, vh := range rc.GetVirtualHosts() {
				for _, rt := range vh.GetRoutes() {
					if rt.GetTypedPerFilterConfig()[name] != nil {
						t.Errorf("ietfHeaders off: route %s has a %s config", rt.GetName(), name)
					}
				}
			}
		}
	}
}

// ietfRouteHeaders decodes a route's RateLimitHeadersName config: per tier
// ("" for on_no_match) the ratelimit-policy and ratelimit values, nil for
// no headers; nil without a config.
func ietfRouteHeaders(t *testing.T, a *anypb.Any) map[string][]string {
	t.Helper()
	if a == nil {
		return nil
	}
	var pr compositev3.CompositePerRoute
	if err := a.UnmarshalTo(&pr); err != nil {
		t.Fatal(err)
	}
	m := pr.GetMatcher()
	out := map[string][]string{"": actionHeaders(t, m.GetOnNoMatch())}
	if tree := m.GetMatcherTree(); tree != nil {
		var in networkinputsv3.FilterStateInput
		if err := tree.GetInput().GetTypedConfig().UnmarshalTo(&in); err != nil || in.GetKey() != ir.QuotaStateTier {
			t.Fatalf("matcher input %v (%v), want the filter state %s", tree.GetInput(), err, ir.QuotaStateTier)
		}
		for tier, on := range tree.GetExactMatchMap().GetMap() {
			out[tier] = actionHeaders(t, on)
		}
	}
	return out
}

// staticRouteHeaders decodes a route's RateLimitHeadersStaticName config
// (nil without one) as actionHeaders does.
func staticRouteHeaders(t *testing.T, a *anypb.Any) []string {
	t.Helper()
	if a == nil {
		return nil
	}
	var pr headermutationv3.HeaderMutationPerRoute
	if err := a.UnmarshalTo(&pr); err != nil {
		t.Fatal(err)
	}
	return mutationHeaders(t, pr.GetMutations())
}

// actionHeaders returns the ratelimit-policy and ratelimit values a
// composite action writes, failing unless both replace any upstream value;
// nil for an action that runs no filter.
func actionHeaders(t *testing.T, on *xdsmatcherv3.Matcher_OnMatch) []string {
	t.Helper()
	var exec compositev3.ExecuteFilterAction
	if err := on.GetAction().GetTypedConfig().UnmarshalTo(&exec); err != nil {
		t.Fatal(err)
	}
	if exec.GetTypedConfig() == nil {
		return nil
	}
	var hm headermutationv3.HeaderMutation
	if err := exec.GetTypedConfig().GetTypedConfig().UnmarshalTo(&hm); err != nil {
		t.Fatal(err)
	}
	return mutationHeaders(t, hm.GetMutations())
}

// mutationHeaders returns the ratelimit-policy and ratelimit values m
// writes, failing unless both replace any upstream value.
func mutationHeaders(t *testing.T, m *headermutationv3.Mutations) []string {
	t.Helper()
	var out []string
	for i, m := range m.GetResponseMutations() {
		h := m.GetAppend()
		if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD || h.GetHeader().GetKey() != []string{"ratelimit-policy", "ratelimit"}[i] {
			t.Errorf("mutation %d: %v, want ratelimit-policy then ratelimit, overwriting", i, h)
		}
		out = append(out, h.GetHeader().GetValue())
	}
	return out
}

func equalCases(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !slices.Equal(v, w) {
			return false
		}
	}
	return true
}
