package policy

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

// jwtAlgorithms are the JWT signature algorithms a provider may allow.
var jwtAlgorithms = []string{
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512",
}

// envRule is the fix shown for an invalid environment variable name.
const envRule = "use upper-case letters, digits and '_', not starting with a digit: the policy names the variable, " +
	"the secret itself stays in the environment"

// auth checks the top-level auth section.
func (c *checker) auth(a *Auth) {
	if a == nil {
		return
	}
	c.jwtProviders(a.JWT)
	if a.APIKeys != nil && a.APIKeys.Header != "" {
		c.authHeader("auth.apiKeys.header", a.APIKeys.Header, "API keys",
			"use a dedicated header such as x-api-key; `Authorization: ApiKey <key>` is accepted anyway")
	}
	c.oauth2Providers(a.OAuth2)
	c.tokenPrefixes(a.OAuth2)
	c.identityNamespaces(a)
	c.identityHeaders(a)
}

func (c *checker) jwtProviders(ps []JWTProvider) {
	names := make(map[string]string, len(ps))
	issuers := make(map[string]string, len(ps))
	for i, j := range ps {
		path := indexPath("auth.jwt", i)
		if c.src.isFailed(path) {
			continue // not a provider at all; Load said why
		}
		c.name(fieldPath(path, "name"), "jwt provider", j.Name, names)
		c.issuer(path, j, issuers)
		c.audiences(fieldPath(path, "audiences"), j.Audiences)
		c.keySource(path, j)
		c.algorithms(path, j)
		c.durationIn(fieldPath(path, "clockSkew"), "clockSkew", j.ClockSkew, 0, maxClockSkew)
		c.jwksRefresh(path, j)
		if d, ok := c.duration(fieldPath(path, "maxLifetime"), j.MaxLifetime); ok && d <= 0 {
			c.errorf(fieldPath(path, "maxLifetime"), "use a positive duration such as 1h",
				"maxLifetime must be greater than 0, got %s", j.MaxLifetime)
		}
	}
}

// jwksRefresh checks a provider's jwksRefresh: within [5s, 5m], and only
// with a jwksUri (an inline JWKS is never fetched).
func (c *checker) jwksRefresh(path string, j JWTProvider) {
	if j.JWKSRefresh == "" {
		return
	}
	rp := fieldPath(path, "jwksRefresh")
	if j.JWKSURI == "" {
		c.errorf(rp, "remove jwksRefresh: only a jwksUri is fetched", "jwt provider %q sets jwksRefresh without jwksUri", j.Name)
		return
	}
	c.durationIn(rp, "jwksRefresh", j.JWKSRefresh, minJWKSRefresh, maxJWKSRefresh)
}

// issuer checks that a provider has an issuer no other provider has:
// tokens find their provider by their "iss" claim.
func (c *checker) issuer(path string, j JWTProvider, seen map[string]string) {
	ip := fieldPath(path, "issuer")
	if j.Issuer == "" {
		c.errorf(ip, "add `issuer: <the tokens' \"iss\" claim>`", "jwt provider %q has no issuer", j.Name)
		return
	}
	if j.Issuer == ir.SignedKeyIssuer {
		c.errorf(ip, "use the issuer of your identity provider (its tokens' \"iss\" claim); signed API keys need no jwt provider: "+
			"they are verified with auth.apiKeys", "issuer %q is reserved for Tollgate's signed API keys", j.Issuer)
		return
	}
	if first, dup := seen[j.Issuer]; dup {
		c.errorf(ip, "tokens are matched to their provider by their \"iss\" claim: merge the two providers, or fix the issuer",
			"duplicate issuer %q; first defined at %s", j.Issuer, c.where(first))
		return
	}
	seen[j.Issuer] = ip
}

// audiences checks an optional list of audiences: not empty when given,
// no duplicates.
func (c *checker) audiences(path string, auds []string) {
	if auds != nil && len(auds) == 0 {
		c.errorf(path, "list at least one audience, or remove the field", "audiences is empty")
	}
	c.distinct(path, "audience", auds)
}

// distinct reports empty and duplicate values of a list of kind.
func (c *checker) distinct(path, kind string, values []string) {
	seen := make(map[string]string, len(values))
	for i, v := range values {
		vp := indexPath(path, i)
		if v == "" {
			c.errorf(vp, "give a value, or remove the entry", "empty %s", kind)
			continue
		}
		if first, dup := seen[v]; dup {
			c.errorf(vp, "remove the duplicate", "duplicate %s %q; first listed at %s", kind, v, c.where(first))
			continue
		}
		seen[v] = vp
	}
}

