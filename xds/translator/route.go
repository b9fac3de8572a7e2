package translator

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/internal/parallel"
	"github.com/tollgate/tollgate/policy/ir"
)

// virtualHosts translates the gateway's virtual hosts, keeping the IR order
// of hosts and of the routes in each host (Envoy picks the first matching
// route), with each route's ext_authz settings from authz and rate limits
// from rl.
//
// built holds each route's match and action (builtRoutes, which may run
// on several goroutines); the per-route settings added here, some of which
// collect gateway-wide state in route order, are applied on this one.
func virtualHosts(in []ir.VirtualHost, built [][]builtRoute, authz *authz, native *nativeJWT, rl *rateLimit, hf *httpFeatures, obs *observability) ([]*routev3.VirtualHost, error) {
	out := make([]*routev3.VirtualHost, 0, len(in))
	for vi, vh := range in {
		routes := make([]*routev3.Route, 0, len(vh.Routes))
		for ri, r := range vh.Routes {
			er, err := built[vi][ri].route, built[vi][ri].err
			switch {
			case err != nil:
			case native.moduleLimits(r): // the module enforces them (jwtmodule_limits.go)
				rl.moduleRoute(er)
			case native.nativeKey(r) && authz.takesLimits(r): // signed keys here, opaque ones in the Check
				err = rl.configureRoute(er, r.RateLimit, r.Name, native.keyRateLimitGate())
			case native.nativeMixed(r) && authz.takesLimits(r): // native decisions here, the others in the Check
				err = rl.configureRoute(er, r.RateLimit, r.Name, mixedRateLimitGate())
			case !authz.takesLimits(r): // else ext_authz takes them
				err = rl.configureRoute(er, r.RateLimit, r.Name, nil)
			}
			if err == nil {
				err = hf.configureRoute(er, r, authz.stripOnRoute(r.Auth))
			}
			if err == nil { // after hf: appends to the route's header removals
				err = configureRouteAuth(er, r, authz, native)
			}
			if err != nil {
				return nil, fmt.Errorf("virtual host %q: route %q: %w", vh.Name, r.Name, err)
			}
			obs.configureRoute(er, r.Name)
			routes = append(routes, er)
		}
		out = append(out, envoy.VirtualHost(envoy.StatName(vh.Name), vh.Domains, routes...))
	}
	if err := rl.finishRoutes(); err != nil {
		return nil, err
	}
	return out, nil
}

// translateRoutesMin is the route count from which a gateway's routes are
// built on several goroutines, as the policy's stages are (512): a push
// translates while its version is hashed and stored, which leaves a core
// mostly idle (the store waits for fsync), and at 1,000 routes the
// translation ended ~2 ms after the store on the push's path.
const translateRoutesMin = 512

// builtRoute is route's result for one IR route.
type builtRoute struct {
	route *routev3.Route
	err   error
}

// builtRoutes returns route(r, tr) for every route of every virtual host
// of in, indexed like in, computed on workers goroutines, each sharing the
// actions of its plain routes (see plainAction).
func builtRoutes(in []ir.VirtualHost, tr *traffic, workers int) [][]builtRoute {
	type at struct{ vh, route int }
	flat := make([]at, 0, routeTotal(in))
	out := make([][]builtRoute, len(in))
	for vi, vh := range in {
		out[vi] = make([]builtRoute, len(vh.Routes))
		for ri := range vh.Routes {
			flat = append(flat, at{vi, ri})
		}
	}
	parallel.Chunks(len(flat), workers, func(_, lo, hi int) {
		shared := map[actionKey]*routev3.RouteAction{}
		for _, a := range flat[lo:hi] {
			b := &out[a.vh][a.route]
			b.route, b.err = route(&in[a.vh].Routes[a.route], tr, shared)
		}
	})
	return out
}

// routeTotal is the number of routes of the virtual hosts in.
func routeTotal(in []ir.VirtualHost) int {
	n := 0
	for _, vh := range in {
		n += len(vh.Routes)
	}
	return n
}

// actionKey is what the action of a plain route depends on.
type actionKey struct {
	backend string
	timeout time.Duration
}

// plainAction returns the key of r's action when the action depends on
// its backend and timeout alone (no split, retry, idle timeout, mirror,
// rewrite) and nothing changes it after route: a route with rate limits
// gets them on its action later (rateLimit.configureRoute). The routes of
// a large policy mostly are such: their actions are shared, one per
// backend and timeout, which keeps a 10,000-route configuration ~4 MB
// smaller (held twice during a push: the served one and the new). A built
// route's action must therefore never be changed, except as
// configureRoute does.
func plainAction(r *ir.Route) (actionKey, bool) {
	h := r.HTTP
	plain := r.Backend != "" && len(r.Split) == 0 && r.Retry == nil && r.IdleTimeout == 0 && r.Mirror == nil &&
		!r.RewritePrefix && !r.RateLimit.Enabled &&
		(h == nil || h.RegexRewrite == nil && h.HostRewrite == "" && !h.AutoHostRewrite)
	return actionKey{backend: r.Backend, timeout: r.Timeout}, plain
}

