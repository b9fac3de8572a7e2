package quota

import (
	"math"
	"slices"
	"time"

	rlqsv3 "github.com/envoyproxy/go-control-plane/envoy/service/rate_limit_quota/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/ratelimit"
)

// Assignment lifetimes. Envoy 1.40 cuts every duration to whole seconds
// and reports every 5 s, so a token-bucket assignment lives for two report
// intervals and a bit: one lost report does not expire it.
const (
	// AssignmentTTL is the time to live of a token-bucket assignment; it
	// is also the horizon H of the multi-window rule (see combine).
	AssignmentTTL = 12 * time.Second
	// holdMargin keeps a share reserved a little past its assignment.
	holdMargin = 3 * time.Second
	// BlanketTTL is the time to live of ALLOW_ALL and DENY_ALL answers for
	// unlimited and deny buckets (they never change with usage).
	BlanketTTL = time.Hour
	// FailureTTL is the time to live of the failure-mode answers given
	// while the account is down; recovery pushes fresh assignments sooner.
	FailureTTL = 5 * time.Second
	// newcomerBurst is how much of its rate a participant that gets its
	// first token bucket while nothing is left may admit at once.
	newcomerBurst = 100 * time.Millisecond
)

// bucket is what a bucket id says, and the limits it stands for.
//
// route and tier label the bucket's reported requests, so both are names
// the policy holds, never a value read from the id alone.
type bucket struct {
	kind string
	// route is a route the policy rate limits; "" for a deny or unlimited
	// bucket of a route it does not (they are answered whatever their
	// route) and for an id Tollgate did not build.
	route string
	// tier is the policy's name of the tier whose limits apply (the
	// default tier's for a tier the policy does not know), "" for none.
	tier   string
	limits []ratelimit.KeyedLimit
}

// parseBucket reads a bucket id built by the translator's matchers (keys
// ir.BucketKey*: the static part in one ir.BucketKeyBucket entry, or as
// separate kind, route and tier entries) against t. ok is false for an id
// Tollgate did not build or for a route that is no longer rate limited.
func parseBucket(t *ratelimit.Table, id map[string]string) (bucket, bool) {
	kind, route, tier := id[ir.BucketKeyKind], id[ir.BucketKeyRoute], id[ir.BucketKeyTier]
	if v, ok := id[ir.BucketKeyBucket]; ok {
		if kind != "" || route != "" || tier != "" {
			return bucket{}, false // both forms at once: not Tollgate's
		}
		if kind, route, tier, ok = ir.ParseBucketStatic(v); !ok {
			return bucket{}, false
		}
	}
	switch kind {
	case ir.BucketKindUnlimited, ir.BucketKindDeny:
		if _, ok := t.Route(route); !ok {
			route = ""
		}
		return bucket{kind: kind, route: route}, true
	case ir.BucketKindConsumer:
		if _, ok := t.Route(route); !ok || id[ir.BucketKeyConsumer] == "" {
			return bucket{}, false
		}
		return bucket{kind: kind, route: route, tier: tierName(t, tier),
			limits: t.Limits(route, id[ir.BucketKeyConsumer], tier, id[ir.BucketKeyClientIP])}, true
	case ir.BucketKindAnonymous:
		if _, ok := t.Route(route); !ok || id[ir.BucketKeyClientIP] == "" {
			return bucket{}, false
		}
		return bucket{kind: kind, route: route, limits: t.Limits(route, "", "", id[ir.BucketKeyClientIP])}, true
	}
	return bucket{}, false
}

// tierName is the policy's name of the tier whose limits a bucket of tier
// tier meets (Table.TierName), "" for a bucket without a tier.
func tierName(t *ratelimit.Table, tier string) string {
	if tier == "" {
		return ""
	}
	return t.TierName(tier)
}

// window is one limit of a bucket as a participant holds it: its share of
// the limit's remaining requests (cap) and of its rate (rate, per second).
type window struct {
	per  time.Duration
	cap  float64
	rate float64
}

// combine turns a participant's windows into one token bucket (Envoy
// applies one bucket per request). Windows are taken shortest first; the
// first sets cap C and rate f, and a longer window w binds (lowers f to
// its rate and C to its cap) unless its cap covers everything the bucket
// can admit within the horizon h: cap_w ≥ C + f·h. So within h of the
// assignment the bucket admits at most C + f·h ≤ cap_w for each window
// that does not bind, and at most cap_w + rate_w·h for each that does:
// within the participant's share of every limit.
func combine(ws []window, h time.Duration) (capacity, rate float64) {
	slices.SortFunc(ws, func(a, b window) int { return int(a.per - b.per) })
	capacity, rate = ws[0].cap, ws[0].rate
	for _, w := range ws[1:] {
		if w.cap < capacity+rate*h.Seconds() {
			capacity, rate = min(capacity, w.cap), min(rate, w.rate)
		}
	}
	return capacity, rate
}

