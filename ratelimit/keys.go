package ratelimit

import (
	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/ratelimit/counter"
)

// KeyedLimit is one limit that applies to a request, with the counter key
// the rate-limit service charges: the quota server (package
// ratelimit/quota) uses the same keys, so both modes share one account per
// consumer in Redis.
type KeyedLimit struct {
	// Name is what the RateLimit headers call the limit: the tier,
	// "anonymous" or the route.
	Name  string
	Limit ir.Limit
	// Key is the counter key; keys with one hash tag share a Redis slot.
	Key string
}

// Counter returns l as a counter limit.
func (l KeyedLimit) Counter() counter.Limit {
	return counter.Limit{Key: l.Key, Requests: l.Limit.Requests, Per: l.Limit.Per, Burst: l.Limit.Burst}
}

// NewTable indexes cfg's rate limits as the service does: limits the
// counters cannot enforce are left out (the service logs them).
func NewTable(cfg *ir.Config) *Table {
	t, _ := newTable(cfg)
	return t
}

// Route returns the rate limiting of the route named name, if it is
// rate limited.
func (t *Table) Route(name string) (ir.RouteRateLimit, bool) {
	rr, ok := t.routes[name]
	return rr, ok
}

// Tier returns the named tier, or the default tier for an empty or
// unknown name; ok is false when there is neither.
func (t *Table) Tier(name string) (ir.Tier, bool) { return t.tier(name) }

// TierName is the policy's name of the tier whose limits a caller of tier
// name meets (Tier's resolution), "" when there is none. Metrics label
// with it, never with the caller's own value, so a label's values are the
// policy's tier names whatever a credential claims.
func (t *Table) TierName(name string) string {
	if tier, ok := t.tier(name); ok {
		return tier.Name
	}
	return ""
}

// FailureMode is the policy's rateLimits.failureMode.
func (t *Table) FailureMode() string { return t.failureMode }

// Limits returns the limits of a request on route (which must be rate
// limited) from consumer with tier, or from the client address ip, with
// their counter keys, exactly as ShouldRateLimit computes them. Unlimited
// tiers have none.
func (t *Table) Limits(route, consumer, tier, ip string) []KeyedLimit {
	rr, ok := t.routes[route]
	if !ok {
		return nil
	}
	refs := limitsFor(t, rr, caller{route: route, consumer: consumer, tier: tier, ip: ip})
	out := make([]KeyedLimit, len(refs))
	for i, r := range refs {
		out[i] = KeyedLimit{Name: r.name, Limit: r.lim, Key: r.key}
	}
	return out
}
