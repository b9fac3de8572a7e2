package translator

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	rbacconfigv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// The native API-key path. Signed API keys ("tg." + a compact JWS signed
// with the control plane's Ed25519 key, iss KeyIssuer) are verified by
// jwt_authn against the signer's inline JWKS on routes that accept only API
// keys; the key identity filter (an ECDS Lua filter holding the key
// store's exceptions table, apikeyexceptions.go) refuses revoked and
// expired keys, applies updated tiers and roles and sets the identity;
// rbac checks roles. A request without a signed key (an opaque "tg_" key,
// no key) passes jwt_authn (allow_missing) and goes to ext_authz as
// before; a request with a signed key the key identity filter accepted
// makes no ext_authz call (the ext_authz filter's filter_enabled_metadata
// on the native marker, mixednative.go).
const (
	// KeyIssuer is the iss of every signed API key (reserved by policy
	// validation).
	KeyIssuer = ir.SignedKeyIssuer
	// KeyIdentityFilter names the key identity filter and its ECDS
	// resource.
	KeyIdentityFilter = "tollgate.key_identity"
	// keyProvider is the jwt_authn provider of signed keys, keyRequirement
	// its optional requirement.
	keyProvider    = "tollgate_keys"
	keyRequirement = "tollgate_keys_optional"
	// keyTokenPrefix starts a signed key in the key header;
	// keyAuthorizationPrefix in the Authorization header (ext_authz also
	// takes "ApiKey <key>" there, its scheme in any case: other spellings
	// go to ext_authz).
	keyTokenPrefix         = "tg."
	keyAuthorizationPrefix = "ApiKey tg."
	// keyIdentityScriptName is the key identity filter's script.
	keyIdentityScriptName = "key_identity"
	// keyCheckedKey is the ext_authz-namespace metadata key the key
	// identity script sets (to the key id) once it accepted a key.
	keyCheckedKey = "key_id"
	// keyGateDescriptor is the descriptor entry that limits a native key
	// route's ratelimit filter to requests with a verified signed key.
	keyGateDescriptor = "signed_key"
)

// RBAC policies of native key routes (see policyAmbiguous for the order).
const (
	policyKeyAmbiguous = "a_ambiguous_key"
	policyKeyUnchecked = "a_key_unchecked"
	policyKeyMalformed = "a_key_malformed"
)

// keyWholeValue is the whole value of a key header holding one signed
// key, and keyWholeAuthorization of an Authorization header holding one.
// jwt_authn finds its prefix anywhere in a header value (and joins
// repeated headers with a comma), so it verifies "junktg.<key>",
// "tg_x,tg.<key>" or "Bearer xApiKey tg.<key>", which ext_authz refuses.
const (
	keyWholeValue         = `tg\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`
	keyWholeAuthorization = `ApiKey ` + keyWholeValue
)

// AuthPathEnvoyKey is the RouteAuthPath of an API-key-only route whose
// signed keys are decided in Envoy while opaque keys still go through
// ext_authz.
const AuthPathEnvoyKey = "envoy_key"

// keyPathNote is the Reason of an AuthPathEnvoyKey route.
const keyPathNote = "signed keys (tg.) are decided in Envoy; opaque keys (tg_) still call ext_authz"

// nativeKeyReason returns "" when r's signed API keys are decided in
// Envoy, else why not. signed says the control plane has a key signer.
func nativeKeyReason(cfg *ir.Config, r ir.Route, signed bool) string {
	switch {
	case r.Auth.Public:
		return "public"
	case !slices.Equal(r.Auth.Methods, []string{ir.MethodAPIKey}):
		return fmt.Sprintf("accepts %s (signed keys are verified in Envoy on routes accepting apiKey alone or "+
			"exactly apiKey and jwt; routes that also accept oauth2 stay on ext_authz)", strings.Join(r.Auth.Methods, ", "))
	case r.HTTPRules().Lua != "":
		return "runs a Lua script (its identity guard reads ext_authz's metadata)"
	case cfg.Auth.APIKeys == nil:
		return "no API keys configured"
	case !signed:
		return "the control plane has no API-key signer"
	}
	return ""
}

// keyProviderConfig returns the jwt_authn provider of signed keys: the
// signer's inline JWKS, the key header with prefix "tg." (or Authorization
// with "ApiKey tg."), exp honoured when
// present but not required, no audience, the payload in metadata.
func keyProviderConfig(keyHeader, jwks string) (*jwtauthnv3.JwtProvider, error) {
	return envoy.JwtProvider(envoy.JwtProviderOptions{
		Issuer: KeyIssuer, InlineJWKS: jwks, ClockSkew: time.Second,
		TokenHeader: keyHeader, TokenPrefix: keyTokenPrefix, PayloadKey: jwtPayloadKey(keyProvider),
		AlsoFrom:  map[string]string{headerAuthorization: keyAuthorizationPrefix},
		CacheSize: jwtCacheSize, MaxCachedTokenBytes: jwtMaxCachedTokenBytes, OptionalExpiration: true,
	})
}

// keyVerifiedPath is where jwt_authn puts a verified signed key's issuer.
func keyVerifiedPath() []string { return []string{jwtPayloadKey(keyProvider), "iss"} }

// keyVerified matches a request whose signed key jwt_authn verified.
func keyVerified() *rbacconfigv3.Principal {
	return envoy.PrincipalMetadata(envoy.JwtAuthnName, keyVerifiedPath(), envoy.ValueStringExact(KeyIssuer))
}

// nativeKey reports whether r's signed keys are decided in Envoy.
func (n *nativeJWT) nativeKey(r ir.Route) bool {
	return n.keys && nativeKeyReason(n.cfg, r, n.keyJWKS != "") == ""
}

