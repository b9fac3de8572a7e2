package ir

import (
	"slices"
	"time"
)

// More load-balancing policies; the consistent-hash ones pick an endpoint
// from the request's hash (see HashOn).
const (
	RingHash LoadBalancing = "ring_hash"
	Maglev   LoadBalancing = "maglev"
)

// HashOn is what a consistent-hash backend hashes to pick an endpoint.
// Exactly one of Header, Cookie and ClientIP is set.
type HashOn struct {
	// Header is a lower-case request header name.
	Header string `json:"header,omitempty"`
	// Cookie is a cookie name; with CookieTTL > 0 Envoy sets the cookie on
	// the response when the request has none.
	Cookie    string        `json:"cookie,omitempty"`
	CookieTTL time.Duration `json:"cookieTtl,omitempty"`
	ClientIP  bool          `json:"clientIP,omitempty"`
}

// DNSTarget is a backend resolved by Envoy: every address Host resolves to
// is an endpoint on Port.
type DNSTarget struct {
	Host string `json:"host"`
	Port uint32 `json:"port"`
}

// HealthCheck is an active HTTP health check of every endpoint.
type HealthCheck struct {
	Path               string        `json:"path"`
	Interval           time.Duration `json:"interval"`
	Timeout            time.Duration `json:"timeout"`
	HealthyThreshold   uint32        `json:"healthyThreshold"`
	UnhealthyThreshold uint32        `json:"unhealthyThreshold"`
	// ExpectedStatuses, sorted and distinct.
	ExpectedStatuses []uint32 `json:"expectedStatuses"`
}

// OutlierDetection ejects an endpoint after Consecutive5xx consecutive 5xx
// answers (or connection failures) for BaseEjectionTime × the number of
// times it was ejected, never more than MaxEjectionPercent of the endpoints.
type OutlierDetection struct {
	Consecutive5xx     uint32        `json:"consecutive5xx"`
	Interval           time.Duration `json:"interval"`
	BaseEjectionTime   time.Duration `json:"baseEjectionTime"`
	MaxEjectionPercent uint32        `json:"maxEjectionPercent"`
}

// CircuitBreakers bound what Envoy sends a backend at once; 0 leaves
// Envoy's default (1024 each, 3 retries).
type CircuitBreakers struct {
	MaxConnections     uint32 `json:"maxConnections,omitempty"`
	MaxPendingRequests uint32 `json:"maxPendingRequests,omitempty"`
	MaxRequests        uint32 `json:"maxRequests,omitempty"`
	MaxRetries         uint32 `json:"maxRetries,omitempty"`
}

// WeightedBackend is one target of a traffic split.
type WeightedBackend struct {
	Name   string `json:"name"`
	Weight uint32 `json:"weight"`
}

// Retry conditions (Envoy's x-envoy-retry-on names).
const (
	Retry5xx            = "5xx"
	RetryReset          = "reset"
	RetryConnectFailure = "connect-failure"
	RetryRetriable4xx   = "retriable-4xx"
	RetryGatewayError   = "gateway-error"
)

// Retry is a route's retry policy.
type Retry struct {
	// Attempts is the number of retries after the first try.
	Attempts uint32 `json:"attempts"`
	// On holds retry conditions, sorted and distinct.
	On            []string      `json:"on"`
	PerTryTimeout time.Duration `json:"perTryTimeout,omitempty"`
	BackoffBase   time.Duration `json:"backoffBase,omitempty"`
	BackoffMax    time.Duration `json:"backoffMax,omitempty"`
}

// Mirror copies Percent of a route's requests to Backend, ignoring its
// answers.
type Mirror struct {
	Backend string `json:"backend"`
	Percent uint32 `json:"percent"`
}

// Targets returns the backends a route sends requests to: its backend, or
// the backends of its split, and its mirror.
func (r *Route) Targets() []string {
	return r.appendTargets(nil)
}

// appendTargets appends Targets() to out.
func (r *Route) appendTargets(out []string) []string {
	if r.Backend != "" {
		out = append(out, r.Backend)
	}
	for _, wb := range r.Split {
		out = append(out, wb.Name)
	}
	if r.Mirror != nil {
		out = append(out, r.Mirror.Backend)
	}
	return out
}

// UsesDNS reports whether Envoy resolves the backend's endpoints itself
// (no EDS).
func (b *Backend) UsesDNS() bool { return b.DNS != nil }

// sortedUnique sorts s and drops duplicates.
func sortedUnique[T interface{ ~string | ~uint32 }](s []T) []T {
	slices.Sort(s)
	return slices.Compact(s)
}

// SortedUniqueStrings returns s sorted without duplicates, for the
// compiler.
func SortedUniqueStrings(s []string) []string { return sortedUnique(s) }

// SortedUniqueUint32 returns s sorted without duplicates, for the compiler.
func SortedUniqueUint32(s []uint32) []uint32 { return sortedUnique(s) }
