// Package ir is the compiled, intermediate form of a Tollgate policy.
//
// The IR is the single source of names: the xDS translator, the ext_authz
// table and the rate-limit table all read route, cluster and listener names
// from here, so Envoy's configuration and the services' tables cannot drift.
//
// Contract:
//   - A Config is immutable once built: no caller may modify it or anything it
//     points to. Share it freely between goroutines.
//   - Every slice is sorted deterministically (see the field comments), so two
//     policies that mean the same thing compile to equal IRs and equal hashes,
//     whatever the order of the YAML.
//   - It is plain data (JSON-serializable) and imports nothing of Envoy or
//     go-control-plane.
package ir

import (
	"slices"
	"time"
)

// Config is one compiled policy version.
type Config struct {
	// Gateways sorted by Name.
	Gateways []Gateway `json:"gateways"`
	// Backends sorted by Name. Holds every backend of the policy, referenced
	// or not; a gateway's snapshot only carries the ones its routes use.
	Backends []Backend `json:"backends"`
	// Auth holds the identity providers (none when the policy has none)
	// and the identity headers, which always have their defaults: Envoy
	// strips them on every route.
	Auth Auth `json:"auth"`
	// RateLimits holds the consumer tiers and anonymous limits.
	RateLimits RateLimits `json:"rateLimits"`
	// Observability holds the access-log and tracing settings.
	Observability Observability `json:"observability,omitzero"`
}

// Gateway is one Envoy fleet: every Envoy whose node.cluster equals Name
// gets this gateway's listeners, routes and the clusters they reference.
type Gateway struct {
	Name string `json:"name"`
	// Listeners sorted by Name.
	Listeners []Listener `json:"listeners"`
	// VirtualHosts sorted by Name; the catch-all "*" host is always present.
	VirtualHosts []VirtualHost `json:"virtualHosts"`
	// Auth is how the gateway calls the ext_authz service.
	Auth GatewayAuth `json:"auth"`
	// Secrets sorted by Name: every SDS secret the gateway's listeners and
	// the TLS of its backends reference (see tls.go).
	Secrets []Secret `json:"secrets,omitempty"`
	// RedirectHTTPS makes the gateway's plaintext listeners answer every
	// request with a 301 to https.
	RedirectHTTPS bool `json:"redirectHTTPS,omitempty"`
	// HSTS, when set, is added to responses on the TLS listeners.
	HSTS *HSTS `json:"hsts,omitempty"`
	// HTTP is the gateway's own header mutations; Edge its hardening.
	HTTP GatewayHTTP `json:"http,omitzero"`
	Edge Edge        `json:"edge"`
}

// Listener is one address Envoy binds for a gateway. All listeners of a
// gateway serve the gateway's virtual hosts.
type Listener struct {
	// Name is unique within the gateway; it is also the Envoy listener name,
	// the RouteConfiguration name and the HCM stat prefix.
	Name    string `json:"name"`
	Address string `json:"address"`
	Port    uint32 `json:"port"`
	// TLS is nil on a plaintext listener.
	TLS *ListenerTLS `json:"tls,omitempty"`
}

// VirtualHost groups the routes that Envoy may pick for a set of Host
// header values. Host-less routes appear in every virtual host, so a request
// to a named host still reaches them.
type VirtualHost struct {
	// Name is the Envoy virtual host name: the host itself, or "any" for "*".
	Name string `json:"name"`
	// Domains as Envoy matches them ("api.example.com", "*.example.com", "*").
	Domains []string `json:"domains"`
	// Routes in match precedence order: Envoy picks the first that matches.
	// Order: exact path, then regex, then prefix (longest first); ties go to
	// the route with a host, then more header and method conditions, then name.
	Routes []Route `json:"routes"`
}

// Route is one policy route as Envoy evaluates it.
type Route struct {
	// Name is the policy's route name, unique in the policy, and the Envoy
	// route name (it appears in stats, access logs and ext_authz context).
	Name  string `json:"name"`
	Match Match  `json:"match"`
	// Backend is the name of the Backend (and Envoy cluster) to route to;
	// empty when Split is set, or for a direct response or a redirect (see HTTP).
	Backend string `json:"backend"`
	// PrefixRewrite replaces the matched path prefix when RewritePrefix is true.
	RewritePrefix bool   `json:"rewritePrefix,omitempty"`
	PrefixRewrite string `json:"prefixRewrite,omitempty"`
	// Timeout of the whole upstream exchange; 0 disables it.
	Timeout time.Duration `json:"timeout"`
	// Auth is the route's authentication requirement.
	Auth RouteAuth `json:"auth"`
	// RateLimit is the route's rate limiting.
	RateLimit RouteRateLimit `json:"rateLimit"`
	// AccessLog overrides the access log for this route; nil: the default.
	AccessLog *RouteAccessLog `json:"accessLog,omitempty"`
	// Transform converts the route's bodies; nil: none.
	Transform *RouteTransform `json:"transform,omitempty"`
	// Split, sorted by Name, replaces Backend: requests go to its backends
	// in proportion to their weights.
	Split       []WeightedBackend `json:"split,omitempty"`
	Retry       *Retry            `json:"retry,omitempty"`
	IdleTimeout time.Duration     `json:"idleTimeout,omitempty"`
	Mirror      *Mirror           `json:"mirror,omitempty"`
	// HTTP is the route's header, query and path changes, answers without
	// a backend, CORS, compression and Lua; nil for none (never a pointer
	// to the zero RouteHTTP, so the JSON, and the IR's hash, is that of
	// the zero value omitted). A pointer: most routes set none, and the
	// IR of 10,000 routes is held twice during a push (see HTTPRules).
	HTTP *RouteHTTP `json:"http,omitzero"`
}

