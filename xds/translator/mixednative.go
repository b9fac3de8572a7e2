package translator

import (
	"fmt"
	"slices"
	"strings"

	rbacconfigv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// The native mixed path. A protected route whose methods are exactly
// apiKey and jwt (either order) is decided in Envoy when the request
// carries a JWT that a configured provider verifies (Authorization:
// Bearer) or a signed API key that the signer's key verifies (the key
// header, or Authorization: ApiKey tg.…); every other request (an opaque
// key, no credential, a token or key that fails verification) goes to
// ext_authz exactly as before, which answers it with its own rules:
//   - jwt_authn's requirement mixedRequirement is requires_any of every
//     JWT provider and the key provider, or allow_missing_or_failed:
//     jwt_authn refuses nothing on these routes, it only leaves a verified
//     payload in its metadata. (A failed token goes to ext_authz, which
//     refetches the JWKS on an unknown kid and answers with its reason:
//     today's semantics for rotated keys, alg none, malformed tokens.)
//   - the JWT identity script (its mixed variant) checks a verified JWT
//     and sets the identity, the key identity script a verified key, each
//     then setting the native marker (nativeMarkerKey, in ext_authz's
//     metadata namespace, which the ext_authz service never writes);
//   - rbac refuses, for a request with the marker, two credentials, and for
//     a verified JWT or key a missing role or scope (mixedPolicies);
//   - the ext_authz filter skips a request with the marker
//     (filter_enabled_metadata, inverted); rate limits of such a request go
//     through Envoy's ratelimit filter (gated on the marker), the others'
//     in the Check.
//
// Every refusal made in Envoy carries ext_authz's answer on such a route,
// whose 401 challenge names both schemes (mixedChallenge).
const (
	// AuthPathEnvoyMixed is the RouteAuthPath of a native mixed route.
	AuthPathEnvoyMixed = "envoy_mixed"
	// mixedPathNote is the Reason of an AuthPathEnvoyMixed route.
	mixedPathNote = "JWTs and signed keys (tg.) are decided in Envoy; opaque keys (tg_) and requests without a credential still call ext_authz"
	// mixedRequirement is the jwt_authn requirement of native mixed routes.
	mixedRequirement = "tollgate_jwt_or_key_optional"
	// jwtIdentityMixedScriptName is the JWT identity script of mixed routes.
	jwtIdentityMixedScriptName = "jwt_identity_mixed"
	// nativeMarkerKey is the ext_authz-namespace metadata key the identity
	// scripts set ("jwt", "apiKey") once they accepted a credential.
	nativeMarkerKey = "native"
	// nativeGateDescriptor is the descriptor entry that limits a native
	// mixed route's ratelimit filter to natively decided requests.
	nativeGateDescriptor = "native"
	// mixedChallenge is ext_authz's WWW-Authenticate of a refused
	// credential on a route accepting JWTs and API keys, and
	// mixedMissingChallenge of a request without one.
	mixedChallenge        = `Bearer realm="tollgate", error="invalid_token", ApiKey realm="tollgate"`
	mixedMissingChallenge = `Bearer realm="tollgate", ApiKey realm="tollgate"`
	// mixedChallengeField is the route metadata field (under
	// KeyIdentityFilter) naming a mixed route's challenge.
	mixedChallengeField = "challenge"
)

// isMixed reports whether methods are exactly apiKey and jwt.
func isMixed(methods []string) bool {
	return len(methods) == 2 && slices.Contains(methods, ir.MethodAPIKey) && slices.Contains(methods, ir.MethodJWT)
}

// nativeMixedReason returns "" when r, a route accepting apiKey and jwt, is
// on the native mixed path, else why not. signed says the control plane
// has a key signer.
func nativeMixedReason(cfg *ir.Config, r ir.Route, signed bool) string {
	why := ""
	switch {
	case r.Auth.Public:
		return "public"
	case !isMixed(r.Auth.Methods):
		return fmt.Sprintf("accepts %s (only routes accepting jwt, apiKey or exactly both are decided in Envoy)",
			strings.Join(r.Auth.Methods, ", "))
	case r.HTTPRules().Lua != "":
		why = "runs a Lua script (its identity guard reads ext_authz's metadata)"
	case cfg.Auth.APIKeys == nil:
		why = "no API keys configured"
	case !signed:
		why = "the control plane has no API-key signer"
	case len(cfg.Auth.JWT) == 0:
		why = "no JWT provider"
	}
	for _, p := range cfg.Auth.JWT {
		if why != "" {
			break
		}
		if reason := providerNativeReason(p); reason != "" {
			why = fmt.Sprintf("jwt provider %s %s", p.Name, reason)
		}
	}
	if why == "" {
		return ""
	}
	return fmt.Sprintf("accepts %s: %s", strings.Join(r.Auth.Methods, ", "), why)
}

// nativeMixed reports whether r is on the native mixed path.
func (n *nativeJWT) nativeMixed(r ir.Route) bool {
	return n.mixed && nativeMixedReason(n.cfg, r, n.keyJWKS != "") == ""
}

// nativeMarker matches a request whose credential an identity script
// accepted (value "" : either kind).
func nativeMarker(kind string) *rbacconfigv3.Principal {
	v := envoy.ValuePresent()
	if kind != "" {
		v = envoy.ValueStringExact(kind)
	}
	return envoy.PrincipalMetadata(envoy.ExtAuthzName, []string{nativeMarkerKey}, v)
}

// nativeMarkerMatcher is nativeMarker("") for ext_authz's
// filter_enabled_metadata: a request an identity script accepted makes
// no Check.
func nativeMarkerMatcher() *matcherv3.MetadataMatcher {
	return envoy.MetadataMatch(envoy.ExtAuthzName, []string{nativeMarkerKey}, envoy.ValuePresent())
}

// mixedRateLimitGate is the first action of a native mixed route's rate
// limit configuration: a request ext_authz decides (and whose limits it
// takes in the Check) gets no descriptor.
func mixedRateLimitGate() *routev3.RateLimit_Action {
	return envoy.RateLimitActionMetadataRequired(nativeGateDescriptor, envoy.ExtAuthzName, nativeMarkerKey)
}

// configureMixedRoute sets a native mixed route's jwt_authn requirement,
// both identity scripts, its challenge, its rbac rules, and removes the
// credentials before the upstream unless the route forwards them. The
// route's ext_authz settings are set by the caller.
func (n *nativeJWT) configureMixedRoute(er *routev3.Route, r ir.Route) error {
	for _, c := range []struct {
		filter string
		cfg    proto.Message
	}{
		{n.jwtAuthnName(), envoy.JwtPerRouteRequirement(mixedRequirement)},
		{jwtIdentityFilter, envoy.LuaPerRouteName(jwtIdentityMixedScriptName)},
		{KeyIdentityFilter, envoy.LuaPerRouteName(keyIdentityScriptName)},
		{identityMetadataFilter, envoy.HeaderToMetadataPerRoute(n.identityMetadata(true))},
		{envoy.RBACName, envoy.RBACPerRouteDeny(n.mixedPolicies(r.Auth))},
	} {
		if err := envoy.SetRouteFilterConfig(er, c.filter, c.cfg); err != nil {
			return fmt.Errorf("%s: %w", c.filter, err)
		}
	}
	envoy.SetRouteFilterMetadata(er, KeyIdentityFilter, map[string]string{mixedChallengeField: mixedChallenge})
	if !r.Auth.ForwardCredentials {
		er.RequestHeadersToRemove = append(er.RequestHeadersToRemove, headerAuthorization, n.keyHeader)
	}
	return nil
}

// mixedPolicies returns a native mixed route's deny policies, in
// ext_authz's order (credentials, roles, scopes):
//   - for a request an identity script accepted (the native marker): two
//     credentials (an Authorization header and the key header, or a
//     repeated one, which Envoy's matcher sees joined with a comma), which
//     ext_authz refuses as ambiguous;
//   - for a verified signed key: the key path's rules (keyPolicies: a key
//     not its header's whole value, a key the key script did not accept,
//     a missing role, any scope);
//   - for an accepted JWT: a missing role or scope in its claims, as on
//     the JWT path.
//
// A request with neither passes on to ext_authz, which decides it.
func (n *nativeJWT) mixedPolicies(ra ir.RouteAuth) map[string]*rbacconfigv3.Principal {
	key := n.keyPolicies(ra)
	out := map[string]*rbacconfigv3.Principal{
		policyAmbiguous: envoy.PrincipalAnd(nativeMarker(""), envoy.PrincipalOr(
			headerPrincipal(envoy.HeaderMatchContains(headerAuthorization, ",")),
			headerPrincipal(envoy.HeaderMatchContains(n.keyHeader, ",")),
			envoy.PrincipalAnd(headerPrincipal(envoy.HeaderMatchPresent(headerAuthorization)),
				headerPrincipal(envoy.HeaderMatchPresent(n.keyHeader))))),
		policyKeyAmbiguous: key[policyKeyAmbiguous],
		policyKeyUnchecked: key[policyKeyUnchecked],
		policyKeyMalformed: key[policyKeyMalformed],
	}
	jwt := nativeMarker(ir.MethodJWT)
	if len(ra.Roles) > 0 {
		out[policyRole] = envoy.PrincipalOr(envoy.PrincipalAnd(jwt, envoy.PrincipalNot(n.anyRole(ra.Roles))), key[policyRole])
	}
	var missing []*rbacconfigv3.Principal
	for _, s := range ra.Scopes {
		missing = append(missing, envoy.PrincipalNot(n.hasScope(s)))
	}
	if len(missing) > 0 {
		out[policyScope] = envoy.PrincipalOr(envoy.PrincipalAnd(jwt, envoy.PrincipalOr(missing...)), key[policyScope])
	}
	return out
}

// mixedLocalReplies gives rbac's refusals on native mixed routes
// (recognised by their route metadata) ext_authz's answers there, each
// with the mixed challenge; jwt_authn refuses nothing there. They go
// before every other mapper. A signed key found inside another
// Authorization scheme (jwt_authn finds its prefix anywhere) is
// method_not_allowed after "Bearer " (ext_authz takes the value for an
// OAuth 2.0 token, which the route does not accept: the key's dots never
// make the JWT shape) and unsupported_scheme after another scheme.
func mixedLocalReplies() []envoy.LocalReplyRewrite {
	onMixed := fmt.Sprintf(`%q in xds.route_metadata.filter_metadata`, KeyIdentityFilter)
	az := fmt.Sprintf(`%q in request.headers`, headerAuthorization)
	val := fmt.Sprintf(`request.headers[%q]`, headerAuthorization)
	// Schemes in any case, as ext_authz reads them.
	bearer := fmt.Sprintf(`%s && %s.matches("^(?i)bearer ")`, az, val)
	otherScheme := fmt.Sprintf(`%s && !%s.matches("^(?i)(apikey|bearer) ")`, az, val)
	reply := func(cond, reason string) envoy.LocalReplyRewrite {
		return envoy.LocalReplyRewrite{DetailsPrefix: detailsRBAC, DetailsContain: policyKeyMalformed,
			Condition: onMixed + " && (" + cond + ")", Status: 401,
			Body: `{"error":"unauthorized","reason":"` + reason + `"}`, ContentType: "application/json",
			Headers: map[string]string{"cache-control": "no-store", "www-authenticate": mixedChallenge}}
	}
	out := []envoy.LocalReplyRewrite{reply(bearer, "method_not_allowed"), reply(otherScheme, "unsupported_scheme")}
	for _, r := range denialRewrites(true, true) {
		if r.DetailsPrefix == detailsRBAC {
			r.Condition = onMixed
			out = append(out, r)
		}
	}
	return out
}
