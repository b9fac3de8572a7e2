package main

import (
	"fmt"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	jwtv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/extauthz/contract"
	"github.com/tollgate/tollgate/policy/ir"
)

// Names in the bench bootstrap. The listener names are also the HTTP
// connection managers' stat prefixes.
const (
	upstreamCluster  = "upstream"
	plainListener    = "plain"
	extAuthzListener = "ext_authz"
	jwtAuthnListener = "jwt_authn"
	jwtAuthnFilter   = "envoy.filters.http.jwt_authn"
	jwtAuthnProvider = "corp"
	benchRouteName   = "orders"
	// jwtAuthnCacheSize is the size of jwt_authn's token cache (LRU).
	jwtAuthnCacheSize = 100
)

// ports of the Envoy admin interface, its three listeners, and the two
// in-process servers behind them.
type ports struct {
	admin, plain, extAuthz, jwtAuthn int
	upstream, authz                  int
}

// bootstrap is a static Envoy (no xDS) with three listeners routing
// everything to one upstream: plain, Tollgate's ext_authz, and Envoy's
// native jwt_authn with the same JWKS. Every listener starts with the
// header_mutation filter the translator always installs, so the listeners
// differ only in their auth filter.
func bootstrap(p ports, cfg *ir.Config) (*bootstrapv3.Bootstrap, error) {
	authz, err := envoy.GRPCCluster(contract.ClusterName, fmt.Sprintf("127.0.0.1:%d", p.authz), time.Second)
	if err != nil {
		return nil, fmt.Errorf("authz cluster: %w", err)
	}
	up := envoy.StaticCluster(upstreamCluster, time.Second, envoy.LbEndpoint("127.0.0.1", uint32(p.upstream)))
	chains := []struct {
		name  string
		port  int
		chain func(*ir.Config) ([]*hcmv3.HttpFilter, *routev3.Route, error)
	}{
		{plainListener, p.plain, plainChain},
		{extAuthzListener, p.extAuthz, extAuthzChain},
		{jwtAuthnListener, p.jwtAuthn, jwtAuthnChain},
	}
	listeners := make([]*listenerv3.Listener, 0, len(chains))
	for _, c := range chains {
		filters, route, err := c.chain(cfg)
		if err != nil {
			return nil, fmt.Errorf("listener %s: %w", c.name, err)
		}
		ln, err := listener(c.name, c.port, filters, route)
		if err != nil {
			return nil, fmt.Errorf("listener %s: %w", c.name, err)
		}
		listeners = append(listeners, ln)
	}
	return &bootstrapv3.Bootstrap{
		Admin: &bootstrapv3.Admin{Address: envoy.SocketAddress("127.0.0.1", uint32(p.admin))},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{
			Listeners: listeners, Clusters: []*clusterv3.Cluster{up, authz},
		},
		LayeredRuntime: envoy.RuntimeLayers(),
	}, nil
}

// listener is the translator's edge HTTP connection manager with filters
// (the router is appended) and an inline route table of one route.
func listener(name string, port int, filters []*hcmv3.HttpFilter, r *routev3.Route) (*listenerv3.Listener, error) {
	m := envoy.HTTPConnectionManager(name, name, filters...)
	m.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{
		RouteConfig: envoy.RouteConfiguration(name, envoy.VirtualHost("any", []string{"*"}, r)),
	}
	f, err := envoy.HTTPConnectionManagerFilter(m)
	if err != nil {
		return nil, err
	}
	return envoy.Listener(name, "127.0.0.1", uint32(port), f), nil
}

func upstreamRoute() *routev3.Route {
	return envoy.Route(benchRouteName, envoy.RouteMatchPrefix("/"), envoy.RouteToCluster(upstreamCluster, 5*time.Second))
}

// stripIdentity is the header_mutation filter that removes client-sent
// identity headers, first in every chain the translator builds.
func stripIdentity(cfg *ir.Config) (*hcmv3.HttpFilter, error) {
	return envoy.HeaderMutationFilter(cfg.Auth.IdentityHeaders.Names()...)
}

func plainChain(cfg *ir.Config) ([]*hcmv3.HttpFilter, *routev3.Route, error) {
	strip, err := stripIdentity(cfg)
	if err != nil {
		return nil, nil, err
	}
	return []*hcmv3.HttpFilter{strip}, upstreamRoute(), nil
}

// extAuthzChain is what the translator builds for a gateway with a route
// that accepts JWTs and needs role "user": header_mutation, then
// ext_authz with the translator's options, and the route's requirement
// as per-route context extensions.
func extAuthzChain(cfg *ir.Config) ([]*hcmv3.HttpFilter, *routev3.Route, error) {
	strip, err := stripIdentity(cfg)
	if err != nil {
		return nil, nil, err
	}
	credentials := []string{"authorization", cfg.Auth.APIKeys.Header}
	check, err := envoy.ExtAuthzFilter(envoy.ExtAuthzOptions{
		Cluster:        contract.ClusterName,
		Timeout:        envoy.DefaultExtAuthzTimeout,
		AllowedHeaders: append([]string{"origin", "access-control-request-method"}, credentials...),
		MutableHeaders: append(credentials, cfg.Auth.IdentityHeaders.Names()...),
	})
	if err != nil {
		return nil, nil, err
	}
	r := upstreamRoute()
	ext := envoy.ExtAuthzPerRouteCheck(map[string]string{
		contract.KeyRoute: benchRouteName, contract.KeyMethods: ir.MethodJWT, contract.KeyRoles: benchRole,
	})
	if err := envoy.SetRouteFilterConfig(r, envoy.ExtAuthzName, ext); err != nil {
		return nil, nil, err
	}
	return []*hcmv3.HttpFilter{strip, check}, r, nil
}

// jwtAuthnChain is Envoy's native JWT filter: one provider with the same
// issuer, audience and (inline) JWKS, required on every path, the token
// not forwarded upstream. Its per-token cache of verified tokens is off
// unless jwt_cache_config is set: the bench sets it, with the documented
// default size, so that both sides cache a token they have verified.
func jwtAuthnChain(cfg *ir.Config) ([]*hcmv3.HttpFilter, *routev3.Route, error) {
	strip, err := stripIdentity(cfg)
	if err != nil {
		return nil, nil, err
	}
	p := cfg.Auth.JWT[0]
	authn := &jwtv3.JwtAuthentication{
		Providers: map[string]*jwtv3.JwtProvider{jwtAuthnProvider: {
			Issuer: p.Issuer, Audiences: p.Audiences, Forward: false,
			JwksSourceSpecifier: &jwtv3.JwtProvider_LocalJwks{LocalJwks: &corev3.DataSource{
				Specifier: &corev3.DataSource_InlineString{InlineString: p.JWKS}}},
			ClockSkewSeconds: uint32(p.ClockSkew / time.Second),
			JwtCacheConfig:   &jwtv3.JwtCacheConfig{JwtCacheSize: jwtAuthnCacheSize},
		}},
		Rules: []*jwtv3.RequirementRule{{
			Match: envoy.RouteMatchPrefix("/"),
			RequirementType: &jwtv3.RequirementRule_Requires{Requires: &jwtv3.JwtRequirement{
				RequiresType: &jwtv3.JwtRequirement_ProviderName{ProviderName: jwtAuthnProvider}}},
		}},
	}
	a, err := envoy.Any(authn)
	if err != nil {
		return nil, nil, fmt.Errorf("jwt_authn filter: %w", err)
	}
	f := &hcmv3.HttpFilter{Name: jwtAuthnFilter, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}
	return []*hcmv3.HttpFilter{strip, f}, upstreamRoute(), nil
}
