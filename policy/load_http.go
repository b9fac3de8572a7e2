package policy

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// httpSchema holds the allowed fields of the transformation mappings.
type httpSchema struct {
	headers   []field[HeaderRules]
	mutations []field[HeaderMutations]
	direct    []field[DirectResponse]
	redirect  []field[Redirect]
	cors      []field[CORS]
	compress  []field[Compression]
	edge      []field[Edge]
	regex     []field[RegexRewrite]
}

func newHTTPSchema() httpSchema {
	return httpSchema{
		headers:   headerRulesFields(),
		mutations: headerMutationsFields(),
		direct:    directResponseFields(),
		redirect:  redirectFields(),
		cors:      corsFields(),
		compress:  compressionFields(),
		edge:      edgeFields(),
		regex:     regexRewriteFields(),
	}
}

// routeHTTPFields are the route fields of transformations.
func routeHTTPFields() []field[Route] {
	return []field[Route]{
		{name: "headers", load: func(l *loader, r *Route, path string, n *yaml.Node) {
			r.Headers = &HeaderRules{}
			mapping(l, path, n, r.Headers, l.schema.http.headers)
		}},
		{name: "query", load: func(l *loader, r *Route, path string, n *yaml.Node) {
			r.Query = &HeaderMutations{}
			mapping(l, path, n, r.Query, l.schema.http.mutations)
		}},
		{name: "directResponse", load: func(l *loader, r *Route, path string, n *yaml.Node) {
			r.DirectResponse = &DirectResponse{}
			mapping(l, path, n, r.DirectResponse, l.schema.http.direct)
		}},
		{name: "redirect", load: func(l *loader, r *Route, path string, n *yaml.Node) {
			r.Redirect = &Redirect{}
			mapping(l, path, n, r.Redirect, l.schema.http.redirect)
		}},
		{name: "cors", load: func(l *loader, r *Route, path string, n *yaml.Node) {
			r.CORS = loadCORS(l, path, n)
		}},
		{name: "compression", load: func(l *loader, r *Route, path string, n *yaml.Node) {
			r.Compression = loadCompression(l, path, n)
		}},
		{name: "lua", load: func(l *loader, r *Route, path string, n *yaml.Node) {
			r.Lua = l.str(path, n)
		}},
	}
}

// gatewayHTTPFields are the gateway fields of transformations.
func gatewayHTTPFields() []field[Gateway] {
	return []field[Gateway]{
		{name: "headers", load: func(l *loader, g *Gateway, path string, n *yaml.Node) {
			g.Headers = &HeaderRules{}
			mapping(l, path, n, g.Headers, l.schema.http.headers)
		}},
		{name: "cors", load: func(l *loader, g *Gateway, path string, n *yaml.Node) {
			g.CORS = loadCORS(l, path, n)
		}},
		{name: "compression", load: func(l *loader, g *Gateway, path string, n *yaml.Node) {
			g.Compression = loadCompression(l, path, n)
		}},
		{name: "edge", load: func(l *loader, g *Gateway, path string, n *yaml.Node) {
			g.Edge = &Edge{}
			mapping(l, path, n, g.Edge, l.schema.http.edge)
		}},
	}
}

func headerRulesFields() []field[HeaderRules] {
	return []field[HeaderRules]{
		{name: "request", load: func(l *loader, h *HeaderRules, path string, n *yaml.Node) {
			h.Request = &HeaderMutations{}
			mapping(l, path, n, h.Request, l.schema.http.mutations)
		}},
		{name: "response", load: func(l *loader, h *HeaderRules, path string, n *yaml.Node) {
			h.Response = &HeaderMutations{}
			mapping(l, path, n, h.Response, l.schema.http.mutations)
		}},
	}
}

func headerMutationsFields() []field[HeaderMutations] {
	return []field[HeaderMutations]{
		{name: "add", load: func(l *loader, m *HeaderMutations, path string, n *yaml.Node) {
			m.Add = l.namedValues(path, n)
		}},
		{name: "set", load: func(l *loader, m *HeaderMutations, path string, n *yaml.Node) {
			m.Set = l.namedValues(path, n)
		}},
		{name: "remove", load: func(l *loader, m *HeaderMutations, path string, n *yaml.Node) {
			m.Remove = l.strings(path, n)
		}},
	}
}

