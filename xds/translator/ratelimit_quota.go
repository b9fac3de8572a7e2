package translator

import (
	"fmt"
	"slices"
	"time"

	xdsmatcherv3 "github.com/cncf/xds/go/xds/type/matcher/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// Quota mode (rateLimits.mode: quota): Envoy enforces the limits without a
// call per request. Three filters run right after authentication, in this
// order:
//   - envoy.QuotaStateName (set_filter_state) writes the bucket keys
//     (ir.QuotaState*): the route name, the consumer and tier the
//     authentication filter published (identitySource), the client
//     address. The client cannot write filter state, and the identity
//     headers it sent were stripped before;
//   - rate_limit_quota (RLQS): one bucket per route, tier and consumer (or
//     client address), whose token bucket the quota server (package
//     ratelimit/quota) assigns as this Envoy's share of the limits;
//   - the local_ratelimit backstop: per route, one bucket per consumer (or
//     client address) and window, of the full limit, so that one Envoy
//     alone never exceeds a limit, whatever RLQS admits (cold start, server
//     or Redis down, an expired assignment). A request meets the buckets
//     of all its limits in the order they refill from empty, one filter
//     per step (see backstop), X-RateLimit-* from the first filter only.
//
// The bucket matcher maps every rate-limited route: a route whose key is
// missing (no consumer value) goes to a deny bucket, never to no bucket,
// and a tier that is not known goes to the default tier, as in exact mode.
// Unlimited tiers (without extra limits) go to one unlimited bucket per
// route, which the server answers with ALLOW_ALL and counts nowhere.
// Buckets fall back only to blanket rules (a token-bucket no-assignment
// fallback crashes Envoy 1.40; envoy.QuotaBucket cannot express one):
// ALLOW_ALL before the first assignment (the backstop bounds it), and after
// an assignment expired unrenewed DENY_ALL when the failure mode is closed,
// ALLOW_ALL otherwise.

// quotaMaxConsumers is the size of the backstop's LRU of consumer (or
// client address) buckets per descriptor and route: beyond it, the least
// recently seen consumer's bucket is dropped and starts full again.
const quotaMaxConsumers = 100000

// quotaExpiredFor is how long the expired-assignment rule lasts before
// the no-assignment rule applies again.
const quotaExpiredFor = 24 * time.Hour

// Descriptor keys of the backstop (local to Envoy's config).
const (
	localKeyWindow   = "window"
	localKeyTier     = "tier"
	localKeyConsumer = "consumer"
	localKeyAnon     = "anonymous"
	localKeyExtra    = "extra"
	localKeyClientIP = "remote_address"
)

// identitySource is where a route's consumer and tier come from: keys of
// an authentication filter's dynamic metadata. ext_authz today; the
// native JWT path plugs its own in (identitySources).
type identitySource struct {
	Namespace, ConsumerKey, TierKey string
}

// extAuthzIdentity is the identity ext_authz publishes.
var extAuthzIdentity = identitySource{Namespace: envoy.ExtAuthzName, ConsumerKey: metadataConsumer, TierKey: metadataTier}

// identityFor returns the identity source of route r.
func identityFor(ir.Route) identitySource { return extAuthzIdentity }

// quota is the quota-mode configuration of one gateway, collected route
// by route.
type quota struct {
	cfg     *ir.Config
	cluster string
	routes  map[string]*xdsmatcherv3.Matcher_OnMatch
	sources []identitySource
	// ranks is the number of backstop filters: the most steps of one
	// route's backstop (see backstop).
	ranks int
	// moduleRoutes are the routes whose limits the Envoy module enforces
	// (jwtmodule_limits.go): no bucket here, and the quota filters off.
	moduleRoutes []*routev3.Route
}

// moduleRoute records er, a route whose limits the Envoy module enforces.
func (q *quota) moduleRoute(er *routev3.Route) { q.moduleRoutes = append(q.moduleRoutes, er) }

// finishRoutes turns set_filter_state and rate_limit_quota off on the
// module's routes when the gateway runs them for other routes: they would
// otherwise cost each of the module's requests their work (the state
// written, the matcher walked) for no bucket. The backstop filters are off
// by default and on only where a route configures them. Call it after
// every route is configured.
func (q *quota) finishRoutes() error {
	if q.empty() {
		return nil
	}
	for _, er := range q.moduleRoutes {
		for _, f := range []string{envoy.QuotaStateName, envoy.RateLimitQuotaName} {
			if err := envoy.SetRouteFilterConfig(er, f, envoy.FilterDisabled()); err != nil {
				return err
			}
		}
	}
	return nil
}

// empty reports whether no route has a bucket.
func (q *quota) empty() bool { return len(q.routes) == 0 }

func newQuota(cfg *ir.Config, cluster string) *quota {
	return &quota{cfg: cfg, cluster: cluster, routes: map[string]*xdsmatcherv3.Matcher_OnMatch{}}
}

// httpFilters returns the quota state, backstop and RLQS filters; none
// when no route has a bucket (the module enforces every limited route's
// limits: jwtmodule_limits.go). Call it after configureRoute.
func (q *quota) httpFilters() ([]*hcmv3.HttpFilter, error) {
	if q.empty() {
		return nil, nil
	}
	state, err := envoy.QuotaStateFilter(q.stateValues())
	if err != nil {
		return nil, err
	}
	locals := make([]*hcmv3.HttpFilter, max(1, q.ranks))
	for i := range locals {
		f, err := envoy.LocalRateLimitFilter(i)
		if err != nil {
			return nil, err
		}
		locals[i] = f
	}
	tree, err := envoy.QuotaMatchState(ir.QuotaStateRoute, q.routes, nil)
	if err != nil {
		return nil, err
	}
	rlqs, err := envoy.RateLimitQuotaFilter(q.cluster, ir.RateLimitQuotaDomain, tree)
	if err != nil {
		return nil, err
	}
	// RLQS before the backstop: RLQS must see (and report) the whole
	// demand to share the limit by it, and the backstop must count only
	// what RLQS admitted (else requests RLQS refuses would spend the
	// backstop's tokens). What RLQS admitted and the backstop refused is
	// reported as admitted; the server charges it only up to what the
	// backstop can have admitted (package ratelimit/quota). The IETF
	// headers' filter goes right before the backstop: on the way back it
	// reads the X-RateLimit-* headers of the backstop's first filter.
	filters := []*hcmv3.HttpFilter{state, rlqs}
	if q.cfg.RateLimits.IETFHeaders {
		h, err := envoy.RateLimitHeadersFilter()
		if err != nil {
			return nil, err
		}
		static, err := envoy.RateLimitHeadersStaticFilter()
		if err != nil {
			return nil, err
		}
		filters = append(filters, h, static)
	}
	return append(filters, locals...), nil
}

// stateValues are the filter state objects the matchers read. With
// several identity sources on a gateway their formats are concatenated:
// on a route only one of them publishes anything.
func (q *quota) stateValues() []envoy.FilterStateValue {
	sources := q.sources
	if len(sources) == 0 {
		sources = []identitySource{extAuthzIdentity}
	}
	var consumer, tier string
	for _, s := range sources {
		consumer += fmt.Sprintf("%%DYNAMIC_METADATA(%s:%s)%%", s.Namespace, s.ConsumerKey)
		tier += fmt.Sprintf("%%DYNAMIC_METADATA(%s:%s)%%", s.Namespace, s.TierKey)
	}
	return []envoy.FilterStateValue{
		{Key: ir.QuotaStateRoute, Format: "%ROUTE_NAME%"},
		{Key: ir.QuotaStateConsumer, Format: consumer},
		{Key: ir.QuotaStateTier, Format: tier},
		{Key: ir.QuotaStateClientIP, Format: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"},
	}
}

// configureRoute adds route r's bucket matcher and sets its backstop.
func (q *quota) configureRoute(er *routev3.Route, r ir.Route) error {
	rr := r.RateLimit
	src := identityFor(r)
	if !slices.Contains(q.sources, src) {
		q.sources = append(q.sources, src)
	}
	m, err := q.routeMatcher(r.Name, rr)
	if err != nil {
		return fmt.Errorf("rate limit quota: %w", err)
	}
	q.routes[r.Name] = envoy.QuotaOnMatcher(m)
	ranks := q.backstop(r.Name, rr, src)
	q.ranks = max(q.ranks, len(ranks))
	for i, rk := range ranks {
		// X-RateLimit-* from rank 0 only (every request's shortest
		// window): every request the backstop sees passes it, so every
		// response it sees gets exactly one set.
		cfg := envoy.LocalRateLimitRoute(rk.descs, rk.actions, quotaMaxConsumers, i == 0)
		if err := envoy.SetRouteFilterConfig(er, envoy.LocalRateLimitFilterName(i), cfg); err != nil {
			return err
		}
	}
	if !q.cfg.RateLimits.IETFHeaders {
		return nil
	}
	if err := q.ietfHeaders(er, r.Name, rr); err != nil {
		return fmt.Errorf("rate limit quota: %w", err)
	}
	return nil
}

// routeMatcher puts a request of route into its bucket: by consumer (and
// tier) on an authenticated route, by client address on a public one; a
// missing key goes to the deny bucket.
func (q *quota) routeMatcher(route string, rr ir.RouteRateLimit) (*xdsmatcherv3.Matcher, error) {
	deny, err := envoy.QuotaBucketAction(q.bucket(staticID(ir.BucketKindDeny, route, ""),
		nil, "unidentified", nil, envoy.DenyAll))
	if err != nil {
		return nil, err
	}
	byConsumerKey := rr.Consumer || (len(rr.Extra) > 0 && (len(rr.By) == 0 || slices.Contains(rr.By, byConsumer)))
	if !byConsumerKey {
		anon, err := q.bucketFor(route, rr, ir.BucketKindAnonymous, "")
		if err != nil {
			return nil, err
		}
		return envoy.QuotaRequireState(ir.QuotaStateClientIP, anon, deny)
	}
	var then *xdsmatcherv3.Matcher_OnMatch
	if rr.Consumer {
		tiers, err := q.tierMatcher(route, rr)
		if err != nil {
			return nil, err
		}
		then = envoy.QuotaOnMatcher(tiers)
	} else if then, err = q.bucketFor(route, rr, ir.BucketKindConsumer, ""); err != nil {
		return nil, err
	}
	return envoy.QuotaRequireState(ir.QuotaStateConsumer, then, deny)
}

// tierMatcher maps the tier value to each tier's bucket, and any other
// value (or none) to the default tier's.
func (q *quota) tierMatcher(route string, rr ir.RouteRateLimit) (*xdsmatcherv3.Matcher, error) {
	cases := map[string]*xdsmatcherv3.Matcher_OnMatch{}
	var def *xdsmatcherv3.Matcher_OnMatch
	for _, t := range q.cfg.RateLimits.Tiers {
		b, err := q.bucketFor(route, rr, ir.BucketKindConsumer, t.Name)
		if err != nil {
			return nil, err
		}
		cases[t.Name] = b
		if t.Name == q.cfg.RateLimits.DefaultTier {
			def = b
		}
	}
	return envoy.QuotaMatchState(ir.QuotaStateTier, cases, def)
}

// bucketFor is the bucket action of kind on route for tier ("" for none).
func (q *quota) bucketFor(route string, rr ir.RouteRateLimit, kind, tier string) (*xdsmatcherv3.Matcher_OnMatch, error) {
	limits := named(route, rr.Extra) // exact mode's order: tier, anonymous, extra
	name := route
	if tier != "" {
		t, _ := q.cfg.RateLimits.Tier(tier)
		if t.Unlimited && len(rr.Extra) == 0 {
			return envoy.QuotaBucketAction(q.bucket(staticID(ir.BucketKindUnlimited, route, ""),
				nil, tier, nil, envoy.AllowAll))
		}
		limits, name = append(named(tier, t.Limits), limits...), tier
	}
	if kind == ir.BucketKindAnonymous {
		limits, name = append(named("anonymous", q.cfg.RateLimits.Anonymous), limits...), "anonymous"
	}
	static := staticID(kind, route, tier)
	fromState := map[string]string{}
	if kind == ir.BucketKindConsumer {
		fromState[ir.BucketKeyConsumer] = ir.QuotaStateConsumer
	}
	if kind == ir.BucketKindAnonymous || slices.Contains(rr.By, byClientIP) {
		fromState[ir.BucketKeyClientIP] = ir.QuotaStateClientIP
	}
	return envoy.QuotaBucketAction(q.bucket(static, fromState, name, limits, envoy.AllowAll))
}

// staticID is the static part of a bucket id: one entry (ir.BucketStatic),
// as each entry costs Envoy work on every request.
func staticID(kind, route, tier string) map[string]string {
	return map[string]string{ir.BucketKeyBucket: ir.BucketStatic(kind, route, tier)}
}

// named names each of limits name.
func named(name string, limits []ir.Limit) []namedLimit {
	out := make([]namedLimit, len(limits))
	for i, l := range limits {
		out[i] = namedLimit{name: name, Limit: l}
	}
	return out
}

// bucket is the settings of one bucket of limits: denials are 429 with
// Retry-After and the rate-limit headers (see quotaDenial), before the first
// assignment noAssignment applies, and after an assignment expired
// unrenewed the failure mode's blanket rule.
func (q *quota) bucket(static, fromState map[string]string, name string, limits []namedLimit, noAssignment envoy.BlanketRule) envoy.QuotaBucket {
	expired := envoy.AllowAll
	if q.cfg.RateLimits.FailureMode == ir.FailClosed || noAssignment == envoy.DenyAll {
		expired = envoy.DenyAll
	}
	body, headers := quotaDenial(limits, name)
	return envoy.QuotaBucket{
		Static: static, FromState: fromState, NoAssignment: noAssignment, Expired: expired, ExpiredFor: quotaExpiredFor,
		DenyStatus: 429, DenyBody: body, DenyHeaders: headers,
	}
}
