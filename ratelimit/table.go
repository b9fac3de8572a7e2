package ratelimit

import (
	"github.com/tollgate/tollgate/policy/ir"
)

// Table is one policy version's limits, immutable.
type Table struct {
	tiers       map[string]ir.Tier
	defaultTier string
	anonymous   []ir.Limit
	routes      map[string]ir.RouteRateLimit
	failureMode string
}

// newTable indexes cfg's rate limits by tier and route name.
func newTable(cfg *ir.Config) *Table {
	t := &Table{tiers: map[string]ir.Tier{}, routes: map[string]ir.RouteRateLimit{},
		defaultTier: cfg.RateLimits.DefaultTier, anonymous: cfg.RateLimits.Anonymous, failureMode: cfg.RateLimits.FailureMode}
	for _, tier := range cfg.RateLimits.Tiers {
		t.tiers[tier.Name] = tier
	}
	for _, g := range cfg.Gateways {
		for _, vh := range g.VirtualHosts {
			for _, r := range vh.Routes {
				if r.RateLimit.Enabled {
					t.routes[r.Name] = r.RateLimit
				}
			}
		}
	}
	return t
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
