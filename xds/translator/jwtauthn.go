package translator

import (
	"cmp"
	"fmt"
	"iter"
	"regexp"
	"slices"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	rbacconfigv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/policy/ir"
)

// Native JWT path settings (see nativeJWT).
const (
	// jwtRequirement is the one jwt_authn requirement: any provider.
	jwtRequirement = "tollgate_jwt"
	// jwtIdentityFilter is the Lua filter running jwtIdentityScript, and
	// jwtIdentityScriptName the script's name in it.
	jwtIdentityFilter     = "tollgate.jwt_identity"
	jwtIdentityScriptName = "jwt_identity"
	// identityMetadataFilter (header_to_metadata, after both identity
	// scripts) publishes the identity headers the JWT or the key identity
	// script set as ext_authz's metadata (identityMetadata).
	identityMetadataFilter = "tollgate.identity_metadata"
	// jwksClusterPrefix + provider name is the cluster of a remote JWKS.
	jwksClusterPrefix = "tollgate_jwks_"
	// jwtCacheSize is each provider's verified-token cache (Envoy's
	// default is 100), the ext_authz verifier's default size.
	jwtCacheSize = 10000
	// jwtMaxCachedTokenBytes: longer tokens are verified every time.
	jwtMaxCachedTokenBytes = 8192
	// jwksCacheDuration is how long a fetched JWKS is used before the
	// background refresh replaces it (the ext_authz verifier's interval).
	jwksCacheDuration = 5 * time.Minute
	jwksFetchTimeout  = 5 * time.Second
	jwksConnTimeout   = 2 * time.Second
)

// RBAC policy names on native routes; Envoy reports the first match in
// lexical order, so the prefix orders them like the ext_authz service's
// checks (credentials, then roles, then scopes).
const (
	policyAmbiguous = "a_ambiguous_credentials"
	policyRole      = "b_missing_role"
	policyScope     = "c_insufficient_scope"
)

// jwtPayloadKey and jwtHeaderKey name where jwt_authn writes a provider's
// verified payload and JOSE header in its metadata namespace.
func jwtPayloadKey(provider string) string { return "payload:" + provider }
func jwtHeaderKey(provider string) string  { return "header:" + provider }

// RouteAuthPath says how one route is authenticated: Path is "none"
// (public), "envoy" (jwt_authn, Lua identity and rbac inside Envoy: no
// ext_authz call) or "ext_authz"; Reason says why a protected route is
// not decided in Envoy.
type RouteAuthPath struct {
	Route  string `json:"route"`
	Path   string `json:"path"`
	Reason string `json:"reason,omitempty"`
}

// Paths of RouteAuthPath.
const (
	AuthPathNone     = "none"
	AuthPathEnvoy    = "envoy"
	AuthPathExtAuthz = "ext_authz"
)

// AuthPaths returns the path of every route of gateway gw in cfg, in IR
// order, as `tollgate serve` translates it (it always has an API-key
// signer, derived from the key pepper).
func AuthPaths(cfg *ir.Config, gw *ir.Gateway) []RouteAuthPath { return authPaths(cfg, gw, true) }

// authPaths is AuthPaths; signed says the control plane has a key signer.
func authPaths(cfg *ir.Config, gw *ir.Gateway, signed bool) []RouteAuthPath {
	return slices.Collect(eachAuthPath(cfg, gw, signed))
}

// eachAuthPath yields authPaths' elements without building the list (a
// translation asks twice per gateway, and most questions stop early).
func eachAuthPath(cfg *ir.Config, gw *ir.Gateway, signed bool) iter.Seq[RouteAuthPath] {
	return func(yield func(RouteAuthPath) bool) {
		for _, vh := range gw.VirtualHosts {
			for i := range vh.Routes {
				if !yield(routeAuthPath(cfg, &vh.Routes[i], signed)) {
					return
				}
			}
		}
	}
}

