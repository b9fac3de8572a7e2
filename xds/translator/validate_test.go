package translator

import (
	"strconv"
	"strings"
	"testing"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tollgate/tollgate/envoy"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(t *testing.T, r *Resources)
		wantErr []string // substrings; empty means valid
	}{
		{
			name:   "valid",
			mutate: func(*testing.T, *Resources) {},
		},
		{
			name: "HCM inside Any fails PGV",
			mutate: func(t *testing.T, r *Resources) {
				hcm := envoy.HTTPConnectionManager("", "http") // stat_prefix is required
				setFilter(t, r.Listeners[0], hcm)
			},
			wantErr: []string{`listener "http"`, "HttpConnectionManager", "StatPrefix"},
		},
		{
			name: "router inside nested Any fails to unpack",
			mutate: func(t *testing.T, r *Resources) {
				hcm := envoy.HTTPConnectionManager("http", "http")
				hcm.HttpFilters[0].ConfigType = &hcmv3.HttpFilter_TypedConfig{
					TypedConfig: &anypb.Any{TypeUrl: "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router", Value: []byte{0xff}},
				}
				setFilter(t, r.Listeners[0], hcm)
			},
			wantErr: []string{`listener "http"`, "http_filters[0].typed_config", "unpack"},
		},
		{
			name: "Any of an unknown type",
			mutate: func(t *testing.T, r *Resources) {
				r.Listeners[0].FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{
					TypedConfig: &anypb.Any{TypeUrl: "type.googleapis.com/tollgate.NoSuchFilter"},
				}
			},
			wantErr: []string{`listener "http"`, "tollgate.NoSuchFilter", `route configuration "RC": not referenced`},
		},
		{
			name: "resource fails PGV",
			mutate: func(_ *testing.T, r *Resources) {
				r.Routes[0].VirtualHosts[0].Domains = nil // min_items 1
			},
			wantErr: []string{`route configuration "RC"`, "Domains"},
		},
		{
			name: "orphan cluster load assignment",
			mutate: func(_ *testing.T, r *Resources) {
				r.Endpoints = append(r.Endpoints, envoy.ClusterLoadAssignment("orphan"))
			},
			wantErr: []string{`cluster load assignment "orphan": not referenced by any EDS cluster`},
		},
		{
			name: "missing cluster load assignment",
			mutate: func(_ *testing.T, r *Resources) {
				r.Endpoints = nil
			},
			wantErr: []string{`cluster "web": cluster load assignment "web~`, "not found"},
		},
		{
			name: "duplicate cluster load assignment",
			mutate: func(_ *testing.T, r *Resources) {
				r.Endpoints = append(r.Endpoints, r.Endpoints[0])
			},
			wantErr: []string{`cluster load assignment "web~`, "duplicate name"},
		},
		{
			name: "missing route configuration",
			mutate: func(_ *testing.T, r *Resources) {
				r.Routes = nil
			},
			wantErr: []string{`listener "http": route configuration "RC" not found`},
		},
		{
			name: "orphan route configuration",
			mutate: func(_ *testing.T, r *Resources) {
				r.Routes = append(r.Routes, envoy.RouteConfiguration("orphan"))
			},
			wantErr: []string{`route configuration "orphan": not referenced by any listener`},
		},
		{
			name: "route to unknown cluster",
			mutate: func(_ *testing.T, r *Resources) {
				r.Routes[0].VirtualHosts[0].Routes[0].GetRoute().ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: "nope"}
			},
			wantErr: []string{`route configuration "RC": virtual host "any": route "web": cluster "nope" not found`},
		},
		{
			name: "domain served twice",
			mutate: func(_ *testing.T, r *Resources) {
				rc := r.Routes[0]
				rc.VirtualHosts = append(rc.VirtualHosts, envoy.VirtualHost("other", []string{"*"}, rc.VirtualHosts[0].Routes...))
			},
			wantErr: []string{`route configuration "RC": virtual host "other": domain "*" already served by virtual host "any"`},
		},
		{
			name: "domain served twice, differing in case",
			mutate: func(_ *testing.T, r *Resources) {
				rc := r.Routes[0]
				rc.VirtualHosts = []*routev3.VirtualHost{
					envoy.VirtualHost("lower", []string{"api.example.com"}, rc.VirtualHosts[0].Routes...),
					envoy.VirtualHost("upper", []string{"API.example.com"}, rc.VirtualHosts[0].Routes...),
				}
			},
			wantErr: []string{`virtual host "upper": domain "api.example.com" already served by virtual host "lower"`},
		},
		{
			name: "two listeners on one address",
			mutate: func(t *testing.T, r *Resources) {
				filter, err := envoy.HTTPConnectionManagerFilter(envoy.HTTPConnectionManager("http2", "http"))
				if err != nil {
					t.Fatal(err)
				}
				r.Listeners = append(r.Listeners, envoy.Listener("http2", "0.0.0.0", 8080, filter))
			},
			wantErr: []string{`listener "http2": address 0.0.0.0:8080 already bound by listener "http"`},
		},
		{
			name: "duplicate listener name",
			mutate: func(_ *testing.T, r *Resources) {
				r.Listeners = append(r.Listeners, r.Listeners[0])
			},
			wantErr: []string{`listener "http": duplicate name`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := translateCase(t, "minimal")
			rc := r.Routes[0].GetName() // RC in wantErr: "http_<filter hash>"
			tt.mutate(t, r)
			err := Validate(r)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: no error, want %q", tt.wantErr)
			}
			t.Logf("Validate: %v", err)
			for _, want := range tt.wantErr {
				want = strings.ReplaceAll(want, `"RC"`, strconv.Quote(rc))
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate error %q\ndoes not contain %q", err, want)
				}
			}
		})
	}
}

// setFilter replaces the listener's network filter with hcm.
func setFilter(t *testing.T, l *listenerv3.Listener, hcm *hcmv3.HttpConnectionManager) {
	t.Helper()
	f, err := envoy.HTTPConnectionManagerFilter(hcm)
	if err != nil {
		t.Fatal(err)
	}
	l.FilterChains[0].Filters[0] = f
}

// TestValidateAgreesWithSnapshotConsistent checks that every golden case
// passes go-control-plane's own consistency check, and that an orphan CLA
// fails both.
func TestValidateAgreesWithSnapshotConsistent(t *testing.T) {
	for _, name := range caseNames(t) {
		t.Run(name, func(t *testing.T) {
			r := translateCase(t, name)
			consistent := func() error {
				snap, err := cache.NewSnapshot("1", r.ByType())
				if err != nil {
					t.Fatal(err)
				}
				return snap.Consistent()
			}
			if err := consistent(); err != nil {
				t.Fatalf("Consistent: %v", err)
			}
			r.Endpoints = append(r.Endpoints, &endpointv3.ClusterLoadAssignment{ClusterName: "orphan"})
			if consistent() == nil || Validate(r) == nil {
				t.Fatal("orphan CLA passed a consistency check")
			}
		})
	}
}
