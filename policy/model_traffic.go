package policy

import "time"

// Defaults of the traffic settings (docs/policy/traffic.md).
const (
	DefaultHealthInterval            = 5 * time.Second
	DefaultHealthTimeout             = time.Second
	DefaultHealthyThreshold          = 2
	DefaultUnhealthyThreshold        = 3
	DefaultHealthStatus              = 200
	DefaultOutlierConsecutive5xx     = 5
	DefaultOutlierInterval           = 10 * time.Second
	DefaultOutlierBaseEjectionTime   = 30 * time.Second
	DefaultOutlierMaxEjectionPercent = 50
	DefaultRetryAttempts             = 1
	DefaultMirrorPercent             = 100
)

// DefaultRetryOn is the retry conditions of a route whose retries leave out
// `on`: failures where the request most likely never reached the app, and
// 5xx answers.
var DefaultRetryOn = []string{"5xx", "connect-failure", "reset"}

// EndpointMeta is what the mapping form of an endpoint adds to its address:
// a load-balancing weight (0: left out, meaning 1) and a zone.
type EndpointMeta struct {
	Weight int
	Zone   string
}

// HashOn is what a ring_hash or maglev backend hashes for session
// affinity; exactly one of Header, Cookie and ClientIP is set.
type HashOn struct {
	Header   string
	Cookie   *HashCookie
	ClientIP bool
}

// HashCookie is a cookie to hash; with TTL set Envoy creates it when the
// request has none.
type HashCookie struct {
	Name string
	TTL  string
}

// HealthCheck is an active HTTP health check; empty fields take the
// defaults above.
type HealthCheck struct {
	Path               string
	Interval           string
	Timeout            string
	HealthyThreshold   int
	UnhealthyThreshold int
	ExpectedStatuses   []int
}

// OutlierDetection is passive ejection of endpoints that answer 5xx;
// empty fields take the defaults above.
type OutlierDetection struct {
	Consecutive5xx     int
	Interval           string
	BaseEjectionTime   string
	MaxEjectionPercent int
}

// CircuitBreakers bound the connections and requests to a backend; 0 is
// Envoy's default.
type CircuitBreakers struct {
	MaxConnections     int
	MaxPendingRequests int
	MaxRequests        int
	MaxRetries         int
}

// WeightedBackend is one target of a route's traffic split.
type WeightedBackend struct {
	Name   string
	Weight int
}

// Retries is a route's retry policy.
type Retries struct {
	Attempts      int
	On            []string
	PerTryTimeout string
	Backoff       *Backoff
}

// Backoff is the retry back-off: Envoy waits a random time up to
// base × 2^(retry-1), capped at Max.
type Backoff struct {
	Base string
	Max  string
}

// Mirror sends a copy of Percent of a route's requests to Backend.
type Mirror struct {
	Backend string
	Percent int
}
