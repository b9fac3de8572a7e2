package policy

import (
	"bytes"
	"cmp"
	"encoding/json"
	"slices"
	"strings"

	"github.com/tollgate/tollgate/policy/ir"
)

// methods returns the auth methods the section configures, sorted; none
// for a nil section.
func (a *Auth) methods() []string {
	if a == nil {
		return nil
	}
	var out []string
	if a.APIKeys != nil {
		out = append(out, ir.MethodAPIKey)
	}
	if len(a.JWT) > 0 {
		out = append(out, ir.MethodJWT)
	}
	if len(a.OAuth2) > 0 {
		out = append(out, ir.MethodOAuth2)
	}
	slices.Sort(out)
	return out
}

// compileAuth compiles the auth section: providers sorted by name, lists
// sorted, defaults applied. The identity headers get their defaults even
// without an auth section: Envoy strips them from every request.
func compileAuth(a *Auth) ir.Auth {
	out := ir.Auth{IdentityHeaders: compileIdentityHeaders(a)}
	if a == nil {
		return out
	}
	for _, j := range a.JWT {
		out.JWT = append(out.JWT, compileJWT(j))
	}
	slices.SortFunc(out.JWT, func(x, y ir.JWTProvider) int { return strings.Compare(x.Name, y.Name) })
	if a.APIKeys != nil {
		out.APIKeys = &ir.APIKeys{Header: strings.ToLower(cmp.Or(a.APIKeys.Header, DefaultAPIKeyHeader)),
			Namespace: a.APIKeys.Namespace}
	}
	for _, o := range a.OAuth2 {
		out.OAuth2 = append(out.OAuth2, ir.OAuth2Provider{
			Name:             o.Name,
			Namespace:        cmp.Or(o.Namespace, o.Name),
			TokenPrefix:      o.TokenPrefix,
			IntrospectionURL: o.IntrospectionURL,
			ClientID:         o.ClientID,
			ClientSecretEnv:  o.ClientSecretEnv,
			Audiences:        sortedCopy(o.Audiences),
			CacheTTL:         durationOr(o.CacheTTL, DefaultCacheTTL),
			Insecure:         o.Insecure,
			MaxConcurrent:    cmp.Or(o.MaxConcurrent, DefaultMaxConcurrent),
		})
	}
	slices.SortFunc(out.OAuth2, func(x, y ir.OAuth2Provider) int { return strings.Compare(x.Name, y.Name) })
	return out
}

func compileJWT(j JWTProvider) ir.JWTProvider {
	algs := j.Algorithms
	if algs == nil {
		algs = defaultAlgorithms
	}
	return ir.JWTProvider{
		Name:          j.Name,
		Namespace:     cmp.Or(j.Namespace, j.Name),
		Issuer:        j.Issuer,
		Audiences:     sortedCopy(j.Audiences),
		JWKSURI:       j.JWKSURI,
		JWKS:          compactJSON(j.JWKS),
		Algorithms:    sortedCopy(algs),
		HMACSecretEnv: j.HMACSecretEnv,
		ClockSkew:     durationOr(j.ClockSkew, DefaultClockSkew),
		MaxLifetime:   durationOr(j.MaxLifetime, DefaultMaxLifetime),
		Claims: ir.ClaimMap{
			UserID: cmp.Or(j.Claims.UserID, DefaultUserIDClaim),
			Roles:  j.Claims.Roles,
			Tenant: j.Claims.Tenant,
			Tier:   j.Claims.Tier,
		},
		Insecure:    j.Insecure,
		JWKSRefresh: durationOr(j.JWKSRefresh, 0), // 0: the verifier's default
	}
}

func compileIdentityHeaders(a *Auth) ir.IdentityHeaders {
	var h IdentityHeaders
	if a != nil && a.IdentityHeaders != nil {
		h = *a.IdentityHeaders
	}
	return ir.IdentityHeaders{
		UserID: cmp.Or(h.UserID, DefaultUserIDHeader),
		Roles:  cmp.Or(h.Roles, DefaultRolesHeader),
		Tenant: cmp.Or(h.Tenant, DefaultTenantHeader),
		Tier:   cmp.Or(h.Tier, DefaultTierHeader),
	}
}

func compileGatewayAuth(a *GatewayAuth) ir.GatewayAuth {
	var g GatewayAuth
	if a != nil {
		g = *a
	}
	return ir.GatewayAuth{
		StatusOnError: cmp.Or(g.StatusOnError, DefaultAuthStatusOnError),
		Timeout:       durationOr(g.Timeout, DefaultAuthTimeout),
	}
}

// compileRouteAuth compiles a route's auth. A route without auth, or
// without methods, accepts every configured method: secure by default.
// Routes share the configured slice, which the IR never modifies.
func compileRouteAuth(a *RouteAuth, configured []string) ir.RouteAuth {
	switch {
	case a == nil:
		return ir.RouteAuth{Methods: configured}
	case a.Public:
		return ir.RouteAuth{Public: true}
	}
	out := ir.RouteAuth{
		Methods:            sortedCopy(a.Methods),
		Roles:              sortedCopy(a.Roles),
		Scopes:             sortedCopy(a.Scopes),
		ForwardCredentials: a.ForwardCredentials,
	}
	if out.Methods == nil {
		out.Methods = configured
	}
	return out
}

// sortedCopy returns a sorted copy of s; nil for an empty s.
func sortedCopy(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Sorted(slices.Values(s))
}

// compactJSON returns the JSON text s without insignificant space.
func compactJSON(s string) string {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		return s // unreachable on a validated policy
	}
	return b.String()
}
