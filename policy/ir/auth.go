package ir

import "time"

// Auth is the policy's authentication configuration: the identity
// providers every gateway's ext_authz service knows, and how identity
// reaches upstreams.
type Auth struct {
	// JWT providers sorted by Name. A token is matched to its provider by
	// its "iss" claim.
	JWT []JWTProvider `json:"jwt,omitempty"`
	// APIKeys is nil when API keys are not configured.
	APIKeys *APIKeys `json:"apiKeys,omitempty"`
	// OAuth2 providers (token introspection, RFC 7662) sorted by Name.
	OAuth2          []OAuth2Provider `json:"oauth2,omitempty"`
	IdentityHeaders IdentityHeaders  `json:"identityHeaders"`
}

// Methods of authentication a route may accept.
const (
	MethodJWT    = "jwt"
	MethodAPIKey = "apiKey"
	MethodOAuth2 = "oauth2"
)

// SignedKeyIssuer is the iss claim of every signed API key ("tg." + a
// JWS the control plane signs). It is reserved: no jwt provider of a
// policy may use it as its issuer.
const SignedKeyIssuer = "tollgate:keys"

// JWTProvider is one issuer of JSON Web Tokens.
type JWTProvider struct {
	Name string `json:"name"`
	// Namespace prefixes its callers' identities: consumer and user id are
	// "<Namespace>:<user id claim>". Compile defaults it to Name.
	Namespace string   `json:"namespace"`
	Issuer    string   `json:"issuer"`
	Audiences []string `json:"audiences,omitempty"` // sorted; a token must name one
	// Exactly one of JWKSURI and JWKS (an inline JSON Web Key Set) is set.
	JWKSURI string `json:"jwksUri,omitempty"`
	JWKS    string `json:"jwks,omitempty"`
	// Algorithms is the allow-list (sorted), e.g. RS256, ES256, EdDSA. Never
	// "none"; HS* only with HMACSecretEnv set.
	Algorithms []string `json:"algorithms"`
	// HMACSecretEnv names the environment variable holding the shared
	// secret for HS256/384/512 tokens; "" when no HS* algorithm is allowed.
	HMACSecretEnv string        `json:"hmacSecretEnv,omitempty"`
	ClockSkew     time.Duration `json:"clockSkew"`
	// MaxLifetime caps exp - iat (or exp - now without iat).
	MaxLifetime time.Duration `json:"maxLifetime"`
	Claims      ClaimMap      `json:"claims"`
	// Insecure: JWKSURI may be plain http on a host other than loopback
	// (the policy said so explicitly).
	Insecure bool `json:"insecure,omitempty"`
	// JWKSRefresh is the time between two fetches of JWKSURI, and so the
	// longest a token signed with a key withdrawn from it stays admitted,
	// on every path (the ext_authz service, the Envoy module, the control
	// plane's watch for jwt_authn); 0 means the default (30 s, the
	// verifier's DefaultRefreshInterval). Validate keeps it within
	// [5s, 5m] and unset without JWKSURI.
	JWKSRefresh time.Duration `json:"jwksRefresh,omitempty"`
}

// ClaimMap names the token claims identity comes from.
type ClaimMap struct {
	UserID string `json:"userId"` // default "sub"
	Roles  string `json:"roles,omitempty"`
	Tenant string `json:"tenant,omitempty"`
	Tier   string `json:"tier,omitempty"`
}

// APIKeys configures API-key authentication.
type APIKeys struct {
	// Header carrying the key (lower case); "Authorization: ApiKey <key>"
	// is accepted too.
	Header string `json:"header"`
	// Namespace prefixes the keys' consumers ("<Namespace>:<consumer>");
	// "" keeps them bare. A key's consumer never contains ':', so a bare
	// consumer never equals a provider's namespaced one.
	Namespace string `json:"namespace,omitempty"`
}

// OAuth2Provider checks opaque access tokens by introspection.
type OAuth2Provider struct {
	Name string `json:"name"`
	// Namespace is as for JWTProvider (default Name).
	Namespace string `json:"namespace"`
	// TokenPrefix: only tokens starting with it are introspected by this
	// provider. Validation makes the providers' prefixes prefix-free (and
	// requires them when there are several), so an opaque token goes to
	// at most one endpoint.
	TokenPrefix      string `json:"tokenPrefix,omitempty"`
	IntrospectionURL string `json:"introspectionUrl"`
	ClientID         string `json:"clientId"`
	// ClientSecretEnv names the environment variable holding the client
	// secret; the secret itself never appears in the policy.
	ClientSecretEnv string        `json:"clientSecretEnv"`
	Audiences       []string      `json:"audiences,omitempty"`
	CacheTTL        time.Duration `json:"cacheTtl"`
	// Insecure: IntrospectionURL may be plain http on a host other than
	// loopback (the policy said so explicitly).
	Insecure bool `json:"insecure,omitempty"`
	// MaxConcurrent bounds the introspection requests in flight; beyond
	// it a token is refused at once (503) rather than queued.
	MaxConcurrent int `json:"maxConcurrent"`
}

// IdentityHeaders are the request headers (lower case) that carry the
// caller's identity to upstreams. Clients can never set them: Envoy strips
// them before any filter runs, on every route.
type IdentityHeaders struct {
	UserID string `json:"userId"` // default x-user-id
	Roles  string `json:"roles"`  // default x-user-roles
	Tenant string `json:"tenant"` // default x-tenant-id
	Tier   string `json:"tier"`   // default x-consumer-tier
}

// Names returns the identity header names, sorted, without empties.
func (h IdentityHeaders) Names() []string {
	var out []string
	for _, n := range []string{h.Roles, h.Tenant, h.Tier, h.UserID} {
		if n != "" {
			out = append(out, n)
		}
	}
	sortStrings(out)
	return out
}

// RouteAuth is a route's authentication requirement.
type RouteAuth struct {
	// Public is true for "auth: none": no ext_authz call at all.
	Public bool `json:"public,omitempty"`
	// Methods accepted (any of them), sorted as strings ("apiKey", "jwt",
	// "oauth2"). A route without an auth block accepts every configured
	// method.
	Methods []string `json:"methods,omitempty"`
	// Roles: the caller needs one of them (sorted); empty means any caller.
	Roles []string `json:"roles,omitempty"`
	// Scopes: an OAuth2 or JWT caller needs all of them (sorted).
	Scopes []string `json:"scopes,omitempty"`
	// ForwardCredentials keeps Authorization and the API-key header on the
	// request to the upstream; by default they are removed.
	ForwardCredentials bool `json:"forwardCredentials,omitempty"`
}

// GatewayAuth is how a gateway's Envoys treat the ext_authz service.
type GatewayAuth struct {
	// StatusOnError is the status Envoy returns when the service cannot be
	// reached or errs: 403 (default) or 503. Envoy always fails closed.
	StatusOnError int `json:"statusOnError"`
	// Timeout of one Check call (default 200ms).
	Timeout time.Duration `json:"timeout"`
}