// route translates one IR route: its match, and an action forwarding to the
// cluster named after the backend with the route's timeout and rewrite. A
// plain route (plainAction) takes the action in shared, if there is one
// for its key, else stores its own there.
func route(r *ir.Route, tr *traffic, shared map[actionKey]*routev3.RouteAction) (*routev3.Route, error) {
	match, err := routeMatch(r.Match)
	if err != nil {
		return nil, err
	}
	if h := r.HTTPRules(); h.DirectResponse != nil || h.Redirect != nil {
		if r.Backend != "" || len(r.Split) > 0 {
			return nil, errors.New("a backend and a direct response or redirect are exclusive")
		}
		return answerRoute(*r, match)
	}
	if r.Timeout < 0 {
		return nil, fmt.Errorf("negative timeout %s", r.Timeout)
	}
	key, plain := plainAction(r)
	if a := shared[key]; plain && a != nil {
		return envoy.Route(r.Name, match, a), nil
	}
	action, err := tr.routeAction(*r)
	if err != nil {
		return nil, err
	}
	if r.RewritePrefix {
		rewritePrefix(action, r.Match, r.PrefixRewrite)
	}
	if err := rewriteAction(action, r.HTTPRules()); err != nil {
		return nil, err
	}
	if plain {
		shared[key] = action
	}
	return envoy.Route(r.Name, match, action), nil
}

// routeMatch translates the path condition (exactly one of path, prefix,
// regex) and the method and header conditions, methods first.
func routeMatch(m ir.Match) (*routev3.RouteMatch, error) {
	headers, err := headerMatchers(m)
	if err != nil {
		return nil, err
	}
	switch {
	case countSet(m.Path != "", m.PathPrefix != "", m.PathRegex != "") != 1:
		return nil, errors.New("want exactly one of path, path prefix and path regex")
	case m.Path != "":
		return envoy.RouteMatchPath(m.Path, headers...), nil
	case m.PathPrefix != "":
		return envoy.RouteMatchPrefix(m.PathPrefix, headers...), nil
	default:
		return envoy.RouteMatchRegex(m.PathRegex, headers...), nil
	}
}

// headerMatchers returns the :method matcher, if the route restricts
// methods, followed by one matcher per header condition in IR order.
func headerMatchers(m ir.Match) ([]*routev3.HeaderMatcher, error) {
	out := make([]*routev3.HeaderMatcher, 0, len(m.Headers)+1)
	if len(m.Methods) > 0 {
		out = append(out, envoy.HeaderMatchMethods(m.Methods...))
	}
	for _, h := range m.Headers {
		hm, err := headerMatcher(h)
		if err != nil {
			return nil, fmt.Errorf("header %q: %w", h.Name, err)
		}
		out = append(out, hm)
	}
	return out, nil
}

// headerMatcher translates one header condition. A condition with no value
// set at all is an exact match on the empty value.
func headerMatcher(h ir.HeaderMatch) (*routev3.HeaderMatcher, error) {
	switch {
	case countSet(h.Exact != "", h.Prefix != "", h.Regex != "", h.Present) > 1:
		return nil, errors.New("want at most one of exact, prefix, regex and present")
	case h.Present:
		return envoy.HeaderMatchPresent(h.Name), nil
	case h.Prefix != "":
		return envoy.HeaderMatchPrefix(h.Name, h.Prefix), nil
	case h.Regex != "":
		return envoy.HeaderMatchRegex(h.Name, h.Regex), nil
	default:
		return envoy.HeaderMatchExact(h.Name, h.Exact), nil
	}
}

// rewritePrefix sets the action's path rewrite: the matched prefix (for a
// path or regex match, the whole path) becomes with. Envoy ignores an empty
// prefix_rewrite, so an empty with is done as a regex rewrite that strips
// the matched part and the slashes after it, leaving at least "/"
// ("/api" on "/api/users" gives "/users", on "/api" gives "/").
//
// A with ending in "/" on a prefix that does not would double the slash
// ("/api" → "/" on "/api/users" gives "//users"), so that case is a regex
// rewrite too, swallowing the slashes after the prefix.
func rewritePrefix(action *routev3.RouteAction, m ir.Match, with string) {
	slashJoin := strings.HasSuffix(with, "/") && m.PathPrefix != "" && !strings.HasSuffix(m.PathPrefix, "/")
	if with != "" && !slashJoin {
		action.PrefixRewrite = with
		return
	}
	if slashJoin {
		action.RegexRewrite = envoy.RegexRewrite("^"+regexp.QuoteMeta(m.PathPrefix)+"/*", with)
		return
	}
	var pattern string
	switch {
	case m.PathRegex != "":
		pattern = "^(?:" + m.PathRegex + ")$"
	case m.Path != "":
		pattern = "^" + regexp.QuoteMeta(m.Path) + "/*"
	default:
		pattern = "^" + regexp.QuoteMeta(m.PathPrefix) + "/*"
	}
	action.RegexRewrite = envoy.RegexRewrite(pattern, "/")
}

// countSet returns how many of conds are true.
func countSet(conds ...bool) int {
	n := 0
	for _, c := range conds {
		if c {
			n++
		}
	}
	return n
}
