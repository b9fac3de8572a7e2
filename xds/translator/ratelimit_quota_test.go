package translator

import (
	"slices"
	"testing"

	xdsmatcherv3 "github.com/cncf/xds/go/xds/type/matcher/v3"
	rlqv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rate_limit_quota/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// quotaCase translates the ratelimit_quota case and returns its RLQS
// filter config and the IR.
func quotaCase(t *testing.T) (*rlqv3.RateLimitQuotaFilterConfig, testCase, []string) {
	t.Helper()
	tc := loadCase(t, "ratelimit_quota")
	r, err := Translate(&tc.Config, tc.Gateway, tc.options())
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(r); err != nil {
		t.Fatal(err)
	}
	hcm := decodeHCM(t, r.Listeners[0])
	names := filterNames(hcm)
	for _, f := range hcm.GetHttpFilters() {
		if f.GetName() == envoy.RateLimitQuotaName {
			return unpack(t, f, &rlqv3.RateLimitQuotaFilterConfig{}), tc, names
		}
	}
	t.Fatalf("no rate_limit_quota filter in %v", names)
	return nil, tc, nil
}

// TestQuotaFilterOrder: quota mode replaces the ratelimit filter by the
// quota state, RLQS and backstop filters, in that order, after ext_authz.
func TestQuotaFilterOrder(t *testing.T) {
	_, _, names := quotaCase(t)
	i := slices.Index(names, envoy.ExtAuthzName)
	want := []string{envoy.QuotaStateName, envoy.RateLimitQuotaName, envoy.LocalRateLimitName}
	if i < 0 || len(names) < i+4 || !slices.Equal(names[i+1:i+4], want) || slices.Contains(names, envoy.RateLimitName) {
		t.Fatalf("filters %v, want %v right after ext_authz and no ratelimit filter", names, want)
	}
}

// TestQuotaMatcherCoversEveryLimitedRoute: every rate-limited route has a
// matcher, and a request whose key is missing lands in a DENY_ALL bucket,
// never in no bucket (which Envoy would let through unlimited).
func TestQuotaMatcherCoversEveryLimitedRoute(t *testing.T) {
	cfg, tc, _ := quotaCase(t)
	routes := cfg.GetBucketMatchers().GetMatcherTree().GetExactMatchMap().GetMap()
	gw, _ := tc.Config.Gateway(tc.Gateway)
	limited := 0
	gw.EachRoute(func(r *ir.Route) {
		if !r.RateLimit.Enabled {
			return
		}
		limited++
		m := routes[r.Name].GetMatcher()
		if m == nil {
			t.Errorf("route %q: rate limited but not in the bucket matcher", r.Name)
			return
		}
		deny := bucketSettings(t, m.GetOnNoMatch())
		if deny.GetBucketIdBuilder().GetBucketIdBuilder()[ir.BucketKeyBucket].GetStringValue() != ir.BucketStatic(ir.BucketKindDeny, r.Name, "") ||
			deny.GetNoAssignmentBehavior().GetFallbackRateLimit().GetBlanketRule() != typev3.RateLimitStrategy_DENY_ALL {
			t.Errorf("route %q: a missing key goes to %v, want the DENY_ALL deny bucket", r.Name, deny)
		}
	})
	if limited == 0 || len(routes) != limited {
		t.Fatalf("%d limited routes, %d in the matcher", limited, len(routes))
	}
}

// TestQuotaBucketsFallBackToBlanketRulesOnly: no bucket falls back to a
// token bucket before its first assignment (that crashes Envoy 1.40), and
// every denial is a 429 with a Retry-After.
func TestQuotaBucketsFallBackToBlanketRulesOnly(t *testing.T) {
	cfg, _, _ := quotaCase(t)
	n := 0
	walkBuckets(t, cfg.GetBucketMatchers(), func(b *rlqv3.RateLimitQuotaBucketSettings) {
		n++
		if b.GetNoAssignmentBehavior().GetFallbackRateLimit().GetTokenBucket() != nil {
			t.Errorf("bucket %v falls back to a token bucket before its first assignment", b.GetBucketIdBuilder())
		}
		d := b.GetDenyResponseSettings()
		if d.GetHttpStatus().GetCode() != typev3.StatusCode_TooManyRequests {
			t.Errorf("bucket %v denies with %v", b.GetBucketIdBuilder(), d.GetHttpStatus())
		}
		retry := false
		for _, h := range d.GetResponseHeadersToAdd() {
			retry = retry || h.GetHeader().GetKey() == "retry-after"
		}
		if !retry {
			t.Errorf("bucket %v denies without Retry-After", b.GetBucketIdBuilder())
		}
	})
	if n == 0 {
		t.Fatal("no buckets")
	}
}

func bucketSettings(t *testing.T, om *xdsmatcherv3.Matcher_OnMatch) *rlqv3.RateLimitQuotaBucketSettings {
	t.Helper()
	var b rlqv3.RateLimitQuotaBucketSettings
	if err := om.GetAction().GetTypedConfig().UnmarshalTo(&b); err != nil {
		t.Fatalf("on match %v: %v", om, err)
	}
	return &b
}

// walkBuckets calls f with every bucket of the matcher tree m.
func walkBuckets(t *testing.T, m *xdsmatcherv3.Matcher, f func(*rlqv3.RateLimitQuotaBucketSettings)) {
	var visit func(om *xdsmatcherv3.Matcher_OnMatch)
	visit = func(om *xdsmatcherv3.Matcher_OnMatch) {
		switch {
		case om == nil:
		case om.GetMatcher() != nil:
			walkBuckets(t, om.GetMatcher(), f)
		default:
			f(bucketSettings(t, om))
		}
	}
	for _, om := range m.GetMatcherTree().GetExactMatchMap().GetMap() {
		visit(om)
	}
	for _, fm := range m.GetMatcherList().GetMatchers() {
		visit(fm.GetOnMatch())
	}
	visit(m.GetOnNoMatch())
}
