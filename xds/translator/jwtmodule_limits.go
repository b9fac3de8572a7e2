package translator

import (
	"slices"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/policy/ir"
)

// Rate limits in the module (rateLimits.mode quota with the module): on a
// route the module decides, whose limits are all keyed by the consumer,
// the module enforces them itself, next to the identity (envoymod.Quota,
// RouteLimits): the same buckets (ids, limits, 429s) as the filter path's
// matcher, a local GCRA of each full limit in place of the backstop, and
// the quota server's assignments over the module's own RLQS stream. Such
// a route gets no bucket in the rate_limit_quota matcher and no backstop;
// a gateway whose every limited route is one has neither filter (nor
// set_filter_state), which is what makes the module path cheap.
//
// The filter path keeps the routes the module cannot hold: limits keyed
// by the client address or a header, shadow limits, buckets beyond the
// module's bounds (moduleHolds). Admitted responses of the module's
// routes carry the draft-03 X-RateLimit-* the backstop would have
// written, of the same limit (LimitBucket.ReportedLimit, reportedLimit),
// from the module's local state, and with rateLimits.ietfHeaders the
// RateLimit-Policy and RateLimit the filter path's header filter would
// have written (LimitBucket.IETF, headerSet). The module's 429s carry the
// static headers of the filter path's quota denial (quotaDenial), which
// hold RateLimit-Policy and RateLimit with or without ietfHeaders.

// moduleTakesLimits reports whether the module enforces route r's limits,
// given that the module decides r: quota mode, limited, every limit keyed
// by the consumer alone, and buckets the module holds (moduleHolds).
func moduleTakesLimits(cfg *ir.Config, r ir.Route) bool {
	rr := r.RateLimit
	if !cfg.RateLimits.Quota() || !rr.Enabled || rr.Shadow || rr.Anonymous {
		return false
	}
	byConsumerOnly := len(rr.By) == 0 || slices.Equal(rr.By, []string{byConsumer})
	keyed := (len(rr.Extra) == 0 && rr.Consumer) || (len(rr.Extra) > 0 && byConsumerOnly)
	return keyed && moduleHolds(cfg, r)
}

// moduleHolds reports whether route r's buckets are within the bounds of
// the module's route block (envoymod.MaxBucketLimits, MaxTiers): the
// module refuses a route configuration beyond them, and Envoy then
// rejects the whole route configuration. A bucket has its tier's limits
// (on a route that applies them) and the route's extra limits.
func moduleHolds(cfg *ir.Config, r ir.Route) bool {
	most := 0
	if r.RateLimit.Consumer {
		if len(cfg.RateLimits.Tiers) > envoymod.MaxTiers {
			return false
		}
		for _, t := range cfg.RateLimits.Tiers {
			most = max(most, len(t.Limits))
		}
	}
	return most+len(r.RateLimit.Extra) <= envoymod.MaxBucketLimits
}

// moduleQuota is the module's rate-limit settings: RLQS at address, the
// policy's failure mode.
func moduleQuota(cfg *ir.Config, address string) *envoymod.Quota {
	return &envoymod.Quota{Address: address, Domain: ir.RateLimitQuotaDomain,
		FailClosed: cfg.RateLimits.FailureMode == ir.FailClosed}
}

// moduleRouteLimits returns route r's buckets as the module enforces
// them, built as the filter path's matcher builds them (quota.bucketFor):
// by tier when the route applies tier limits (an unknown tier takes the
// default tier's), else one bucket of the route's extra limits.
func moduleRouteLimits(cfg *ir.Config, r ir.Route) *envoymod.RouteLimits {
	ietf := cfg.RateLimits.IETFHeaders
	out := &envoymod.RouteLimits{Unidentified: moduleBucket(ir.BucketKindDeny, r.Name, "", "unidentified", nil, false)}
	out.Unidentified.Deny = true
	extra := named(r.Name, r.RateLimit.Extra)
	if !r.RateLimit.Consumer {
		out.Default = moduleBucket(ir.BucketKindConsumer, r.Name, "", r.Name, extra, ietf)
		return out
	}
	out.Tiers = map[string]envoymod.LimitBucket{}
	for _, t := range cfg.RateLimits.Tiers {
		b := moduleBucket(ir.BucketKindConsumer, r.Name, t.Name, t.Name, append(named(t.Name, t.Limits), extra...), ietf)
		if t.Unlimited && len(extra) == 0 {
			b = envoymod.LimitBucket{ID: ir.BucketStatic(ir.BucketKindUnlimited, r.Name, ""), Unlimited: true}
		}
		out.Tiers[t.Name] = b
		if t.Name == cfg.RateLimits.DefaultTier {
			out.Default = b
		}
	}
	return out
}

// moduleBucket is the bucket of kind on route for tier with limits (the
// tier's then the route's extra ones), the filter path's denial of it
// (quotaDenial) and, with ietf, the IETF headers the filter path's header
// filter writes on its admitted responses (headerSet: none without limits).
func moduleBucket(kind, route, tier, name string, limits []namedLimit, ietf bool) envoymod.LimitBucket {
	body, headers := quotaDenial(limits, name)
	b := envoymod.LimitBucket{ID: ir.BucketStatic(kind, route, tier), DenyBody: body}
	for _, l := range limits {
		b.Limits = append(b.Limits, l.Limit)
	}
	if len(limits) > 0 { // the X-RateLimit-* of admitted responses: the backstop's (ietfHeaders)
		b.ReportedLimit = reportedLimit(limits)
	}
	if set := headerSet(limits, nil); ietf && set != (envoy.RateLimitHeaderSet{}) {
		beforeR, beforeT := set.RateLimitParts()
		b.IETF = &envoymod.IETFHeaders{Policy: set.Policy, RateLimitR: beforeR, RateLimitT: beforeT}
	}
	for _, h := range headers {
		b.DenyHeaders = append(b.DenyHeaders, envoymod.Header{Name: h.Name, Value: h.Value})
	}
	return b
}
