package policy

import (
	"encoding/json"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// authSchema holds the allowed fields of the auth mappings: the top-level
// auth section, a gateway's auth and a route's auth.
type authSchema struct {
	auth     []field[Auth]
	jwt      []field[JWTProvider]
	claims   []field[ClaimMap]
	apiKeys  []field[APIKeys]
	oauth2   []field[OAuth2Provider]
	identity []field[IdentityHeaders]
	gateway  []field[GatewayAuth]
	route    []field[RouteAuth]
}

func newAuthSchema() authSchema {
	return authSchema{
		auth:     authFields(),
		jwt:      jwtFields(),
		claims:   claimFields(),
		apiKeys:  apiKeysFields(),
		oauth2:   oauth2Fields(),
		identity: identityHeaderFields(),
		gateway:  gatewayAuthFields(),
		route:    routeAuthFields(),
	}
}

// loadAuth loads a top-level auth section. Several sections (in several
// files or documents) add up: their provider lists are concatenated, but
// apiKeys and identityHeaders may be set in one of them only.
func loadAuth(l *loader, p *Policy, path string, n *yaml.Node) {
	if p.Auth == nil {
		p.Auth = &Auth{}
	}
	mapping(l, path, n, p.Auth, l.schema.auth.auth)
}

func authFields() []field[Auth] {
	return []field[Auth]{
		{name: "jwt", load: func(l *loader, a *Auth, path string, n *yaml.Node) {
			a.JWT = appendList(l, path, n, a.JWT, l.schema.auth.jwt)
		}},
		{name: "apiKeys", load: func(l *loader, a *Auth, path string, n *yaml.Node) {
			if !l.setTwice(path, n, a.APIKeys != nil) {
				a.APIKeys = &APIKeys{}
				mapping(l, path, n, a.APIKeys, l.schema.auth.apiKeys)
			}
		}},
		{name: "oauth2", load: func(l *loader, a *Auth, path string, n *yaml.Node) {
			a.OAuth2 = appendList(l, path, n, a.OAuth2, l.schema.auth.oauth2)
		}},
		{name: "identityHeaders", load: func(l *loader, a *Auth, path string, n *yaml.Node) {
			if !l.setTwice(path, n, a.IdentityHeaders != nil) {
				a.IdentityHeaders = &IdentityHeaders{}
				mapping(l, path, n, a.IdentityHeaders, l.schema.auth.identity)
			}
		}},
	}
}

// setTwice reports, when set, that a second section (auth, rateLimits)
// sets path again, and returns set. The first value is kept.
func (l *loader) setTwice(path string, n *yaml.Node, set bool) bool {
	if set {
		section, _, _ := strings.Cut(path, ".")
		l.errorAt(path, l.rangeOf(n),
			fmt.Sprintf("duplicate field %q (first set at %s)", lastSegment(path), l.p.src.firstRange(path)),
			fmt.Sprintf("set it in one %s section only; only the first was read", section))
	}
	return set
}

func jwtFields() []field[JWTProvider] {
	return []field[JWTProvider]{
		requiredString("name", "add `name: <provider name>`", func(j *JWTProvider) *string { return &j.Name }),
		requiredString("issuer", "add `issuer: <the tokens' \"iss\" claim>`", func(j *JWTProvider) *string { return &j.Issuer }),
		stringField("namespace", func(j *JWTProvider) *string { return &j.Namespace }),
		stringsField("audiences", func(j *JWTProvider) *[]string { return &j.Audiences }),
		stringField("jwksUri", func(j *JWTProvider) *string { return &j.JWKSURI }),
		{name: "jwks", load: loadJWKS},
		stringsField("algorithms", func(j *JWTProvider) *[]string { return &j.Algorithms }),
		stringField("hmacSecretEnv", func(j *JWTProvider) *string { return &j.HMACSecretEnv }),
		stringField("clockSkew", func(j *JWTProvider) *string { return &j.ClockSkew }),
		stringField("maxLifetime", func(j *JWTProvider) *string { return &j.MaxLifetime }),
		stringField("jwksRefresh", func(j *JWTProvider) *string { return &j.JWKSRefresh }),
		{name: "claims", load: func(l *loader, j *JWTProvider, path string, n *yaml.Node) {
			mapping(l, path, n, &j.Claims, l.schema.auth.claims)
		}},
		{name: "insecure", load: func(l *loader, j *JWTProvider, path string, n *yaml.Node) {
			j.Insecure = l.boolean(path, n)
		}},
	}
}

func claimFields() []field[ClaimMap] {
	return []field[ClaimMap]{
		stringField("userId", func(c *ClaimMap) *string { return &c.UserID }),
		stringField("roles", func(c *ClaimMap) *string { return &c.Roles }),
		stringField("tenant", func(c *ClaimMap) *string { return &c.Tenant }),
		stringField("tier", func(c *ClaimMap) *string { return &c.Tier }),
	}
}

func apiKeysFields() []field[APIKeys] {
	return []field[APIKeys]{
		stringField("header", func(k *APIKeys) *string { return &k.Header }),
		stringField("namespace", func(k *APIKeys) *string { return &k.Namespace }),
	}
}

func oauth2Fields() []field[OAuth2Provider] {
	return []field[OAuth2Provider]{
		requiredString("name", "add `name: <provider name>`", func(o *OAuth2Provider) *string { return &o.Name }),
		requiredString("introspectionUrl", "add `introspectionUrl: https://<idp>/<introspection endpoint>`",
			func(o *OAuth2Provider) *string { return &o.IntrospectionURL }),
		requiredString("clientId", "add `clientId: <client id at the identity provider>`",
			func(o *OAuth2Provider) *string { return &o.ClientID }),
		requiredString("clientSecretEnv", "add `clientSecretEnv: <NAME of the environment variable holding the client secret>`",
			func(o *OAuth2Provider) *string { return &o.ClientSecretEnv }),
		stringsField("audiences", func(o *OAuth2Provider) *[]string { return &o.Audiences }),
		stringField("cacheTtl", func(o *OAuth2Provider) *string { return &o.CacheTTL }),
		{name: "insecure", load: func(l *loader, o *OAuth2Provider, path string, n *yaml.Node) {
			o.Insecure = l.boolean(path, n)
		}},
		stringField("namespace", func(o *OAuth2Provider) *string { return &o.Namespace }),
		stringField("tokenPrefix", func(o *OAuth2Provider) *string { return &o.TokenPrefix }),
		{name: "maxConcurrent", load: func(l *loader, o *OAuth2Provider, path string, n *yaml.Node) {
			v, ok := l.integer(path, n)
			if ok && v == 0 {
				// 0 would read as "left out": reject it here, as Validate cannot.
				l.fail(path, n, "maxConcurrent must be at least 1, got 0",
					fmt.Sprintf("use a bound from 1 to %d, or remove it for the default %d", maxConcurrent, DefaultMaxConcurrent))
				return
			}
			o.MaxConcurrent = v
		}},
	}
}

func identityHeaderFields() []field[IdentityHeaders] {
	return []field[IdentityHeaders]{
		stringField("userId", func(h *IdentityHeaders) *string { return &h.UserID }),
		stringField("roles", func(h *IdentityHeaders) *string { return &h.Roles }),
		stringField("tenant", func(h *IdentityHeaders) *string { return &h.Tenant }),
		stringField("tier", func(h *IdentityHeaders) *string { return &h.Tier }),
	}
}

func gatewayAuthFields() []field[GatewayAuth] {
	return []field[GatewayAuth]{
		{name: "statusOnError", load: func(l *loader, g *GatewayAuth, path string, n *yaml.Node) {
			v, ok := l.integer(path, n)
			if !ok {
				return
			}
			if v == 0 {
				// 0 would read as "left out": reject it here, as Validate cannot.
				summary, fix := statusOnErrorProblem(v)
				l.fail(path, n, summary, fix)
				return
			}
			g.StatusOnError = v
		}},
		stringField("timeout", func(g *GatewayAuth) *string { return &g.Timeout }),
	}
}

func routeAuthFields() []field[RouteAuth] {
	return []field[RouteAuth]{
		stringsField("methods", func(r *RouteAuth) *[]string { return &r.Methods }),
		stringsField("roles", func(r *RouteAuth) *[]string { return &r.Roles }),
		stringsField("scopes", func(r *RouteAuth) *[]string { return &r.Scopes }),
		{name: "forwardCredentials", load: func(l *loader, r *RouteAuth, path string, n *yaml.Node) {
			r.ForwardCredentials = l.boolean(path, n)
		}},
	}
}

// stringField is an optional string field that loads into *dst(t).
func stringField[T any](name string, dst func(*T) *string) field[T] {
	return field[T]{name: name, load: func(l *loader, t *T, path string, n *yaml.Node) {
		*dst(t) = l.str(path, n)
	}}
}

// requiredString is a required string field; hint says how to add it.
func requiredString[T any](name, hint string, dst func(*T) *string) field[T] {
	f := stringField(name, dst)
	f.required, f.hint = true, hint
	return f
}

// stringsField is an optional list-of-strings field whose entries may
// hold a colon (see colonStrings).
func stringsField[T any](name string, dst func(*T) *[]string) field[T] {
	return field[T]{name: name, load: func(l *loader, t *T, path string, n *yaml.Node) {
		*dst(t) = l.colonStrings(path, n)
	}}
}

// colonStrings is l.strings for auth lists, whose entries often hold a
// colon: scopes such as orders:read, URN audiences. The YAML parser reads
// a plain a:b in a flow sequence as the string it is.
func (l *loader) colonStrings(path string, n *yaml.Node) []string {
	return l.strings(path, n)
}

// routeAuthForm is the fix for a route auth that is neither "none" nor a
// mapping.
const routeAuthForm = "write `auth: none` for a public route, or a mapping such as `auth: {methods: [jwt], roles: [user]}`"

// loadRouteAuth loads a route's auth: the string "none" for a public route,
// or a mapping.
func loadRouteAuth(l *loader, r *Route, path string, n *yaml.Node) {
	v, ok := l.resolve(path, n)
	if !ok {
		return
	}
	if isMap(v) {
		r.Auth = &RouteAuth{}
		mapping(l, path, v, r.Auth, l.schema.auth.route)
		return
	}
	if s, isString := plainString(v); isString && s == "none" {
		r.Auth = &RouteAuth{Public: true}
		return
	}
	got, _ := describe(v)
	summary := fmt.Sprintf(`expected "none" or a mapping, got %s`, got)
	fix := routeAuthForm
	if s, isString := plainString(v); isString {
		if m, isMethod := closestMethod(s); isMethod {
			fix = fmt.Sprintf("write `auth: {methods: [%s]}` to accept only %s, or `auth: none` for a public route", m, m)
		} else if _, near := closest(s, []string{"none"}); near {
			summary += `; did you mean "none"?`
		}
	}
	l.fail(path, v, summary, fix)
}

// closestMethod returns the auth method s names, ignoring case.
func closestMethod(s string) (string, bool) {
	for _, m := range authMethodNames {
		if strings.EqualFold(s, m) {
			return m, true
		}
	}
	return "", false
}

// loadJWKS loads an inline JSON Web Key Set: JSON text, or a YAML mapping
// that is stored as compact JSON. A key set that cannot be written as JSON
// marks the field failed, so Validate does not also miss it.
func loadJWKS(l *loader, j *JWTProvider, path string, n *yaml.Node) {
	v, ok := l.resolve(path, n)
	if !ok {
		return
	}
	switch kindOfNode(v) {
	case kindMapping:
		w := jsonWriter{l: l, path: path, node: v}
		if !w.value(path, v, 0) {
			l.p.src.markFailed(path)
			return
		}
		j.JWKS = string(w.buf)
	case kindString, kindLiteral:
		j.JWKS = l.str(path, v)
	default:
		got, _ := describe(v)
		l.fail(path, v, "expected a string or a mapping, got "+got,
			"give the key set as a mapping `{keys: [...]}` or as JSON text")
	}
}

// jsonWriter writes a YAML value as compact JSON, in the order of the
// YAML. It follows aliases, within a budget of values and depth so that an
// alias cycle or an alias bomb cannot hang Load; going over the budget is
// reported at the root, path and node.
type jsonWriter struct {
	l      *loader
	path   string
	node   *yaml.Node
	buf    []byte
	values int
}

func (w *jsonWriter) value(path string, n *yaml.Node, depth int) bool {
	w.values++
	switch {
	case w.values > maxJWKSNodes:
		w.l.fail(w.path, w.node, fmt.Sprintf("the key set has more than %d values", maxJWKSNodes),
			"write a smaller key set, without aliases, or give it by jwksUri")
		return false
	case depth > maxJWKSDepth:
		w.l.fail(w.path, w.node, fmt.Sprintf("the key set is nested more than %d levels deep", maxJWKSDepth),
			"write the keys out without aliases")
		return false
	}
	v, ok := w.l.resolve(path, n)
	if !ok {
		return false
	}
	switch v.Kind {
	case yaml.MappingNode:
		return w.object(path, v, depth)
	case yaml.SequenceNode:
		return w.array(path, v, depth)
	}
	return w.scalar(path, v)
}

func (w *jsonWriter) object(path string, m *yaml.Node, depth int) bool {
	w.buf = append(w.buf, '{')
	seen := make(map[string]bool, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		key, ok := w.l.key(path, k)
		if !ok {
			return false
		}
		if seen[key] {
			w.l.duplicateKey(fieldPath(path, key), k, firstKey(m, key))
			return false
		}
		if len(seen) > 0 {
			w.buf = append(w.buf, ',')
		}
		seen[key] = true
		w.buf = appendJSON(w.buf, key)
		w.buf = append(w.buf, ':')
		if !w.value(fieldPath(path, key), v, depth+1) {
			return false
		}
	}
	w.buf = append(w.buf, '}')
	return true
}

func (w *jsonWriter) array(path string, s *yaml.Node, depth int) bool {
	w.buf = append(w.buf, '[')
	for i, item := range s.Content {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		if !w.value(indexPath(path, i), item, depth+1) {
			return false
		}
	}
	w.buf = append(w.buf, ']')
	return true
}

// scalar writes a YAML scalar as its JSON equivalent; infinities, NaN and
// the like have none.
func (w *jsonWriter) scalar(path string, n *yaml.Node) bool {
	x, ok := scalarValue(n)
	var b []byte
	var err error
	if ok {
		b, err = json.Marshal(x)
	}
	if !ok || err != nil {
		got, _ := describe(n)
		w.l.fail(path, n, got+" has no JSON equivalent", fmt.Sprintf("quote the value: %q", tokenText(n)))
		return false
	}
	w.buf = append(w.buf, b...)
	return true
}

// scalarValue returns the Go value of a YAML scalar that JSON can hold.
func scalarValue(n *yaml.Node) (any, bool) {
	switch kindOfNode(n) {
	case kindString, kindLiteral:
		return n.Value, true
	case kindInteger, kindFloat:
		num, _, _ := parseNumber(n.Value)
		return num, true
	case kindBool:
		return n.Value[0] == 't' || n.Value[0] == 'T', true
	case kindNull:
		return nil, true
	}
	return nil, false
}

// appendJSON appends s as a JSON string.
func appendJSON(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}