// keySource checks that a provider has exactly one of jwksUri and jwks,
// and that it is sound.
func (c *checker) keySource(path string, j JWTProvider) {
	uriPath, setPath := fieldPath(path, "jwksUri"), fieldPath(path, "jwks")
	switch {
	case j.JWKSURI != "" && j.JWKS != "":
		c.errorf(path, "keep exactly one of them", "jwt provider %q sets both jwksUri and jwks", j.Name)
	case j.JWKSURI == "" && j.JWKS == "" && !c.src.isTainted(uriPath) && !c.src.isTainted(setPath):
		c.errorf(path, "add `jwksUri: https://<issuer>/.well-known/jwks.json`, or the keys inline as `jwks: {keys: [...]}`",
			"jwt provider %q has no keys: set jwksUri or jwks", j.Name)
	}
	if j.JWKSURI != "" {
		c.httpURL(uriPath, "jwksUri", j.JWKSURI)
	}
	c.plainHTTP(path, "jwksUri", j.JWKSURI, j.Insecure)
	if j.JWKS != "" {
		c.jwks(setPath, j.JWKS)
	}
}

// httpURL checks that the field at path is an absolute http(s) URL.
func (c *checker) httpURL(path, field, s string) {
	if problem := httpURLProblem(s); problem != "" {
		c.errorf(path, "use an absolute http or https URL, e.g. https://idp.example.com/...",
			"invalid %s %q: %s", field, s, problem)
	}
}

// httpURLProblem says what keeps s from being an absolute http(s) URL, or
// "" if nothing.
func httpURLProblem(s string) string {
	u, err := url.Parse(s)
	var ue *url.Error
	switch {
	case errors.As(err, &ue):
		return ue.Err.Error()
	case err != nil:
		return err.Error()
	case u.Scheme == "":
		return "not an absolute URL: it needs http:// or https://"
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("scheme %q is not http or https", u.Scheme)
	case u.Hostname() == "":
		return "no host"
	case u.User != nil:
		return "a URL in the policy must not hold credentials"
	}
	return ""
}

// jwks checks an inline JSON Web Key Set (RFC 7517): a JSON object whose
// "keys" is a non-empty array of keys, each with a "kty" and no private or
// symmetric key material, which must never be in a policy.
func (c *checker) jwks(path, text string) {
	const fix = "give a JSON Web Key Set: `{\"keys\": [{\"kty\": \"RSA\", ...}]}`, public keys only"
	var set map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &set); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			c.errorf(path, fix, "jwks is not a JSON object")
		} else {
			c.errorf(path, fix, "jwks is not valid JSON: %v", err)
		}
		return
	}
	var keys []json.RawMessage
	raw, ok := set["keys"]
	switch {
	case !ok:
		c.errorf(path, fix, `jwks has no "keys" array`)
	case json.Unmarshal(raw, &keys) != nil || keys == nil:
		c.errorf(path, fix, `jwks "keys" is not an array`)
	case len(keys) == 0:
		c.errorf(path, fix, `jwks "keys" is empty`)
	}
	for i, k := range keys {
		c.jwk(path, i, k)
	}
}

// jwk checks key i of a key set.
func (c *checker) jwk(path string, i int, raw json.RawMessage) {
	const fix = "give each key as a JSON object, e.g. `{\"kty\": \"RSA\", \"n\": \"...\", \"e\": \"AQAB\"}`"
	var k map[string]json.RawMessage
	switch {
	case json.Unmarshal(raw, &k) != nil || k == nil:
		c.errorf(path, fix, "jwks key %d is not an object", i)
	case !isJSONString(k["kty"]):
		c.errorf(path, `add the key type, e.g. "kty": "RSA"`, `jwks key %d has no "kty"`, i)
	case k["d"] != nil:
		c.errorf(path, `publish the public key only (without "d", "p", "q", "dp", "dq", "qi")`,
			`jwks key %d holds a private key ("d"): the policy must only hold public keys`, i)
	case k["k"] != nil:
		c.errorf(path, "remove the key: shared secrets come from the environment (an HS algorithm with hmacSecretEnv)",
			`jwks key %d holds a symmetric key ("k"): the policy must only hold public keys`, i)
	}
}

// isJSONString reports whether raw is a non-empty JSON string.
func isJSONString(raw json.RawMessage) bool {
	var s string
	return json.Unmarshal(raw, &s) == nil && s != ""
}

