package translator

import (
	"cmp"
	"fmt"
	"math/bits"
	"regexp"
	"slices"
	"strings"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// backstopRank is the backstop of one route in one local_ratelimit
// filter: its buckets and the actions that build their descriptors.
type backstopRank struct {
	descs   []envoy.LocalDescriptor
	actions []*routev3.RateLimit
	// acted holds the action families and windows that have an action.
	acted map[string]bool
}

// limitList is one list of limits on a route (a tier's, the unknown
// tier's, the anonymous, the route's extra limits) and how the backstop
// keys its buckets: the descriptor is the window, then chain (the entries
// that tell which list applies to a request: the tier, anonymous), then
// key (the consumer or client address); the actions
// building them are chainActs and keyActs. Lists of one family share one
// action per filter and window (the tiers: the tier entry comes from the
// identity).
type limitList struct {
	limits             []ir.Limit
	family             string
	chain, key         []envoy.DescriptorEntry
	chainActs, keyActs []*routev3.RateLimit_Action
	// alias: the buckets are another list's (the unknown tier's are the
	// default tier's): only its actions are added.
	alias bool
}

func (l limitList) entries(w string) []envoy.DescriptorEntry {
	return slices.Concat([]envoy.DescriptorEntry{{Key: localKeyWindow, Value: w}}, l.chain, l.key)
}

func (l limitList) actions(w string) []*routev3.RateLimit_Action {
	return slices.Concat([]*routev3.RateLimit_Action{envoy.RateLimitActionGenericKey(localKeyWindow, w)}, l.chainActs, l.keyActs)
}

// keying returns extra's buckets keyed by l's chain too: one extra bucket
// per list l (see backstop).
func (l limitList) keying(extra limitList) limitList {
	extra.family, extra.chain, extra.chainActs, extra.alias = l.family+"+"+extra.family, l.chain, l.chainActs, l.alias
	return extra
}

// backstop returns the local_ratelimit buckets and actions of a route in
// quota mode, one rank per filter, in the order Envoy checks them. Envoy
// 1.40's local_ratelimit spends a token of every bucket it checked before
// one refuses (within a filter, slowest refill first; filters in order),
// so a request sees the buckets of its limits (its tier's, or the unknown
// tier's, or the anonymous list, and the route's extra limits) in the
// order their buckets refill from empty (refill), one filter per step:
// a request a bucket refuses has spent tokens only of buckets that refill
// sooner, never of one that refills later, whichever list it belongs to.
// Buckets of one request that refill in the same time share a filter:
// the one Envoy checks first refills slower, so (keyed alike, spent by the
// same requests) it never holds more tokens, and the other never refuses
// after it admitted. Exact mode takes the limits of one key all or
// nothing, and limits of different keys (consumer, client address) each
// on its own; Envoy gives no token back, so a request a bucket refuses may
// have spent a token of one that refills sooner. Every request has a bucket
// in the first filter (the X-RateLimit-* one). For every tier (and the
// anonymous and extra limits) a bucket holds the full limit per consumer
// (or client address). A consumer without a tier value gets the default
// tier; a tier value the policy does not know matches no bucket of its
// own but, through the unknown tier's actions, the default tier's (the
// RLQS matcher applies the default tier too): one consumer's requests of
// the default tier and of unknown tiers share its buckets, as they share
// RLQS's bucket (whose charges backstopBound caps at what one set of
// buckets admits).
func (q *quota) backstop(route string, rr ir.RouteRateLimit, src identitySource) []backstopRank {
	var b rankBuilder
	lists := q.primaryLists(rr, src)
	if len(rr.Extra) == 0 {
		for _, l := range lists {
			b.add(l, refillRanks(l.limits))
		}
		return b.ranks
	}
	extra := extraList(route, rr, src)
	if len(lists) == 0 {
		b.add(extra, refillRanks(extra.limits))
		return b.ranks
	}
	// One extra bucket per route and key when its limits take the same
	// ranks beside every list; else (the tiers' shortest buckets differ
	// around the extra limits' shortest, an unlimited tier beside a
	// limited one) one per list, keyed by the tier too.
	extraRanks := make([][]int, len(lists))
	shared := true
	for i, l := range lists {
		var own []int
		own, extraRanks[i] = chainRanks(l.limits, extra.limits)
		b.add(l, own)
		shared = shared && slices.Equal(extraRanks[i], extraRanks[0])
	}
	if shared {
		b.add(extra, extraRanks[0])
		return b.ranks
	}
	for i, l := range lists {
		b.add(l.keying(extra), extraRanks[i])
	}
	return b.ranks
}

// rankBuilder collects a route's buckets by rank.
type rankBuilder struct{ ranks []backstopRank }

// add puts each of l's limits in its rank (ranks[i] for l.limits[i]), and
// an action per family and window to each rank.
func (b *rankBuilder) add(l limitList, ranks []int) {
	for i, lim := range l.limits {
		for len(b.ranks) <= ranks[i] {
			b.ranks = append(b.ranks, backstopRank{acted: map[string]bool{}})
		}
		r, w := &b.ranks[ranks[i]], windowName(lim.Per)
		if !l.alias {
			r.descs = append(r.descs, localDescriptor(l.entries(w), lim))
		}
		if k := l.family + "/" + w; !r.acted[k] {
			r.acted[k] = true
			r.actions = append(r.actions, envoy.RouteRateLimit(l.actions(w)...))
		}
	}
}

// primaryLists returns the lists of which one applies to each request of
// the route: every tier (an unlimited one with no limits) and the unknown
// tier (an alias of the default tier) on an authenticated route, the
// anonymous limits on a public one.
func (q *quota) primaryLists(rr ir.RouteRateLimit, src identitySource) []limitList {
	var out []limitList
	consumer := []envoy.DescriptorEntry{{Key: localKeyConsumer}}
	consumerAct := []*routev3.RateLimit_Action{envoy.RateLimitActionMetadata(localKeyConsumer, src.Namespace, src.ConsumerKey)}
	if rr.Consumer {
		tierAct := []*routev3.RateLimit_Action{envoy.RateLimitActionMetadataDefault(localKeyTier, src.Namespace, src.TierKey, q.cfg.RateLimits.DefaultTier)}
		for _, t := range q.cfg.RateLimits.Tiers {
			out = append(out, limitList{limits: t.Limits, family: "tier", chain: []envoy.DescriptorEntry{{Key: localKeyTier, Value: t.Name}},
				key: consumer, chainActs: tierAct, keyActs: consumerAct})
		}
		// The unknown tier: the default tier's buckets (its list above,
		// and its extra buckets when they are keyed by the tier), reached
		// by an action of its own; also when the default tier is
		// unlimited, for the extra limits keyed by the tier.
		if def, ok := q.cfg.RateLimits.Tier(q.cfg.RateLimits.DefaultTier); ok {
			out = append(out, limitList{limits: def.Limits, family: "unknown", chain: []envoy.DescriptorEntry{{Key: localKeyTier, Value: def.Name}},
				key: consumer, chainActs: []*routev3.RateLimit_Action{q.unknownTier()}, keyActs: consumerAct, alias: true})
		}
	}
	if rr.Anonymous {
		out = append(out, limitList{limits: q.cfg.RateLimits.Anonymous, family: "anonymous",
			chain: []envoy.DescriptorEntry{{Key: localKeyAnon, Value: "1"}}, key: []envoy.DescriptorEntry{{Key: localKeyClientIP}},
			chainActs: []*routev3.RateLimit_Action{envoy.RateLimitActionGenericKey(localKeyAnon, "1")},
			keyActs:   []*routev3.RateLimit_Action{envoy.RateLimitActionRemoteAddress()}})
	}
	return out
}

// unknownTier returns the action that gives a consumer whose tier the
// policy does not know (a tier removed after its keys were issued, a claim
// naming another tier) the default tier's tier entry: RLQS counts such a
// consumer in the default tier, and without the default tier's buckets
// for it nothing would bound it before its first assignment or while RLQS
// is down; with buckets of its own, one consumer with a token of the
// default tier and one of an unknown tier would get twice the limit. It
// applies only when the gateway-set tier header is present and names no
// known tier; the descriptors of the tier's own value then match no
// bucket.
func (q *quota) unknownTier() *routev3.RateLimit_Action {
	header := cmp.Or(q.cfg.Auth.IdentityHeaders.Tier, "x-consumer-tier")
	known := make([]string, 0, len(q.cfg.RateLimits.Tiers))
	for _, t := range q.cfg.RateLimits.Tiers {
		known = append(known, regexp.QuoteMeta(t.Name))
	}
	return envoy.RateLimitActionHeaderValueMatch(localKeyTier, q.cfg.RateLimits.DefaultTier,
		envoy.HeaderMatchPresent(header), envoy.HeaderMatchNotRegex(header, "("+strings.Join(known, "|")+")"))
}

// extraList is the route's extra limits: keyed by the route, then the
// consumer and/or the client address.
func extraList(route string, rr ir.RouteRateLimit, src identitySource) limitList {
	l := limitList{limits: rr.Extra, family: "extra", key: []envoy.DescriptorEntry{{Key: localKeyExtra, Value: route}},
		keyActs: []*routev3.RateLimit_Action{envoy.RateLimitActionGenericKey(localKeyExtra, route)}}
	if len(rr.By) == 0 && !rr.Anonymous || slices.Contains(rr.By, byConsumer) {
		l.key = append(l.key, envoy.DescriptorEntry{Key: localKeyConsumer})
		l.keyActs = append(l.keyActs, envoy.RateLimitActionMetadata(localKeyConsumer, src.Namespace, src.ConsumerKey))
	}
	if slices.Contains(rr.By, byClientIP) || len(rr.By) == 0 && rr.Anonymous {
		l.key = append(l.key, envoy.DescriptorEntry{Key: localKeyClientIP})
		l.keyActs = append(l.keyActs, envoy.RateLimitActionRemoteAddress())
	}
	return l
}

// refill is how long a limit's backstop bucket takes to refill from
// empty, maxTokens × fill / tokensPerFill as a fraction: the window, or
// longer for a burst above the limit.
type refill struct{ num, den uint64 }

func refillOf(l ir.Limit) refill {
	maxTokens, perFill, fill := l.Backstop()
	return refill{num: uint64(maxTokens) * uint64(fill/time.Second), den: uint64(perFill)}
}

func (a refill) compare(b refill) int {
	ah, al := bits.Mul64(a.num, b.den)
	bh, bl := bits.Mul64(b.num, a.den)
	return cmp.Or(cmp.Compare(ah, bh), cmp.Compare(al, bl))
}

// refillRanks returns the rank of each of limits: the index of its refill
// time among the distinct refill times of limits, shortest first.
func refillRanks(limits []ir.Limit) []int {
	own, _ := chainRanks(limits, nil)
	return own
}

// chainRanks returns the ranks of a's and b's limits, checked together:
// the index of each one's refill time among the distinct refill times of
// both lists, shortest first.
func chainRanks(a, b []ir.Limit) (ra, rb []int) {
	all := make([]refill, 0, len(a)+len(b))
	for _, l := range slices.Concat(a, b) {
		all = append(all, refillOf(l))
	}
	distinct := slices.Clone(all)
	slices.SortFunc(distinct, refill.compare)
	distinct = slices.CompactFunc(distinct, func(x, y refill) bool { return x.compare(y) == 0 })
	ranks := make([]int, len(all))
	for i, r := range all {
		ranks[i], _ = slices.BinarySearchFunc(distinct, r, refill.compare)
	}
	return ranks[:len(a)], ranks[len(a):]
}

// localDescriptor is the backstop bucket of limit l (ir.Limit.Backstop).
func localDescriptor(entries []envoy.DescriptorEntry, l ir.Limit) envoy.LocalDescriptor {
	maxTokens, perFill, fill := l.Backstop()
	return envoy.LocalDescriptor{Entries: entries, MaxTokens: maxTokens, TokensPerFill: perFill, FillInterval: fill}
}

func windowName(per time.Duration) string { return fmt.Sprintf("%ds", int64(per/time.Second)) }
