package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tollgate/tollgate/policy/ir"
)

// rateLimitModes are the values of rateLimits.mode.
var rateLimitModes = []string{ir.RateLimitExact, ir.RateLimitQuota}

// rateLimitMode checks rateLimits.mode: exact or quota.
func (c *checker) rateLimitMode(r *RateLimits) {
	if r.Mode == "" || slices.Contains(rateLimitModes, r.Mode) {
		return
	}
	summary := fmt.Sprintf("unknown mode %q", r.Mode)
	if s, ok := closest(r.Mode, rateLimitModes); ok {
		summary += fmt.Sprintf("; did you mean %q?", s)
	}
	c.errorf("rateLimits.mode", "use quota (Envoy enforces server-assigned shares of the Redis account in-process, "+
		"no call per request; the default) or exact (every request is counted in Redis through the rate-limit service)",
		"%s", summary)
}

// quotaRoutes checks, when rateLimits.mode is quota, that every route's
// rate limiting can be enforced in Envoy: limits keyed by a request header
// and shadow mode need the per-request service.
func (c *checker) quotaRoutes(p *Policy) {
	if p.RateLimits == nil || p.RateLimits.Mode != ir.RateLimitQuota {
		return
	}
	for i, r := range p.Routes {
		rl := r.RateLimit
		rp := fieldPath(c.routePath(i), "rateLimit")
		if rl == nil || rl.None || c.src.isFailed(rp) {
			continue
		}
		if rl.Shadow {
			c.errorf(fieldPath(rp, "shadow"), "remove shadow, or use `rateLimits.mode: exact`",
				"shadow limits are not available with rateLimits.mode quota")
		}
		for j, b := range rl.By {
			if strings.HasPrefix(b, byHeaderPrefix) {
				c.errorf(indexPath(fieldPath(rp, "by"), j), "key the limit by consumer or clientIP, or use `rateLimits.mode: exact`",
					"limits keyed by a request header are not available with rateLimits.mode quota")
			}
		}
	}
}

// compileRateLimitMode returns the IR mode of a policy whose routes are
// compiled: ir.RateLimitQuota, or empty for exact. A mode left out is
// quota, unless a route's limits need exact mode (cfg.ExactOnlyRoute:
// shadow limits, limits keyed by a request header); it stays empty when
// no route is rate limited (so that such policies keep the IR, and
// version, they had).
func compileRateLimitMode(p *Policy, cfg *ir.Config) string {
	mode := ""
	if p.RateLimits != nil {
		mode = p.RateLimits.Mode
	}
	if _, exact := cfg.ExactOnlyRoute(); mode == "" && cfg.RateLimited() && !exact {
		mode = ir.RateLimitQuota
	}
	if mode == ir.RateLimitQuota {
		return ir.RateLimitQuota
	}
	return ""
}
