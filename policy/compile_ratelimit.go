package policy

import (
	"cmp"
	"slices"
	"strings"

	"github.com/tollgate/tollgate/policy/ir"
)

// compileRateLimits compiles the rateLimits section: tiers sorted by name,
// limits sorted, the failure mode defaulted (the mode is set once the
// routes are compiled: compileRateLimitMode). The failure mode has its
// default even without a section: a route's extra limits use the counter
// store too.
func compileRateLimits(r *RateLimits) ir.RateLimits {
	out := ir.RateLimits{FailureMode: DefaultFailureMode}
	if r == nil {
		return out
	}
	out.FailureMode = cmp.Or(r.FailureMode, DefaultFailureMode)
	out.DefaultTier = r.DefaultTier
	out.IETFHeaders = r.IETFHeaders != nil && *r.IETFHeaders
	out.Anonymous = compileLimits(r.Anonymous)
	for _, t := range r.Tiers {
		out.Tiers = append(out.Tiers, ir.Tier{Name: t.Name, Unlimited: t.Unlimited, Limits: compileLimits(t.Limits)})
	}
	slices.SortFunc(out.Tiers, func(x, y ir.Tier) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// compileLimits compiles limits, sorted by window, then requests, then
// burst; nil for none.
func compileLimits(limits []Limit) []ir.Limit {
	if len(limits) == 0 {
		return nil
	}
	out := make([]ir.Limit, 0, len(limits))
	for _, l := range limits {
		out = append(out, compileLimit(l))
	}
	slices.SortFunc(out, func(x, y ir.Limit) int {
		return cmp.Or(cmp.Compare(x.Per, y.Per), cmp.Compare(x.Requests, y.Requests), cmp.Compare(x.Burst, y.Burst))
	})
	return out
}

// compileLimit compiles one limit. A burst equal to the rate is written as
// 0, its default, so that both spellings compile to equal IRs.
func compileLimit(l Limit) ir.Limit {
	per, _ := unitWindow(l.Per) // known on a validated policy
	out := ir.Limit{Requests: uint64(max(l.Requests, 0)), Per: per, Unit: l.Per}
	if l.Burst > l.Requests {
		out.Burst = uint64(l.Burst)
	}
	return out
}

// routeLimitDefaults is what a route's rate limiting defaults depend on.
type routeLimitDefaults struct {
	tiers     bool // the policy defines tiers
	anonymous bool // the policy defines anonymous limits
}

func (r *RateLimits) routeDefaults() routeLimitDefaults {
	if r == nil {
		return routeLimitDefaults{}
	}
	return routeLimitDefaults{tiers: len(r.Tiers) > 0, anonymous: len(r.Anonymous) > 0}
}

// compileRouteRateLimit compiles the rate limiting of route r. Unless it
// says "rateLimit: none", an authenticated route applies the caller's tier
// (when there are tiers and it does not say consumer: false), a public one
// the anonymous limits (when there are some), both the route's extra
// limits.
func compileRouteRateLimit(r Route, d routeLimitDefaults) ir.RouteRateLimit {
	rl := r.RateLimit
	if rl == nil {
		rl = &RouteRateLimit{}
	}
	if rl.None {
		return ir.RouteRateLimit{}
	}
	public := r.Auth != nil && r.Auth.Public
	out := ir.RouteRateLimit{
		Consumer:  !public && d.tiers && (rl.Consumer == nil || *rl.Consumer),
		Anonymous: public && d.anonymous,
		Extra:     compileLimits(rl.Extra),
		Shadow:    rl.Shadow,
	}
	if len(out.Extra) > 0 {
		out.By = compileBy(rl.By, public)
	}
	out.Enabled = out.Consumer || out.Anonymous || len(out.Extra) > 0
	return out
}

// compileBy returns the sorted keys of a route's extra limits, header
// names lower case; by default the consumer, or the client IP on a public
// route.
func compileBy(by []string, public bool) []string {
	if len(by) == 0 {
		if public {
			return []string{byClientIP}
		}
		return []string{byConsumer}
	}
	out := make([]string, 0, len(by))
	for _, b := range by {
		if name, isHeader := strings.CutPrefix(b, byHeaderPrefix); isHeader {
			b = byHeaderPrefix + strings.ToLower(name)
		}
		out = append(out, b)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