func routeAuthPath(cfg *ir.Config, r *ir.Route, signed bool) RouteAuthPath {
	reason := nativeJWTReason(cfg, *r)
	if slices.Contains(r.Auth.Methods, ir.MethodAPIKey) {
		reason = nativeKeyReason(cfg, *r, signed)
		if reason == "" {
			return RouteAuthPath{Route: r.Name, Path: AuthPathEnvoyKey, Reason: keyPathNote}
		}
		if isMixed(r.Auth.Methods) {
			if reason = nativeMixedReason(cfg, *r, signed); reason == "" {
				return RouteAuthPath{Route: r.Name, Path: AuthPathEnvoyMixed, Reason: mixedPathNote}
			}
		}
	}
	switch {
	case r.Auth.Public:
		return RouteAuthPath{Route: r.Name, Path: AuthPathNone}
	case reason == "":
		return RouteAuthPath{Route: r.Name, Path: AuthPathEnvoy}
	default:
		return RouteAuthPath{Route: r.Name, Path: AuthPathExtAuthz, Reason: reason}
	}
}

// nativeJWTReason returns "" when r can be decided by Envoy's own filters,
// else why not.
func nativeJWTReason(cfg *ir.Config, r ir.Route) string {
	switch {
	case r.Auth.Public:
		return "public"
	case !slices.Equal(r.Auth.Methods, []string{ir.MethodJWT}):
		return fmt.Sprintf("accepts %s (only a JWT-only route is decided in Envoy)", strings.Join(r.Auth.Methods, ", "))
	case r.HTTPRules().Lua != "":
		return "runs a Lua script (its identity guard reads ext_authz's metadata)"
	case len(cfg.Auth.JWT) == 0:
		return "no JWT provider"
	}
	for _, p := range cfg.Auth.JWT {
		if reason := providerNativeReason(p); reason != "" {
			return fmt.Sprintf("jwt provider %s %s", p.Name, reason)
		}
	}
	return ""
}

// providerNativeReason returns "" when jwt_authn can verify p's tokens as
// strictly as the ext_authz service, else why not.
func providerNativeReason(p ir.JWTProvider) string {
	switch {
	case p.HMACSecretEnv != "" || slices.ContainsFunc(p.Algorithms, func(a string) bool { return strings.HasPrefix(a, "HS") }):
		return "uses HMAC (its secret would have to be in Envoy's configuration)"
	case p.ClockSkew < time.Second:
		return "has a clock skew below 1s (jwt_authn counts whole seconds, 0 meaning 60)"
	case p.ClockSkew%time.Second != 0:
		return "has a clock skew that is not whole seconds"
	case p.JWKSURI == "" && p.JWKS == "":
		return "has no JWKS"
	case p.Issuer == "":
		return "has no issuer"
	}
	if p.JWKSURI != "" {
		if _, err := envoy.JWKSCluster("check", p.JWKSURI, 0); err != nil {
			return "has a jwksUri jwt_authn cannot fetch"
		}
	}
	return ""
}

// nativeJWT is the gateway's native JWT path: routes that accept only
// JWTs, from providers jwt_authn can verify as strictly as the ext_authz
// service, are decided by jwt_authn (signature, iss, aud, exp/nbf with the
// provider's skew, max lifetime), a Lua script (alg allow-list, claim
// types, identity headers and metadata; jwtidentity.go) and rbac (roles,
// scopes), with no ext_authz call.
type nativeJWT struct {
	enabled   bool
	jwtRoutes bool // a route is on the native JWT path
	// keys: a route is on the native key path (apikeynative.go), whose
	// signed keys verify against keyJWKS and whose identity and
	// exceptions table keyIdentity builds.
	keys bool
	// mixed: a route is on the native mixed path (mixednative.go).
	mixed       bool
	keyJWKS     string
	keyIdentity *KeyIdentity
	cfg         *ir.Config
	keyHeader   string // the API-key header, "" without API keys
	providers   map[string]*jwtauthnv3.JwtProvider
	names       []string // provider names, sorted
	clusters    []*clusterv3.Cluster
	// scripts are the JWT identity filter's named scripts.
	scripts map[string]string
	// module, when set, decides the native JWT routes in place of
	// jwt_authn, the JWT identity script, header_to_metadata and rbac
	// (jwtmodule.go).
	module *jwtModule
	// charges: the module's charger takes the limits of a route of the
	// gateway (jwtmodule_charge.go).
	charges bool
	// jwtAuthn, set when the gateway runs jwt_authn and a provider's JWKS
	// is remote, serves jwt_authn's config over ECDS (jwtauthn_ecds.go).
	jwtAuthn *JWTAuthn
}

