package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Limits of the transformation options.
const (
	// maxDirectBody is Envoy's default max_direct_response_body_size_bytes.
	maxDirectBody = 4096
	// maxHeaderValue bounds a header value the policy sets.
	maxHeaderValue = 8192
	// maxLuaBytes bounds an inline Lua script.
	maxLuaBytes = 64 << 10
)

// identitySet is the lower-case names of the identity headers the auth
// layer manages: no transformation may add, set or remove them.
type identitySet map[string]bool

func newIdentitySet(a *Auth) identitySet {
	s := identitySet{}
	for _, n := range compileIdentityHeaders(a).Names() {
		s[strings.ToLower(n)] = true
	}
	return s
}

// routeHTTP checks a route's transformation fields.
func (c *checker) routeHTTP(path string, r Route, ids identitySet) {
	if r.Headers != nil {
		c.headerRules(fieldPath(path, "headers"), *r.Headers, ids)
	}
	if r.Query != nil {
		c.queryRules(fieldPath(path, "query"), *r.Query)
	}
	c.routeAnswer(path, r)
	if r.CORS != nil {
		c.cors(fieldPath(path, "cors"), *r.CORS, r.Match.Methods)
	}
	if r.Compression != nil {
		c.compression(fieldPath(path, "compression"), *r.Compression)
	}
	if r.Lua != "" {
		c.lua(fieldPath(path, "lua"), r.Lua, ids)
	}
}

// gatewayHTTP checks a gateway's transformation fields.
func (c *checker) gatewayHTTP(path string, g Gateway, ids identitySet) {
	if g.Headers != nil {
		c.headerRules(fieldPath(path, "headers"), *g.Headers, ids)
	}
	if g.CORS != nil {
		if g.CORS.Disabled {
			c.errorf(fieldPath(path, "cors"), "remove `cors` (a gateway has no CORS policy unless it sets one)", `"none" is only for routes`)
		} else {
			c.cors(fieldPath(path, "cors"), *g.CORS, nil)
		}
	}
	if g.Compression != nil {
		if g.Compression.Disabled {
			c.errorf(fieldPath(path, "compression"), "remove `compression` (a gateway compresses nothing unless it says so)", `"none" is only for routes`)
		} else {
			c.compression(fieldPath(path, "compression"), *g.Compression)
		}
	}
	if g.Edge != nil {
		c.edge(fieldPath(path, "edge"), *g.Edge)
	}
}

// routeAnswer checks that a route has exactly one of backend,
// directResponse and redirect, and the one it has.
func (c *checker) routeAnswer(path string, r Route) {
	var set []string
	for _, f := range []struct {
		name string
		on   bool
	}{{"backend", r.Backend != "" || r.Backends != nil}, {"directResponse", r.DirectResponse != nil}, {"redirect", r.Redirect != nil}} {
		if f.on {
			set = append(set, f.name)
		}
	}
	if len(set) > 1 {
		c.errorf(fieldPath(path, set[1]), "keep one of them: a route forwards to a backend, answers directly, or redirects",
			"a route has exactly one of backend (or backends), directResponse and redirect; this one has %s", strings.Join(set, " and "))
	}
	if r.DirectResponse != nil || r.Redirect != nil {
		for _, f := range []struct {
			name string
			set  bool
		}{{"rewrite", r.Rewrite != nil}, {"transform", r.Transform != nil}, {"retries", r.Retries != nil}, {"mirror", r.Mirror != nil}, {"idleTimeout", r.IdleTimeout != ""}} {
			if f.set {
				c.errorf(fieldPath(path, f.name), fmt.Sprintf("remove %s: it only applies to requests forwarded to a backend", f.name),
					"%s needs a backend", f.name)
			}
		}
	}
	if (r.DirectResponse != nil || r.Redirect != nil) && r.RateLimit != nil && !r.RateLimit.None {
		c.errorf(fieldPath(path, "rateLimit"), "remove rateLimit, or write `rateLimit: none`",
			"a route without a backend cannot be rate limited (Envoy answers it before any limit applies)")
	}
	if r.DirectResponse != nil {
		c.directResponse(fieldPath(path, "directResponse"), *r.DirectResponse)
	}
	if r.Redirect != nil {
		c.redirect(fieldPath(path, "redirect"), *r.Redirect)
	}
}

func (c *checker) directResponse(path string, d DirectResponse) {
	if d.Status < 200 || d.Status > 599 {
		c.errorf(fieldPath(path, "status"), "use a status from 200 to 599, e.g. 403", "status %d is out of range", d.Status)
	}
	if len(d.Body) > maxDirectBody {
		c.errorf(fieldPath(path, "body"), fmt.Sprintf("shorten the body to at most %d bytes", maxDirectBody),
			"body is %d bytes, more than Envoy's %d", len(d.Body), maxDirectBody)
	}
}

// redirectStatuses are the redirect codes Envoy can send.
var redirectStatuses = []int{301, 302, 303, 307, 308}

