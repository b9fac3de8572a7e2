package translator

import (
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/tollgate/tollgate/envoy"
)

// Response code details prefixes of jwt_authn's and rbac's refusals.
const (
	detailsJwtAuthn = "jwt_authn_access_denied"
	detailsRBAC     = "rbac_access_denied_matched_policy"
)

// jwtDenial maps one jwt_authn or rbac refusal (recognised by a substring
// of its response code details, e.g. "jwt_authn_access_denied{Jwt_is_expired}")
// to the ext_authz service's status and reason.
type jwtDenial struct {
	prefix, contains string
	status           uint32
	reason           string
}

// jwtDenials are checked in order; the last jwt_authn entry catches every
// other token refusal (malformed, bad alg, unparsable JWKS...).
var jwtDenials = []jwtDenial{
	{detailsJwtAuthn, "Jwt_is_missing", 401, "missing_credentials"},
	{detailsJwtAuthn, "Jwt_is_expired", 401, "expired"},
	{detailsJwtAuthn, "Jwt_not_yet_valid", 401, "not_yet_valid"},
	{detailsJwtAuthn, "Audiences_in_Jwt_are_not_allowed", 401, "bad_audience"},
	{detailsJwtAuthn, "Jwt_issuer_is_not_configured", 401, "unknown_issuer"},
	{detailsJwtAuthn, "Jwks_doesn't_have_key_to_match_kid_or_alg", 401, "unknown_kid"},
	// A missing exp and a lifetime over the maximum are the identity
	// script's refusals (no_exp, lifetime_too_long): jwt_authn, which would
	// call both "Jwt verification fails", does not require exp.
	{detailsJwtAuthn, "Jwt_verification_fails", 401, "bad_signature"},
	{detailsJwtAuthn, "[exp]", 401, "no_exp"},
	{detailsJwtAuthn, "Jwt_payload_[", 401, "bad_claim"},
	{detailsJwtAuthn, "fetch", 503, "jwks_unavailable"},
	{detailsJwtAuthn, "", 401, "malformed"},
	{detailsRBAC, policyKeyAmbiguous, 401, "ambiguous_credentials"},
	{detailsRBAC, policyKeyUnchecked, 503, "key_store_unavailable"},
	{detailsRBAC, policyKeyMalformed, 401, "malformed_key"},
	{detailsRBAC, policyAmbiguous, 401, "ambiguous_credentials"},
	{detailsRBAC, policyRole, 403, "missing_role"},
	{detailsRBAC, policyScope, 403, "insufficient_scope"},
	{detailsRBAC, "", 403, "forbidden"},
}

// jwtLocalReplies returns the connection manager's local reply mappers that
// give jwt_authn's and rbac's refusals the ext_authz service's answers
// (extauthz/response.go): the same status, JSON body, cache-control and
// WWW-Authenticate challenge. ext_authz's own denials carry other details
// and pass unchanged.
//
// With native mixed routes their mappers come first (mixedLocalReplies);
// with native key routes, jwt_authn's refusals of a signed key and the key
// rbac policies come next, with ext_authz's API-key answers.
func jwtLocalReplies(keys, mixed bool, keyHeader string) (*hcmv3.LocalReplyConfig, error) {
	var rewrites []envoy.LocalReplyRewrite
	if mixed {
		rewrites = append(rewrites, mixedLocalReplies()...)
	}
	if keys {
		rewrites = append(rewrites, keyLocalReplies(keyHeader)...)
	}
	return envoy.LocalReplyConfig(append(rewrites, denialRewrites(keys || mixed, false)...))
}

// denialRewrites returns a rewrite per jwtDenials entry (without the key
// policies' unless keys), with the JWT path's challenges, or the mixed
// path's when mixed.
func denialRewrites(keys, mixed bool) []envoy.LocalReplyRewrite {
	rewrites := make([]envoy.LocalReplyRewrite, 0, len(jwtDenials))
	for _, d := range jwtDenials {
		if !keys && (d.contains == policyKeyAmbiguous || d.contains == policyKeyUnchecked || d.contains == policyKeyMalformed) {
			continue
		}
		word, headers := "forbidden", map[string]string{"cache-control": "no-store"}
		switch d.status {
		case 401:
			word = "unauthorized"
			headers["www-authenticate"] = denialChallenge(d, mixed)
		case 503:
			word = "unavailable"
		}
		rewrites = append(rewrites, envoy.LocalReplyRewrite{
			DetailsPrefix: d.prefix, DetailsContain: d.contains, Status: d.status,
			Body: `{"error":"` + word + `","reason":"` + d.reason + `"}`, ContentType: "application/json",
			Headers: headers,
		})
	}
	return rewrites
}

// denialChallenge is ext_authz's WWW-Authenticate for the 401 refusal d,
// on a native mixed route when mixed.
func denialChallenge(d jwtDenial, mixed bool) string {
	switch {
	case mixed && d.reason == "missing_credentials":
		return mixedMissingChallenge
	case mixed:
		return mixedChallenge
	case d.reason == "missing_credentials":
		return `Bearer realm="tollgate"`
	case d.contains == policyKeyAmbiguous || d.contains == policyKeyMalformed:
		return keyChallenge
	}
	return jwtChallenge
}
