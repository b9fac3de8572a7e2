package translator

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// backstopRank is the backstop of one route in one local_ratelimit
// filter: the buckets of the limits that are the rank-th shortest of
// their list (a tier's, the anonymous, the route's extra limits), and the
// actions that build their descriptors.
type backstopRank struct {
	descs   []envoy.LocalDescriptor
	actions []*routev3.RateLimit
}

// backstop returns the local_ratelimit buckets and actions of a route in
// quota mode, by rank: rank i holds the i-th shortest window of each
// limit list, and each rank is its own filter, shortest first. Envoy 1.40's
// local_ratelimit spends a token of every matched bucket it checks before
// one refuses (smallest fill rate first), so windows of one list in one
// filter would let a request the minute refuses spend an hour token; with
// a filter per rank a request a window refuses never reaches a longer
// window of its list. For every tier (and the anonymous and extra limits)
// a bucket holds the full limit per consumer (or client address). A
// consumer without a tier value gets the default tier; a tier value the
// policy does not know matches no tier bucket here but the unknown-tier
// buckets (the RLQS matcher applies the default tier too).
func (q *quota) backstop(route string, rr ir.RouteRateLimit, src identitySource) []backstopRank {
	var ranks []backstopRank
	at := func(i int) *backstopRank {
		for len(ranks) <= i {
			ranks = append(ranks, backstopRank{})
		}
		return &ranks[i]
	}
	// add appends a bucket per limit at its rank, and with act one
	// descriptor (act's actions) per limit: limits of one list have
	// distinct windows.
	add := func(key []envoy.DescriptorEntry, limits []ir.Limit, act func(w string) []*routev3.RateLimit_Action) {
		for i, l := range byWindow(limits) {
			w, r := windowName(l.Per), at(i)
			r.descs = append(r.descs, localDescriptor(append([]envoy.DescriptorEntry{{Key: localKeyWindow, Value: w}}, key...), l))
			if act != nil {
				r.actions = append(r.actions, envoy.RouteRateLimit(act(w)...))
			}
		}
	}
	if rr.Consumer {
		q.tierBackstop(at, add, src)
	}
	if rr.Anonymous {
		add([]envoy.DescriptorEntry{{Key: localKeyAnon, Value: "1"}, {Key: localKeyClientIP}}, q.cfg.RateLimits.Anonymous,
			func(w string) []*routev3.RateLimit_Action {
				return []*routev3.RateLimit_Action{envoy.RateLimitActionGenericKey(localKeyWindow, w),
					envoy.RateLimitActionGenericKey(localKeyAnon, "1"), envoy.RateLimitActionRemoteAddress()}
			})
	}
	if len(rr.Extra) > 0 {
		key, act := extraKey(route, rr, src)
		add(key, rr.Extra, act)
	}
	return ranks
}

// tierBackstop adds (through add) every tier's buckets and, per rank, one
// action per window among the tiers' limits of that rank (the tier comes
// from the identity, so one action serves every tier with that window),
// then the unknown-tier buckets of the default tier.
func (q *quota) tierBackstop(at func(int) *backstopRank, add func([]envoy.DescriptorEntry, []ir.Limit, func(string) []*routev3.RateLimit_Action), src identitySource) {
	var windows []map[time.Duration]bool
	for _, t := range q.cfg.RateLimits.Tiers {
		add([]envoy.DescriptorEntry{{Key: localKeyTier, Value: t.Name}, {Key: localKeyConsumer}}, t.Limits, nil)
		for i, l := range byWindow(t.Limits) {
			for len(windows) <= i {
				windows = append(windows, map[time.Duration]bool{})
			}
			windows[i][l.Per] = true
		}
	}
	for i, ws := range windows {
		r := at(i)
		for _, per := range sortedWindows(ws) {
			r.actions = append(r.actions, envoy.RouteRateLimit(
				envoy.RateLimitActionGenericKey(localKeyWindow, windowName(per)),
				envoy.RateLimitActionMetadataDefault(localKeyTier, src.Namespace, src.TierKey, q.cfg.RateLimits.DefaultTier),
				envoy.RateLimitActionMetadata(localKeyConsumer, src.Namespace, src.ConsumerKey)))
		}
	}
	if def, ok := q.cfg.RateLimits.Tier(q.cfg.RateLimits.DefaultTier); ok && !def.Unlimited {
		add([]envoy.DescriptorEntry{{Key: localKeyUnknown, Value: "1"}, {Key: localKeyConsumer}}, def.Limits, q.unknownTier(src))
	}
}