// algorithms checks a provider's allow-list, and that an HS* algorithm and
// hmacSecretEnv come together.
func (c *checker) algorithms(path string, j JWTProvider) {
	ap := fieldPath(path, "algorithms")
	if j.Algorithms != nil && len(j.Algorithms) == 0 {
		c.errorf(ap, "list at least one algorithm, or remove the field to allow the default: "+defaultAlgsText, "algorithms is empty")
	}
	seen := make(map[string]string, len(j.Algorithms))
	allKnown := !c.src.isTainted(ap)
	hsPath, hsAlg := "", ""
	for i, alg := range j.Algorithms {
		p := indexPath(ap, i)
		if !c.algorithm(p, alg) {
			allKnown = false
			continue
		}
		if first, dup := seen[alg]; dup {
			c.errorf(p, "remove the duplicate", "duplicate algorithm %q; first listed at %s", alg, c.where(first))
			continue
		}
		seen[alg] = p
		if strings.HasPrefix(alg, "HS") && hsPath == "" {
			hsPath, hsAlg = p, alg
		}
	}
	ep := fieldPath(path, "hmacSecretEnv")
	switch {
	case hsPath != "" && j.HMACSecretEnv == "" && !c.src.isFailed(ep):
		c.errorf(hsPath, "set `hmacSecretEnv:` to the NAME of the environment variable holding the shared secret",
			"algorithm %q needs hmacSecretEnv", hsAlg)
	case hsPath == "" && j.HMACSecretEnv != "" && allKnown:
		c.errorf(ep, "add HS256, HS384 or HS512 to algorithms, or remove hmacSecretEnv",
			"hmacSecretEnv is set but no HS256, HS384 or HS512 algorithm is allowed")
	}
	if j.HMACSecretEnv != "" {
		c.envName(ep, j.HMACSecretEnv)
	}
}

// algorithm reports whether alg is a known JWT algorithm, and why not.
func (c *checker) algorithm(path, alg string) bool {
	switch {
	case slices.Contains(jwtAlgorithms, alg):
		return true
	case strings.EqualFold(alg, "none"):
		c.errorf(path, "remove it: only signed tokens are accepted", "algorithm %q is never allowed: it accepts unsigned tokens", alg)
	default:
		summary := fmt.Sprintf("unknown algorithm %q", alg)
		if s, ok := closest(alg, jwtAlgorithms); ok {
			summary += fmt.Sprintf("; did you mean %q?", s)
		}
		c.errorf(path, "use one of "+strings.Join(jwtAlgorithms, ", "), "%s", summary)
	}
	return false
}

// envName checks the name of an environment variable that holds a secret.
func (c *checker) envName(path, name string) {
	if !validEnvName(name) {
		c.errorf(path, envRule+envExample(name), "invalid environment variable name %q", name)
	}
}

// validEnvName reports whether s matches ^[A-Z_][A-Z0-9_]*$.
func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return !isEnvRune(r) })
}

func isEnvRune(r rune) bool {
	return r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_'
}

// envExample suggests a valid spelling of s, e.g. "corp-secret" →
// "CORP_SECRET".
func envExample(s string) string {
	ex := strings.Map(func(r rune) rune {
		if isEnvRune(r) {
			return r
		}
		return '_'
	}, strings.ToUpper(s))
	if !validEnvName(ex) || strings.Trim(ex, "_") == "" {
		return ""
	}
	return fmt.Sprintf(`, e.g. %q`, ex)
}

// durationIn checks that the optional duration at path is within lo..hi.
func (c *checker) durationIn(path, field, s string, lo, hi time.Duration) {
	if d, ok := c.duration(path, s); ok && (d < lo || d > hi) {
		c.errorf(path, fmt.Sprintf("use a duration from %s to %s", shortDuration(lo), shortDuration(hi)),
			"%s must be between %s and %s, got %s", field, shortDuration(lo), shortDuration(hi), s)
	}
}

// shortDuration formats d without zero tails: 5m, not 5m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (c *checker) oauth2Providers(ps []OAuth2Provider) {
	names := make(map[string]string, len(ps))
	for i, o := range ps {
		path := indexPath("auth.oauth2", i)
		if c.src.isFailed(path) {
			continue
		}
		c.name(fieldPath(path, "name"), "oauth2 provider", o.Name, names)
		if c.present(path, "introspectionUrl", o.Name, o.IntrospectionURL) {
			c.httpURL(fieldPath(path, "introspectionUrl"), "introspectionUrl", o.IntrospectionURL)
		}
		c.plainHTTP(path, "introspectionUrl", o.IntrospectionURL, o.Insecure)
		c.present(path, "clientId", o.Name, o.ClientID)
		if c.present(path, "clientSecretEnv", o.Name, o.ClientSecretEnv) {
			c.envName(fieldPath(path, "clientSecretEnv"), o.ClientSecretEnv)
		}
		c.audiences(fieldPath(path, "audiences"), o.Audiences)
		c.durationIn(fieldPath(path, "cacheTtl"), "cacheTtl", o.CacheTTL, 0, maxCacheTTL)
	}
}

