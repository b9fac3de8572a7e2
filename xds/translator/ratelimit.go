package translator

import (
	"errors"
	"fmt"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// RateLimitClusterName is the Envoy cluster of Tollgate's rate-limit
// (RLS) gRPC service.
const RateLimitClusterName = "tollgate_ratelimit"

// Rate-limit call settings: the connect timeout of the cluster, the limit
// on one ShouldRateLimit call, and the status of requests rejected because
// the service failed while the policy's failure mode is closed.
const (
	rateLimitConnectTimeout = time.Second
	rateLimitTimeout        = 100 * time.Millisecond
	rateLimitStatusOnError  = 503
)

// Keys of the identity the ext_authz service publishes as dynamic metadata
// (namespace envoy.ExtAuthzName) on every authenticated request.
const (
	metadataConsumer = "consumer"
	metadataTier     = "tier"
)

// Entries of RouteRateLimit.By besides "header:<name>".
const (
	byConsumer = "consumer"
	byClientIP = "clientIP"
)

// rateLimit is how one gateway's Envoys call the rate-limit service.
type rateLimit struct {
	// enabled is false when no route of the gateway is rate limited: no
	// ratelimit filter, route actions or cluster.
	enabled bool
	filter  envoy.RateLimitOptions
	cluster *clusterv3.Cluster
	// quota, in quota mode, replaces the ratelimit filter and route
	// actions (ratelimit_quota.go); the cluster is the same service.
	quota *quota
}

// newRateLimit derives the gateway's rate-limit settings from the IR and
// opts: the ratelimit filter and the rate-limit service's cluster only when
// a rate-limited route does not take its limits in the ext_authz Check.
func newRateLimit(cfg *ir.Config, gw *ir.Gateway, opts Options, a *authz) (*rateLimit, error) {
	if !a.needsRateLimitFilter(gw) {
		return &rateLimit{}, nil
	}
	if opts.RateLimitAddress == "" {
		return nil, errors.New("routes are rate limited but no rate-limit service address is set: start the control plane with --ratelimit-addr")
	}
	c, err := envoy.GRPCClusterAddrs(RateLimitClusterName, opts.RateLimitAddress, rateLimitConnectTimeout)
	if err != nil {
		return nil, fmt.Errorf("rate-limit service: %w", err)
	}
	var q *quota
	if cfg.RateLimits.Quota() {
		q = newQuota(cfg, RateLimitClusterName)
	}
	return &rateLimit{
		enabled: true,
		cluster: c,
		quota:   q,
		filter: envoy.RateLimitOptions{
			Domain:          ir.RateLimitDomain,
			Cluster:         RateLimitClusterName,
			Timeout:         rateLimitTimeout,
			FailureModeDeny: cfg.RateLimits.FailureMode == ir.FailClosed,
			StatusOnError:   rateLimitStatusOnError,
			Retry:           replicaRetry(opts.RateLimitAddress, rateLimitTimeout),
		},
	}, nil
}

// httpFilters returns the ratelimit filter when enabled, else none. It
// must run after ext_authz, whose dynamic metadata the route actions read.
func (rl *rateLimit) httpFilters() ([]*hcmv3.HttpFilter, error) {
	if !rl.enabled {
		return nil, nil
	}
	if rl.quota != nil {
		return rl.quota.httpFilters()
	}
	f, err := envoy.RateLimitFilter(rl.filter)
	if err != nil {
		return nil, err
	}
	return []*hcmv3.HttpFilter{f}, nil
}

// moduleRoute records er, a route whose limits the Envoy module enforces
// (quota mode only: see quota.finishRoutes).
func (rl *rateLimit) moduleRoute(er *routev3.Route) {
	if rl.quota != nil {
		rl.quota.moduleRoute(er)
	}
}

// finishRoutes completes the routes' settings once every route is
// configured (quota.finishRoutes).
func (rl *rateLimit) finishRoutes() error {
	if rl.quota == nil {
		return nil
	}
	return rl.quota.finishRoutes()
}

// configureRoute sets the route action's rate_limits when the route is rate
// limited: one configuration whose actions build one descriptor, entries in
// this order:
//   - ("route", route name), always;
//   - ("consumer", ext_authz metadata consumer) when the route applies tier
//     limits or an extra limit is keyed by consumer;
//   - ("tier", ext_authz metadata tier) when the route applies tier limits;
//   - ("remote_address", client IP) when the route applies the anonymous
//     limits or an extra limit is keyed by client IP;
//   - ("header:<name>", the header's value) for each header key of By.
//
// Absent metadata or headers drop their entry, never the descriptor. A
// gate, when not nil, is the first action: one that can drop the whole
// descriptor (keyRateLimitGate).
func (rl *rateLimit) configureRoute(er *routev3.Route, rr ir.RouteRateLimit, name string, gate *routev3.RateLimit_Action) error {
	if !rl.enabled || !rr.Enabled {
		return nil
	}
	if rl.quota != nil {
		return rl.quota.configureRoute(er, ir.Route{Name: name, RateLimit: rr})
	}
	by := map[string]bool{}
	var headers []string
	for _, b := range rr.By {
		switch {
		case b == byConsumer || b == byClientIP:
			by[b] = true
		case strings.HasPrefix(b, ir.DescriptorHeaderPrefix) && len(b) > len(ir.DescriptorHeaderPrefix):
			headers = append(headers, strings.TrimPrefix(b, ir.DescriptorHeaderPrefix))
		default:
			return fmt.Errorf("rate limit: unknown key %q (want %q, %q or %q<name>)", b, byConsumer, byClientIP, ir.DescriptorHeaderPrefix)
		}
	}
	if len(rr.Extra) > 0 && len(rr.By) == 0 {
		by[byConsumer] = true // the rate-limit service's default key
	}
	var actions []*routev3.RateLimit_Action
	if gate != nil {
		actions = append(actions, gate)
	}
	actions = append(actions, envoy.RateLimitActionGenericKey(ir.DescriptorRoute, name))
	if rr.Consumer || by[byConsumer] {
		actions = append(actions, envoy.RateLimitActionMetadata(ir.DescriptorConsumer, envoy.ExtAuthzName, metadataConsumer))
	}
	if rr.Consumer {
		actions = append(actions, envoy.RateLimitActionMetadata(ir.DescriptorTier, envoy.ExtAuthzName, metadataTier))
	}
	if rr.Anonymous || by[byClientIP] {
		actions = append(actions, envoy.RateLimitActionRemoteAddress())
	}
	for _, h := range headers {
		actions = append(actions, envoy.RateLimitActionRequestHeaders(h, ir.DescriptorHeaderPrefix+h))
	}
	if er.GetRoute() == nil {
		return errors.New("rate limit on a route without a backend")
	}
	er.GetRoute().RateLimits = []*routev3.RateLimit{envoy.RouteRateLimit(actions...)}
	return nil
}
