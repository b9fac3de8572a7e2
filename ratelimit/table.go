package ratelimit

import (
	"fmt"

	"github.com/tollgate/tollgate/policy/ir"
)

// Table is one policy version's limits, immutable.
type Table struct {
	tiers       map[string]ir.Tier
	defaultTier string
	anonymous   []ir.Limit
	routes      map[string]ir.RouteRateLimit
	failureMode string
	// listeners: per route, the most listeners of one gateway serving it.
	listeners map[string]int
}

// invalidLimit is a limit of the policy that the counters cannot enforce
// (see ir.CheckLimit): where says whose it is.
type invalidLimit struct {
	where string
	err   error
}

// newTable indexes cfg's rate limits by tier and route name. Limits the
// counters cannot enforce are left out of the table and returned, so that
// one misconfigured limit never fails a Take (which the service would
// take for a backend outage, for every route); the other limits of the
// same tier or route still apply. Validate refuses such limits, so only an
// IR that did not come from a validated policy has any.
func newTable(cfg *ir.Config) (*Table, []invalidLimit) {
	var bad []invalidLimit
	t := &Table{tiers: map[string]ir.Tier{}, routes: map[string]ir.RouteRateLimit{},
		defaultTier: cfg.RateLimits.DefaultTier, failureMode: cfg.RateLimits.FailureMode, listeners: map[string]int{}}
	t.anonymous = enforceable("anonymous limits", cfg.RateLimits.Anonymous, &bad)
	for _, tier := range cfg.RateLimits.Tiers {
		tier.Limits = enforceable(fmt.Sprintf("tier %q", tier.Name), tier.Limits, &bad)
		t.tiers[tier.Name] = tier
	}
	for _, g := range cfg.Gateways {
		for _, vh := range g.VirtualHosts {
			for _, r := range vh.Routes {
				if r.RateLimit.Enabled {
					rl := r.RateLimit
					rl.Extra = enforceable(fmt.Sprintf("route %q extra", r.Name), rl.Extra, &bad)
					t.routes[r.Name] = rl
					t.listeners[r.Name] = max(t.listeners[r.Name], servingListeners(g))
				}
			}
		}
	}
	return t, bad
}

// Listeners returns the most listeners of one gateway that serve route
// (at least 1). Envoy keeps one route configuration per listener (the
// translator's), each with its own per-route filter state: in quota mode a
// client meets that many backstops on one Envoy.
func (t *Table) Listeners(route string) int { return max(1, t.listeners[route]) }

// servingListeners is how many of g's listeners serve its routes: all but
// the plaintext ones of a gateway that redirects them to HTTPS (their
// route table only redirects).
func servingListeners(g ir.Gateway) int {
	n := 0
	for _, l := range g.Listeners {
		if l.TLS != nil || !g.RedirectHTTPS {
			n++
		}
	}
	return n
}

// enforceable returns the limits the counters can enforce, appending the
// others to bad. It never modifies limits (the IR is shared): it returns
// limits itself when all are enforceable, else a new slice.
func enforceable(owner string, limits []ir.Limit, bad *[]invalidLimit) []ir.Limit {
	var out []ir.Limit
	for i, l := range limits {
		_, err := ir.CheckLimit(l.Requests, l.Per, l.Burst)
		switch {
		case err != nil && out == nil:
			out = append(make([]ir.Limit, 0, len(limits)), limits[:i]...)
			fallthrough
		case err != nil:
			*bad = append(*bad, invalidLimit{where: fmt.Sprintf("%s[%d]", owner, i), err: err})
		case out != nil:
			out = append(out, l)
		}
	}
	if out == nil {
		return limits
	}
	return out
}

// tier returns the named tier, or the default tier for an empty or unknown
// name; ok is false when there is neither.
func (t *Table) tier(name string) (ir.Tier, bool) {
	if tier, ok := t.tiers[name]; ok {
		return tier, true
	}
	tier, ok := t.tiers[t.defaultTier]
	return tier, ok
}