// newNativeJWT derives the native paths of gw; keyJWKS is the API-key
// signer's public JWKS ("" without a signer: no native key path);
// modulePath is Tollgate's Envoy module on the Envoy hosts ("": native
// JWT routes are decided by jwt_authn and its companions).
func newNativeJWT(cfg *ir.Config, gw *ir.Gateway, keyJWKS, modulePath, rateLimitAddress string) (*nativeJWT, error) {
	n := &nativeJWT{cfg: cfg, keyJWKS: keyJWKS}
	for rp := range eachAuthPath(cfg, gw, keyJWKS != "") {
		n.jwtRoutes = n.jwtRoutes || rp.Path == AuthPathEnvoy
		n.keys = n.keys || rp.Path == AuthPathEnvoyKey
		n.mixed = n.mixed || rp.Path == AuthPathEnvoyMixed
		if n.jwtRoutes && n.keys && n.mixed {
			break
		}
	}
	n.enabled = n.jwtRoutes || n.keys || n.mixed
	if !n.enabled {
		return n, nil
	}
	if k := cfg.Auth.APIKeys; k != nil {
		n.keyHeader = k.Header
	}
	if modulePath != "" {
		return n, n.newModule(gw, modulePath, rateLimitAddress)
	}
	n.providers = map[string]*jwtauthnv3.JwtProvider{}
	if n.keys || n.mixed {
		kp, err := keyProviderConfig(n.keyHeader, keyJWKS)
		if err != nil {
			return nil, fmt.Errorf("api key signer: %w", err)
		}
		n.providers[keyProvider] = kp
		n.keyIdentity = newKeyIdentity(cfg)
	}
	if !n.authnJWT() && !n.mixed {
		return n, n.serveJWTAuthn()
	}
	for _, p := range cfg.Auth.JWT {
		jp, err := n.provider(p)
		if err != nil {
			return nil, err
		}
		n.providers[p.Name] = jp
		n.names = append(n.names, p.Name)
	}
	slices.Sort(n.names)
	h := identityHeadersOrDefault(cfg.Auth.IdentityHeaders)
	n.scripts = map[string]string{}
	if n.authnJWT() {
		n.scripts[jwtIdentityScriptName] = jwtIdentityScript(cfg.Auth.JWT, h, false)
	}
	if n.mixed {
		n.scripts[jwtIdentityMixedScriptName] = jwtIdentityScript(cfg.Auth.JWT, h, true)
	}
	return n, n.serveJWTAuthn()
}

// newModule has Tollgate's Envoy module (modulePath) decide every native
// route of gw: JWT, key and mixed routes (jwtmodule.go,
// jwtmodule_keys.go); no jwt_authn runs.
func (n *nativeJWT) newModule(gw *ir.Gateway, modulePath, rateLimitAddress string) error {
	var keys *envoymod.Keys
	if n.keys || n.mixed {
		var err error
		if keys, err = moduleKeys(n.cfg, n.keyJWKS); err != nil {
			return err
		}
	}
	m, err := newJWTModule(n.cfg, modulePath, n.keyHeader, n.moduleQuota(gw, rateLimitAddress), keys)
	if err != nil {
		return err
	}
	n.module = m
	if m.decidesKeys() {
		n.keyIdentity = &KeyIdentity{module: m}
	}
	n.charges = n.anyModuleCharges(gw)
	return nil
}

// serveJWTAuthn sets n.jwtAuthn when the gateway runs jwt_authn with a
// remote JWKS: its config is then served over ECDS.
func (n *nativeJWT) serveJWTAuthn() error {
	cfg := n.authnConfig()
	if !hasRemoteJWKS(cfg) {
		return nil
	}
	j, err := newJWTAuthn(cfg)
	n.jwtAuthn = j
	return err
}