// byWindow returns limits sorted by window, shortest first.
func byWindow(limits []ir.Limit) []ir.Limit {
	out := slices.Clone(limits)
	slices.SortStableFunc(out, func(a, b ir.Limit) int { return cmp.Compare(a.Per, b.Per) })
	return out
}

// unknownTier returns the actions of the default tier's backstop buckets
// for a consumer whose tier the policy does not know (a tier removed after
// its keys were issued, a claim naming another tier): RLQS counts such a
// consumer in the default tier, and without these buckets nothing would
// bound it before its first assignment or while RLQS is down. The rate
// limit applies only when the gateway-set tier header is present and names
// no known tier; the tier descriptor above then matches no bucket.
func (q *quota) unknownTier(src identitySource) func(string) []*routev3.RateLimit_Action {
	header := cmp.Or(q.cfg.Auth.IdentityHeaders.Tier, "x-consumer-tier")
	known := make([]string, 0, len(q.cfg.RateLimits.Tiers))
	for _, t := range q.cfg.RateLimits.Tiers {
		known = append(known, regexp.QuoteMeta(t.Name))
	}
	return func(w string) []*routev3.RateLimit_Action {
		return []*routev3.RateLimit_Action{envoy.RateLimitActionGenericKey(localKeyWindow, w),
			envoy.RateLimitActionHeaderValueMatch(localKeyUnknown, "1",
				envoy.HeaderMatchPresent(header), envoy.HeaderMatchNotRegex(header, "("+strings.Join(known, "|")+")")),
			envoy.RateLimitActionMetadata(localKeyConsumer, src.Namespace, src.ConsumerKey)}
	}
}

// extraKey is the descriptor key and actions of a route's extra limits:
// the route, then the consumer and/or the client address.
func extraKey(route string, rr ir.RouteRateLimit, src identitySource) ([]envoy.DescriptorEntry, func(string) []*routev3.RateLimit_Action) {
	key := []envoy.DescriptorEntry{{Key: localKeyExtra, Value: route}}
	consumer := len(rr.By) == 0 && !rr.Anonymous || slices.Contains(rr.By, byConsumer)
	ip := slices.Contains(rr.By, byClientIP) || len(rr.By) == 0 && rr.Anonymous
	if consumer {
		key = append(key, envoy.DescriptorEntry{Key: localKeyConsumer})
	}
	if ip {
		key = append(key, envoy.DescriptorEntry{Key: localKeyClientIP})
	}
	return key, func(w string) []*routev3.RateLimit_Action {
		acts := []*routev3.RateLimit_Action{envoy.RateLimitActionGenericKey(localKeyWindow, w), envoy.RateLimitActionGenericKey(localKeyExtra, route)}
		if consumer {
			acts = append(acts, envoy.RateLimitActionMetadata(localKeyConsumer, src.Namespace, src.ConsumerKey))
		}
		if ip {
			acts = append(acts, envoy.RateLimitActionRemoteAddress())
		}
		return acts
	}
}

// localDescriptor is the backstop bucket of limit l (ir.Limit.Backstop).
func localDescriptor(entries []envoy.DescriptorEntry, l ir.Limit) envoy.LocalDescriptor {
	maxTokens, perFill, fill := l.Backstop()
	return envoy.LocalDescriptor{Entries: entries, MaxTokens: maxTokens, TokensPerFill: perFill, FillInterval: fill}
}

func windowName(per time.Duration) string { return fmt.Sprintf("%ds", int64(per/time.Second)) }

func sortedWindows(ws map[time.Duration]bool) []time.Duration {
	out := make([]time.Duration, 0, len(ws))
	for w := range ws {
		out = append(out, w)
	}
	slices.Sort(out)
	return out
}
