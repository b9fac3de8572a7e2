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

// backstop returns the local_ratelimit descriptors and actions of a route
// in quota mode: per window, one descriptor built by the actions, and for
// every tier (and the anonymous and extra limits) a bucket of the full
// limit per consumer (or client address). A consumer without a tier value
// gets the default tier; a tier value the policy does not know matches no
// bucket here (the RLQS matcher still applies the default tier).
func (q *quota) backstop(route string, rr ir.RouteRateLimit, src identitySource) ([]envoy.LocalDescriptor, []*routev3.RateLimit) {
	var descs []envoy.LocalDescriptor
	var actions []*routev3.RateLimit
	// add appends a bucket per limit, and with act one descriptor (act's
	// actions) per limit: limits of one list have distinct windows.
	add := func(key []envoy.DescriptorEntry, limits []ir.Limit, act func(w string) []*routev3.RateLimit_Action) {
		for _, l := range limits {
			w := windowName(l.Per)
			descs = append(descs, localDescriptor(append([]envoy.DescriptorEntry{{Key: localKeyWindow, Value: w}}, key...), l))
			if act != nil {
				actions = append(actions, envoy.RouteRateLimit(act(w)...))
			}
		}
	}
	if rr.Consumer {
		windows := map[time.Duration]bool{}
		for _, t := range q.cfg.RateLimits.Tiers {
			add([]envoy.DescriptorEntry{{Key: localKeyTier, Value: t.Name}, {Key: localKeyConsumer}}, t.Limits, nil)
			for _, l := range t.Limits {
				windows[l.Per] = true
			}
		}
		for _, per := range sortedWindows(windows) {
			actions = append(actions, envoy.RouteRateLimit(
				envoy.RateLimitActionGenericKey(localKeyWindow, windowName(per)),
				envoy.RateLimitActionMetadataDefault(localKeyTier, src.Namespace, src.TierKey, q.cfg.RateLimits.DefaultTier),
				envoy.RateLimitActionMetadata(localKeyConsumer, src.Namespace, src.ConsumerKey)))
		}
		if def, ok := q.cfg.RateLimits.Tier(q.cfg.RateLimits.DefaultTier); ok && !def.Unlimited {
			add([]envoy.DescriptorEntry{{Key: localKeyUnknown, Value: "1"}, {Key: localKeyConsumer}}, def.Limits, q.unknownTier(src))
		}
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
	return descs, actions
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

// localDescriptor is the backstop bucket of limit l: the whole burst, and
// the rate in the finest whole-second steps that keep it exact (Requests
// and the window divided by their greatest common divisor).
func localDescriptor(entries []envoy.DescriptorEntry, l ir.Limit) envoy.LocalDescriptor {
	secs := uint64(max(1, l.Per/time.Second))
	g := gcd(l.Requests, secs)
	return envoy.LocalDescriptor{
		Entries:       entries,
		MaxTokens:     uint32(min(1<<32-1, max(l.Requests, l.Burst))),
		TokensPerFill: uint32(min(1<<32-1, l.Requests/g)),
		FillInterval:  time.Duration(secs/g) * time.Second,
	}
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return max(a, 1)
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