// present reports whether a required field of the oauth2 provider at path
// is set, and reports it when not.
func (c *checker) present(path, field, provider, value string) bool {
	if value == "" {
		c.errorf(fieldPath(path, field), fmt.Sprintf("add `%s:`", field), "oauth2 provider %q has no %s", provider, field)
	}
	return value != ""
}

// authHeader checks a header that carries purpose (API keys, identity):
// a valid, regular header that is not Host or Authorization. reservedFix
// says what to use instead of those.
func (c *checker) authHeader(path, name, purpose, reservedFix string) bool {
	switch lower := strings.ToLower(name); {
	case strings.HasPrefix(name, ":"):
		c.errorf(path, "use a regular header name", "pseudo-header %q cannot carry %s", name, purpose)
	case strings.ContainsFunc(name, func(r rune) bool { return !isTokenRune(r) }):
		c.errorf(path, "use letters, digits and !#$%&'*+-.^_`|~ only", "invalid header name %q", name)
	case lower == "host" || lower == "authorization":
		c.errorf(path, reservedFix, "header %q cannot carry %s", name, purpose)
	default:
		return true
	}
	return false
}

// identityHeader is one identity header with its default.
type identityHeader struct {
	field, value, def string
}

// identityHeaders checks that the identity headers, defaults included, are
// lower case, distinct, and none of the headers Envoy must keep: Envoy
// removes them from every client request.
func (c *checker) identityHeaders(a *Auth) {
	h := IdentityHeaders{}
	if a.IdentityHeaders != nil {
		h = *a.IdentityHeaders
	}
	apiKey := ""
	if a.APIKeys != nil {
		apiKey = strings.ToLower(cmp.Or(a.APIKeys.Header, DefaultAPIKeyHeader))
	}
	hs := []identityHeader{
		{"userId", h.UserID, DefaultUserIDHeader}, {"roles", h.Roles, DefaultRolesHeader},
		{"tenant", h.Tenant, DefaultTenantHeader}, {"tier", h.Tier, DefaultTierHeader},
	}
	seen := make(map[string]int, len(hs))
	for i, ih := range hs {
		if ih.value != "" && !c.identityHeaderName(identityPath(ih), ih.value, apiKey) {
			continue
		}
		value := cmp.Or(ih.value, ih.def)
		if ih.value == "" && value == apiKey {
			// Only a custom API key header can be a default identity header.
			c.errorf("auth.apiKeys.header", fmt.Sprintf("use another header, or set auth.identityHeaders.%s", ih.field),
				"API key header %q is the default %s identity header, which Envoy removes from every client request",
				a.APIKeys.Header, ih.field)
		}
		if j, dup := seen[value]; dup {
			c.sameIdentityHeader(value, hs[j], ih)
			continue
		}
		seen[value] = i
	}
}

func identityPath(h identityHeader) string {
	return fieldPath("auth.identityHeaders", h.field)
}

// identityHeaderName checks one identity header that the policy sets.
func (c *checker) identityHeaderName(path, name, apiKey string) bool {
	const reserved = "Envoy removes identity headers from every client request: use a dedicated header such as x-user-id"
	if !c.authHeader(path, name, "identity", reserved) {
		return false
	}
	switch {
	case name != strings.ToLower(name):
		c.errorf(path, fmt.Sprintf("write %q", strings.ToLower(name)), "identity header %q must be lower case", name)
	case name == apiKey:
		c.errorf(path, "Envoy removes identity headers from every client request, the API key with it: use another header",
			"identity header %q is the API key header", name)
	default:
		return true
	}
	return false
}

// sameIdentityHeader reports that identity headers a (earlier) and b share
// value, at the one the policy sets (b when both are).
func (c *checker) sameIdentityHeader(value string, a, b identityHeader) {
	at, other := b, a
	if b.value == "" {
		at, other = a, b
	}
	what := "the " + other.field + " header"
	if other.value == "" {
		what = "the default " + other.field + " header"
	}
	c.errorf(identityPath(at), "give each identity its own header", "identity header %q is also %s", value, what)
}