// configureKeyRoute sets a native key route's optional key requirement,
// key identity script, identity metadata rules and rbac rules, and
// removes the credentials before the upstream unless the route forwards
// them. The route's ext_authz settings (for opaque keys) are set by the
// caller.
func (n *nativeJWT) configureKeyRoute(er *routev3.Route, r ir.Route) error {
	if err := envoy.SetRouteFilterConfig(er, n.jwtAuthnName(), envoy.JwtPerRouteRequirement(keyRequirement)); err != nil {
		return err
	}
	if err := envoy.SetRouteFilterConfig(er, KeyIdentityFilter, envoy.LuaPerRouteName(keyIdentityScriptName)); err != nil {
		return err
	}
	if err := envoy.SetRouteFilterConfig(er, identityMetadataFilter, envoy.HeaderToMetadataPerRoute(n.identityMetadata(true))); err != nil {
		return err
	}
	if err := envoy.SetRouteFilterConfig(er, envoy.RBACName, envoy.RBACPerRouteDeny(n.keyPolicies(r.Auth))); err != nil {
		return err
	}
	if !r.Auth.ForwardCredentials {
		er.RequestHeadersToRemove = append(er.RequestHeadersToRemove, headerAuthorization, n.keyHeader)
	}
	return nil
}

// keyPolicies returns a native key route's deny policies, each only for a
// request whose signed key was verified (others go on to ext_authz, which
// decides them): an Authorization header besides the key (ambiguous, as
// ext_authz), a key that is not the whole value of its header (ext_authz
// refuses it as malformed), a key the key identity script did not accept (the script
// did not run: fail closed), a missing role (one needed), any scope (API
// keys carry none).
func (n *nativeJWT) keyPolicies(ra ir.RouteAuth) map[string]*rbacconfigv3.Principal {
	v := keyVerified()
	checked := envoy.PrincipalMetadata(envoy.ExtAuthzName, []string{keyCheckedKey}, envoy.ValuePresent())
	out := map[string]*rbacconfigv3.Principal{
		policyKeyAmbiguous: envoy.PrincipalAnd(v, headerPrincipal(envoy.HeaderMatchPresent(headerAuthorization)),
			headerPrincipal(envoy.HeaderMatchPresent(n.keyHeader))),
		policyKeyUnchecked: envoy.PrincipalAnd(v, envoy.PrincipalNot(checked)),
		policyKeyMalformed: envoy.PrincipalAnd(v, envoy.PrincipalNot(envoy.PrincipalOr(
			headerPrincipal(envoy.HeaderMatchRegex(n.keyHeader, keyWholeValue)),
			headerPrincipal(envoy.HeaderMatchRegex(headerAuthorization, keyWholeAuthorization))))),
	}
	if len(ra.Roles) > 0 {
		var any []*rbacconfigv3.Principal
		for _, role := range ra.Roles {
			any = append(any, envoy.PrincipalMetadata(envoy.ExtAuthzName, []string{"roles"},
				envoy.ValueStringRegex(`(.*,)?`+regexp.QuoteMeta(role)+`(,.*)?`)))
		}
		out[policyRole] = envoy.PrincipalAnd(v, envoy.PrincipalNot(envoy.PrincipalOr(any...)))
	}
	if len(ra.Scopes) > 0 {
		out[policyScope] = v
	}
	return out
}

// keyRateLimitGate is the first action of a native key route's rate limit
// configuration: without a verified signed key there is no descriptor, so
// the ratelimit filter makes no call (ext_authz takes those requests'
// limits in its Check).
//
// With the Envoy module deciding the keys there is no jwt_authn payload:
// the gate is the native marker the module writes (mixedRateLimitGate).
func (n *nativeJWT) keyRateLimitGate() *routev3.RateLimit_Action {
	if n.module != nil {
		return mixedRateLimitGate()
	}
	return envoy.RateLimitActionMetadataRequired(keyGateDescriptor, envoy.JwtAuthnName, keyVerifiedPath()...)
}

// keyLocalReplies maps jwt_authn's refusals of a signed key (a request
// carrying the key header and no Authorization header, or an
// Authorization header "ApiKey tg.…") to ext_authz's API-key answers.
func keyLocalReplies(keyHeader string) []envoy.LocalReplyRewrite {
	cond := fmt.Sprintf(`(%q in request.headers && !(%q in request.headers)) || (%q in request.headers && request.headers[%q].startsWith(%q))`,
		keyHeader, headerAuthorization, headerAuthorization, headerAuthorization, keyAuthorizationPrefix)
	var out []envoy.LocalReplyRewrite
	for _, d := range []struct{ contains, reason string }{
		{"Jwt_is_expired", "expired_key"},
		{"Jwt_verification_fails", "unknown_key"},
		{"Jwt_issuer_is_not_configured", "malformed_key"}, // ext_authz: claims lack iss tollgate:keys
		{"Jwks_doesn't_have_key_to_match_kid_or_alg", "unknown_key"},
		{"Jwt_not_yet_valid", "unknown_key"},
		{"", "malformed_key"},
	} {
		out = append(out, envoy.LocalReplyRewrite{
			DetailsPrefix: detailsJwtAuthn, DetailsContain: d.contains, Condition: cond, Status: 401,
			Body: `{"error":"unauthorized","reason":"` + d.reason + `"}`, ContentType: "application/json",
			Headers: map[string]string{"cache-control": "no-store", "www-authenticate": keyChallenge},
		})
	}
	return out
}

// keyChallenge is ext_authz's WWW-Authenticate on an API-key-only route.
const keyChallenge = `ApiKey realm="tollgate"`
