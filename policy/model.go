// Package policy turns a user's declarative gateway policy (YAML) into the
// compiled IR (package policy/ir) that the control plane serves to Envoy.
//
// The pipeline is Load (parse, strict shape checks) → Validate (semantic
// checks) → Compile; Build runs all three. Every problem is reported as a
// Diagnostic naming the file, line, column and field path, and all problems
// are reported at once.
package policy

import "time"

// KnownVersion is the only policy format version this package understands.
const KnownVersion = 1

// Defaults applied by Compile to fields the policy leaves out.
const (
	DefaultAddress        = "0.0.0.0"
	DefaultPathPrefix     = "/"
	DefaultTimeout        = 15 * time.Second
	DefaultConnectTimeout = 5 * time.Second
	DefaultLoadBalancing  = "round_robin"
)

// Policy is the user's policy as written, merged over all its files: list
// entries keep file order, then order within the file. An empty string or a
// nil slice means the field was left out (Load rejects explicit empty values).
type Policy struct {
	Version  int
	Gateways []Gateway
	Routes   []Route
	Backends []Backend
	// Auth is nil when no file has an auth section.
	Auth *Auth
	// RateLimits is nil when no file has a rateLimits section.
	RateLimits *RateLimits
	// Observability is nil when no file has an observability section.
	Observability *Observability

	src *source // nil for a policy built in Go code
}

// Gateway is one Envoy fleet, selected by node.cluster == Name.
type Gateway struct {
	Name      string
	Listeners []Listener
	Auth      *GatewayAuth // nil: the defaults
	// RedirectHTTPS makes plaintext listeners answer 301 to https.
	RedirectHTTPS bool
	HSTS          *HSTS // nil: no Strict-Transport-Security header
	GatewayHTTP
}

// Listener is one address a gateway binds. Address defaults to 0.0.0.0.
type Listener struct {
	Name    string
	Port    int
	Address string
	TLS     *ListenerTLS // nil: plaintext
}

// Route sends matching requests to a backend. Gateway empty means every
// gateway; Timeout is a Go duration string, empty meaning the default. Auth
// nil means the route accepts every configured auth method; RateLimit nil
// means the rate-limit defaults (see RouteRateLimit).
type Route struct {
	Name      string
	Gateway   string
	Match     Match
	Backend   string
	Rewrite   *Rewrite
	Timeout   string
	Auth      *RouteAuth
	RateLimit *RouteRateLimit
	AccessLog *RouteAccessLog // nil: the policy-wide access log
	Transform *RouteTransform // nil: bodies pass untouched
	// Backends replaces Backend with a weighted split (model_traffic.go).
	Backends    []WeightedBackend
	Retries     *Retries
	IdleTimeout string
	Mirror      *Mirror
	RouteHTTP
}

// Match is a route's request condition. At most one of Path, PathPrefix and
// PathRegex is set; none means PathPrefix "/".
type Match struct {
	Hosts      []string
	Path       string
	PathPrefix string
	PathRegex  string
	Methods    []string
	Headers    []HeaderMatch
}

// HeaderMatch is one header condition: exactly one of Exact, Prefix, Regex
// and Present (true) is set.
type HeaderMatch struct {
	Name    string
	Exact   string
	Prefix  string
	Regex   string
	Present bool
}

// Rewrite replaces the matched path prefix (or exact path) with PathPrefix,
// or rewrites the path with PathRegex, and replaces the Host header with
// Host or (HostFromBackend) the chosen endpoint's host.
type Rewrite struct {
	PathPrefix      string
	PathRegex       *RegexRewrite
	Host            string
	HostFromBackend bool
}

// RegexRewrite replaces the matches of Pattern in the path with
// Substitution.
type RegexRewrite struct {
	Pattern      string
	Substitution string
}

// Backend is an upstream service. Endpoints are "ip:port" or "[ipv6]:port";
// LoadBalancing and ConnectTimeout are empty when left to their defaults.
type Backend struct {
	Name           string
	Endpoints      []string
	LoadBalancing  string
	ConnectTimeout string
	TLS            *BackendTLS // nil: plaintext upstream
	// EndpointMeta is nil when every endpoint is a plain string, else
	// parallel to Endpoints (model_traffic.go).
	EndpointMeta     []EndpointMeta
	DNS              string
	HashOn           *HashOn
	HealthCheck      *HealthCheck
	OutlierDetection *OutlierDetection
	CircuitBreakers  *CircuitBreakers
}
