package policy

import "time"

// Defaults applied by Compile to the auth fields the policy leaves out.
const (
	DefaultAPIKeyHeader      = "x-api-key"
	DefaultUserIDClaim       = "sub"
	DefaultClockSkew         = 30 * time.Second
	DefaultMaxLifetime       = 24 * time.Hour
	DefaultCacheTTL          = 30 * time.Second
	DefaultAuthStatusOnError = 503
	DefaultAuthTimeout       = 200 * time.Millisecond
	// DefaultMaxConcurrent bounds one OAuth2 provider's introspections in
	// flight when the provider leaves out maxConcurrent.
	DefaultMaxConcurrent = 64

	DefaultUserIDHeader = "x-user-id"
	DefaultRolesHeader  = "x-user-roles"
	DefaultTenantHeader = "x-tenant-id"
	DefaultTierHeader   = "x-consumer-tier"
)

// Limits of the auth durations and statuses Validate accepts.
const (
	maxClockSkew = 5 * time.Minute
	// minJWKSRefresh and maxJWKSRefresh bound a provider's jwksRefresh:
	// below 5 s (the verifier's least gap between two fetches for an
	// unknown kid) the IdP pays for little; above 5 min a withdrawn key's
	// tokens outlive jwt_authn's own JWKS cache duration.
	minJWKSRefresh  = 5 * time.Second
	maxJWKSRefresh  = 5 * time.Minute
	maxCacheTTL     = 10 * time.Minute
	minAuthTimeout  = 10 * time.Millisecond
	maxAuthTimeout  = 5 * time.Second
	altAuthStatus   = 403 // the only statusOnError besides the default 503
	maxJWKSNodes    = 10000
	maxJWKSDepth    = 32
	maxConcurrent   = 10000 // the largest maxConcurrent of an OAuth2 provider
	maxTokenPrefix  = 64    // the longest tokenPrefix of an OAuth2 provider
	defaultAlgsText = "ES256, ES384, EdDSA, PS256, PS384, RS256, RS384, RS512"
)

// defaultAlgorithms is the JWT allow-list when a provider leaves out
// algorithms, sorted. It holds no HS* algorithm: those need a secret.
var defaultAlgorithms = []string{"ES256", "ES384", "EdDSA", "PS256", "PS384", "RS256", "RS384", "RS512"}

// Auth is the policy's authentication section, merged over all its files:
// the JWT and OAuth2 provider lists are concatenated; APIKeys and
// IdentityHeaders may be set in one place only.
type Auth struct {
	JWT             []JWTProvider
	APIKeys         *APIKeys // nil: API keys are not accepted
	OAuth2          []OAuth2Provider
	IdentityHeaders *IdentityHeaders // nil: the defaults
}

// JWTProvider is one issuer of JSON Web Tokens. Exactly one of JWKSURI and
// JWKS is set; JWKS is JSON text (Load writes a YAML mapping as compact
// JSON). Algorithms nil means the default allow-list; ClockSkew and
// MaxLifetime are Go duration strings, empty meaning the default.
// Namespace is the identity namespace of its callers ("" means Name): the
// consumer and user id are "<namespace>:<user id claim>".
type JWTProvider struct {
	Name          string
	Namespace     string
	Issuer        string
	Audiences     []string
	JWKSURI       string
	JWKS          string
	Algorithms    []string
	HMACSecretEnv string
	ClockSkew     string
	MaxLifetime   string
	Claims        ClaimMap
	// Insecure allows a plain http:// JWKSURI on a host other than
	// loopback (Validate warns).
	Insecure bool
	// JWKSRefresh is the time between two fetches of JWKSURI (a Go
	// duration string, empty meaning the verifier's default, 30s): the
	// longest a token signed with a withdrawn key stays admitted.
	// (omitempty: a policy without the field encodes as before the field
	// existed, as TestLoaderDifferential records it.)
	JWKSRefresh string `json:",omitempty"`
}

// ClaimMap names the token claims identity comes from; UserID empty means
// "sub".
type ClaimMap struct {
	UserID string
	Roles  string
	Tenant string
	Tier   string
}

// APIKeys enables API-key authentication; Header empty means x-api-key.
// Namespace "" keeps the keys' consumers bare (the gateway's own names,
// which never contain ':'); otherwise they are "<namespace>:<consumer>".
type APIKeys struct {
	Header    string
	Namespace string
}

// OAuth2Provider checks opaque access tokens by introspection (RFC 7662).
// CacheTTL is a Go duration string, empty meaning the default. Namespace
// is as for JWTProvider. TokenPrefix selects the provider of an opaque
// token (required when there are several providers: a token goes to the
// one endpoint whose prefix it starts with, never to another).
// MaxConcurrent bounds its introspections in flight (0: the default).
type OAuth2Provider struct {
	Name             string
	Namespace        string
	TokenPrefix      string
	IntrospectionURL string
	ClientID         string
	ClientSecretEnv  string
	Audiences        []string
	CacheTTL         string
	// Insecure allows a plain http:// IntrospectionURL on a host other
	// than loopback (Validate warns).
	Insecure      bool
	MaxConcurrent int
}

// IdentityHeaders names the headers that carry the caller's identity to
// upstreams; an empty field means its default.
type IdentityHeaders struct {
	UserID string
	Roles  string
	Tenant string
	Tier   string
}

// GatewayAuth is how a gateway's Envoys call the ext_authz service:
// StatusOnError 0 and Timeout "" mean the defaults.
type GatewayAuth struct {
	StatusOnError int
	Timeout       string
}

// RouteAuth is a route's requirement: Public for "auth: none", otherwise
// the accepted Methods (nil: every configured one), the Roles of which the
// caller needs one, and the Scopes it needs all of.
type RouteAuth struct {
	Public             bool
	Methods            []string
	Roles              []string
	Scopes             []string
	ForwardCredentials bool
}