// authnConfig is the gateway's jwt_authn config.
func (n *nativeJWT) authnConfig() *jwtauthnv3.JwtAuthentication {
	reqs := map[string][]string{}
	if n.authnJWT() {
		reqs[jwtRequirement] = n.names
	}
	cfg := envoy.JwtAuthentication(n.providers, reqs)
	if n.keys {
		envoy.AddOptionalRequirement(cfg, keyRequirement, keyProvider)
	}
	if n.mixed {
		envoy.AddAnyOrUnverifiedRequirement(cfg, mixedRequirement, append(slices.Clone(n.names), keyProvider))
	}
	return cfg
}

// jwtAuthnName is the name of the gateway's jwt_authn filter, which keys
// its per-route configs.
func (n *nativeJWT) jwtAuthnName() string {
	if n.jwtAuthn != nil {
		return n.jwtAuthn.Name()
	}
	return envoy.JwtAuthnName
}

// provider builds p's jwt_authn provider and, for a remote JWKS, its
// cluster.
func (n *nativeJWT) provider(p ir.JWTProvider) (*jwtauthnv3.JwtProvider, error) {
	o := envoy.JwtProviderOptions{
		Issuer: p.Issuer, Audiences: p.Audiences, InlineJWKS: p.JWKS, RemoteJWKSURI: p.JWKSURI,
		JWKSCacheDuration: jwksCacheDuration, JWKSFetchTimeout: jwksFetchTimeout,
		ClockSkew:   p.ClockSkew,
		TokenHeader: headerAuthorization, TokenPrefix: "Bearer ",
		PayloadKey: jwtPayloadKey(p.Name), HeaderKey: jwtHeaderKey(p.Name),
		SpaceDelimitedClaims: []string{"scope", "scp"},
		CacheSize:            jwtCacheSize, MaxCachedTokenBytes: jwtMaxCachedTokenBytes,
	}
	if p.JWKSURI != "" {
		o.JWKSCluster = jwksClusterPrefix + p.Name
		c, err := envoy.JWKSCluster(o.JWKSCluster, p.JWKSURI, jwksConnTimeout)
		if err != nil {
			return nil, fmt.Errorf("jwt provider %q: %w", p.Name, err)
		}
		n.clusters = append(n.clusters, c)
	}
	jp, err := envoy.JwtProvider(o)
	if err != nil {
		return nil, fmt.Errorf("jwt provider %q: %w", p.Name, err)
	}
	// exp and the lifetime are required by the identity script, which
	// answers no_exp and lifetime_too_long (jwt_authn: bad_signature);
	// jwt_authn still refuses an expired or not yet valid token.
	jp.RequireExpiration = false
	return jp, nil
}

// jwtMaxLifetime is the longest exp - iat a token of p may have.
func jwtMaxLifetime(p ir.JWTProvider) time.Duration { return cmp.Or(p.MaxLifetime, 24*time.Hour) }

// identityHeadersOrDefault fills the identity header names the IR leaves
// empty with the defaults the ext_authz service uses.
func identityHeadersOrDefault(h ir.IdentityHeaders) ir.IdentityHeaders {
	return ir.IdentityHeaders{
		UserID: cmp.Or(h.UserID, "x-user-id"), Roles: cmp.Or(h.Roles, "x-user-roles"),
		Tenant: cmp.Or(h.Tenant, "x-tenant-id"), Tier: cmp.Or(h.Tier, "x-consumer-tier"),
	}
}

// authnJWT reports whether native JWT routes are decided by jwt_authn
// and its companions (there are some, and no module decides them).
func (n *nativeJWT) authnJWT() bool { return n.jwtRoutes && n.module == nil }

// moduleQuota is the module's rate-limit settings when the module
// decides a route of gw whose limits it can hold; else nil.
func (n *nativeJWT) moduleQuota(gw *ir.Gateway, rateLimitAddress string) *envoymod.Quota {
	for _, vh := range gw.VirtualHosts {
		for _, r := range vh.Routes {
			if n.anyNative(r) && moduleTakesLimits(n.cfg, r) {
				return moduleQuota(n.cfg, rateLimitAddress)
			}
		}
	}
	return nil
}

// anyNative reports whether r is a native JWT, key or mixed route: with
// the module, a route it decides.
func (n *nativeJWT) anyNative(r ir.Route) bool {
	return n.native(r) || n.nativeKey(r) || n.nativeMixed(r)
}

