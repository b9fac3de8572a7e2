package policy

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/parallel"
	"github.com/tollgate/tollgate/policy/ir"
)

// catchAll is the virtual host that serves requests for any host.
const catchAll = "any"

// Compile turns a valid policy into its IR, applying defaults and sorting
// everything as package ir requires. The result does not depend on the
// order of the policy's lists. Compile must only be called on a policy
// whose Validate reported no errors; on an invalid one its output is
// unspecified.
//
// A policy of many routes has them compiled on GOMAXPROCS goroutines; the
// IR is the same.
func Compile(p *Policy) *ir.Config {
	return compile(p, parallel.Workers)
}

// compileRoutesMin is the route count from which routes are compiled on
// several goroutines.
const compileRoutesMin = 512

// compile is Compile spreading n routes over workers(n, compileRoutesMin)
// goroutines (tests force the parallel path with it).
func compile(p *Policy, workers func(n, minItems int) int) *ir.Config {
	routes := rankRoutes(p.Routes, routeDefaults{methods: p.Auth.methods(), limits: p.RateLimits.routeDefaults()},
		workers(len(p.Routes), compileRoutesMin))
	routes.handOver = len(p.Gateways) == 1
	cfg := &ir.Config{
		Gateways:      make([]ir.Gateway, 0, len(p.Gateways)),
		Backends:      make([]ir.Backend, 0, len(p.Backends)),
		Auth:          compileAuth(p.Auth),
		RateLimits:    compileRateLimits(p.RateLimits),
		Observability: compileObservability(p.Observability, len(p.Routes)),
	}
	for _, g := range p.Gateways {
		cfg.Gateways = append(cfg.Gateways, compileGateway(g, routes))
	}
	for _, b := range p.Backends {
		cfg.Backends = append(cfg.Backends, compileBackend(b))
	}
	cfg.RateLimits.Mode = compileRateLimitMode(p, cfg) // validate_ratelimit_mode.go
	compileTLS(cfg, p)
	slices.SortFunc(cfg.Gateways, func(a, b ir.Gateway) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(cfg.Backends, func(a, b ir.Backend) int { return strings.Compare(a.Name, b.Name) })
	return cfg
}

func compileGateway(g Gateway, routes *rankedRoutes) ir.Gateway {
	ls := make([]ir.Listener, 0, len(g.Listeners))
	for _, l := range g.Listeners {
		ls = append(ls, ir.Listener{Name: l.Name, Address: normalAddress(l.Address), Port: uint32(l.Port)})
	}
	slices.SortFunc(ls, func(a, b ir.Listener) int { return strings.Compare(a.Name, b.Name) })
	vhs := virtualHosts(g.Name, routes)
	applyGatewayHTTP(g, vhs, routes)
	return ir.Gateway{
		Name: g.Name, Listeners: ls, VirtualHosts: vhs, Auth: compileGatewayAuth(g.Auth),
		HTTP: compileGatewayHTTP(g), Edge: compileEdge(g.Edge),
	}
}

// normalAddress applies the default and writes the address canonically
// ("::0" → "::"), so equal policies compile to equal IRs.
func normalAddress(s string) string {
	if s == "" {
		return DefaultAddress
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return s // unreachable on a validated policy
	}
	return a.String()
}

// virtualHosts builds a gateway's virtual hosts from routes, which are in
// precedence order: one per distinct host, holding the routes that name it
// and every host-less route, plus the catch-all holding the host-less
// routes. Each host's list merges two index lists that are already in
// precedence order, so nothing is sorted twice.
func virtualHosts(gateway string, routes *rankedRoutes) []ir.VirtualHost {
	hostless := []int{}
	byHost := make(map[string][]int)
	for i, r := range routes.meta {
		switch {
		case r.gateway != "" && r.gateway != gateway:
		case len(r.hosts) == 0:
			hostless = append(hostless, i)
		default:
			for _, h := range r.hosts {
				byHost[h] = append(byHost[h], i)
			}
		}
	}
	vhs := make([]ir.VirtualHost, 0, len(byHost)+1)
	for h, own := range byHost {
		vhs = append(vhs, ir.VirtualHost{Name: h, Domains: []string{h}, Routes: routes.merge(own, hostless)})
	}
	vhs = append(vhs, ir.VirtualHost{Name: catchAll, Domains: []string{"*"}, Routes: routes.merge(hostless, nil)})
	slices.SortFunc(vhs, func(a, b ir.VirtualHost) int { return strings.Compare(a.Name, b.Name) })
	return vhs
}

// merge returns the routes at the ascending indices a and b, in index
// (precedence) order. The result is never nil. When a is every route, b
// is empty and r.handOver is set, it is r.routes itself (once: handOver is
// cleared), so the common policy of one gateway without hosts does not
// hold its routes twice while it compiles.
func (r *rankedRoutes) merge(a, b []int) []ir.Route {
	if r.handOver && len(a) == len(r.routes) && len(b) == 0 {
		r.handOver = false
		return r.routes
	}
	out := make([]ir.Route, 0, len(a)+len(b))
	for len(a) > 0 || len(b) > 0 {
		if len(b) == 0 || len(a) > 0 && a[0] < b[0] {
			out = append(out, r.routes[a[0]])
			a = a[1:]
			continue
		}
		out = append(out, r.routes[b[0]])
		b = b[1:]
	}
	return out
}

// rankedRoutes are a policy's compiled routes in precedence order, with
// what virtualHosts needs to place each (meta, same indices).
type rankedRoutes struct {
	routes []ir.Route
	meta   []routeMeta
	// handOver lets merge return routes itself, to the one virtual host
	// that takes them all: set only when a single gateway's virtual hosts
	// use them (applyGatewayHTTP changes a gateway's routes in place).
	handOver bool
}

// routeMeta is where a compiled route goes and which gateway defaults it
// takes.
type routeMeta struct {
	gateway string
	hosts   []string
	// ownCORS and ownCompression say that the route sets its own (or
	// none), so the gateway's does not apply.
	ownCORS, ownCompression bool
}

// routeDefaults is what the compiled routes' defaults depend on: the
// configured auth methods and the rate-limit setup.
type routeDefaults struct {
	methods []string
	limits  routeLimitDefaults
}

// rankRoutes compiles routes and sorts them in match precedence order. It
// sorts small keys rather than whole routes. The keys are computed and the
// routes compiled on workers goroutines (each route on its own; the sort
// is one).
func rankRoutes(routes []Route, d routeDefaults, workers int) *rankedRoutes {
	keys := parallel.Map(len(routes), workers, func(i int) precedence { return precedenceOf(i, routes[i]) })
	slices.SortFunc(keys, comparePrecedence)
	out := &rankedRoutes{routes: make([]ir.Route, len(routes)), meta: make([]routeMeta, len(routes))}
	parallel.Chunks(len(keys), workers, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			r := &routes[keys[i].index]
			out.routes[i] = compileRoute(*r, d)
			out.meta[i] = routeMeta{gateway: r.Gateway, hosts: r.Match.Hosts, ownCORS: r.CORS != nil, ownCompression: r.Compression != nil}
		}
	})
	return out
}