// HTTPRules returns the route's RouteHTTP, the zero value when it has
// none.
func (r *Route) HTTPRules() RouteHTTP {
	if r.HTTP == nil {
		return RouteHTTP{}
	}
	return *r.HTTP
}

// EditHTTP gives the route a RouteHTTP of its own, a copy of its current
// one, and returns it for changes. It is for building an IR (the IR is
// immutable once built); routes copied from one another share their
// RouteHTTP until then.
func (r *Route) EditHTTP() *RouteHTTP {
	h := r.HTTPRules()
	r.HTTP = &h
	return r.HTTP
}

// Match is the request condition of a route. Exactly one of Path, PathPrefix
// and PathRegex is set.
type Match struct {
	Path       string `json:"path,omitempty"`
	PathPrefix string `json:"pathPrefix,omitempty"`
	// PathRegex is RE2 syntax and must match the whole path.
	PathRegex string `json:"pathRegex,omitempty"`
	// Methods, upper case and sorted; empty means any method.
	Methods []string `json:"methods,omitempty"`
	// Headers sorted by Name, then by value; all must match.
	Headers []HeaderMatch `json:"headers,omitempty"`
}

// HeaderMatch is one header condition. Exactly one of Exact, Prefix, Regex
// and Present is set.
type HeaderMatch struct {
	// Name is lower case.
	Name    string `json:"name"`
	Exact   string `json:"exact,omitempty"`
	Prefix  string `json:"prefix,omitempty"`
	Regex   string `json:"regex,omitempty"`
	Present bool   `json:"present,omitempty"`
}

// LoadBalancing names a load-balancing policy.
type LoadBalancing string

// The load-balancing policies the IR knows.
const (
	RoundRobin   LoadBalancing = "round_robin"
	LeastRequest LoadBalancing = "least_request"
	Random       LoadBalancing = "random"
)

// Backend is one upstream service: an Envoy cluster with its endpoints.
type Backend struct {
	// Name is the policy's backend name and the Envoy cluster name. It is the
	// backend's stable identity: reordering routes never renames a cluster.
	Name           string        `json:"name"`
	Endpoints      []Endpoint    `json:"endpoints"` // sorted by Host, then Port
	LoadBalancing  LoadBalancing `json:"loadBalancing"`
	ConnectTimeout time.Duration `json:"connectTimeout"`
	// TLS is nil for plaintext upstreams.
	TLS *BackendTLS `json:"tls,omitempty"`
	// HashOn is set for ring_hash and maglev backends with session affinity.
	HashOn *HashOn `json:"hashOn,omitempty"`
	// DNS, when set, replaces Endpoints: Envoy resolves the host itself.
	DNS              *DNSTarget        `json:"dns,omitempty"`
	HealthCheck      *HealthCheck      `json:"healthCheck,omitempty"`
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
	CircuitBreakers  *CircuitBreakers  `json:"circuitBreakers,omitempty"`
}

// Endpoint is one upstream instance, an IP address and a port, with its
// load-balancing weight (0 means 1) and zone ("" for none).
type Endpoint struct {
	Host   string `json:"host"`
	Port   uint32 `json:"port"`
	Weight uint32 `json:"weight,omitempty"`
	Zone   string `json:"zone,omitempty"`
}

// Gateway returns the gateway named name, or false.
func (c *Config) Gateway(name string) (Gateway, bool) {
	for _, g := range c.Gateways {
		if g.Name == name {
			return g, true
		}
	}
	return Gateway{}, false
}

// Backend returns the backend named name, or false.
func (c *Config) Backend(name string) (Backend, bool) {
	for _, b := range c.Backends {
		if b.Name == name {
			return b, true
		}
	}
	return Backend{}, false
}

// BackendNames returns the sorted, distinct names of the backends that the
// gateway's routes reference (as backend, split target or mirror): the
// clusters its Envoys need.
func (g *Gateway) BackendNames() []string {
	seen := map[string]bool{}
	var names, targets []string
	for _, vh := range g.VirtualHosts {
		for _, r := range vh.Routes {
			targets = r.appendTargets(targets[:0])
			for _, b := range targets {
				if !seen[b] {
					seen[b] = true
					names = append(names, b)
				}
			}
		}
	}
	slices.Sort(names)
	return names
}

func sortStrings(s []string) { slices.Sort(s) }

// NeedsRateLimit reports whether any route of the gateway is rate limited,
// so its Envoys need the rate-limit filter and cluster.
func (g *Gateway) NeedsRateLimit() bool {
	for _, vh := range g.VirtualHosts {
		for _, r := range vh.Routes {
			if r.RateLimit.Enabled {
				return true
			}
		}
	}
	return false
}

// NeedsAuthz reports whether any route of the gateway calls the ext_authz
// service, so its Envoys need the ext_authz filter and cluster.
func (g *Gateway) NeedsAuthz() bool {
	for _, vh := range g.VirtualHosts {
		for _, r := range vh.Routes {
			if !r.Auth.Public {
				return true
			}
		}
	}
	return false
}