// namedValues loads a mapping of names to string values, in YAML order.
// Each entry's path is path.<name>, at its key. A name given twice is
// reported and the second dropped.
func (l *loader) namedValues(path string, n *yaml.Node) []NamedValue {
	v, ok := l.resolve(path, n)
	if !ok {
		return nil
	}
	if !isMap(v) {
		got, _ := describe(v)
		l.fail(path, v, "expected a mapping, got "+got, "map each name to its value, e.g. `{x-team: payments}`")
		return nil
	}
	out := make([]NamedValue, 0, len(v.Content)/2)
	seen := map[string]bool{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		name, ok := l.key(path, k)
		if !ok {
			continue
		}
		np := fieldPath(path, name)
		if seen[name] {
			l.errorAt(np, l.rangeOf(k), fmt.Sprintf("duplicate name %q", name), "remove one of the two; only the first was read")
			continue
		}
		seen[name] = true
		l.record(np, k)
		if isNull(val) {
			l.fail(np, k, fmt.Sprintf("%q has no value", name), "give a value, or use `remove:` to remove it")
			continue
		}
		out = append(out, NamedValue{Name: name, Value: l.scalarString(np, val)})
	}
	return out
}

// scalarString loads a string, or a number or boolean as written (header
// values such as `x-version: 2` need no quotes).
func (l *loader) scalarString(path string, n *yaml.Node) string {
	v, ok := l.resolve(path, n)
	if !ok {
		return ""
	}
	if isScalar(v) {
		return tokenText(v)
	}
	return l.str(path, v)
}

func directResponseFields() []field[DirectResponse] {
	return []field[DirectResponse]{
		{name: "status", required: true, hint: "add `status: 403` (200-599)", load: func(l *loader, d *DirectResponse, path string, n *yaml.Node) {
			d.Status, _ = l.integer(path, n)
		}},
		{name: "body", load: func(l *loader, d *DirectResponse, path string, n *yaml.Node) {
			d.Body = l.str(path, n)
		}},
	}
}

func redirectFields() []field[Redirect] {
	str := func(set func(r *Redirect, s string)) func(l *loader, r *Redirect, path string, n *yaml.Node) {
		return func(l *loader, r *Redirect, path string, n *yaml.Node) { set(r, l.str(path, n)) }
	}
	return []field[Redirect]{
		{name: "scheme", load: str(func(r *Redirect, s string) { r.Scheme = s })},
		{name: "host", load: str(func(r *Redirect, s string) { r.Host = s })},
		{name: "port", load: func(l *loader, r *Redirect, path string, n *yaml.Node) { r.Port, _ = l.integer(path, n) }},
		{name: "path", load: str(func(r *Redirect, s string) { r.Path = s })},
		{name: "pathPrefix", load: str(func(r *Redirect, s string) { r.PathPrefix = s })},
		{name: "stripQuery", load: func(l *loader, r *Redirect, path string, n *yaml.Node) { r.StripQuery = l.boolean(path, n) }},
		{name: "status", load: func(l *loader, r *Redirect, path string, n *yaml.Node) { r.Status, _ = l.integer(path, n) }},
	}
}

// loadCORS loads `none` or a CORS mapping.
func loadCORS(l *loader, path string, n *yaml.Node) *CORS {
	c := &CORS{}
	switch l.noneOrMapping(path, n, "cors", "`cors: {allowOrigins: [https://app.example.com]}`") {
	case isNone:
		c.Disabled = true
	case isMapping:
		mapping(l, path, n, c, l.schema.http.cors)
	}
	return c
}

// loadCompression loads `none` or a compression mapping.
func loadCompression(l *loader, path string, n *yaml.Node) *Compression {
	c := &Compression{}
	switch l.noneOrMapping(path, n, "compression", "`compression: {algorithms: [brotli, gzip]}`") {
	case isNone:
		c.Disabled = true
	case isMapping:
		mapping(l, path, n, c, l.schema.http.compress)
	}
	return c
}

// What noneOrMapping found.
const (
	isBroken = iota
	isNone
	isMapping
)

// noneOrMapping tells whether n is the string "none" or a mapping, and
// reports anything else.
func (l *loader) noneOrMapping(path string, n *yaml.Node, field, example string) int {
	v, ok := l.resolve(path, n)
	if !ok {
		return isBroken
	}
	if s, isString := plainString(v); isString && s == "none" {
		return isNone
	}
	if isMap(v) {
		return isMapping
	}
	got, _ := describe(v)
	l.fail(path, v, fmt.Sprintf(`expected "none" or a mapping, got %s`, got),
		fmt.Sprintf("write %s, or `%s: none` to turn the gateway's setting off for this route", example, field))
	return isBroken
}