// precedence is what a route's place in a virtual host depends on.
type precedence struct {
	index      int // in the policy's routes
	kind       int // kindExact, kindRegex or kindPrefix
	length     int // of the regex or prefix
	hasHosts   bool
	headers    int
	hasMethods bool
	name       string
}

// Path condition kinds, in precedence order.
const (
	kindExact = iota
	kindRegex
	kindPrefix
)

func precedenceOf(i int, r Route) precedence {
	p := precedence{
		index: i, kind: kindPrefix, length: len(DefaultPathPrefix), name: r.Name,
		hasHosts: len(r.Match.Hosts) > 0, headers: len(r.Match.Headers), hasMethods: len(r.Match.Methods) > 0,
	}
	switch m := r.Match; {
	case m.Path != "":
		p.kind, p.length = kindExact, 0 // exact paths never overlap: no length order
	case m.PathRegex != "":
		p.kind, p.length = kindRegex, len(m.PathRegex)
	case m.PathPrefix != "":
		p.length = len(m.PathPrefix)
	}
	return p
}

// comparePrecedence orders routes as Envoy must try them: exact path, then
// regex (longer first), then prefix (longer first); ties go to the route
// with hosts, then with more header conditions, then with methods, then to
// the smaller name.
// Each criterion is compared only when the ones before tie (the sort of
// 10,000 routes calls it ~150,000 times).
func comparePrecedence(a, b precedence) int {
	if a.kind != b.kind {
		return cmp.Compare(a.kind, b.kind)
	}
	if a.length != b.length {
		return cmp.Compare(b.length, a.length)
	}
	if a.hasHosts != b.hasHosts {
		return -compareBool(a.hasHosts, b.hasHosts)
	}
	if a.headers != b.headers {
		return cmp.Compare(b.headers, a.headers)
	}
	if a.hasMethods != b.hasMethods {
		return -compareBool(a.hasMethods, b.hasMethods)
	}
	return strings.Compare(a.name, b.name)
}

