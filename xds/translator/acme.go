package translator

import (
	"errors"
	"fmt"
	"slices"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// ACME HTTP-01 challenge routing.
const (
	acmeChallengePrefix    = "/.well-known/acme-challenge/"
	acmeChallengeRouteName = "acme-challenge"
	acmeConnectTimeout     = time.Second
	acmeRouteTimeout       = 10 * time.Second
)

// acmeChallenges, when gw has ACME listeners, puts a route for
// /.well-known/acme-challenge/ to the control plane's HTTP-01 responder at
// opts.ACMEAddress first in every virtual host of gw's plaintext listeners
// (every optional HTTP filter disabled on it, see challengeFiltersOff;
// before the HTTPS redirect too), adding a
// catch-all virtual host holding only that route where none serves "*", and
// returns the responder's cluster ir.ACMEChallengeClusterName. routes are in
// the order of gw.Listeners. It returns nil when gw has no ACME listener.
func acmeChallenges(gw *ir.Gateway, routes []*routev3.RouteConfiguration, off map[string]proto.Message, opts Options) (*clusterv3.Cluster, error) {
	if len(gw.ACMEListeners()) == 0 {
		return nil, nil
	}
	if opts.ACMEAddress == "" {
		return nil, errors.New("listeners get certificates over ACME but no HTTP-01 challenge responder address is set: start the control plane with --acme-addr")
	}
	if slices.Contains(gw.BackendNames(), ir.ACMEChallengeClusterName) {
		return nil, fmt.Errorf("backend %q: the name is reserved for the ACME challenge responder cluster", ir.ACMEChallengeClusterName)
	}
	c, err := envoy.HTTPCluster(ir.ACMEChallengeClusterName, opts.ACMEAddress, acmeConnectTimeout)
	if err != nil {
		return nil, fmt.Errorf("acme challenge responder: %w", err)
	}
	for i, l := range gw.Listeners {
		if l.TLS != nil {
			continue
		}
		route := envoy.Route(acmeChallengeRouteName, envoy.RouteMatchPrefix(acmeChallengePrefix),
			envoy.RouteToCluster(ir.ACMEChallengeClusterName, acmeRouteTimeout))
		if !gw.RedirectHTTPS { // a redirect listener runs the router only
			for name, cfg := range off {
				if err := envoy.SetRouteFilterConfig(route, name, cfg); err != nil {
					return nil, err
				}
			}
		}
		routes[i].VirtualHosts = withFirstRoute(routes[i].GetVirtualHosts(), route)
	}
	return c, nil
}

// withFirstRoute returns copies of vhosts with route first in each (the
// virtual hosts may be shared by several route tables), plus a catch-all
// virtual host with route alone if none serves "*".
func withFirstRoute(vhosts []*routev3.VirtualHost, route *routev3.Route) []*routev3.VirtualHost {
	out := make([]*routev3.VirtualHost, 0, len(vhosts)+1)
	catchAll := false
	for _, vh := range vhosts {
		c := proto.Clone(vh).(*routev3.VirtualHost)
		c.Routes = append([]*routev3.Route{proto.Clone(route).(*routev3.Route)}, c.Routes...)
		out = append(out, c)
		catchAll = catchAll || slices.Contains(vh.GetDomains(), "*")
	}
	if !catchAll {
		out = append(out, envoy.VirtualHost(acmeChallengeRouteName, []string{"*"}, route))
	}
	return out
}

// challengeFiltersOff returns the per-route configs that turn off, on the
// challenge route, each optional HTTP filter the gateway's listeners run
// (keyed by filter name): the CA's fetch needs no authentication, no
// compression, no Lua and no body transformation (CORS and rate limits act
// only on routes that configure them). A new optional filter adds its line
// here.
func challengeFiltersOff(a *authz, n *nativeJWT, hf *httpFeatures, tf *transform) map[string]proto.Message {
	off := map[string]proto.Message{}
	if a.enabled {
		off[envoy.ExtAuthzName] = envoy.ExtAuthzPerRouteDisabled()
	}
	if n.enabled {
		off[n.jwtAuthnName()] = envoy.JwtPerRouteDisabled()
		off[envoy.RBACName] = envoy.RBACPerRouteDisabled()
		off[jwtIdentityFilter] = envoy.LuaPerRouteDisabled()
	}
	for _, c := range hf.compressors {
		off[c.opts.Name] = envoy.CompressorPerRouteDisabled()
	}
	if hf.lua {
		off[envoy.LuaName] = envoy.LuaPerRouteDisabled()
		off[envoy.IdentitySnapshotName] = envoy.FilterDisabled()
		off[envoy.IdentityGuardName] = envoy.FilterDisabled()
	}
	if tf.enabled {
		off[envoy.ExtProcName] = envoy.ExtProcPerRouteDisabled()
	}
	return off
}
