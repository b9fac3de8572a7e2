// Package contract holds the names that Tollgate's xDS translator and its
// ext_authz service must agree on: the Envoy cluster through which Envoys
// reach the service, and the keys of the per-route context extensions that
// carry a route's authentication requirement in every CheckRequest
// (AttributeContext.context_extensions), so the service never re-matches
// request paths against the policy.
//
// It imports nothing, so both sides can depend on it without depending on
// each other.
package contract

// ClusterName is the Envoy cluster of the ext_authz gRPC service.
const ClusterName = "tollgate_authz"

// Context extension keys set on every route that calls the service. List
// values are comma-joined, in the IR's (sorted) order, without spaces.
const (
	// KeyRoute is the policy route name. Always set.
	KeyRoute = "route"
	// KeyMethods lists the accepted authentication methods ("jwt",
	// "apiKey", "oauth2"). Always set.
	KeyMethods = "methods"
	// KeyRoles lists the roles of which the caller needs one; absent when
	// any authenticated caller is allowed.
	KeyRoles = "roles"
	// KeyScopes lists the scopes the caller needs all of; absent when none
	// are required.
	KeyScopes = "scopes"
	// KeyForwardCredentials is "true" when the route keeps Authorization and
	// the API-key header on the upstream request; absent otherwise (the
	// service then removes them).
	KeyForwardCredentials = "forward_credentials"
	// KeyRateLimit is RateLimitExact on a rate-limited route whose limits
	// the service takes inside the Check (one hop: the route has no
	// rate_limits for Envoy's ratelimit filter); absent otherwise.
	KeyRateLimit = "rate_limit"
)

// RateLimitExact is the value of KeyRateLimit: exact, per-request counting.
const RateLimitExact = "exact"

// MetadataRateLimit is the key of the rate-limit decision's kind (ok,
// over_limit, shadow_over_limit, unlimited, not_counted) in the ext_authz
// dynamic metadata of a KeyRateLimit route; the access log reads it.
const MetadataRateLimit = "rate_limit"

// HeaderClientIP is the request header in which the gateway's first HTTP
// filter puts Envoy's trusted client address (the value of the remote_address
// rate-limit action: the peer, or the address xffTrustedHops selects),
// overwriting any value the client sent, on every gateway with a
// KeyRateLimit route; the translator adds it to the ext_authz filter's
// allowed and mutable headers. The service reads it only on such routes
// and removes it from every request it allows. On every other gateway the
// edge removes a client's copy.
const HeaderClientIP = "x-tollgate-client-ip"

// ListSeparator joins the values of the list keys.
const ListSeparator = ","

// ValidRole reports whether a role value may reach the roles identity
// header, whose values are joined with ListSeparator: one or more visible
// ASCII characters (0x21-0x7e) other than the separator, so that an
// upstream splitting the header on commas (and trimming spaces) sees
// exactly the caller's roles. ASCII only, so that Envoy's Lua identity
// script on native JWT routes applies the same rule byte for byte. Roles
// from tokens that fail it are dropped; API keys with such roles are
// refused when created.
func ValidRole(role string) bool {
	if role == "" {
		return false
	}
	for i := range len(role) {
		if c := role[i]; c <= ' ' || c >= 0x7f || c == ',' {
			return false
		}
	}
	return true
}

// MaxSignedKeyLen bounds a signed API key ("tg." and its JWS) in bytes:
// the key store refuses a longer key as malformed, and so does Envoy's key
// identity script on routes whose signed keys are decided in Envoy.
const MaxSignedKeyLen = 1024

// KeyIDLen is the length of an API key's id (the jti of a signed key):
// base62 characters. Envoy's key identity script refuses a signed key with
// another id, as the key store does.
const KeyIDLen = 8

// MaxConsumerLen bounds an API key's consumer in bytes (ValidConsumer).
const MaxConsumerLen = 128

// ValidConsumer reports whether s may be an API key's consumer (the user
// id an upstream receives): 1-MaxConsumerLen ASCII letters, digits, '.',
// '_', '@' and '-', starting with a letter or digit. The admin API
// creates no key for another consumer, and Envoy's key identity script
// refuses a signed key claiming one (ASCII only, so that the script
// applies the same rule byte for byte).
func ValidConsumer(s string) bool {
	if s == "" || len(s) > MaxConsumerLen || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '@' && c != '-' {
			return false
		}
	}
	return true
}

// HeaderSafe reports whether s can travel in an identity header as it is:
// no control character other than tab (NUL, CR, LF, DEL...). Envoy
// refuses such a header value from ext_authz (an opaque 500) and the key
// identity script refuses such a claim.
func HeaderSafe(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