// moduleLimits reports whether the module enforces route r's limits.
func (n *nativeJWT) moduleLimits(r ir.Route) bool {
	return n.module != nil && n.anyNative(r) && n.module.takesLimits(r)
}

// moduleKeyRoute reports whether the module decides r's signed keys (a
// native key or mixed route), passing its opaque keys to ext_authz.
func (n *nativeJWT) moduleKeyRoute(r ir.Route) bool {
	return n.module != nil && (n.nativeKey(r) || n.nativeMixed(r))
}

// native reports whether r is decided in Envoy.
func (n *nativeJWT) native(r ir.Route) bool { return n.enabled && nativeJWTReason(n.cfg, r) == "" }

// httpFilters returns jwt_authn, the JWT identity script (with native JWT
// or mixed routes), the key identity filter (with native key or mixed
// routes), the identity metadata filter and rbac, in that order, when
// enabled (they go right after the identity strip and CORS). The metadata
// filter comes after both scripts, whose identity headers it copies, and
// before rbac, which reads the roles it publishes.
func (n *nativeJWT) httpFilters() ([]*hcmv3.HttpFilter, error) {
	if !n.enabled {
		return nil, nil
	}
	var out []*hcmv3.HttpFilter
	if n.module != nil {
		mf, err := n.module.filter()
		if err != nil {
			return nil, err
		}
		return append(out, mf), nil // the module decides every native route
	}
	jwt, err := n.jwtAuthnFilter()
	if err != nil {
		return nil, err
	}
	out = append(out, jwt)
	if n.authnJWT() || n.mixed {
		lua, err := envoy.LuaNamedSourcesFilter(jwtIdentityFilter, n.scripts)
		if err != nil {
			return nil, err
		}
		out = append(out, lua)
	}
	if n.keys || n.mixed {
		kf, err := n.keyIdentity.filter()
		if err != nil {
			return nil, err
		}
		out = append(out, kf)
	}
	meta, err := envoy.HeaderToMetadataFilter(identityMetadataFilter)
	if err != nil {
		return nil, err
	}
	rbac, err := envoy.RBACFilter()
	if err != nil {
		return nil, err
	}
	return append(out, meta, rbac), nil
}

// jwtAuthnFilter returns the gateway's jwt_authn filter: served over ECDS
// (n.jwtAuthn) when a provider fetches a remote JWKS, whose withdrawn keys
// the control plane then flushes from the filter's token cache; inline
// otherwise (inline JWKS only change with the policy, which replaces the
// filter anyway).
func (n *nativeJWT) jwtAuthnFilter() (*hcmv3.HttpFilter, error) {
	if n.jwtAuthn != nil {
		return n.jwtAuthn.filter()
	}
	return envoy.JwtAuthnFilter(n.authnConfig())
}

// identityMetadata is the header_to_metadata rules of a native route: the
// identity headers the identity script set (it removed the empty ones:
// an empty value is left out of the metadata) become ext_authz's metadata
// keys. One metadata update per request instead of one per key from Lua.
//   - On a native JWT route (withKeys false) also method "jwt" with the
//     user id; the consumer key is the script's own write (jwtidentity.go):
//     header_to_metadata drops values of 8 KiB or more, and the
//     rate-limit key must never be missing.
//   - On a native key or mixed route (withKeys true) also the consumer
//     from the user id: a signed key's user id is at most a namespace
//     (a name) and contract.MaxConsumerLen long, never dropped. A JWT's
//     on a mixed route is written by its script as well (the copy is the
//     same value, or none). The method is each script's own write there:
//     this filter runs after both scripts and cannot tell them apart.
//
// Nothing else sets these headers before this filter: the edge's first
// filter removed the client's copies, and only jwt_authn, the identity
// scripts and CORS run in between.
func (n *nativeJWT) identityMetadata(withKeys bool) []envoy.HeaderMetadata {
	h := identityHeadersOrDefault(n.cfg.Auth.IdentityHeaders)
	ns := envoy.ExtAuthzName
	first := envoy.HeaderMetadata{Header: h.UserID, Namespace: ns, Key: "method", Value: ir.MethodJWT}
	if withKeys {
		first = envoy.HeaderMetadata{Header: h.UserID, Namespace: ns, Key: metadataConsumer}
	}
	return []envoy.HeaderMetadata{
		first,
		{Header: h.UserID, Namespace: ns, Key: metadataUserID},
		{Header: h.Roles, Namespace: ns, Key: metadataRoles},
		{Header: h.Tenant, Namespace: ns, Key: metadataTenant},
		{Header: h.Tier, Namespace: ns, Key: metadataTier},
	}
}

