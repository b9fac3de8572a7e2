package policy

import (
	"cmp"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/policy/ir"
)

// compileBackendTraffic sets the traffic settings of out from b, with
// their defaults.
func compileBackendTraffic(b Backend, out *ir.Backend) {
	if b.DNS != "" {
		host, port, _ := net.SplitHostPort(b.DNS) // validated
		p, _ := strconv.ParseUint(port, 10, 16)
		out.DNS = &ir.DNSTarget{Host: strings.ToLower(host), Port: uint32(p)}
		out.Endpoints = []ir.Endpoint{}
	}
	if h := b.HashOn; h != nil {
		out.HashOn = &ir.HashOn{Header: strings.ToLower(h.Header), ClientIP: h.ClientIP}
		if h.Cookie != nil {
			out.HashOn.Cookie = h.Cookie.Name
			out.HashOn.CookieTTL = durationOr(h.Cookie.TTL, 0)
		}
	}
	if h := b.HealthCheck; h != nil {
		out.HealthCheck = compileHealthCheck(*h)
	}
	if o := b.OutlierDetection; o != nil {
		out.OutlierDetection = &ir.OutlierDetection{
			Consecutive5xx:     uint32(intOr(o.Consecutive5xx, DefaultOutlierConsecutive5xx)),
			Interval:           durationOr(o.Interval, DefaultOutlierInterval),
			BaseEjectionTime:   durationOr(o.BaseEjectionTime, DefaultOutlierBaseEjectionTime),
			MaxEjectionPercent: uint32(intOr(o.MaxEjectionPercent, DefaultOutlierMaxEjectionPercent)),
		}
	}
	if cb := b.CircuitBreakers; cb != nil {
		out.CircuitBreakers = &ir.CircuitBreakers{
			MaxConnections: uint32(cb.MaxConnections), MaxPendingRequests: uint32(cb.MaxPendingRequests),
			MaxRequests: uint32(cb.MaxRequests), MaxRetries: uint32(cb.MaxRetries),
		}
	}
}

func compileHealthCheck(h HealthCheck) *ir.HealthCheck {
	statuses := make([]uint32, 0, len(h.ExpectedStatuses))
	for _, s := range h.ExpectedStatuses {
		statuses = append(statuses, uint32(s))
	}
	if len(statuses) == 0 {
		statuses = []uint32{DefaultHealthStatus}
	}
	return &ir.HealthCheck{
		Path:               h.Path,
		Interval:           durationOr(h.Interval, DefaultHealthInterval),
		Timeout:            durationOr(h.Timeout, DefaultHealthTimeout),
		HealthyThreshold:   uint32(intOr(h.HealthyThreshold, DefaultHealthyThreshold)),
		UnhealthyThreshold: uint32(intOr(h.UnhealthyThreshold, DefaultUnhealthyThreshold)),
		ExpectedStatuses:   ir.SortedUniqueUint32(statuses),
	}
}

// compileEndpoints parses a validated backend's endpoints with their
// weights and zones, sorted by host, then port.
func compileEndpoints(b Backend) []ir.Endpoint {
	eps := make([]ir.Endpoint, 0, len(b.Endpoints))
	for i, s := range b.Endpoints {
		e, ok := ParseEndpoint(s)
		if !ok {
			continue // unreachable on a validated policy
		}
		if i < len(b.EndpointMeta) {
			m := b.EndpointMeta[i]
			if m.Weight > 1 {
				e.Weight = uint32(m.Weight)
			}
			e.Zone = m.Zone
		}
		eps = append(eps, e)
	}
	SortEndpoints(eps)
	return eps
}

// ParseEndpoint parses "ip:port" ("[ipv6]:port") into an IR endpoint.
func ParseEndpoint(s string) (ir.Endpoint, bool) {
	host, port, err := net.SplitHostPort(s)
	if err != nil || !isIP(host) || !validPort(port) {
		return ir.Endpoint{}, false
	}
	p, _ := strconv.ParseUint(port, 10, 16)
	return ir.Endpoint{Host: normalAddress(host), Port: uint32(p)}, true
}

// SortEndpoints sorts endpoints as the IR requires: by host, then port.
func SortEndpoints(eps []ir.Endpoint) {
	slices.SortFunc(eps, func(x, y ir.Endpoint) int {
		return cmp.Or(strings.Compare(x.Host, y.Host), cmp.Compare(x.Port, y.Port))
	})
}

// compileRouteTraffic sets the split, retries, idle timeout and mirror of
// out from r.
func compileRouteTraffic(r Route, out *ir.Route) {
	for _, wb := range r.Backends {
		out.Split = append(out.Split, ir.WeightedBackend{Name: wb.Name, Weight: uint32(wb.Weight)})
	}
	slices.SortFunc(out.Split, func(a, b ir.WeightedBackend) int { return strings.Compare(a.Name, b.Name) })
	out.IdleTimeout = durationOr(r.IdleTimeout, 0)
	if m := r.Mirror; m != nil {
		out.Mirror = &ir.Mirror{Backend: m.Backend, Percent: uint32(intOr(m.Percent, DefaultMirrorPercent))}
	}
	if rt := r.Retries; rt != nil {
		on := slices.Clone(rt.On)
		if len(on) == 0 {
			on = slices.Clone(DefaultRetryOn)
		}
		out.Retry = &ir.Retry{
			Attempts:      uint32(intOr(rt.Attempts, DefaultRetryAttempts)),
			On:            ir.SortedUniqueStrings(on),
			PerTryTimeout: durationOr(rt.PerTryTimeout, 0),
		}
		if rt.Backoff != nil {
			out.Retry.BackoffBase = durationOr(rt.Backoff.Base, 0)
			out.Retry.BackoffMax = durationOr(rt.Backoff.Max, 0)
		}
	}
}

// intOr returns v, or def when v is 0 (left out).
func intOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
