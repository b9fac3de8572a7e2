package envoy

import (
	"testing"

	xdsmatcherv3 "github.com/cncf/xds/go/xds/type/matcher/v3"
	compositev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/composite/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// TestRateLimitHeadersRoute: a set writes both headers, "%" escaped for
// the formatter and the RateLimit name quoted; the zero set runs no filter
// (an undefined chain name, which Envoy skips); without a state key there
// is no tree, only on_no_match; the static route config writes the same
// values; both filters are disabled in the chain.
func TestRateLimitHeadersRoute(t *testing.T) {
	set := RateLimitHeaderSet{Policy: `"a%b";q=1;w=60`, Name: "a%b"}
	pr, err := RateLimitHeadersRoute("tollgate.rlq.tier", map[string]RateLimitHeaderSet{"gold": set, "free": {}}, set)
	if err != nil {
		t.Fatal(err)
	}
	on := pr.GetMatcher().GetMatcherTree().GetExactMatchMap().GetMap()
	if got := headerValues(t, on["gold"]); len(got) != 2 || got[0] != `"a%%b";q=1;w=60` ||
		got[1] != `"a%%b";r=%RESP(x-ratelimit-remaining)%;t=%RESP(x-ratelimit-reset)%` {
		t.Errorf("gold: %q", got)
	}
	if got := headerValues(t, on["free"]); got != nil {
		t.Errorf("free (zero set): %q, want no filter", got)
	}
	if got := headerValues(t, pr.GetMatcher().GetOnNoMatch()); len(got) != 2 {
		t.Errorf("on_no_match: %q, want the default set", got)
	}
	one, err := RateLimitHeadersRoute("", map[string]RateLimitHeaderSet{"gold": set}, set)
	if err != nil || one.GetMatcher().GetMatcherType() != nil || len(headerValues(t, one.GetMatcher().GetOnNoMatch())) != 2 {
		t.Errorf("no state key: %v %v, want only on_no_match", one, err)
	}
	static := RateLimitHeadersStaticRoute(set).GetMutations().GetResponseMutations()
	if len(static) != 2 || static[1].GetAppend().GetHeader().GetValue() != `"a%%b";r=%RESP(x-ratelimit-remaining)%;t=%RESP(x-ratelimit-reset)%` {
		t.Errorf("static route: %v", static)
	}
	for _, mk := range []func() (*hcmv3.HttpFilter, error){RateLimitHeadersFilter, RateLimitHeadersStaticFilter} {
		if f, err := mk(); err != nil || !f.GetDisabled() {
			t.Errorf("filter %v %v, want it disabled", f, err)
		}
	}
}

// headerValues returns the header values an action writes, nil when it
// runs no filter.
func headerValues(t *testing.T, on *xdsmatcherv3.Matcher_OnMatch) []string {
	t.Helper()
	var exec compositev3.ExecuteFilterAction
	if err := on.GetAction().GetTypedConfig().UnmarshalTo(&exec); err != nil {
		t.Fatal(err)
	}
	if exec.GetTypedConfig() == nil {
		if exec.GetFilterChainName() != rateLimitHeadersNone {
			t.Errorf("an action with neither a filter nor the none chain: %v", &exec)
		}
		return nil
	}
	var hm headermutationv3.HeaderMutation
	if err := exec.GetTypedConfig().GetTypedConfig().UnmarshalTo(&hm); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range hm.GetMutations().GetResponseMutations() {
		out = append(out, m.GetAppend().GetHeader().GetValue())
	}
	return out
}