// configureRoute sets a native route's jwt_authn requirement, identity
// script and rbac rules, and removes the credentials before the upstream
// unless the route forwards them. Other routes are left alone: without a
// per-route config the three filters do nothing.
func (n *nativeJWT) configureRoute(er *routev3.Route, r ir.Route) error {
	if !n.native(r) {
		return nil
	}
	if n.module != nil {
		return n.configureModuleRoute(er, r, false)
	}
	if err := envoy.SetRouteFilterConfig(er, n.jwtAuthnName(), envoy.JwtPerRouteRequirement(jwtRequirement)); err != nil {
		return err
	}
	if err := envoy.SetRouteFilterConfig(er, jwtIdentityFilter, envoy.LuaPerRouteName(jwtIdentityScriptName)); err != nil {
		return err
	}
	if err := envoy.SetRouteFilterConfig(er, identityMetadataFilter, envoy.HeaderToMetadataPerRoute(n.identityMetadata(false))); err != nil {
		return err
	}
	if err := envoy.SetRouteFilterConfig(er, envoy.RBACName, envoy.RBACPerRouteDeny(n.policies(r.Auth))); err != nil {
		return err
	}
	n.removeCredentials(er, r)
	return nil
}

// configureModuleRoute hands r to the module and removes the credentials
// before the upstream unless the route forwards them; checkLimits: the
// ext_authz Check takes r's limits for the opaque keys the module passes.
func (n *nativeJWT) configureModuleRoute(er *routev3.Route, r ir.Route, checkLimits bool) error {
	if err := n.module.configureRoute(er, r, checkLimits); err != nil {
		return err
	}
	if n.moduleCharges(r) {
		if err := n.configureChargeRoute(er, r); err != nil {
			return err
		}
	}
	n.removeCredentials(er, r)
	return nil
}

// removeCredentials removes the credentials before the upstream unless
// the route forwards them.
func (n *nativeJWT) removeCredentials(er *routev3.Route, r ir.Route) {
	if r.Auth.ForwardCredentials {
		return
	}
	er.RequestHeadersToRemove = append(er.RequestHeadersToRemove, headerAuthorization)
	if n.keyHeader != "" {
		er.RequestHeadersToRemove = append(er.RequestHeadersToRemove, n.keyHeader)
	}
}

// policies returns the route's deny policies: two credentials (an API key
// besides the token, or a repeated Authorization header, which Envoy's
// matcher sees joined with a comma), a missing role (one needed), a
// missing scope (all needed).
func (n *nativeJWT) policies(ra ir.RouteAuth) map[string]*rbacconfigv3.Principal {
	// A token holds no comma: a comma means several values, which Envoy's
	// matcher sees joined with ",". contains, not a regex over the token.
	ambiguous := []*rbacconfigv3.Principal{headerPrincipal(envoy.HeaderMatchContains(headerAuthorization, ","))}
	if n.keyHeader != "" {
		ambiguous = append(ambiguous, headerPrincipal(envoy.HeaderMatchPresent(n.keyHeader)))
	}
	out := map[string]*rbacconfigv3.Principal{policyAmbiguous: envoy.PrincipalOr(ambiguous...)}
	if len(ra.Roles) > 0 {
		out[policyRole] = envoy.PrincipalNot(n.anyRole(ra.Roles))
	}
	var missing []*rbacconfigv3.Principal
	for _, s := range ra.Scopes {
		missing = append(missing, envoy.PrincipalNot(n.hasScope(s)))
	}
	if len(missing) > 0 {
		out[policyScope] = envoy.PrincipalOr(missing...)
	}
	return out
}

func headerPrincipal(h *routev3.HeaderMatcher) *rbacconfigv3.Principal {
	return &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_Header{Header: h}}
}

