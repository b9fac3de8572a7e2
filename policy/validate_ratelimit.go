package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tollgate/tollgate/policy/ir"
)

// unitsText lists the limit units, for fixes.
const unitsText = "second, minute, hour, day or month (30 days)"

// rateLimits checks the top-level rateLimits section.
func (c *checker) rateLimits(r *RateLimits) {
	if r == nil {
		return
	}
	c.tiers(r.Tiers)
	c.defaultTier(r)
	if r.Anonymous != nil {
		c.limitList("rateLimits.anonymous", "anonymous", "remove anonymous to leave public routes unlimited", r.Anonymous)
	}
	if r.FailureMode != "" {
		c.failureMode("rateLimits.failureMode", r.FailureMode)
	}
	c.rateLimitMode(r) // validate_ratelimit_mode.go
}

// tiersKnown reports whether Load read every tier name, so that references
// to tiers can be checked.
func (c *checker) tiersKnown() bool {
	return !c.src.isPartial() && !c.src.isFailed("rateLimits.tiers")
}

func (c *checker) tiers(tiers []Tier) {
	seen := make(map[string]string, len(tiers))
	for _, t := range tiers {
		path := fieldPath("rateLimits.tiers", t.Name)
		c.name(path, "tier", t.Name, seen)
		if t.Unlimited || c.src.isFailed(path) {
			continue
		}
		c.limitList(path, fmt.Sprintf("tier %q", t.Name),
			fmt.Sprintf("write `%s: %s` for a tier without limits", t.Name, unlimitedTier), t.Limits)
	}
}

// defaultTier checks that defaultTier is set when there are tiers, and
// names one of them.
func (c *checker) defaultTier(r *RateLimits) {
	const path = "rateLimits.defaultTier"
	names := make([]string, 0, len(r.Tiers))
	for _, t := range r.Tiers {
		names = append(names, t.Name)
	}
	switch {
	case r.DefaultTier == "" && len(r.Tiers) > 0:
		c.errorf(path, fmt.Sprintf("add `defaultTier: %s`: consumers without a tier, or with an unknown one, get its limits",
			suggestedDefaultTier(r.Tiers)), "rateLimits.defaultTier is required when tiers are defined")
	case r.DefaultTier == "" || !c.tiersKnown():
	case len(names) == 0:
		c.errorf(path, "define tiers under rateLimits.tiers, or remove defaultTier", "tier %q is not defined: the policy has no tiers", r.DefaultTier)
	case !slices.Contains(names, r.DefaultTier):
		summary := fmt.Sprintf("tier %q is not defined", r.DefaultTier)
		if s, ok := closest(r.DefaultTier, names); ok {
			summary += fmt.Sprintf("; did you mean %q?", s)
		}
		c.errorf(path, "use one of the tiers: "+strings.Join(names, ", "), "%s", summary)
	}
}

// suggestedDefaultTier is the first tier with limits, or else the first
// tier: an unlimited default would lift every limit from unknown consumers.
func suggestedDefaultTier(tiers []Tier) string {
	for _, t := range tiers {
		if !t.Unlimited {
			return t.Name
		}
	}
	return tiers[0].Name
}

// limitList checks a list of limits of owner (a tier, anonymous, extra):
// not empty (emptyFix says what to do instead), every limit sound, and at
// most one limit per unit.
func (c *checker) limitList(path, owner, emptyFix string, limits []Limit) {
	if len(limits) == 0 {
		c.errorf(path, "list at least one limit such as `{requests: 100, per: minute}`, or "+emptyFix, "%s has no limits", owner)
	}
	units := make(map[string]string, len(limits))
	for i, lim := range limits {
		lp := indexPath(path, i)
		if c.src.isFailed(lp) {
			continue
		}
		c.limit(lp, lim)
		pp := fieldPath(lp, "per")
		if _, ok := unitWindow(lim.Per); !ok {
			continue
		}
		if first, dup := units[lim.Per]; dup {
			c.errorf(pp, fmt.Sprintf("keep one of the two limits: two limits per %s are ambiguous", lim.Per),
				"duplicate unit %q; first used at %s", lim.Per, c.where(first))
			continue
		}
		units[lim.Per] = pp
	}
}

// limit checks one limit: a positive number of requests, a known unit and
// a burst not below the rate.
func (c *checker) limit(path string, lim Limit) {
	if lim.Requests <= 0 {
		c.errorf(fieldPath(path, "requests"), "use a whole number greater than 0",
			"requests must be greater than 0, got %d", lim.Requests)
	}
	if lim.Per != "" {
		c.unit(fieldPath(path, "per"), lim.Per)
	}
	if lim.Burst != 0 && lim.Requests > 0 && lim.Burst < lim.Requests {
		c.errorf(fieldPath(path, "burst"), burstFix(fmt.Sprint(lim.Requests)+" (requests)"),
			"burst %d is below the rate of %d requests", lim.Burst, lim.Requests)
		return
	}
	c.enforceable(path, lim)
}

// enforceable checks that the counters can enforce lim (once its requests
// and unit are sound): its bucket, the burst or else the requests, spans
// at most ir.MaxBucket. The bound is ir.CheckLimit's, which the counters
// call too: a limit that passes here never fails a Take.
func (c *checker) enforceable(path string, lim Limit) {
	if _, ok := unitWindow(lim.Per); !ok || lim.Requests <= 0 {
		return
	}
	l := compileLimit(lim)
	if _, err := ir.CheckLimit(l.Requests, l.Per, l.Burst); err == nil {
		return
	}
	field, value := "requests", l.Requests
	if l.Burst != 0 {
		field, value = "burst", l.Burst
	}
	most := ir.MaxBurst(l.Requests, l.Per)
	c.errorf(fieldPath(path, field), fmt.Sprintf("use a %s of at most %d at this rate", field, most),
		"%s %d is more than the rate-limit counters can enforce at %d requests per %s: "+
			"a bucket may take at most 2^51 µs (about 71 years) to refill, %d requests at this rate",
		field, value, l.Requests, lim.Per, most)
}

func (c *checker) unit(path, unit string) {
	if _, ok := unitWindow(unit); ok {
		return
	}
	summary := fmt.Sprintf("unknown unit %q", unit)
	if s, ok := closest(unit, rateLimitUnits); ok {
		summary += fmt.Sprintf("; did you mean %q?", s)
	}
	c.errorf(path, "use "+unitsText, "%s", summary)
}

func (c *checker) failureMode(path, mode string) {
	if slices.Contains(failureModes, mode) {
		return
	}
	summary := fmt.Sprintf("unknown failureMode %q", mode)
	if s, ok := closest(mode, failureModes); ok {
		summary += fmt.Sprintf("; did you mean %q?", s)
	}
	c.errorf(path, "use open (the default: admit requests while the counters are unreachable), "+
		"closed (reject them) or local (count per replica, in memory)", "%s", summary)
}