func corsFields() []field[CORS] {
	list := func(set func(c *CORS, v []string)) func(l *loader, c *CORS, path string, n *yaml.Node) {
		return func(l *loader, c *CORS, path string, n *yaml.Node) { set(c, l.strings(path, n)) }
	}
	return []field[CORS]{
		{name: "allowOrigins", load: list(func(c *CORS, v []string) { c.AllowOrigins = v })},
		{name: "allowOriginRegexes", load: list(func(c *CORS, v []string) { c.AllowOriginRegexes = v })},
		{name: "allowMethods", load: list(func(c *CORS, v []string) { c.AllowMethods = v })},
		{name: "allowHeaders", load: list(func(c *CORS, v []string) { c.AllowHeaders = v })},
		{name: "exposeHeaders", load: list(func(c *CORS, v []string) { c.ExposeHeaders = v })},
		{name: "allowCredentials", load: func(l *loader, c *CORS, path string, n *yaml.Node) { c.AllowCredentials = l.boolean(path, n) }},
		{name: "maxAge", load: func(l *loader, c *CORS, path string, n *yaml.Node) { c.MaxAge = l.str(path, n) }},
	}
}

func compressionFields() []field[Compression] {
	return []field[Compression]{
		{name: "algorithms", load: func(l *loader, c *Compression, path string, n *yaml.Node) { c.Algorithms = l.strings(path, n) }},
		{name: "minLength", load: func(l *loader, c *Compression, path string, n *yaml.Node) {
			if v, ok := l.integer(path, n); ok {
				c.MinLength = &v
			}
		}},
		{name: "contentTypes", load: func(l *loader, c *Compression, path string, n *yaml.Node) { c.ContentTypes = l.strings(path, n) }},
	}
}

func edgeFields() []field[Edge] {
	intp := func(set func(e *Edge, v *int)) func(l *loader, e *Edge, path string, n *yaml.Node) {
		return func(l *loader, e *Edge, path string, n *yaml.Node) {
			if v, ok := l.integer(path, n); ok {
				set(e, &v)
			}
		}
	}
	return []field[Edge]{
		{name: "xffTrustedHops", load: intp(func(e *Edge, v *int) { e.XFFTrustedHops = v })},
		{name: "stripInternalHeaders", load: func(l *loader, e *Edge, path string, n *yaml.Node) {
			b := l.boolean(path, n)
			e.StripInternalHeaders = &b
		}},
		{name: "maxRequestHeadersKb", load: intp(func(e *Edge, v *int) { e.MaxRequestHeadersKB = v })},
		{name: "maxHeadersCount", load: intp(func(e *Edge, v *int) { e.MaxHeadersCount = v })},
		{name: "requestHeadersTimeout", load: func(l *loader, e *Edge, path string, n *yaml.Node) { e.RequestHeadersTimeout = l.str(path, n) }},
		{name: "streamIdleTimeout", load: func(l *loader, e *Edge, path string, n *yaml.Node) { e.StreamIdleTimeout = l.str(path, n) }},
		{name: "idleTimeout", load: func(l *loader, e *Edge, path string, n *yaml.Node) { e.IdleTimeout = l.str(path, n) }},
	}
}

// rewriteHTTPFields are the rewrite fields besides pathPrefix.
func rewriteHTTPFields() []field[Rewrite] {
	return []field[Rewrite]{
		{name: "pathRegex", load: func(l *loader, rw *Rewrite, path string, n *yaml.Node) {
			rw.PathRegex = &RegexRewrite{}
			mapping(l, path, n, rw.PathRegex, l.schema.http.regex)
		}},
		{name: "host", load: func(l *loader, rw *Rewrite, path string, n *yaml.Node) { rw.Host = l.str(path, n) }},
		{name: "hostFromBackend", load: func(l *loader, rw *Rewrite, path string, n *yaml.Node) { rw.HostFromBackend = l.boolean(path, n) }},
	}
}

func regexRewriteFields() []field[RegexRewrite] {
	return []field[RegexRewrite]{
		{name: "pattern", required: true, hint: "add `pattern: ^/v1/(.*)$`", load: func(l *loader, r *RegexRewrite, path string, n *yaml.Node) {
			r.Pattern = l.str(path, n)
		}},
		{name: "substitution", required: true, hint: `add "substitution: /\1" (may be "")`, load: func(l *loader, r *RegexRewrite, path string, n *yaml.Node) {
			r.Substitution = l.maybeEmptyString(path, n)
		}},
	}
}

// maybeEmptyString loads a string that may be "".
func (l *loader) maybeEmptyString(path string, n *yaml.Node) string {
	v, ok := l.resolve(path, n)
	if !ok {
		return ""
	}
	if s, isString := plainString(v); isString {
		return s
	}
	return l.str(path, v)
}
