package ir

import (
	"slices"
	"strings"
)

// Rate-limit modes (RateLimits.Mode).
//
//   - RateLimitExact: every rate-limited request asks Tollgate's rate-limit
//     service (RLS), which counts it in Redis: exact across Envoys and
//     replicas, one gRPC round trip per request.
//   - RateLimitQuota: Envoy decides in-process. A per-Envoy local_ratelimit
//     backstop (each Envoy alone never exceeds a limit) and Envoy's
//     rate_limit_quota filter (RLQS), whose token buckets Tollgate assigns
//     from the shares recorded in Redis, bound the sum over all Envoys
//     (see package ratelimit/quota for the guarantees). No RPC per request.
const (
	RateLimitExact = "exact"
	RateLimitQuota = "quota"
)

// RateLimitQuotaDomain is the RLQS domain of every Tollgate bucket.
const RateLimitQuotaDomain = "tollgate"

// RateLimitQuotaClientHeader is the gRPC metadata key under which an RLQS
// client names itself for as long as it runs (Tollgate's Envoy module: a
// random id per quota client, the same on every stream it opens): the
// quota server then counts a reconnected stream's buckets as the same
// participants of the account as before, not as a newcomer's while the
// stream that ended still holds their shares. Values are 16 to 64 of
// [0-9A-Za-z_-]; a stream without one (Envoy's rate_limit_quota filter) is
// its own participant.
const RateLimitQuotaClientHeader = "tollgate-rlqs-client"

// Keys of the RLQS bucket ids Envoy builds (BucketId.bucket), the contract
// between the translator's bucket matchers and the quota server's table.
//
// The translator writes the static part of an id (kind, route, tier) as
// one entry, BucketKeyBucket (see BucketStatic), beside the dynamic
// entries (consumer, client address): Envoy 1.40 pays ~5,600 instructions
// per entry and request (building the id, hashing it, writing it to the
// dynamic metadata), so fewer entries are cheaper. Ids with the separate
// BucketKeyKind, BucketKeyRoute and BucketKeyTier entries (earlier
// releases) are still read by the quota server.
const (
	BucketKeyBucket   = "bucket"    // kind, tier and route (BucketStatic)
	BucketKeyKind     = "kind"      // one of the BucketKind* values
	BucketKeyRoute    = "route"     // the route name
	BucketKeyTier     = "tier"      // the tier whose limits apply
	BucketKeyConsumer = "consumer"  // the authenticated consumer
	BucketKeyClientIP = "client_ip" // the client address (anonymous limits)
)

// BucketStatic is the BucketKeyBucket value of kind, route and tier ("" for
// none): "kind/tier/route". Kinds and tier names hold no "/"; the route
// comes last, so any route name parses back (ParseBucketStatic).
func BucketStatic(kind, route, tier string) string { return kind + "/" + tier + "/" + route }

// ParseBucketStatic splits a BucketStatic value; ok is false when v is not
// one.
func ParseBucketStatic(v string) (kind, route, tier string, ok bool) {
	kind, rest, ok1 := strings.Cut(v, "/")
	tier, route, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 || kind == "" || route == "" {
		return "", "", "", false
	}
	return kind, route, tier, true
}

// Bucket kinds (BucketKeyKind).
const (
	// BucketKindConsumer: a consumer on an authenticated route (tier and
	// extra limits keyed by consumer).
	BucketKindConsumer = "consumer"
	// BucketKindAnonymous: a client address on a public route (anonymous
	// and extra limits keyed by client IP).
	BucketKindAnonymous = "anonymous"
	// BucketKindUnlimited: one bucket per route and Envoy for consumers of
	// an unlimited tier; the server answers ALLOW_ALL and counts nothing.
	BucketKindUnlimited = "unlimited"
	// BucketKindDeny: a request of a limited route whose key is missing
	// (no consumer value); the server answers DENY_ALL.
	BucketKindDeny = "deny"
)

// Filter state keys that the edge writes (set_filter_state, after the
// identity headers are stripped and authentication ran) and the RLQS
// bucket matchers read: the client cannot set any of them.
const (
	QuotaStateRoute    = "tollgate.rlq.route"
	QuotaStateConsumer = "tollgate.rlq.consumer"
	QuotaStateTier     = "tollgate.rlq.tier"
	QuotaStateClientIP = "tollgate.rlq.client_ip"
)

// Quota reports whether the policy enforces its limits in Envoy (RLQS and
// the local backstop) rather than per request through the RLS.
func (r RateLimits) Quota() bool { return r.Mode == RateLimitQuota }

// RateLimited reports whether some route of c is rate limited.
func (c *Config) RateLimited() bool {
	for _, g := range c.Gateways {
		for _, vh := range g.VirtualHosts {
			for _, r := range vh.Routes {
				if r.RateLimit.Enabled {
					return true
				}
			}
		}
	}
	return false
}

// NeedsExact reports whether route limit rr can only be enforced by exact
// mode: an enabled limit in shadow mode or keyed by a request header.
func (rr RouteRateLimit) NeedsExact() bool {
	return rr.Enabled && (rr.Shadow || slices.ContainsFunc(rr.By, func(b string) bool { return strings.HasPrefix(b, DescriptorHeaderPrefix) }))
}

// ExactOnlyRoute returns the first route of c (in gateway, virtual host
// and precedence order) whose limits need exact mode (NeedsExact).
func (c *Config) ExactOnlyRoute() (name string, ok bool) {
	for _, g := range c.Gateways {
		for _, vh := range g.VirtualHosts {
			for _, r := range vh.Routes {
				if r.RateLimit.NeedsExact() {
					return r.Name, true
				}
			}
		}
	}
	return "", false
}

// Tier returns the named tier, or the default tier for an empty or unknown
// name (as the rate-limit service resolves it); ok is false when there is
// neither.
func (r RateLimits) Tier(name string) (Tier, bool) {
	var def Tier
	found := false
	for _, t := range r.Tiers {
		if t.Name == name {
			return t, true
		}
		if t.Name == r.DefaultTier {
			def, found = t, true
		}
	}
	return def, found
}