// compareBool orders false before true.
func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	default:
		return -1
	}
}

func compileRoute(r Route, d routeDefaults) ir.Route {
	out := ir.Route{
		Name:      r.Name,
		Match:     compileMatch(r.Match),
		Backend:   r.Backend,
		Timeout:   durationOr(r.Timeout, DefaultTimeout),
		Auth:      compileRouteAuth(r.Auth, d.methods),
		RateLimit: compileRouteRateLimit(r, d.limits),
		AccessLog: compileRouteAccessLog(r.AccessLog),
		Transform: compileRouteTransform(r.Transform),
		HTTP:      compileRouteHTTP(r),
	}
	if r.DirectResponse != nil || r.Redirect != nil {
		out.RateLimit = ir.RouteRateLimit{} // Envoy answers itself: route rate limits need a backend
	}
	if r.Rewrite != nil && r.Rewrite.PathPrefix != "" {
		out.RewritePrefix = true
		out.PrefixRewrite = r.Rewrite.PathPrefix
	}
	compileRouteTraffic(r, &out)
	return out
}

// compileMatch normalizes a match: default path prefix, upper-case sorted
// methods, lower-case header names sorted by name and value.
func compileMatch(m Match) ir.Match {
	out := ir.Match{Path: m.Path, PathPrefix: m.PathPrefix, PathRegex: m.PathRegex}
	if out.Path == "" && out.PathRegex == "" && out.PathPrefix == "" {
		out.PathPrefix = DefaultPathPrefix
	}
	for _, meth := range m.Methods {
		out.Methods = append(out.Methods, strings.ToUpper(meth))
	}
	slices.Sort(out.Methods)
	for _, h := range m.Headers {
		out.Headers = append(out.Headers, ir.HeaderMatch{
			Name: strings.ToLower(h.Name), Exact: h.Exact, Prefix: h.Prefix, Regex: h.Regex, Present: h.Present,
		})
	}
	slices.SortFunc(out.Headers, compareHeaders)
	return out
}

func compareHeaders(a, b ir.HeaderMatch) int {
	return cmp.Or(
		strings.Compare(a.Name, b.Name),
		strings.Compare(a.Exact, b.Exact),
		strings.Compare(a.Prefix, b.Prefix),
		strings.Compare(a.Regex, b.Regex),
		compareBool(a.Present, b.Present),
	)
}

func compileBackend(b Backend) ir.Backend {
	lb := b.LoadBalancing
	if lb == "" {
		lb = DefaultLoadBalancing
	}
	out := ir.Backend{
		Name:           b.Name,
		Endpoints:      compileEndpoints(b),
		LoadBalancing:  ir.LoadBalancing(lb),
		ConnectTimeout: durationOr(b.ConnectTimeout, DefaultConnectTimeout),
	}
	compileBackendTraffic(b, &out)
	return out
}

// durationOr parses s, or returns def when s is empty.
func durationOr(s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return def // unreachable on a validated policy
	}
	return d
}
