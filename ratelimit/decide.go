package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	commonrl "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"

	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/ratelimit/counter"
)

// caller is what one descriptor says about a request.
type caller struct {
	route, consumer, tier, ip string
	headers                   map[string]string
}

// parseDescriptor reads the entries Envoy built from the route's actions.
func parseDescriptor(d *commonrl.RateLimitDescriptor) caller {
	var c caller
	for _, e := range d.GetEntries() {
		switch k := e.GetKey(); {
		case k == ir.DescriptorRoute:
			c.route = e.GetValue()
		case k == ir.DescriptorConsumer:
			c.consumer = e.GetValue()
		case k == ir.DescriptorTier:
			c.tier = e.GetValue()
		case k == ir.DescriptorClientIP:
			c.ip = e.GetValue()
		case strings.HasPrefix(k, ir.DescriptorHeaderPrefix):
			if c.headers == nil {
				c.headers = map[string]string{}
			}
			c.headers[k] = e.GetValue()
		}
	}
	return c
}

// limitRef is one limit applied to a request, with its counter key.
type limitRef struct {
	name string // for the RateLimit headers: the tier, "anonymous" or the route
	lim  ir.Limit
	tag  string // Redis hash tag: limits of one tag are taken in one script
	key  string
}

// limitsFor returns the limits that apply to c on route rr.
func limitsFor(t *Table, rr ir.RouteRateLimit, c caller) []limitRef {
	var refs []limitRef
	if rr.Consumer && c.consumer != "" {
		if tier, ok := t.tier(c.tier); ok && !tier.Unlimited {
			tag := "c:" + c.consumer
			for _, l := range tier.Limits {
				refs = append(refs, limitRef{name: tier.Name, lim: l, tag: tag, key: "{" + tag + "}:tier:" + window(l)})
			}
		}
	}
	if rr.Anonymous && c.ip != "" {
		tag := "ip:" + c.ip
		for _, l := range t.anonymous {
			refs = append(refs, limitRef{name: "anonymous", lim: l, tag: tag, key: "{" + tag + "}:anon:" + window(l)})
		}
	}
	if len(rr.Extra) > 0 {
		parts := keyParts(rr.By, c)
		for _, l := range rr.Extra {
			key := "{" + parts[0] + "}:route:" + c.route + ":" + strings.Join(parts[1:], ":") + ":" + window(l)
			refs = append(refs, limitRef{name: c.route, lim: l, tag: parts[0], key: key})
		}
	}
	return refs
}

// keyParts turns the route's By list into key parts; a missing value
// becomes "-" so such requests share one counter rather than none.
func keyParts(by []string, c caller) []string {
	if len(by) == 0 {
		by = []string{"consumer"}
	}
	parts := make([]string, 0, len(by))
	for _, b := range by {
		v := ""
		switch {
		case b == "consumer":
			v = "c:" + c.consumer
		case b == "clientIP":
			v = "ip:" + c.ip
		default:
			v = "h:" + strings.TrimPrefix(b, ir.DescriptorHeaderPrefix) + "=" + c.headers[b]
		}
		if strings.HasSuffix(v, ":") || strings.HasSuffix(v, "=") {
			v += "-"
		}
		parts = append(parts, v)
	}
	return parts
}

// window names a limit in its counter key; a changed limit starts afresh.
func window(l ir.Limit) string {
	return strconv.FormatUint(l.Requests, 10) + "r" + strconv.FormatInt(int64(l.Per.Seconds()), 10) + "s" +
		strconv.FormatUint(l.Burst, 10) + "b"
}

// Decision is the outcome of one rate-limit decision (ShouldRateLimit or
// Decide).
type Decision struct {
	route, tier string
	refs        []limitRef
	results     []counter.Result
	allowed     bool
	shadowed    bool // over the limit, admitted because the route is in shadow mode
	descriptors int
	unknown     bool // admitted without counting (backend down, failure mode open)
	err         error
}

// callers reads the descriptors of an RLS request.
func callers(req *rlsv3.RateLimitRequest) []caller {
	out := make([]caller, len(req.GetDescriptors()))
	for i, desc := range req.GetDescriptors() {
		out[i] = parseDescriptor(desc)
	}
	return out
}