// tokenBucket is the Envoy token bucket of capacity and rate (per
// second), with a fixed fill interval of fill (the bucket's longest
// window, whole seconds): Envoy 1.40 keeps a bucket whose max_tokens and
// tokens_per_fill did not change even if its fill_interval did (it
// compares only the interval's nanoseconds), so the interval never
// changes for a bucket and the rate is carried by tokens_per_fill.
// Envoy's bucket fills continuously at tokens_per_fill / fill_interval.
// At least one token of capacity and one per fill: an exhausted
// participant still gets its rate, and a fresh bucket starts full, so a
// fresh participant may admit one request beyond its share.
func tokenBucket(capacity, rate float64, fill time.Duration) *typev3.TokenBucket {
	secs := max(1, math.Floor(fill.Seconds()))
	return &typev3.TokenBucket{
		MaxTokens:     uint32(min(math.MaxUint32, max(1, math.Floor(capacity)))),
		TokensPerFill: wrapperspb.UInt32(uint32(min(math.MaxUint32, max(1, math.Floor(rate*secs))))),
		FillInterval:  durationpb.New(time.Duration(secs) * time.Second),
	}
}

// windows returns the participant's windows of b from the account's key
// states (one per limit, in order): each window's cap is the grant, what
// the participant may admit at once, and its rate the share of the
// limit's rate; and the bucket's fixed fill interval.
func windows(b bucket, states []KeyState) (ws []window, fill time.Duration) {
	ws = make([]window, len(b.limits))
	for i, l := range b.limits {
		ws[i] = window{
			per:  l.Limit.Per,
			cap:  states[i].Grant,
			rate: states[i].Share * float64(l.Limit.Requests) / l.Limit.Per.Seconds(),
		}
		fill = max(fill, l.Limit.Per)
	}
	return ws, fill
}

// assignment returns the actions that give a participant a bucket of
// capacity tokens now, refilled at rate, given whether Envoy holds a token
// bucket for it already (held):
//   - capacity ≥ 1: ALLOW_ALL then the token bucket, in one response.
//     Envoy rescales a changed bucket at its old fill ratio, but builds a
//     bucket that replaces a blanket rule full; both actions are applied
//     before the workers see the result, so the bucket holds exactly
//     ⌊capacity⌋ tokens, and whatever the old one had left returns to the
//     account (it was never charged);
//   - capacity < 1 with a bucket of heldMax tokens held: the same size, so
//     Envoy keeps the tokens it has (an unchanged bucket is kept, one with
//     a new rate rescaled at the same size); it refills at rate. Shrinking
//     it would throw away the refill under way;
//   - capacity < 1 and no bucket held: DENY_ALL when rate is 0, otherwise
//     a bucket of newcomerBurst of its rate (at least one token), which
//     Envoy builds full: that many requests beyond the grant, once per
//     participant. A new participant whose limit others hold (an Envoy
//     that reconnected to a restarted server, a replacement: the old
//     stream's grant is held 15 s) thus takes requests that arrive
//     together at its rate; with one token it refused every request but
//     one of each group arriving closer than 1/rate, far below its rate.
func assignment(id *rlqsv3.BucketId, capacity, rate float64, fill time.Duration, heldMax uint32) []*rlqsv3.RateLimitQuotaResponse_BucketAction {
	tb := tokenBucket(capacity, rate, fill)
	switch {
	case capacity >= 1:
		return []*rlqsv3.RateLimitQuotaResponse_BucketAction{
			blanketAction(id, typev3.RateLimitStrategy_ALLOW_ALL, AssignmentTTL), assignAction(id, tb, AssignmentTTL)}
	case heldMax > 0:
		tb.MaxTokens = heldMax
		return []*rlqsv3.RateLimitQuotaResponse_BucketAction{assignAction(id, tb, AssignmentTTL)}
	case rate*fill.Seconds() >= 1:
		tb.MaxTokens = uint32(min(math.MaxUint32, max(1, math.Floor(rate*newcomerBurst.Seconds()))))
		return []*rlqsv3.RateLimitQuotaResponse_BucketAction{assignAction(id, tb, AssignmentTTL)}
	}
	return []*rlqsv3.RateLimitQuotaResponse_BucketAction{blanketAction(id, typev3.RateLimitStrategy_DENY_ALL, AssignmentTTL)}
}

// assignAction is a token-bucket assignment for id.
func assignAction(id *rlqsv3.BucketId, tb *typev3.TokenBucket, ttl time.Duration) *rlqsv3.RateLimitQuotaResponse_BucketAction {
	return action(id, &typev3.RateLimitStrategy{Strategy: &typev3.RateLimitStrategy_TokenBucket{TokenBucket: tb}}, ttl)
}

// blanketAction is an ALLOW_ALL or DENY_ALL assignment for id.
func blanketAction(id *rlqsv3.BucketId, rule typev3.RateLimitStrategy_BlanketRule, ttl time.Duration) *rlqsv3.RateLimitQuotaResponse_BucketAction {
	return action(id, &typev3.RateLimitStrategy{Strategy: &typev3.RateLimitStrategy_BlanketRule_{BlanketRule: rule}}, ttl)
}

func action(id *rlqsv3.BucketId, s *typev3.RateLimitStrategy, ttl time.Duration) *rlqsv3.RateLimitQuotaResponse_BucketAction {
	return &rlqsv3.RateLimitQuotaResponse_BucketAction{
		BucketId: id,
		BucketAction: &rlqsv3.RateLimitQuotaResponse_BucketAction_QuotaAssignmentAction_{
			QuotaAssignmentAction: &rlqsv3.RateLimitQuotaResponse_BucketAction_QuotaAssignmentAction{
				AssignmentTimeToLive: durationpb.New(ttl),
				RateLimitStrategy:    s,
			},
		},
	}
}
