package envoy

import (
	"bytes"
	"slices"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
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

func TestHeaderMutationFilter(t *testing.T) {
	f, err := HeaderMutationFilter("X-User-Id", "x-tenant-id", "", "x-user-id")
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(f); err != nil {
		t.Fatal(err)
	}
	hm := &headermutationv3.HeaderMutation{}
	if f.GetName() != HeaderMutationName || f.GetTypedConfig().UnmarshalTo(hm) != nil {
		t.Fatalf("filter = %v", f)
	}
	var removed []string
	for _, m := range hm.GetMutations().GetRequestMutations() {
		removed = append(removed, m.GetRemove())
	}
	if want := []string{"x-tenant-id", "x-user-id"}; !slices.Equal(removed, want) {
		t.Errorf("removed = %v, want %v (lower case, sorted, distinct)", removed, want)
	}
	if len(hm.GetMutations().GetResponseMutations()) != 0 {
		t.Error("response mutations set")
	}
}

func TestExtAuthz(t *testing.T) {
	tests := []struct {
		name        string
		opts        ExtAuthzOptions
		wantTimeout time.Duration
		wantStatus  typev3.StatusCode
		wantAllowed []string
		wantRegex   string
	}{
		{
			name:        "defaults",
			opts:        ExtAuthzOptions{Cluster: "authz"},
			wantTimeout: DefaultExtAuthzTimeout, wantStatus: typev3.StatusCode_ServiceUnavailable,
		},
		{
			name: "explicit",
			opts: ExtAuthzOptions{
				Cluster: "authz", Timeout: time.Second, StatusOnError: 403,
				AllowedHeaders: []string{"origin", "Authorization", "authorization"},
				MutableHeaders: []string{"x-user-id", "x.dotted"},
			},
			wantTimeout: time.Second, wantStatus: typev3.StatusCode_Forbidden,
			wantAllowed: []string{"authorization", "origin"},
			wantRegex:   `^(x-user-id|x\.dotted)$`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ExtAuthzFilter(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(f); err != nil {
				t.Fatal(err)
			}
			ea := ExtAuthz(tt.opts)
			if f.GetName() != ExtAuthzName || ea.GetGrpcService().GetEnvoyGrpc().GetClusterName() != "authz" ||
				ea.GetTransportApiVersion().String() != "V3" || ea.GetFailureModeAllow() || !ea.GetValidateMutations() ||
				ea.GetIncludePeerCertificate() || ea.GetClearRouteCache() || !ea.GetEmitFilterStateStats() {
				t.Errorf("ext_authz = %v", ea)
			}
			if got := ea.GetGrpcService().GetTimeout().AsDuration(); got != tt.wantTimeout {
				t.Errorf("timeout = %v, want %v", got, tt.wantTimeout)
			}
			if got := ea.GetStatusOnError().GetCode(); got != tt.wantStatus {
				t.Errorf("status_on_error = %v, want %v", got, tt.wantStatus)
			}
			var allowed []string
			for _, p := range ea.GetAllowedHeaders().GetPatterns() {
				allowed = append(allowed, p.GetExact())
			}
			if !slices.Equal(allowed, tt.wantAllowed) {
				t.Errorf("allowed_headers = %v, want %v", allowed, tt.wantAllowed)
			}
			rules := ea.GetDecoderHeaderMutationRules()
			if !rules.GetDisallowAll().GetValue() || !rules.GetDisallowSystem().GetValue() || !rules.GetDisallowIsError().GetValue() ||
				rules.GetAllowExpression().GetRegex() != tt.wantRegex {
				t.Errorf("decoder_header_mutation_rules = %v, want allow %q", rules, tt.wantRegex)
			}
		})
	}
}

func TestExtAuthzPerRoute(t *testing.T) {
	r := Route("r", RouteMatchPrefix("/"), RouteToCluster("c", 0))
	if err := SetRouteFilterConfig(r, ExtAuthzName, ExtAuthzPerRouteCheck(map[string]string{"route": "r"})); err != nil {
		t.Fatal(err)
	}
	if err := SetRouteFilterConfig(r, "other", ExtAuthzPerRouteDisabled()); err != nil {
		t.Fatal(err)
	}
	if err := Validate(r); err != nil {
		t.Fatal(err)
	}
	check, disabled := &extauthzv3.ExtAuthzPerRoute{}, &extauthzv3.ExtAuthzPerRoute{}
	if err := r.GetTypedPerFilterConfig()[ExtAuthzName].UnmarshalTo(check); err != nil {
		t.Fatal(err)
	}
	if err := r.GetTypedPerFilterConfig()["other"].UnmarshalTo(disabled); err != nil {
		t.Fatal(err)
	}
	if check.GetCheckSettings().GetContextExtensions()["route"] != "r" || !disabled.GetDisabled() {
		t.Errorf("per-route configs = %v, %v", check, disabled)
	}
	// ExtAuthzPerRoute requires one of its oneof fields.
	if err := Validate(&extauthzv3.ExtAuthzPerRoute{}); err == nil {
		t.Error("empty ExtAuthzPerRoute passes validation")
	}
}

func TestGRPCCluster(t *testing.T) {
	tests := []struct {
		addr     string
		wantType clusterv3.Cluster_DiscoveryType
		wantErr  bool
	}{
		{addr: "127.0.0.1:9191", wantType: clusterv3.Cluster_STATIC},
		{addr: "[::1]:9191", wantType: clusterv3.Cluster_STATIC},
		{addr: "authz.svc:9191", wantType: clusterv3.Cluster_STRICT_DNS},
		{addr: "authz.svc", wantErr: true},
		{addr: ":9191", wantErr: true},
		{addr: "authz:70000", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			c, err := GRPCCluster("authz", tt.addr, time.Second)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("GRPCCluster(%q) succeeded", tt.addr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(c); err != nil {
				t.Fatal(err)
			}
			if c.GetType() != tt.wantType || c.GetTypedExtensionProtocolOptions()[HTTPProtocolOptionsName] == nil ||
				c.GetLoadAssignment().GetClusterName() != "authz" || c.GetConnectTimeout().AsDuration() != time.Second {
				t.Errorf("cluster = %v", c)
			}
		})
	}
	if s := GRPCService("c", 0); s.GetTimeout() != nil {
		t.Errorf("GRPCService timeout 0 = %v, want unset", s.GetTimeout())
	}
}
