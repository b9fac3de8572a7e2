package policy

import (
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

// DefaultFailureMode is what the rate-limit service does when its counter
// store is down, unless the policy says otherwise: admit the request.
const DefaultFailureMode = ir.FailOpen

// Words with a meaning in the rate-limit sections.
const (
	unlimitedTier  = "unlimited" // a tier without limits
	noRateLimit    = "none"      // a route that is not rate limited
	byConsumer     = "consumer"
	byClientIP     = "clientIP"
	byHeaderPrefix = "header:"
)

// rateLimitUnits are the units a limit may count per, shortest first.
var rateLimitUnits = []string{"second", "minute", "hour", "day", "month"}

// failureModes are the values of rateLimits.failureMode.
var failureModes = []string{ir.FailOpen, ir.FailClosed, ir.FailLocal}

// unitWindow returns the window of a limit unit; a month is 30 days.
func unitWindow(unit string) (time.Duration, bool) {
	switch unit {
	case "second":
		return time.Second, true
	case "minute":
		return time.Minute, true
	case "hour":
		return time.Hour, true
	case "day":
		return 24 * time.Hour, true
	case "month":
		return 30 * 24 * time.Hour, true
	}
	return 0, false
}

// RateLimits is the policy's rateLimits section, merged over all its
// files: the tiers of every section add up (a tier name may be defined
// once); DefaultTier, Anonymous and FailureMode may be set in one section
// only.
type RateLimits struct {
	// Tiers in policy order.
	Tiers []Tier
	// DefaultTier applies to consumers without a tier or with an unknown
	// one; required when Tiers is not empty.
	DefaultTier string
	// Anonymous limits apply per client IP on public routes; nil: none.
	Anonymous []Limit
	// FailureMode is open, closed or local; empty means open.
	FailureMode string
	// Mode is exact or quota; empty means quota unless a route's limits
	// need exact mode (see compileRateLimitMode).
	Mode string
	// IETFHeaders (ietfHeaders: true) adds the RateLimit and
	// RateLimit-Policy headers to quota mode's admitted responses, at a
	// cost in Envoy CPU per request; nil when not set (false). Exact mode
	// always sends them. (omitempty: a policy without the field encodes as
	// before the field existed, as TestLoaderDifferential records it.)
	IETFHeaders *bool `json:",omitempty"`
}

// Tier is a named set of limits for consumers: the string "unlimited"
// (Unlimited), or a list of limits that all apply.
type Tier struct {
	Name      string
	Unlimited bool
	Limits    []Limit
}

// Limit admits Requests per Per (a unit: second, minute, hour, day or
// month). Burst is the bucket size, 0 meaning Requests.
type Limit struct {
	Requests int
	Per      string
	Burst    int
}

// RouteRateLimit is a route's rate limiting: None for "rateLimit: none",
// otherwise a mapping. Without one (or with Consumer nil), an
// authenticated route applies the caller's tier when the policy has tiers,
// and a public route the anonymous limits when the policy has them.
// Extra limits apply on top, keyed by By (nil: the consumer, or the client
// IP on public routes).
type RouteRateLimit struct {
	None     bool
	Consumer *bool
	Extra    []Limit
	By       []string
	Shadow   bool
}
