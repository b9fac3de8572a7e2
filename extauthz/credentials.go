package extauthz

import (
	"strings"
)

// credKind is the kind of credential a request carries.
type credKind int

const (
	credNone credKind = iota
	credBearer
	credAPIKey
	credAmbiguous   // several, or a repeated header (Envoy joins repeats with a comma)
	credUnsupported // an Authorization scheme other than Bearer and ApiKey
)

// credential extracts the one credential of a request: a bearer token
// ("Authorization: Bearer t"), or an API key ("Authorization: ApiKey k" or
// the key header). Two credentials, or a repeated header, are ambiguous and
// deny: the gateway must never guess which one the upstream will trust.
func credential(headers map[string]string, keyHeader string) (credKind, string) {
	authz, hasAuthz := headers["authorization"]
	key, hasKey := "", false
	if keyHeader != "" {
		key, hasKey = headers[keyHeader]
	}
	switch {
	case hasAuthz && hasKey:
		return credAmbiguous, ""
	case hasKey:
		if key == "" || strings.Contains(key, ",") {
			return credAmbiguous, ""
		}
		return credAPIKey, key
	case !hasAuthz:
		return credNone, ""
	}
	return parseAuthorization(authz)
}

// parseAuthorization splits "Scheme value"; schemes are case-insensitive.
func parseAuthorization(v string) (credKind, string) {
	if strings.Contains(v, ",") {
		return credAmbiguous, ""
	}
	scheme, value, ok := strings.Cut(strings.TrimSpace(v), " ")
	value = strings.TrimSpace(value)
	if !ok || value == "" {
		return credAmbiguous, ""
	}
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return credBearer, value
	case strings.EqualFold(scheme, "ApiKey"):
		return credAPIKey, value
	}
	return credUnsupported, ""
}

// looksLikeJWT reports whether a bearer token has the compact JWS shape
// (three dot-separated parts); opaque OAuth 2.0 tokens do not.
func looksLikeJWT(tok string) bool { return strings.Count(tok, ".") == 2 }
