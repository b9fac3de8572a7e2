package translator

import (
	"slices"
	"strings"

	"github.com/tollgate/tollgate/extauthz/contract"
	"github.com/tollgate/tollgate/policy/ir"
)

// Exact rate limits in one hop. A rate-limited route that calls ext_authz
// (API keys, OAuth 2.0 introspection, JWTs that jwt_authn cannot decide)
// takes its limits inside the ext_authz Check: the service runs the same
// decision as the rate-limit service (package ratelimit, Decide) right
// after authenticating, so the request makes one call instead of two. Such
// a route gets:
//   - the context extension rate_limit=exact, and no rate_limits for
//     Envoy's ratelimit filter (which makes no call for it);
//   - the inputs of the descriptor it no longer has, in the CheckRequest:
//     consumer and tier are the Check's own; the client address comes in
//     contract.HeaderClientIP, which the edge filter sets from Envoy's
//     trusted client address (the value of the remote_address action,
//     xffTrustedHops applied), overwriting a client's copy; headers its
//     limits are keyed by are added to the filter's allowed headers.
//
// Public routes and routes decided by jwt_authn keep Envoy's ratelimit
// filter and the rate-limit service (one call each too). A gateway whose
// every rate-limited route takes its limits in the Check has no ratelimit
// filter and no rate-limit cluster.

// takesLimits reports whether route r takes its rate limits in the
// ext_authz Check: it is rate limited, counted exactly (not rateLimits.mode
// quota) and served by ext_authz.
//
// On a route whose signed keys the Envoy module decides and whose limits
// it takes (quota mode), the opaque keys the module passes are charged
// after the Check by the module's charger (jwtmodule_charge.go), not in it.
func (a *authz) takesLimits(r ir.Route) bool {
	if !a.enabled || !r.RateLimit.Enabled || r.Auth.Public {
		return false
	}
	return !a.quota && !a.native.native(r)
}

// checkLimitHeaders returns the request headers the ext_authz service needs
// to take the limits of gw's routes in its Check: contract.HeaderClientIP
// and the headers those limits are keyed by (sorted); nil when no route
// takes its limits there. Call it once a.enabled is set.
func (a *authz) checkLimitHeaders(gw *ir.Gateway) []string {
	var out []string
	for _, vh := range gw.VirtualHosts {
		for _, r := range vh.Routes {
			if !a.takesLimits(r) {
				continue
			}
			out = append(out, contract.HeaderClientIP)
			for _, b := range r.RateLimit.By {
				if h, ok := strings.CutPrefix(b, ir.DescriptorHeaderPrefix); ok && h != "" {
					out = append(out, strings.ToLower(h))
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// needsRateLimitFilter reports whether a rate-limited route of gw leaves
// its limits to Envoy's ratelimit filter (and so to the rate-limit
// service).
func (a *authz) needsRateLimitFilter(gw *ir.Gateway) bool {
	for _, vh := range gw.VirtualHosts {
		for _, r := range vh.Routes {
			if r.RateLimit.Enabled && !a.native.moduleLimits(r) &&
				(!a.takesLimits(r) || a.native.nativeKey(r) || a.native.nativeMixed(r)) {
				return true
			}
		}
	}
	return false
}