// decide takes the limits of the callers (one per descriptor) from the
// backend. Limits of one hash tag are taken atomically in one call (the
// usual case: everything keyed on the consumer); several tags mean one call
// each. Both entry points, ShouldRateLimit and Decide, go through here.
func (s *Service) decide(ctx context.Context, t *Table, cs []caller) Decision {
	d := Decision{allowed: true, descriptors: len(cs)}
	shadow := false
	for _, c := range cs {
		rr, ok := t.routes[c.route]
		if !ok {
			continue
		}
		d.route, d.tier, shadow = c.route, tierLabel(t, c), shadow || rr.Shadow
		d.refs = append(d.refs, limitsFor(t, rr, c)...)
	}
	for _, group := range byTag(d.refs) {
		allowed, results, err := s.take(ctx, t, counterLimits(d.refs, group))
		if err != nil {
			d.err = fmt.Errorf("take %d limits: %w", len(group), err)
			return d
		}
		d.allowed = d.allowed && allowed
		d.unknown = d.unknown || results == nil
		d.results = placeResults(d.results, len(d.refs), group, results)
	}
	if !d.allowed && shadow {
		d.allowed, d.shadowed = true, true
	}
	return d
}

// tierLabel is the tier a decision of c is counted under in the metrics:
// the policy's tier that c's tier resolves to (Table.TierName), or "" when
// c has neither consumer nor tier.
func tierLabel(t *Table, c caller) string {
	if c.consumer == "" && c.tier == "" {
		return ""
	}
	return t.TierName(c.tier)
}

// byTag groups ref indices by hash tag, in first-seen order.
func byTag(refs []limitRef) [][]int {
	var groups [][]int
	index := map[string]int{}
	for i, r := range refs {
		g, ok := index[r.tag]
		if !ok {
			g = len(groups)
			index[r.tag] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}

func counterLimits(refs []limitRef, group []int) []counter.Limit {
	out := make([]counter.Limit, len(group))
	for i, j := range group {
		l := refs[j].lim
		out[i] = counter.Limit{Key: refs[j].key, Requests: l.Requests, Per: l.Per, Burst: l.Burst}
	}
	return out
}

func placeResults(all []counter.Result, n int, group []int, results []counter.Result) []counter.Result {
	if all == nil {
		all = make([]counter.Result, n)
	}
	for i, j := range group {
		if i < len(results) {
			all[j] = results[i]
		}
	}
	return all
}

// take asks the backend, applying the policy's failure mode when it
// cannot answer: open admits without counting (results nil), closed
// returns the error (Envoy denies with 503), local counts in memory.
// After a failure the breaker skips the backend for a moment, then lets
// one request probe it, so service recovers by itself.
func (s *Service) take(ctx context.Context, t *Table, limits []counter.Limit) (bool, []counter.Result, error) {
	tk, err := s.guard.Allow()
	if err == nil {
		start := time.Now()
		var ok bool
		var res []counter.Result
		ok, res, err = s.opts.Backend.Take(ctx, limits)
		s.opts.Metrics.backendTime(time.Since(start))
		switch {
		case err == nil:
			tk.Success()
			return ok, res, nil
		case errors.Is(err, counter.ErrInvalidLimit):
			tk.Ignore()
			return s.invalidTake(err)
		case ctx.Err() != nil: // Envoy gave up: nothing learnt about the backend
			tk.Ignore()
		default:
			tk.Failure(err)
		}
		s.opts.Metrics.backendError()
	} else {
		err = errBackendDown
	}
	switch {
	case t.failureMode == ir.FailClosed:
		return false, nil, err
	case t.failureMode == ir.FailLocal && s.opts.Local != nil:
		return s.opts.Local.Take(ctx, limits)
	}
	return true, nil, nil
}

var errBackendDown = errors.New("rate limit backend down (retrying shortly)")

// invalidTake answers a Take the backend refused for an invalid limit.
// newTable leaves out every limit ir.CheckLimit refuses, and the counters
// check with that very function, so this only happens with a backend of
// its own bounds. It is a configuration error of these limits, not an
// outage: the backend is not skipped, the failure mode does not apply, and
// the request is admitted without being counted, as a skipped limit is.
func (s *Service) invalidTake(err error) (bool, []counter.Result, error) {
	s.log.Error("rate limit skipped: the counters cannot enforce it; fix it in the policy", "err", err)
	return true, nil, nil
}
