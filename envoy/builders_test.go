package envoy

import (
	"bytes"
	"slices"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestHTTPConnectionManager(t *testing.T) {
	extra := &hcmv3.HttpFilter{
		Name:       "first",
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: MustAny(&structpb.Struct{})},
	}
	tests := []struct {
		name        string
		filters     []*hcmv3.HttpFilter
		wantFilters []string
	}{
		{name: "router only", wantFilters: []string{RouterName}},
		{name: "router appended last", filters: []*hcmv3.HttpFilter{extra}, wantFilters: []string{"first", RouterName}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := HTTPConnectionManager("stats", "routes", tt.filters...)
			var names []string
			for _, f := range m.GetHttpFilters() {
				names = append(names, f.GetName())
				if f.GetTypedConfig() == nil {
					t.Errorf("filter %q has no typed_config", f.GetName())
				}
			}
			if !slices.Equal(names, tt.wantFilters) {
				t.Errorf("filters = %v, want %v", names, tt.wantFilters)
			}
			if m.GetStatPrefix() != "stats" || m.GetRds().GetRouteConfigName() != "routes" || m.GetRds().GetConfigSource().GetAds() == nil {
				t.Errorf("stat prefix / RDS = %q / %v", m.GetStatPrefix(), m.GetRds())
			}
			if !m.GetUseRemoteAddress().GetValue() || !m.GetNormalizePath().GetValue() || !m.GetMergeSlashes() ||
				m.GetPathWithEscapedSlashesAction() != hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT ||
				!m.GetStripAnyHostPort() || !m.GetGenerateRequestId().GetValue() ||
				m.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction().String() != "REJECT_REQUEST" {
				t.Errorf("edge defaults missing: %v", m)
			}
		})
	}
}

func TestHeaderMatchMethods(t *testing.T) {
	tests := []struct {
		name    string
		methods []string
		want    *routev3.HeaderMatcher
	}{
		{name: "none", methods: nil, want: nil},
		{name: "one", methods: []string{"GET"}, want: HeaderMatchExact(":method", "GET")},
		{name: "several", methods: []string{"GET", "POST"}, want: HeaderMatchRegex(":method", "^(GET|POST)$")},
		{name: "quoted", methods: []string{"M-SEARCH", "X.Y"}, want: HeaderMatchRegex(":method", `^(M-SEARCH|X\.Y)$`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HeaderMatchMethods(tt.methods...); !proto.Equal(got, tt.want) {
				t.Errorf("HeaderMatchMethods(%v) = %v, want %v", tt.methods, got, tt.want)
			}
		})
	}
}

func TestClusters(t *testing.T) {
	tests := []struct {
		name        string
		cluster     *clusterv3.Cluster
		wantType    clusterv3.Cluster_DiscoveryType
		wantTimeout *time.Duration
	}{
		{name: "EDS default timeout", cluster: EDSCluster("a", "a~1", 0, clusterv3.Cluster_RANDOM), wantType: clusterv3.Cluster_EDS},
		{name: "EDS timeout", cluster: EDSCluster("a", "", time.Second, clusterv3.Cluster_RANDOM), wantType: clusterv3.Cluster_EDS, wantTimeout: ptr(time.Second)},
		{name: "static IPs", cluster: StaticCluster("s", time.Second, LbEndpoint("10.0.0.1", 1), LbEndpoint("::1", 2)), wantType: clusterv3.Cluster_STATIC, wantTimeout: ptr(time.Second)},
		{name: "host name", cluster: StaticCluster("s", 0, LbEndpoint("10.0.0.1", 1), LbEndpoint("cp.local", 2)), wantType: clusterv3.Cluster_STRICT_DNS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Validate(tt.cluster); err != nil {
				t.Fatal(err)
			}
			if got := tt.cluster.GetType(); got != tt.wantType {
				t.Errorf("type = %v, want %v", got, tt.wantType)
			}
			switch ct := tt.cluster.GetConnectTimeout(); {
			case tt.wantTimeout == nil && ct != nil:
				t.Errorf("connect_timeout = %v, want unset", ct)
			case tt.wantTimeout != nil && ct.AsDuration() != *tt.wantTimeout:
				t.Errorf("connect_timeout = %v, want %v", ct, *tt.wantTimeout)
			}
		})
	}
}

func TestRouteToClusterTimeout(t *testing.T) {
	for _, d := range []time.Duration{0, 15 * time.Second} {
		a := RouteToCluster("c", d)
		if a.GetTimeout() == nil || a.GetTimeout().AsDuration() != d {
			t.Errorf("RouteToCluster timeout %v: got %v, want it set explicitly", d, a.GetTimeout())
		}
	}
}

func TestClusterLoadAssignmentEmpty(t *testing.T) {
	cla := ClusterLoadAssignment("svc")
	if err := Validate(cla); err != nil || len(cla.GetEndpoints()) != 0 {
		t.Fatalf("empty CLA = %v, %v", cla, err)
	}
}

// TestRenderingStable checks that Any packing and JSON rendering give the
// same bytes every time, maps included.
func TestRenderingStable(t *testing.T) {
	msg := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	for _, k := range []string{"z", "a", "m", "b", "y", "c"} {
		msg.Fields[k] = structpb.NewStringValue(k)
	}
	first, err := Any(msg)
	if err != nil {
		t.Fatal(err)
	}
	firstJSON, err := JSON(first)
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		a, err := Any(proto.CloneOf(msg))
		if err != nil {
			t.Fatal(err)
		}
		j, err := JSON(a)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.GetValue(), first.GetValue()) || !bytes.Equal(j, firstJSON) {
			t.Fatal("Any or JSON rendering is not stable")
		}
	}
}

func ptr[T any](v T) *T { return &v }
