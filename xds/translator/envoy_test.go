package translator

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tollgate/tollgate/envoy"
)

// TestEnvoyAcceptsTranslation loads every case's translation into a real
// Envoy 1.40 in validate mode: a delta-ADS bootstrap whose static resources
// are the translated listeners (each with its RouteConfiguration inlined
// into the HTTP connection manager), the translated EDS clusters, and one
// STATIC cluster per ClusterLoadAssignment carrying it as load_assignment.
// Envoy checks routes against the clusters, so it also proves every route's
// cluster exists.
func TestEnvoyAcceptsTranslation(t *testing.T) {
	bin, err := envoy.FindBinary()
	if errors.Is(err, envoy.ErrBinaryNotFound) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range caseNames(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := staticBootstrap(t, translateCase(t, name))
			if err := envoy.Validate(b); err != nil {
				t.Fatalf("static bootstrap: %v", err)
			}
			y, err := envoy.YAML(b)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), name+".yaml")
			if err := os.WriteFile(path, y, 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := envoy.ValidateConfigFile(ctx, bin, path)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(strings.ToLower(string(out)), "deprecated") {
				t.Errorf("envoy reports deprecated fields:\n%s", out)
			}
		})
	}
}

// staticBootstrap returns a bootstrap that holds r as static resources.
func staticBootstrap(t *testing.T, r *Resources) *bootstrapv3.Bootstrap {
	t.Helper()
	b, err := envoy.Bootstrap(envoy.BootstrapOptions{NodeID: "test", Gateway: "test", XDSAddress: "127.0.0.1:18000"})
	if err != nil {
		t.Fatal(err)
	}
	routes := make(map[string]*routev3.RouteConfiguration, len(r.Routes))
	for _, rc := range r.Routes {
		routes[rc.GetName()] = rc
	}
	for _, l := range r.Listeners {
		b.StaticResources.Listeners = append(b.StaticResources.Listeners, inlineRoutes(t, l, routes))
	}
	for _, c := range r.Clusters {
		b.StaticResources.Clusters = append(b.StaticResources.Clusters, proto.CloneOf(c))
	}
	for _, cla := range r.Endpoints {
		b.StaticResources.Clusters = append(b.StaticResources.Clusters, &clusterv3.Cluster{
			Name:                 "cla/" + cla.GetClusterName(),
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
			LoadAssignment:       proto.CloneOf(cla),
		})
	}
	staticSecrets(t, b, r)
	return b
}

// inlineRoutes returns a copy of l whose HTTP connection managers carry
// their RDS route configuration inline.
func inlineRoutes(t *testing.T, l *listenerv3.Listener, routes map[string]*routev3.RouteConfiguration) *listenerv3.Listener {
	t.Helper()
	l = proto.CloneOf(l)
	for _, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			hcm := &hcmv3.HttpConnectionManager{}
			if err := anypb.UnmarshalTo(f.GetTypedConfig(), hcm, proto.UnmarshalOptions{}); err != nil {
				t.Fatalf("listener %q: %v", l.GetName(), err)
			}
			rc, ok := routes[hcm.GetRds().GetRouteConfigName()]
			if !ok {
				t.Fatalf("listener %q: no route configuration %q", l.GetName(), hcm.GetRds().GetRouteConfigName())
			}
			hcm.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: rc}
			a, err := envoy.Any(hcm)
			if err != nil {
				t.Fatal(err)
			}
			f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
		}
	}
	return l
}
