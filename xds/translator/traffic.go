package translator

import (
	"errors"
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// traffic is what route actions need from the backends: their session
// affinity settings.
type traffic struct {
	backends map[string]*ir.Backend
}

func newTraffic(backends []ir.Backend) *traffic {
	t := &traffic{backends: make(map[string]*ir.Backend, len(backends))}
	for i := range backends {
		t.backends[backends[i].Name] = &backends[i]
	}
	return t
}

// routeAction returns the action of r: to its backend or weighted split,
// with the hash policies of the backends it targets (ring_hash and maglev
// need them), its retries, idle timeout and mirror.
func (t *traffic) routeAction(r ir.Route) (*routev3.RouteAction, error) {
	var action *routev3.RouteAction
	switch {
	case r.Backend != "" && len(r.Split) > 0:
		return nil, errors.New("both a backend and a split")
	case r.Backend != "":
		action = envoy.RouteToCluster(r.Backend, r.Timeout)
	case len(r.Split) > 0:
		split, err := weights(r.Split)
		if err != nil {
			return nil, err
		}
		action = envoy.RouteToWeightedClusters(split, r.Timeout)
	default:
		return nil, errors.New("no backend")
	}
	for _, name := range r.Targets() {
		if t.backends[name] == nil {
			return nil, fmt.Errorf("backend %q: referenced by a route but not defined", name)
		}
	}
	action.HashPolicy = t.hashPolicies(r)
	if r.Retry != nil {
		rp, err := retryPolicy(*r.Retry)
		if err != nil {
			return nil, err
		}
		action.RetryPolicy = rp
	}
	if r.IdleTimeout < 0 {
		return nil, fmt.Errorf("negative idle timeout %s", r.IdleTimeout)
	}
	if r.IdleTimeout > 0 {
		action.IdleTimeout = durationpb.New(r.IdleTimeout)
	}
	if m := r.Mirror; m != nil {
		if m.Percent < 1 || m.Percent > 100 {
			return nil, fmt.Errorf("mirror percent %d out of 1..100", m.Percent)
		}
		action.RequestMirrorPolicies = []*routev3.RouteAction_RequestMirrorPolicy{envoy.RequestMirrorPolicy(m.Backend, m.Percent)}
	}
	return action, nil
}

// weights converts a split, checking that some weight is positive.
func weights(split []ir.WeightedBackend) ([]envoy.ClusterWeight, error) {
	out := make([]envoy.ClusterWeight, 0, len(split))
	total := uint64(0)
	for _, wb := range split {
		out = append(out, envoy.ClusterWeight{Cluster: wb.Name, Weight: wb.Weight})
		total += uint64(wb.Weight)
	}
	if total == 0 {
		return nil, errors.New("split weights add up to 0")
	}
	return out, nil
}

// hashPolicies returns one hash policy per distinct hashOn of the backends
// the route sends requests to (not its mirror), in target order.
func (t *traffic) hashPolicies(r ir.Route) []*routev3.RouteAction_HashPolicy {
	targets := []string{r.Backend}
	for _, wb := range r.Split {
		targets = append(targets, wb.Name)
	}
	var out []*routev3.RouteAction_HashPolicy
	seen := map[ir.HashOn]bool{}
	for _, name := range targets {
		b := t.backends[name]
		if b == nil || b.HashOn == nil || seen[*b.HashOn] {
			continue
		}
		seen[*b.HashOn] = true
		switch h := b.HashOn; {
		case h.Header != "":
			out = append(out, envoy.HashPolicyHeader(h.Header))
		case h.Cookie != "":
			out = append(out, envoy.HashPolicyCookie(h.Cookie, h.CookieTTL))
		case h.ClientIP:
			out = append(out, envoy.HashPolicySourceIP())
		}
	}
	return out
}

func retryPolicy(r ir.Retry) (*routev3.RetryPolicy, error) {
	if len(r.On) == 0 || r.Attempts == 0 {
		return nil, errors.New("retries need conditions and at least one attempt")
	}
	if r.PerTryTimeout < 0 || r.BackoffBase < 0 || r.BackoffMax < 0 {
		return nil, errors.New("negative retry duration")
	}
	return envoy.RetryPolicy(envoy.RetryOptions{
		On: r.On, NumRetries: r.Attempts, PerTryTimeout: r.PerTryTimeout,
		BackoffBase: r.BackoffBase, BackoffMax: r.BackoffMax,
	}), nil
}

// configureCluster adds the backend's health check, outlier detection and
// circuit breakers to c.
func configureCluster(c *clusterv3.Cluster, b *ir.Backend) error {
	if h := b.HealthCheck; h != nil {
		if h.Interval <= 0 || h.Timeout <= 0 || h.HealthyThreshold == 0 || h.UnhealthyThreshold == 0 {
			return errors.New("health check needs a positive interval, timeout and thresholds")
		}
		c.HealthChecks = append(c.HealthChecks, envoy.HTTPHealthCheck(envoy.HTTPHealthCheckOptions{
			Path: h.Path, Interval: h.Interval, Timeout: h.Timeout,
			HealthyThreshold: h.HealthyThreshold, UnhealthyThreshold: h.UnhealthyThreshold,
			ExpectedStatuses: h.ExpectedStatuses,
		}))
		c.CommonLbConfig = envoy.HealthCheckLbConfig(h.Interval)
	}
	if o := b.OutlierDetection; o != nil {
		c.OutlierDetection = envoy.OutlierDetection(o.Consecutive5xx, o.Interval, o.BaseEjectionTime, o.MaxEjectionPercent)
	}
	if cb := b.CircuitBreakers; cb != nil {
		c.CircuitBreakers = envoy.CircuitBreakers(envoy.CircuitBreakerLimits{
			MaxConnections: cb.MaxConnections, MaxPendingRequests: cb.MaxPendingRequests,
			MaxRequests: cb.MaxRequests, MaxRetries: cb.MaxRetries,
		})
	}
	return nil
}

// dnsCluster returns the cluster of a backend that names a DNS host:
// Envoy resolves it (strict DNS); no ClusterLoadAssignment goes with it.
func dnsCluster(b *ir.Backend, lb clusterv3.Cluster_LbPolicy) (*clusterv3.Cluster, error) {
	if len(b.Endpoints) > 0 {
		return nil, errors.New("both endpoints and a DNS host")
	}
	c := envoy.DNSCluster(b.Name, b.DNS.Host, b.DNS.Port, b.ConnectTimeout, lb)
	ts, err := backendTransportSocket(b)
	if err != nil {
		return nil, err
	}
	c.TransportSocket = ts
	return c, configureCluster(c, b)
}

// zonedAssignment returns the ClusterLoadAssignment serviceName with the
// endpoints grouped by zone (zones in order of first appearance, the
// endpoints of each in IR order) and their weights.
func zonedAssignment(serviceName string, in []ir.Endpoint) *endpointv3.ClusterLoadAssignment {
	var zones []envoy.ZoneEndpoints
	index := map[string]int{}
	for _, e := range in {
		i, ok := index[e.Zone]
		if !ok {
			i = len(zones)
			index[e.Zone] = i
			zones = append(zones, envoy.ZoneEndpoints{Zone: e.Zone})
		}
		zones[i].Endpoints = append(zones[i].Endpoints, envoy.WeightedLbEndpoint(e.Host, e.Port, e.Weight))
	}
	return envoy.ZonedLoadAssignment(serviceName, zones)
}
