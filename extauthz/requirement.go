package extauthz

import (
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/extauthz/contract"
)

// requirement is a route's authentication requirement as Envoy passes it
// in the route's context extensions.
type requirement struct {
	route         string
	methods       []string
	roles, scopes []string
	forwardCreds  bool
	// rateLimit: the service takes the route's rate limits in the Check.
	rateLimit bool
}

// parseRequirement reads the context extensions; ok is false when Envoy
// sent none (a route the translator did not mark), which denies.
func parseRequirement(ext map[string]string) (requirement, bool) {
	r := requirement{route: ext[contract.KeyRoute]}
	if r.route == "" {
		return r, false
	}
	r.methods = splitList(ext[contract.KeyMethods])
	r.roles = splitList(ext[contract.KeyRoles])
	r.scopes = splitList(ext[contract.KeyScopes])
	r.forwardCreds = ext[contract.KeyForwardCredentials] == "true"
	r.rateLimit = ext[contract.KeyRateLimit] == contract.RateLimitExact
	return r, len(r.methods) > 0
}

// Requirement is a route's authentication requirement as the service reads
// it from the route's context extensions: the Envoy module's C fast path
// takes it from here, so that both paths read a route alike.
type Requirement struct {
	Route                  string
	Methods, Roles, Scopes []string
	ForwardCredentials     bool
	RateLimit              bool // the limits are taken in the Check
}

// ParseRequirement reads ext as Check does; ok is false when Check refuses
// the route (no_route_requirement).
func ParseRequirement(ext map[string]string) (Requirement, bool) {
	r, ok := parseRequirement(ext)
	return Requirement{Route: r.route, Methods: r.methods, Roles: r.roles, Scopes: r.scopes,
		ForwardCredentials: r.forwardCreds, RateLimit: r.rateLimit}, ok
}

func (r requirement) allows(method string) bool { return slices.Contains(r.methods, method) }

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// authorize checks roles (any one) and scopes (all).
func (r requirement) authorize(id *identity) (status int, reason string) {
	if len(r.roles) > 0 && !anyIn(r.roles, id.roles) {
		return 403, "missing_role"
	}
	for _, s := range r.scopes {
		if !slices.Contains(id.scopes, s) {
			return 403, "insufficient_scope"
		}
	}
	return 0, ""
}

func anyIn(want, have []string) bool {
	for _, w := range want {
		if slices.Contains(have, w) {
			return true
		}
	}
	return false
}

// identity is an authenticated caller. userID and consumer are
// namespaced ("<namespace>:<id>", see namespaced) except for API keys
// without a namespace, whose consumers never contain ':'.
type identity struct {
	method   string // ir.MethodJWT, ir.MethodAPIKey, ir.MethodOAuth2
	provider string // the provider's name; apiKeyProvider for API keys
	userID   string
	consumer string
	roles    []string
	scopes   []string
	tenant   string
	tier     string
	expiry   time.Time // a JWT's exp, an API key's expiry (noKeyExpiry: none); zero for OAuth 2.0
	keyID    string    // an API key's id ("" for other methods)
	// keyRecord is an opaque API key's record (envoymod.KeyRecord JSON)
	// for the Envoy module to learn; "" for other credentials.
	keyRecord string
}
