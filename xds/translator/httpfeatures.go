package translator

import (
	"errors"
	"fmt"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// httpFeatures is how one gateway's Envoys change requests and responses:
// header and query mutations, rewrites, answers without a backend, CORS,
// compression and Lua, each filter present only when a route uses it.
type httpFeatures struct {
	gw          *ir.Gateway
	cors        bool
	lua         bool
	compressors []compressor
	// guard rebuilds the identity headers after Lua (identityguard.go).
	guard *identityGuard
}

func newHTTPFeatures(gw *ir.Gateway, identity ir.IdentityHeaders) (*httpFeatures, error) {
	comps, err := compressorsOf(gw)
	if err != nil {
		return nil, err
	}
	lua := gw.NeedsLua()
	return &httpFeatures{gw: gw, cors: gw.NeedsCORS(), lua: lua, compressors: comps, guard: newIdentityGuard(identity, lua)}, nil
}

// corsFilters returns the CORS filter when a route has a CORS policy; it
// runs right after the identity header mutation, before ext_authz.
func (t *httpFeatures) corsFilters() []*hcmv3.HttpFilter {
	if !t.cors {
		return nil
	}
	return []*hcmv3.HttpFilter{envoy.CORSFilter()}
}

// lateFilters returns the compressors, then the Lua filter between the
// identity snapshot and the identity guard: they run after ext_authz and
// ratelimit.
func (t *httpFeatures) lateFilters() ([]*hcmv3.HttpFilter, error) {
	var out []*hcmv3.HttpFilter
	for _, c := range t.compressors {
		f, err := envoy.CompressorFilter(c.opts)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	before, after, err := t.guard.around()
	if err != nil {
		return nil, err
	}
	out = append(out, before...)
	if t.lua {
		out = append(out, envoy.LuaFilter())
	}
	return append(out, after...), nil
}

// configureRoute sets the route's header mutations and its per-route
// configs of the header mutation (the client's request headers in strip,
// removed first thing, and query parameters), CORS, compressor and Lua
// filters.
func (t *httpFeatures) configureRoute(er *routev3.Route, r ir.Route, strip []string) error {
	tr := r.HTTPRules()
	envoy.SetRouteHeaders(er, headerChanges(tr.Headers.Request), headerChanges(tr.Headers.Response))
	q := envoy.HeaderChanges{Add: headers(tr.Query.Add), Set: headers(tr.Query.Set), Remove: tr.Query.Remove}
	if hm := envoy.HeaderMutationPerRoute(strip, q); hm != nil {
		if err := envoy.SetRouteFilterConfig(er, envoy.HeaderMutationName, hm); err != nil {
			return err
		}
	}
	if c := tr.CORS; c != nil {
		if err := envoy.SetRouteFilterConfig(er, envoy.CORSName, envoy.CORSPolicy(corsOptions(*c))); err != nil {
			return err
		}
	}
	if err := t.configureCompression(er, tr.Compression); err != nil {
		return err
	}
	if !t.lua {
		return nil
	}
	if err := t.guard.configureRoute(er, r); err != nil {
		return err
	}
	if tr.Lua != "" {
		return envoy.SetRouteFilterConfig(er, envoy.LuaName, envoy.LuaPerRouteSource(tr.Lua))
	}
	return envoy.SetRouteFilterConfig(er, envoy.LuaName, envoy.LuaPerRouteDisabled())
}

// configureRouteConfigs sets the gateway's own header mutations on every
// route table; the routes' own mutations win over them.
func (t *httpFeatures) configureRouteConfigs(rcs []*routev3.RouteConfiguration) {
	h := t.gw.HTTP.Headers
	for _, rc := range rcs {
		envoy.SetRouteConfigurationHeaders(rc, headerChanges(h.Request), headerChanges(h.Response))
	}
}

// configureEndpoints gives the endpoints of every backend that a route
// with automatic host rewrite uses the host name "ip:port".
func (t *httpFeatures) configureEndpoints(endpoints []*endpointv3.ClusterLoadAssignment) {
	auto := map[string]bool{}
	t.gw.EachRoute(func(r *ir.Route) {
		if r.HTTPRules().AutoHostRewrite {
			for _, b := range r.Targets() {
				auto[b] = true
			}
		}
	})
	for _, cla := range endpoints {
		if auto[backendOfAssignment(cla)] {
			envoy.SetEndpointHostnames(cla)
		}
	}
}

// rewriteAction sets the route's regex path rewrite and host rewrite.
func rewriteAction(action *routev3.RouteAction, tr ir.RouteHTTP) error {
	if rw := tr.RegexRewrite; rw != nil {
		if action.GetPrefixRewrite() != "" || action.GetRegexRewrite() != nil {
			return errors.New("a regex rewrite and a prefix rewrite are exclusive")
		}
		action.RegexRewrite = envoy.RegexRewrite(rw.Pattern, rw.Substitution)
	}
	if tr.HostRewrite != "" && tr.AutoHostRewrite {
		return errors.New("a literal and an automatic host rewrite are exclusive")
	}
	envoy.SetHostRewrite(action, tr.HostRewrite, tr.AutoHostRewrite)
	return nil
}

// answerRoute translates a route without a backend: a direct response or
// a redirect.
func answerRoute(r ir.Route, match *routev3.RouteMatch) (*routev3.Route, error) {
	tr := r.HTTPRules()
	switch {
	case tr.DirectResponse != nil && tr.Redirect != nil:
		return nil, errors.New("a direct response and a redirect are exclusive")
	case tr.DirectResponse != nil:
		d := tr.DirectResponse
		if d.Status < 200 || d.Status > 599 {
			return nil, fmt.Errorf("direct response status %d out of range", d.Status)
		}
		return envoy.DirectResponseRoute(r.Name, match, d.Status, d.Body), nil
	case tr.Redirect != nil:
		rd := tr.Redirect
		return envoy.RedirectRoute(r.Name, match, envoy.RedirectOptions{
			Scheme: rd.Scheme, Host: rd.Host, Port: rd.Port, Path: rd.Path, PathPrefix: rd.PathPrefix,
			StripQuery: rd.StripQuery, Status: rd.Status,
		})
	}
	return nil, errors.New("no backend")
}

func headerChanges(m ir.HeaderMutations) envoy.HeaderChanges {
	return envoy.HeaderChanges{Add: headers(m.Add), Set: headers(m.Set), Remove: m.Remove}
}

func headers(in []ir.HeaderValue) []envoy.Header {
	if len(in) == 0 {
		return nil
	}
	out := make([]envoy.Header, len(in))
	for i, h := range in {
		out[i] = envoy.Header{Name: h.Name, Value: h.Value}
	}
	return out
}

func corsOptions(c ir.CORS) envoy.CORSOptions {
	return envoy.CORSOptions{
		AllowOrigins: c.AllowOrigins, AllowOriginRegexes: c.AllowOriginRegexes,
		AllowMethods: c.AllowMethods, AllowHeaders: c.AllowHeaders, ExposeHeaders: c.ExposeHeaders,
		AllowCredentials: c.AllowCredentials, MaxAge: c.MaxAge,
	}
}