// anyRole matches a verified payload whose roles claim (a list, or a
// string split at spaces and commas) holds one of roles. A provider
// without a roles claim never matches.
func (n *nativeJWT) anyRole(roles []string) *rbacconfigv3.Principal {
	var any []*rbacconfigv3.Principal
	for _, p := range n.cfg.Auth.JWT {
		if p.Claims.Roles == "" {
			continue
		}
		path := []string{jwtPayloadKey(p.Name), p.Claims.Roles}
		for _, role := range roles {
			any = append(any,
				envoy.PrincipalMetadata(envoy.JwtAuthnName, path, envoy.ValueListContains(role)),
				envoy.PrincipalMetadata(envoy.JwtAuthnName, path, envoy.ValueStringRegex(`(.*[ ,])?`+regexp.QuoteMeta(role)+`([ ,].*)?`)))
		}
	}
	if len(any) == 0 {
		return envoy.PrincipalNot(&rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_Any{Any: true}})
	}
	return envoy.PrincipalOr(any...)
}

// hasScope matches a verified payload granting scope: in "scope" (jwt_authn
// turns a space-separated string into a list), or, without "scope", in
// "scp" — the ext_authz service's rule.
func (n *nativeJWT) hasScope(scope string) *rbacconfigv3.Principal {
	var any []*rbacconfigv3.Principal
	for _, name := range n.names {
		k := jwtPayloadKey(name)
		any = append(any,
			envoy.PrincipalMetadata(envoy.JwtAuthnName, []string{k, "scope"}, envoy.ValueListContains(scope)),
			envoy.PrincipalAnd(
				envoy.PrincipalNot(envoy.PrincipalMetadata(envoy.JwtAuthnName, []string{k, "scope"}, envoy.ValuePresent())),
				envoy.PrincipalMetadata(envoy.JwtAuthnName, []string{k, "scp"}, envoy.ValueListContains(scope))))
	}
	return envoy.PrincipalOr(any...)
}

// needsExtAuthz reports whether a protected route of gw is not decided in
// Envoy, so the gateway needs the ext_authz filter and cluster.
func (n *nativeJWT) needsExtAuthz(gw *ir.Gateway) bool {
	for rp := range eachAuthPath(n.cfg, gw, n.keyJWKS != "") {
		if rp.Path == AuthPathExtAuthz || rp.Path == AuthPathEnvoyKey || rp.Path == AuthPathEnvoyMixed {
			return true
		}
	}
	return false
}

// decorate returns next followed, when enabled, by setting the local
// reply mappers that give native refusals ext_authz's answers.
func (n *nativeJWT) decorate(next func(*hcmv3.HttpConnectionManager)) (func(*hcmv3.HttpConnectionManager), error) {
	if n.module != nil || (!n.authnJWT() && !n.keys && !n.mixed) {
		return next, nil
	}
	lr, err := jwtLocalReplies(n.keys, n.mixed, n.keyHeader)
	if err != nil {
		return nil, err
	}
	return func(m *hcmv3.HttpConnectionManager) {
		next(m)
		m.LocalReplyConfig = lr
	}, nil
}

// configureRouteAuth sets a route's authentication: the native filters on a
// native JWT route (with ext_authz turned off there when the gateway runs
// it), the native key (or mixed) filters and the ext_authz settings (for
// opaque keys) on a native key (or mixed) route, the ext_authz settings on
// every other.
func configureRouteAuth(er *routev3.Route, r ir.Route, a *authz, n *nativeJWT) error {
	if !n.native(r) {
		err := a.configureRoute(er, r.Auth, r.Name, a.takesLimits(r))
		switch {
		case err != nil:
			return err
		case n.moduleKeyRoute(r):
			return n.configureModuleRoute(er, r, a.takesLimits(r))
		case n.nativeKey(r):
			return n.configureKeyRoute(er, r)
		case n.nativeMixed(r):
			return n.configureMixedRoute(er, r)
		}
		return nil
	}
	if a.enabled {
		if err := envoy.SetRouteFilterConfig(er, envoy.ExtAuthzName, envoy.ExtAuthzPerRouteDisabled()); err != nil {
			return err
		}
	}
	return n.configureRoute(er, r)
}