func (c *checker) redirect(path string, r Redirect) {
	if r.Status != 0 && !slices.Contains(redirectStatuses, r.Status) {
		c.errorf(fieldPath(path, "status"), "use 301, 302, 303, 307 or 308", "status %d is not a redirect status", r.Status)
	}
	if r.Scheme != "" && r.Scheme != "http" && r.Scheme != "https" {
		c.errorf(fieldPath(path, "scheme"), `use "http" or "https"`, "unknown scheme %q", r.Scheme)
	}
	if r.Host != "" {
		if p := hostProblem(r.Host); p != "" || strings.HasPrefix(r.Host, "*") {
			c.errorf(fieldPath(path, "host"), "use a DNS name or IP address without port (set the port with `port`)", "invalid redirect host %q", r.Host)
		}
	}
	if r.Port != 0 && (r.Port < 1 || r.Port > 65535) {
		c.errorf(fieldPath(path, "port"), "use a port from 1 to 65535", "port %d is out of range", r.Port)
	}
	if r.Path != "" && r.PathPrefix != "" {
		c.errorf(fieldPath(path, "pathPrefix"), "keep one: path replaces the whole path, pathPrefix the matched prefix", "path and pathPrefix are exclusive")
	}
	for _, f := range []struct{ name, v string }{{"path", r.Path}, {"pathPrefix", r.PathPrefix}} {
		if f.v != "" && !strings.HasPrefix(f.v, "/") {
			c.errorf(fieldPath(path, f.name), fmt.Sprintf("write %q", "/"+f.v), "%s %q must start with \"/\"", f.name, f.v)
		}
	}
	if r.Scheme == "" && r.Host == "" && r.Port == 0 && r.Path == "" && r.PathPrefix == "" && !r.StripQuery {
		c.errorf(path, "set at least one of scheme, host, port, path, pathPrefix and stripQuery",
			"redirect changes nothing: it would send clients back to the same URL")
	}
}

// httpRewrite checks the rewrite fields besides pathPrefix, and that
// the rewrite does something.
func (c *checker) httpRewrite(path string, r Route) {
	rw := r.Rewrite
	if rw.PathPrefix == "" && rw.PathRegex == nil && rw.Host == "" && !rw.HostFromBackend && !c.src.isTainted(path) {
		c.errorf(path, "set pathPrefix, pathRegex, host or hostFromBackend, or remove rewrite", "rewrite changes nothing")
	}
	if rw.PathPrefix != "" && rw.PathRegex != nil {
		c.errorf(fieldPath(path, "pathRegex"), "keep one of pathPrefix and pathRegex", "pathPrefix and pathRegex are exclusive")
	}
	if rw.PathRegex != nil && rw.PathRegex.Pattern != "" {
		c.regex(fieldPath(fieldPath(path, "pathRegex"), "pattern"), rw.PathRegex.Pattern, "matches are replaced by substitution")
	}
	if rw.Host != "" && rw.HostFromBackend {
		c.errorf(fieldPath(path, "hostFromBackend"), "keep one of host and hostFromBackend", "host and hostFromBackend are exclusive")
	}
	if rw.Host != "" {
		c.hostValue(fieldPath(path, "host"), rw.Host)
	}
}

// hostValue checks a literal Host header value: a host name or IP, with an
// optional port.
func (c *checker) hostValue(path, h string) {
	name := h
	if i := strings.LastIndexByte(h, ':'); i > 0 && !strings.Contains(h[:i], ":") {
		if !validPort(h[i+1:]) {
			c.errorf(path, "use host or host:port with a port from 1 to 65535", "invalid port in host %q", h)
			return
		}
		name = h[:i]
	}
	if isIP(name) {
		return
	}
	if p := hostProblem(strings.ToLower(name)); p != "" || strings.HasPrefix(name, "*") {
		c.errorf(path, "use a DNS name or IP address, optionally with :port, e.g. users.internal:8080", "invalid host %q", h)
	}
}

// lua checks a route's script. The identity header check is only an early
// warning for an obvious mistake: a script can build a name at run time
// ("x-user" .. "-id") or take it from a client header. The guarantee is
// Envoy's: on a gateway with Lua, an identity guard after the Lua filter
// rebuilds every identity header from what ext_authz decided (see
// xds/translator/identityguard.go).
func (c *checker) lua(path, src string, ids identitySet) {
	lower := strings.ToLower(src)
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		if strings.Contains(lower, id) {
			c.errorf(path, "remove it from the script: the auth layer alone sets and strips the identity headers",
				"Lua script names the identity header %q", id)
			return
		}
	}
	switch {
	case len(src) > maxLuaBytes:
		c.errorf(path, "move the logic to a service (ext_proc) or shorten the script", "Lua script is %d bytes, more than %d", len(src), maxLuaBytes)
	case !strings.Contains(src, "envoy_on_request") && !strings.Contains(src, "envoy_on_response"):
		c.errorf(path, "define `function envoy_on_request(request_handle) ... end` and/or `function envoy_on_response(response_handle) ... end`",
			"Lua script defines neither envoy_on_request nor envoy_on_response")
	}
}

// httpFeatures checks the transformation fields of every gateway and route.
func (c *checker) httpFeatures(p *Policy) {
	ids := newIdentitySet(p.Auth)
	for i, g := range p.Gateways {
		c.gatewayHTTP(indexPath("gateways", i), g, ids)
	}
	for i, r := range p.Routes {
		path := c.routePath(i)
		if !c.src.isFailed(path) {
			c.routeHTTP(path, r, ids)
		}
	}
}
