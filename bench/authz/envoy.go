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
)

// ports of the three listeners and the services behind them.
type ports struct {
	admin, plain, extAuthz, jwtAuthn, upstream, authz int
}

// bootstrap is a static Envoy with three listeners to one upstream:
// plain, our ext_authz (as the translator configures it), and Envoy's
// native jwt_authn with the same JWKS.
func bootstrap(p ports, iss, aud, jwks string) (*bootstrapv3.Bootstrap, error) {
	up := envoy.StaticCluster("upstream", time.Second, envoy.LbEndpoint("127.0.0.1", uint32(p.upstream)))
	authz, err := envoy.GRPCCluster(contract.ClusterName, fmt.Sprintf("127.0.0.1:%d", p.authz), time.Second)
	if err != nil {
		return nil, err
	}
	var listeners []*listenerv3.Listener
	for _, l := range []struct {
		name string
		port int
		mk   func() ([]*hcmv3.HttpFilter, *routev3.Route, error)
	}{
		{"plain", p.plain, plainChain},
		{"ext-authz", p.extAuthz, extAuthzChain},
		{"jwt-authn", p.jwtAuthn, func() ([]*hcmv3.HttpFilter, *routev3.Route, error) { return jwtAuthnChain(iss, aud, jwks) }},
	} {
		filters, route, err := l.mk()
		if err != nil {
			return nil, fmt.Errorf("listener %s: %w", l.name, err)
		}
		ln, err := listener(l.name, l.port, filters, route)
		if err != nil {
			return nil, err
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

func route() *routev3.Route {
	return envoy.Route("all", envoy.RouteMatchPrefix("/"), envoy.RouteToCluster("upstream", 5*time.Second))
}

func plainChain() ([]*hcmv3.HttpFilter, *routev3.Route, error) { return nil, route(), nil }

// extAuthzChain is the chain the translator builds for a JWT route.
func extAuthzChain() ([]*hcmv3.HttpFilter, *routev3.Route, error) {
	strip, err := envoy.HeaderMutationFilter("x-user-id", "x-user-roles", "x-tenant-id", "x-consumer-tier")
	if err != nil {
		return nil, nil, err
	}
	az, err := envoy.ExtAuthzFilter(envoy.ExtAuthzOptions{Cluster: contract.ClusterName, Timeout: 200 * time.Millisecond,
		AllowedHeaders: []string{"authorization", "x-api-key"}, MutableHeaders: []string{"authorization", "x-api-key", "x-user-id", "x-user-roles", "x-tenant-id", "x-consumer-tier"}})
	if err != nil {
		return nil, nil, err
	}
	r := route()
	ext := envoy.ExtAuthzPerRouteCheck(map[string]string{contract.KeyRoute: "all", contract.KeyMethods: "jwt", contract.KeyRoles: "user"})
	if err := envoy.SetRouteFilterConfig(r, envoy.ExtAuthzName, ext); err != nil {
		return nil, nil, err
	}
	return []*hcmv3.HttpFilter{strip, az}, r, nil
}

// jwtAuthnChain is Envoy's native JWT filter with the same keys.
func jwtAuthnChain(iss, aud, jwks string) ([]*hcmv3.HttpFilter, *routev3.Route, error) {
	cfg := &jwtv3.JwtAuthentication{
		Providers: map[string]*jwtv3.JwtProvider{"corp": {
			Issuer: iss, Audiences: []string{aud},
			JwksSourceSpecifier: &jwtv3.JwtProvider_LocalJwks{LocalJwks: &corev3.DataSource{
				Specifier: &corev3.DataSource_InlineString{InlineString: jwks}}},
			ClockSkewSeconds: 30,
		}},
		Rules: []*jwtv3.RequirementRule{{
			Match:           envoy.RouteMatchPrefix("/"),
			RequirementType: &jwtv3.RequirementRule_Requires{Requires: &jwtv3.JwtRequirement{RequiresType: &jwtv3.JwtRequirement_ProviderName{ProviderName: "corp"}}},
		}},
	}
	a, err := envoy.Any(cfg)
	if err != nil {
		return nil, nil, err
	}
	f := &hcmv3.HttpFilter{Name: "envoy.filters.http.jwt_authn", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}
	return []*hcmv3.HttpFilter{f}, route(), nil
}
