package ir

import "time"

// RateLimits is the policy's rate limiting: consumer tiers, the limit for
// anonymous callers, and what happens when the counter store is down.
type RateLimits struct {
	// Tiers sorted by Name.
	Tiers []Tier `json:"tiers,omitempty"`
	// DefaultTier applies to consumers whose identity carries no tier or an
	// unknown one; "" when no tiers are configured.
	DefaultTier string `json:"defaultTier,omitempty"`
	// Anonymous limits apply per client IP on public (auth: none) routes
	// that rate-limit.
	Anonymous []Limit `json:"anonymous,omitempty"`
	// FailureMode when Redis is down or slow: FailOpen, FailClosed or
	// FailLocal (per-replica in-memory counting).
	FailureMode string `json:"failureMode,omitempty"`
}

// Failure modes.
const (
	FailOpen   = "open"
	FailClosed = "closed"
	FailLocal  = "local"
)

// RateLimitDomain is the rate-limit domain of every Tollgate descriptor.
const RateLimitDomain = "tollgate"

// Descriptor entry keys, the contract between the route actions Envoy
// evaluates and the rate-limit service's table.
const (
	DescriptorRoute    = "route"    // the route name (generic_key)
	DescriptorConsumer = "consumer" // ext_authz dynamic metadata "consumer"
	DescriptorTier     = "tier"     // ext_authz dynamic metadata "tier"
	DescriptorClientIP = "remote_address"
	// DescriptorHeaderPrefix + header name: a request header used as a key.
	DescriptorHeaderPrefix = "header:"
)

// Tier is a named set of limits for consumers.
type Tier struct {
	Name string `json:"name"`
	// Unlimited tiers never touch the counter store.
	Unlimited bool `json:"unlimited,omitempty"`
	// Limits sorted by Per then Requests; all of them apply.
	Limits []Limit `json:"limits,omitempty"`
}

// Limit admits Requests per Per, with an optional Burst above the rate.
type Limit struct {
	Requests uint64        `json:"requests"`
	Per      time.Duration `json:"per"`  // second, minute, hour, day, or month (30 days)
	Unit     string        `json:"unit"` // the policy's word for Per
	// Burst is the bucket size (≥ Requests); 0 means Requests.
	Burst uint64 `json:"burst,omitempty"`
}

// RouteRateLimit is a route's rate limiting.
type RouteRateLimit struct {
	// Enabled is false when the route is not rate limited at all (no tiers
	// configured and no extra limit, or rateLimit: none).
	Enabled bool `json:"enabled,omitempty"`
	// Consumer applies the caller's tier limits (authenticated routes).
	Consumer bool `json:"consumer,omitempty"`
	// Anonymous applies RateLimits.Anonymous per client IP (public routes).
	Anonymous bool `json:"anonymous,omitempty"`
	// Extra limits on top, keyed by By (default: the consumer, or the
	// client IP on public routes).
	Extra []Limit `json:"extra,omitempty"`
	// By lists the key parts of Extra limits, sorted: "consumer",
	// "clientIP", "header:<name>" (lower case).
	By []string `json:"by,omitempty"`
	// Shadow counts and reports but never rejects.
	Shadow bool `json:"shadow,omitempty"`
}
