package envoy

import (
	"fmt"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// Names of the optional stats listener of the bootstrap.
const (
	// StatsListenerName is the static listener that exposes the admin
	// interface's read-only /ready and /stats/prometheus to the network.
	StatsListenerName = "tollgate_stats"
	// AdminClusterName is the static cluster of the loopback admin
	// interface, the stats listener's only upstream.
	AdminClusterName = "envoy_admin"
)

// statsPaths are the admin paths the stats listener forwards (GET only);
// every other request gets a 404 without reaching the admin interface.
var statsPaths = []string{"/ready", "/stats/prometheus"}

// statsResources returns, when opts.StatsPort is set, a listener on
// 0.0.0.0:StatsPort that forwards GET /ready and GET /stats/prometheus to
// the loopback admin interface, so that kubelet probes and Prometheus can
// reach them while the admin interface (which has no authentication and
// mutating endpoints such as /quitquitquit) stays on loopback.
// It returns nils when StatsPort is 0.
func statsResources(opts BootstrapOptions) (*listenerv3.Listener, *clusterv3.Cluster, error) {
	if opts.StatsPort == 0 {
		return nil, nil, nil
	}
	if opts.StatsPort == opts.AdminPort {
		return nil, nil, fmt.Errorf("bootstrap: stats port %d is the admin port", opts.StatsPort)
	}
	hcm := &hcmv3.HttpConnectionManager{
		CodecType:      hcmv3.HttpConnectionManager_AUTO,
		StatPrefix:     StatsListenerName,
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: statsRoutes()},
		HttpFilters:    []*hcmv3.HttpFilter{RouterFilter()},
	}
	f, err := HTTPConnectionManagerFilter(hcm)
	if err != nil {
		return nil, nil, fmt.Errorf("bootstrap: stats listener: %w", err)
	}
	l := Listener(StatsListenerName, "0.0.0.0", opts.StatsPort, f)
	c := StaticCluster(AdminClusterName, xdsConnectTimeout, LbEndpoint(opts.AdminAddress, opts.AdminPort))
	return l, c, nil
}

// statsRoutes routes the GET requests of statsPaths to the admin cluster and
// answers everything else with 404.
func statsRoutes() *routev3.RouteConfiguration {
	routes := make([]*routev3.Route, 0, len(statsPaths)+1)
	for _, p := range statsPaths {
		routes = append(routes, &routev3.Route{
			Match: &routev3.RouteMatch{
				PathSpecifier: &routev3.RouteMatch_Path{Path: p},
				Headers:       []*routev3.HeaderMatcher{HeaderMatchMethods("GET", "HEAD")},
			},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{
				ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: AdminClusterName},
			}},
		})
	}
	routes = append(routes, &routev3.Route{
		Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 404}},
	})
	return &routev3.RouteConfiguration{
		Name:         StatsListenerName,
		VirtualHosts: []*routev3.VirtualHost{{Name: StatsListenerName, Domains: []string{"*"}, Routes: routes}},
	}
}

// withStats adds the stats listener and the admin cluster to b when
// opts.StatsPort is set.
func withStats(b *bootstrapv3.Bootstrap, opts BootstrapOptions) (*bootstrapv3.Bootstrap, error) {
	l, c, err := statsResources(opts)
	if err != nil || l == nil {
		return b, err
	}
	b.StaticResources.Listeners = append(b.StaticResources.Listeners, l)
	b.StaticResources.Clusters = append(b.StaticResources.Clusters, c)
	return b, nil
}
