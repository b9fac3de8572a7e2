package translator

import (
	"fmt"
	"strings"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// Quota mode's IETF headers (rateLimits.ietfHeaders): the responses the
// backstop saw carry RateLimit-Policy and RateLimit
// (draft-ietf-httpapi-ratelimit-headers) besides its X-RateLimit-*, with
// no call per request. Envoy 1.40 has no filter that writes them, and
// RateLimit-Policy depends on the request's tier, so the
// envoy.RateLimitHeadersName composite filter, right before the first
// backstop filter, picks a header_mutation filter by the tier filter state
// (ir.QuotaStateTier, the value the RLQS bucket matcher reads: an absent
// or unknown tier gets the default tier's set, as there):
//   - RateLimit-Policy: every limit the request meets (its tier's, or the
//     anonymous limits, and the route's extra limits), exactly as exact
//     mode and the RLQS denials (quotaDenial) write it;
//   - RateLimit: the bucket the X-RateLimit-* headers of the same response
//     describe (the backstop's first filter), named after its list (tier,
//     "anonymous" or the route), r = X-RateLimit-Remaining and
//     t = X-RateLimit-Reset, copied from the response by the formatter.
//
// The filter sees the responses of everything after it (upstream answers,
// the backstop's own 429s) but not the local replies of the filters
// before it: an RLQS denial keeps its static headers, a 401 gets none. A
// tier without limits on a route without extra limits gets none (nor does
// exact mode send any). A route whose requests all get the same headers
// (one tier, anonymous or extra limits only) uses the static
// header_mutation filter envoy.RateLimitHeadersStaticName instead. Off by
// default: ~18,000 Envoy instructions per request with the composite,
// ~11,000 with the static filter (bench/README.md). On the routes whose
// limits the Envoy module enforces (moduleTakesLimits) neither filter
// runs: the module writes the same headers from headerSet's values
// (moduleBucket, envoymod.LimitBucket.IETF), ~7,400 instructions.

// ietfHeaders sets route er's config of the RateLimit headers filters:
// on a route that applies tier limits one set per tier, and the default
// tier's for any other value, else one set. When every request of the
// route gets the same set, the static filter writes it (no matcher, no
// delegated filter); a set of no limits writes nothing.
func (q *quota) ietfHeaders(er *routev3.Route, route string, rr ir.RouteRateLimit) error {
	extra := named(route, rr.Extra)
	def, cases := q.ietfCases(rr, extra)
	same := true
	for _, set := range cases {
		same = same && set == def
	}
	switch {
	case same && def == (envoy.RateLimitHeaderSet{}):
		return nil
	case same:
		return envoy.SetRouteFilterConfig(er, envoy.RateLimitHeadersStaticName, envoy.RateLimitHeadersStaticRoute(def))
	}
	cfg, err := envoy.RateLimitHeadersRoute(ir.QuotaStateTier, cases, def)
	if err != nil {
		return err
	}
	return envoy.SetRouteFilterConfig(er, envoy.RateLimitHeadersName, cfg)
}

// ietfCases returns the header set of a request of no (or an unknown)
// tier, and of each tier when the route applies tier limits.
func (q *quota) ietfCases(rr ir.RouteRateLimit, extra []namedLimit) (def envoy.RateLimitHeaderSet, cases map[string]envoy.RateLimitHeaderSet) {
	if !rr.Consumer {
		var primary []namedLimit
		if rr.Anonymous {
			primary = named("anonymous", q.cfg.RateLimits.Anonymous)
		}
		return headerSet(primary, extra), nil
	}
	cases = make(map[string]envoy.RateLimitHeaderSet, len(q.cfg.RateLimits.Tiers))
	def = headerSet(nil, extra)
	for _, t := range q.cfg.RateLimits.Tiers {
		cases[t.Name] = headerSet(named(t.Name, t.Limits), extra)
		if t.Name == q.cfg.RateLimits.DefaultTier {
			def = cases[t.Name]
		}
	}
	return def, cases
}

// headerSet is the RateLimit headers of a request that meets primary (its
// tier's or the anonymous limits) and extra (the route's): none without
// limits. RateLimit names the limit whose bucket the backstop's first
// filter reports (reportedLimit).
func headerSet(primary, extra []namedLimit) envoy.RateLimitHeaderSet {
	all := append(append([]namedLimit{}, primary...), extra...)
	if len(all) == 0 {
		return envoy.RateLimitHeaderSet{}
	}
	return envoy.RateLimitHeaderSet{Policy: policyHeader(all), Name: all[reportedLimit(all)].name}
}

// policyHeader is the RateLimit-Policy value of limits, as exact mode
// writes it (package ratelimit): `"<name>";q=<requests>;w=<seconds>` each,
// in order, joined by ", ".
func policyHeader(limits []namedLimit) string {
	policies := make([]string, len(limits))
	for i, l := range limits {
		policies[i] = fmt.Sprintf("%q;q=%d;w=%d", l.name, l.Requests, int64(l.Per.Seconds()))
	}
	return strings.Join(policies, ", ")
}

// reportedLimit is the index of the limit whose backstop bucket gives a
// request's X-RateLimit-* headers, limits in the order of the backstop's
// actions (the tier's or anonymous list, then the extra limits): the
// backstop's first filter holds the buckets that refill from empty soonest
// (backstop), and of those Envoy 1.40 reports the one with the smallest
// fill rate, the first in action order among equals (checked against the
// binary: a tied extra bucket listed first is not reported when its rate
// is larger, and is when the rates are equal).
func reportedLimit(limits []namedLimit) int {
	best := 0
	for i := 1; i < len(limits); i++ {
		a, b := refillOf(limits[i].Limit), refillOf(limits[best].Limit)
		if c := a.compare(b); c < 0 || c == 0 && fillRate(limits[i].Limit).compare(fillRate(limits[best].Limit)) < 0 {
			best = i
		}
	}
	return best
}

// fillRate is a limit's backstop refill rate, tokensPerFill / fill seconds.
func fillRate(l ir.Limit) refill {
	_, perFill, fill := l.Backstop()
	return refill{num: uint64(perFill), den: uint64(fill / time.Second)}
}
