package ir

import (
	"fmt"
	"time"
)

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
	// Mode is RateLimitQuota, or empty for RateLimitExact (empty so that
	// exact-mode IRs stay as they were). A policy that leaves the mode out
	// gets quota unless a route's limits need exact mode (shadow limits,
	// limits keyed by a request header).
	Mode string `json:"mode,omitempty"`
	// IETFHeaders, in quota mode, adds RateLimit and RateLimit-Policy to
	// the responses the backstop saw (xds/translator
	// ratelimit_quota_headers.go), at a cost in Envoy CPU per request.
	// Exact mode always sends them.
	IETFHeaders bool `json:"ietfHeaders,omitempty"`
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

// Backstop is l's bucket in the per-Envoy local_ratelimit backstop of
// quota mode (xds/translator) and the bound the quota server charges by
// (ratelimit/quota): maxTokens, the whole burst (max(Requests, Burst)),
// refilled tokensPerFill every fill, the finest whole-second steps that
// keep the rate exact (Requests and Per in seconds, at least 1, divided by
// their greatest common divisor). Envoy 1.40 refills such a bucket
// continuously at tokensPerFill/fill.
func (l Limit) Backstop() (maxTokens, tokensPerFill uint32, fill time.Duration) {
	secs := uint64(max(1, l.Per/time.Second))
	g := gcd(l.Requests, secs)
	return uint32(min(1<<32-1, max(l.Requests, l.Burst, 1))), uint32(min(1<<32-1, max(1, l.Requests/g))),
		time.Duration(secs/g) * time.Second
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return max(a, 1)
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

// MaxBucket bounds a limit's bucket, max(Burst, Requests) × T with
// T = Per / Requests (at least 1 µs), in microseconds: 2^51 µs, about 71
// years. The counters (ratelimit/counter) enforce exactly the limits
// CheckLimit accepts: the bound keeps every time their Lua script handles
// an exact integer in a Lua double (< 2^53), and the quotient
// (capacity − d) / T exact enough that floor never rounds up.
const MaxBucket = int64(1) << 51

// GCRA is a limit in the units the counters compute in, microseconds:
// Interval T = Per / Requests (at least 1 µs; a faster rate is capped at
// one request per µs) and Tolerance τ = T × (max(Burst, Requests) − 1).
type GCRA struct {
	Interval  int64
	Tolerance int64
}

// CheckLimit returns the GCRA parameters of requests per per with a
// bucket of burst (0, or below requests, means requests), or an error
// saying why the counters cannot enforce it: no requests, a window under a
// microsecond, or a bucket over MaxBucket (see MaxBurst). It is the one
// definition of an enforceable limit: the policy validator and the
// counters both call it.
func CheckLimit(requests uint64, per time.Duration, burst uint64) (GCRA, error) {
	micros := per.Microseconds()
	if requests == 0 || micros <= 0 {
		return GCRA{}, fmt.Errorf("%d per %v: no requests or a window under a microsecond", requests, per)
	}
	interval := limitInterval(requests, micros)
	bucket := max(burst, requests)
	if bucket > uint64(MaxBucket/interval) {
		return GCRA{}, fmt.Errorf("%d per %v with a bucket of %d: the bucket exceeds the largest the counters enforce (%d)",
			requests, per, bucket, MaxBucket/interval)
	}
	return GCRA{Interval: interval, Tolerance: interval * int64(bucket-1)}, nil
}

// MaxBurst is the largest bucket (burst, or requests without one) the
// counters enforce at requests per per; 0 when no bucket is enforceable
// (no requests, a window under a microsecond).
func MaxBurst(requests uint64, per time.Duration) uint64 {
	micros := per.Microseconds()
	if requests == 0 || micros <= 0 {
		return 0
	}
	return uint64(MaxBucket / limitInterval(requests, micros))
}

// limitInterval is T = micros / requests, at least 1 µs.
func limitInterval(requests uint64, micros int64) int64 {
	if requests < uint64(micros) {
		return micros / int64(requests)
	}
	return 1
}
