package envoy

import (
	"fmt"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
)

// JwtAuthnName is the name of the JWT authentication HTTP filter, the key
// of its per-route configs and the namespace of the dynamic metadata it
// writes (verified payloads and headers).
const JwtAuthnName = "envoy.filters.http.jwt_authn"

// JwtProviderOptions is one issuer as jwt_authn verifies it.
type JwtProviderOptions struct {
	Issuer    string
	Audiences []string // a token must name one; empty: aud not checked
	// Exactly one of InlineJWKS and RemoteJWKSURI is set. A remote JWKS is
	// fetched through JWKSCluster, cached for JWKSCacheDuration and
	// refreshed in the background (async fetch, fetched at start).
	InlineJWKS        string
	RemoteJWKSURI     string
	JWKSCluster       string
	JWKSCacheDuration time.Duration
	JWKSFetchTimeout  time.Duration
	// ClockSkew in whole seconds (Envoy's field is seconds; 0 would mean
	// Envoy's default of 60 s, so it must be at least 1 s).
	ClockSkew   time.Duration
	MaxLifetime time.Duration // 0: none
	// TokenHeader is read with the prefix TokenPrefix (e.g. "Bearer "),
	// then AlsoFrom (header name → prefix), in name order.
	TokenHeader, TokenPrefix string
	AlsoFrom                 map[string]string
	// PayloadKey and HeaderKey name where the verified payload and JOSE
	// header land in the JwtAuthnName metadata namespace.
	PayloadKey, HeaderKey string
	// SpaceDelimitedClaims are turned into lists in the payload metadata.
	SpaceDelimitedClaims []string
	// CacheSize is the verified-token cache size (0: Envoy's default 100);
	// MaxCachedTokenBytes bounds a cached token (0: Envoy's 4096).
	CacheSize, MaxCachedTokenBytes uint32
	// OptionalExpiration accepts a token without exp (one with exp is
	// still refused once expired); by default exp is required.
	OptionalExpiration bool
}

// JwtProvider returns the provider o describes. Expiration is required
// unless o.OptionalExpiration, and the token is kept on the request (forward: true): the route
// removes it before the upstream (RouteAction request_headers_to_remove)
// unless it forwards credentials. Only TokenHeader and AlsoFrom are read:
// no query parameter, no cookie.
func JwtProvider(o JwtProviderOptions) (*jwtauthnv3.JwtProvider, error) {
	skew := o.ClockSkew / time.Second
	if skew < 1 || skew > 1<<31 {
		return nil, fmt.Errorf("jwt provider %q: clock skew %s: want whole seconds ≥ 1s", o.Issuer, o.ClockSkew)
	}
	p := &jwtauthnv3.JwtProvider{
		Issuer:            o.Issuer,
		Audiences:         o.Audiences,
		RequireExpiration: !o.OptionalExpiration,
		Forward:           true,
		FromHeaders:       []*jwtauthnv3.JwtHeader{{Name: o.TokenHeader, ValuePrefix: o.TokenPrefix}},
		PayloadInMetadata: o.PayloadKey,
		HeaderInMetadata:  o.HeaderKey,
		ClockSkewSeconds:  uint32(skew),
	}
	for _, name := range sortedKeys(o.AlsoFrom) {
		p.FromHeaders = append(p.FromHeaders, &jwtauthnv3.JwtHeader{Name: name, ValuePrefix: o.AlsoFrom[name]})
	}
	if o.MaxLifetime > 0 {
		p.MaxLifetime = durationpb.New(o.MaxLifetime)
	}
	if len(o.SpaceDelimitedClaims) > 0 {
		p.NormalizePayloadInMetadata = &jwtauthnv3.JwtProvider_NormalizePayload{SpaceDelimitedClaims: o.SpaceDelimitedClaims}
	}
	if o.CacheSize > 0 {
		p.JwtCacheConfig = &jwtauthnv3.JwtCacheConfig{JwtCacheSize: o.CacheSize, JwtMaxTokenSize: o.MaxCachedTokenBytes}
	}
	switch {
	case o.InlineJWKS != "" && o.RemoteJWKSURI == "":
		p.JwksSourceSpecifier = &jwtauthnv3.JwtProvider_LocalJwks{LocalJwks: &corev3.DataSource{
			Specifier: &corev3.DataSource_InlineString{InlineString: o.InlineJWKS}}}
	case o.RemoteJWKSURI != "" && o.InlineJWKS == "" && o.JWKSCluster != "":
		p.JwksSourceSpecifier = &jwtauthnv3.JwtProvider_RemoteJwks{RemoteJwks: remoteJWKS(o)}
	default:
		return nil, fmt.Errorf("jwt provider %q: want exactly one of an inline JWKS and a remote JWKS with its cluster", o.Issuer)
	}
	return p, nil
}

