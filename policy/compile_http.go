package policy

import (
	"cmp"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

// Transformation and edge defaults.
const (
	DefaultRedirectStatus        = 301
	DefaultCompressionMinLength  = 1024
	DefaultXFFTrustedHops        = 0
	DefaultMaxRequestHeadersKB   = 60
	DefaultMaxHeadersCount       = 100
	DefaultRequestHeadersTimeout = 10 * time.Second
	DefaultStreamIdleTimeout     = 5 * time.Minute
	DefaultIdleTimeout           = time.Hour
)

// compileRouteHTTP compiles a route's own transformations, nil for none
// (ir.Route.HTTP); the gateway's CORS and compression are applied per
// gateway by applyGatewayHTTP.
func compileRouteHTTP(r Route) *ir.RouteHTTP {
	if r.RouteHTTP == (RouteHTTP{}) && r.Rewrite == nil {
		return nil // the common route: nothing to compile
	}
	out := routeHTTP(r)
	if reflect.ValueOf(out).IsZero() {
		return nil
	}
	return &out
}

// routeHTTP compiles a route's own transformations.
func routeHTTP(r Route) ir.RouteHTTP {
	out := ir.RouteHTTP{Lua: r.Lua}
	if r.Headers != nil {
		out.Headers = compileHeaderRules(*r.Headers)
	}
	if r.Query != nil {
		q := compileMutations(*r.Query, false)
		out.Query = ir.QueryRules{Add: q.Add, Set: q.Set, Remove: q.Remove}
	}
	if rw := r.Rewrite; rw != nil {
		if rw.PathRegex != nil {
			out.RegexRewrite = &ir.RegexRewrite{Pattern: rw.PathRegex.Pattern, Substitution: rw.PathRegex.Substitution}
		}
		out.HostRewrite, out.AutoHostRewrite = rw.Host, rw.HostFromBackend
	}
	if d := r.DirectResponse; d != nil {
		out.DirectResponse = &ir.DirectResponse{Status: uint32(d.Status), Body: d.Body}
	}
	if rd := r.Redirect; rd != nil {
		out.Redirect = compileRedirect(*rd)
	}
	out.CORS = compileCORS(r.CORS)
	out.Compression = compileCompression(r.Compression)
	return out
}

func compileRedirect(r Redirect) *ir.Redirect {
	status := r.Status
	if status == 0 {
		status = DefaultRedirectStatus
	}
	return &ir.Redirect{
		Scheme: r.Scheme, Host: r.Host, Port: uint32(r.Port), Path: r.Path, PathPrefix: r.PathPrefix,
		StripQuery: r.StripQuery, Status: uint32(status),
	}
}

// applyGatewayHTTP gives every route of vhs that sets no CORS policy
// or compression of its own the gateway's (a route's "none" keeps it off).
// A gateway with neither changes nothing: a route without its own has
// none compiled.
func applyGatewayHTTP(g Gateway, vhs []ir.VirtualHost, routes *rankedRoutes) {
	cors, comp := compileCORS(g.CORS), compileCompression(g.Compression)
	if cors == nil && comp == nil {
		return
	}
	own := ownHTTP(routes)
	for i := range vhs {
		for j := range vhs[i].Routes {
			r := &vhs[i].Routes[j]
			t := own[r.Name]
			if (t.ownCORS || cors == nil) && (t.ownCompression || comp == nil) {
				continue // nothing to set: a route without its own has none
			}
			h := r.EditHTTP() // routes copied for other virtual hosts and gateways share it
			if !t.ownCORS {
				h.CORS = cors
			}
			if !t.ownCompression {
				h.Compression = comp
			}
		}
	}
}

func compileGatewayHTTP(g Gateway) ir.GatewayHTTP {
	if g.Headers == nil {
		return ir.GatewayHTTP{}
	}
	return ir.GatewayHTTP{Headers: compileHeaderRules(*g.Headers)}
}

func compileHeaderRules(h HeaderRules) ir.HeaderRules {
	var out ir.HeaderRules
	if h.Request != nil {
		out.Request = compileMutations(*h.Request, true)
	}
	if h.Response != nil {
		out.Response = compileMutations(*h.Response, true)
	}
	return out
}

// compileMutations sorts the mutations by name, lower-casing header names.
func compileMutations(m HeaderMutations, lower bool) ir.HeaderMutations {
	name := func(s string) string {
		if lower {
			return strings.ToLower(s)
		}
		return s
	}
	values := func(in []NamedValue) []ir.HeaderValue {
		var out []ir.HeaderValue
		for _, v := range in {
			out = append(out, ir.HeaderValue{Name: name(v.Name), Value: v.Value})
		}
		slices.SortFunc(out, func(a, b ir.HeaderValue) int { return cmp.Compare(a.Name, b.Name) })
		return out
	}
	out := ir.HeaderMutations{Add: values(m.Add), Set: values(m.Set)}
	for _, r := range m.Remove {
		out.Remove = append(out.Remove, name(r))
	}
	slices.Sort(out.Remove)
	return out
}

func compileCORS(c *CORS) *ir.CORS {
	if c == nil || c.Disabled {
		return nil
	}
	out := &ir.CORS{
		AllowOrigins:       sortedMapped(c.AllowOrigins, nil),
		AllowOriginRegexes: sortedMapped(c.AllowOriginRegexes, nil),
		AllowMethods:       sortedMapped(c.AllowMethods, strings.ToUpper),
		AllowHeaders:       sortedMapped(c.AllowHeaders, strings.ToLower),
		ExposeHeaders:      sortedMapped(c.ExposeHeaders, strings.ToLower),
		AllowCredentials:   c.AllowCredentials,
		MaxAge:             durationOr(c.MaxAge, 0),
	}
	return out
}

func compileCompression(c *Compression) *ir.Compression {
	if c == nil || c.Disabled {
		return nil
	}
	algos := c.Algorithms
	if algos == nil {
		algos = []string{ir.Brotli, ir.Gzip}
	}
	minLen := DefaultCompressionMinLength
	if c.MinLength != nil {
		minLen = *c.MinLength
	}
	return &ir.Compression{
		Algorithms:   sortedMapped(algos, nil),
		MinLength:    uint32(minLen),
		ContentTypes: sortedMapped(c.ContentTypes, nil),
	}
}

func compileEdge(e *Edge) ir.Edge {
	out := ir.Edge{
		XFFTrustedHops:        DefaultXFFTrustedHops,
		StripInternalHeaders:  true,
		MaxRequestHeadersKB:   DefaultMaxRequestHeadersKB,
		MaxHeadersCount:       DefaultMaxHeadersCount,
		RequestHeadersTimeout: DefaultRequestHeadersTimeout,
		StreamIdleTimeout:     DefaultStreamIdleTimeout,
		IdleTimeout:           DefaultIdleTimeout,
	}
	if e == nil {
		return out
	}
	setUint := func(dst *uint32, v *int) {
		if v != nil {
			*dst = uint32(*v)
		}
	}
	setUint(&out.XFFTrustedHops, e.XFFTrustedHops)
	setUint(&out.MaxRequestHeadersKB, e.MaxRequestHeadersKB)
	setUint(&out.MaxHeadersCount, e.MaxHeadersCount)
	if e.StripInternalHeaders != nil {
		out.StripInternalHeaders = *e.StripInternalHeaders
	}
	out.RequestHeadersTimeout = durationOr(e.RequestHeadersTimeout, out.RequestHeadersTimeout)
	out.StreamIdleTimeout = durationOr(e.StreamIdleTimeout, out.StreamIdleTimeout)
	out.IdleTimeout = durationOr(e.IdleTimeout, out.IdleTimeout)
	return out
}

// sortedMapped returns the sorted, deduplicated values of in, mapped by f
// when not nil; nil for an empty in.
func sortedMapped(in []string, f func(string) string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, 0, len(in))
	for _, s := range in {
		if f != nil {
			s = f(s)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ownHTTP maps route names to what the routes set of their own.
func ownHTTP(routes *rankedRoutes) map[string]routeMeta {
	out := make(map[string]routeMeta, len(routes.routes))
	for i, m := range routes.meta {
		out[routes.routes[i].Name] = m
	}
	return out
}