// remoteJWKS fetches the JWKS at start and in the background before the
// cache expires (async_fetch), so no request waits on the IdP.
func remoteJWKS(o JwtProviderOptions) *jwtauthnv3.RemoteJwks {
	r := &jwtauthnv3.RemoteJwks{
		HttpUri: &corev3.HttpUri{
			Uri:              o.RemoteJWKSURI,
			HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: o.JWKSCluster},
			Timeout:          durationpb.New(o.JWKSFetchTimeout),
		},
		AsyncFetch: &jwtauthnv3.JwksAsyncFetch{FailedRefetchDuration: durationpb.New(time.Second)},
	}
	if o.JWKSCacheDuration > 0 {
		r.CacheDuration = durationpb.New(o.JWKSCacheDuration)
	}
	return r
}

// JwtAuthentication returns the filter config: providers by name, and one
// named requirement per entry of requirements (name → the providers any of
// which may verify the token). No rule applies to a route by default:
// routes opt in with JwtPerRouteRequirement. CORS preflights get no exception:
// on a route with cors the CORS filter, earlier in the chain, answers them;
// anywhere else an OPTIONS is an ordinary request that needs a token.
func JwtAuthentication(providers map[string]*jwtauthnv3.JwtProvider, requirements map[string][]string) *jwtauthnv3.JwtAuthentication {
	reqs := make(map[string]*jwtauthnv3.JwtRequirement, len(requirements))
	for name, any := range requirements {
		reqs[name] = requiresAny(any)
	}
	return &jwtauthnv3.JwtAuthentication{Providers: providers, RequirementMap: reqs}
}

// AddOptionalRequirement adds to cfg the requirement name: a token the
// provider reads must verify, and a request without one (none of the
// provider's headers carrying its prefix) passes unverified
// (requires_any: [provider, allow_missing]). A token that is present but
// fails still refuses the request.
func AddOptionalRequirement(cfg *jwtauthnv3.JwtAuthentication, name, provider string) {
	if cfg.RequirementMap == nil {
		cfg.RequirementMap = map[string]*jwtauthnv3.JwtRequirement{}
	}
	cfg.RequirementMap[name] = &jwtauthnv3.JwtRequirement{RequiresType: &jwtauthnv3.JwtRequirement_RequiresAny{
		RequiresAny: &jwtauthnv3.JwtRequirementOrList{Requirements: []*jwtauthnv3.JwtRequirement{
			requiresAny([]string{provider}),
			{RequiresType: &jwtauthnv3.JwtRequirement_AllowMissing{AllowMissing: &emptypb.Empty{}}},
		}}}}
}

// AddAnyOrUnverifiedRequirement adds to cfg the requirement name:
// requires_any of each of providers, or allow_missing_or_failed. A token
// one of them verifies leaves its payload in the metadata; every other
// request (no token, or one that fails) passes on unverified, for a later
// filter to decide: jwt_authn itself refuses nothing.
func AddAnyOrUnverifiedRequirement(cfg *jwtauthnv3.JwtAuthentication, name string, providers []string) {
	if cfg.RequirementMap == nil {
		cfg.RequirementMap = map[string]*jwtauthnv3.JwtRequirement{}
	}
	or := &jwtauthnv3.JwtRequirementOrList{}
	for _, p := range providers {
		or.Requirements = append(or.Requirements, requiresAny([]string{p}))
	}
	or.Requirements = append(or.Requirements, &jwtauthnv3.JwtRequirement{
		RequiresType: &jwtauthnv3.JwtRequirement_AllowMissingOrFailed{AllowMissingOrFailed: &emptypb.Empty{}}})
	cfg.RequirementMap[name] = &jwtauthnv3.JwtRequirement{RequiresType: &jwtauthnv3.JwtRequirement_RequiresAny{RequiresAny: or}}
}

// requiresAny is the requirement that one of providers verifies the token.
func requiresAny(providers []string) *jwtauthnv3.JwtRequirement {
	if len(providers) == 1 {
		return &jwtauthnv3.JwtRequirement{RequiresType: &jwtauthnv3.JwtRequirement_ProviderName{ProviderName: providers[0]}}
	}
	or := &jwtauthnv3.JwtRequirementOrList{}
	for _, p := range providers {
		or.Requirements = append(or.Requirements, requiresAny([]string{p}))
	}
	return &jwtauthnv3.JwtRequirement{RequiresType: &jwtauthnv3.JwtRequirement_RequiresAny{RequiresAny: or}}
}

// JwtAuthnFilter wraps cfg as the HTTP filter named JwtAuthnName.
func JwtAuthnFilter(cfg *jwtauthnv3.JwtAuthentication) (*hcmv3.HttpFilter, error) {
	a, err := Any(cfg)
	if err != nil {
		return nil, fmt.Errorf("jwt_authn filter: %w", err)
	}
	return &hcmv3.HttpFilter{Name: JwtAuthnName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}, nil
}

// JwtPerRouteRequirement makes a route require the named requirement.
func JwtPerRouteRequirement(name string) *jwtauthnv3.PerRouteConfig {
	return &jwtauthnv3.PerRouteConfig{RequirementSpecifier: &jwtauthnv3.PerRouteConfig_RequirementName{RequirementName: name}}
}

// JwtPerRouteDisabled turns jwt_authn off on a route.
func JwtPerRouteDisabled() *jwtauthnv3.PerRouteConfig {
	return &jwtauthnv3.PerRouteConfig{RequirementSpecifier: &jwtauthnv3.PerRouteConfig_Disabled{Disabled: true}}
}
