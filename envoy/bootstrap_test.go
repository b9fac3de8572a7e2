package envoy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/goccy/go-yaml"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func TestBootstrap(t *testing.T) {
	tests := []struct {
		name        string
		opts        BootstrapOptions
		wantAPI     corev3.ApiConfigSource_ApiType
		wantXDSType clusterv3.Cluster_DiscoveryType
		wantAdmin   string
		wantPort    uint32
	}{
		{
			name:        "defaults",
			opts:        BootstrapOptions{NodeID: "gw-0", Gateway: "public", XDSAddress: "127.0.0.1:18000"},
			wantAPI:     corev3.ApiConfigSource_DELTA_GRPC,
			wantXDSType: clusterv3.Cluster_STATIC,
			wantAdmin:   "127.0.0.1",
			wantPort:    9901,
		},
		{
			name:        "sotw, IPv6 admin, host name control plane",
			opts:        BootstrapOptions{NodeID: "gw-1", Gateway: "internal", XDSAddress: "tollgate.tollgate-system.svc:18000", AdminAddress: "::1", AdminPort: 19000, APIType: APISotW},
			wantAPI:     corev3.ApiConfigSource_GRPC,
			wantXDSType: clusterv3.Cluster_STRICT_DNS,
			wantAdmin:   "::1",
			wantPort:    19000,
		},
		{
			name:        "names YAML would misread",
			opts:        BootstrapOptions{NodeID: "123", Gateway: "true", XDSAddress: "[::1]:18000", APIType: APIDelta},
			wantAPI:     corev3.ApiConfigSource_DELTA_GRPC,
			wantXDSType: clusterv3.Cluster_STATIC,
			wantAdmin:   "127.0.0.1",
			wantPort:    9901,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Bootstrap(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(b); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			checkBootstrap(t, b, tt.opts)
			if got := b.GetDynamicResources().GetAdsConfig().GetApiType(); got != tt.wantAPI {
				t.Errorf("api_type = %v, want %v", got, tt.wantAPI)
			}
			if got := b.GetStaticResources().GetClusters()[0].GetType(); got != tt.wantXDSType {
				t.Errorf("xds_cluster type = %v, want %v", got, tt.wantXDSType)
			}
			admin := b.GetAdmin().GetAddress().GetSocketAddress()
			if admin.GetAddress() != tt.wantAdmin || admin.GetPortValue() != tt.wantPort {
				t.Errorf("admin = %s:%d, want %s:%d", admin.GetAddress(), admin.GetPortValue(), tt.wantAdmin, tt.wantPort)
			}
			checkRendering(t, b, tt.opts)
		})
	}
}

// checkBootstrap checks the settings that every bootstrap must have.
func checkBootstrap(t *testing.T, b *bootstrapv3.Bootstrap, opts BootstrapOptions) {
	t.Helper()
	if b.GetNode().GetId() != opts.NodeID || b.GetNode().GetCluster() != opts.Gateway {
		t.Errorf("node = %v", b.GetNode())
	}
	dyn := b.GetDynamicResources()
	ads := dyn.GetAdsConfig()
	if ads.GetTransportApiVersion() != corev3.ApiVersion_V3 || !ads.GetSetNodeOnFirstMessageOnly() ||
		ads.GetGrpcServices()[0].GetEnvoyGrpc().GetClusterName() != XDSClusterName {
		t.Errorf("ads_config = %v", ads)
	}
	for _, cs := range []*corev3.ConfigSource{dyn.GetCdsConfig(), dyn.GetLdsConfig()} {
		if cs.GetAds() == nil || cs.GetInitialFetchTimeout() == nil || cs.GetInitialFetchTimeout().AsDuration() != 0 {
			t.Errorf("config source = %v, want ADS with initial_fetch_timeout 0s", cs)
		}
	}
	xds := b.GetStaticResources().GetClusters()[0]
	if _, ok := xds.GetTypedExtensionProtocolOptions()[HTTPProtocolOptionsName]; !ok || xds.GetName() != XDSClusterName {
		t.Errorf("xds_cluster = %v, want HTTP/2 protocol options", xds)
	}
	static := b.GetLayeredRuntime().GetLayers()[0].GetStaticLayer().GetFields()
	if static["re2.max_program_size.error_level"].GetNumberValue() != RE2MaxProgramSizeErrorLevel ||
		static["re2.max_program_size.warn_level"].GetNumberValue() != RE2MaxProgramSizeWarnLevel {
		t.Errorf("static runtime layer = %v", static)
	}
	if b.GetLayeredRuntime().GetLayers()[1].GetAdminLayer() == nil {
		t.Error("no admin runtime layer")
	}
}

// checkRendering renders opts as YAML and JSON, checks both parse back to b,
// and has the real Envoy validate both files when it is available.
func checkRendering(t *testing.T, b *bootstrapv3.Bootstrap, opts BootstrapOptions) {
	t.Helper()
	y, err := BootstrapYAML(opts)
	if err != nil {
		t.Fatal(err)
	}
	j, err := BootstrapJSON(opts)
	if err != nil {
		t.Fatal(err)
	}
	fromYAML, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"yaml": fromYAML, "json": j} {
		parsed := &bootstrapv3.Bootstrap{}
		if err := protojson.Unmarshal(data, parsed); err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		if !proto.Equal(parsed, b) {
			t.Errorf("%s rendering does not parse back to the bootstrap:\n%s", name, data)
		}
	}
	envoyValidate(t, map[string][]byte{"bootstrap.yaml": y, "bootstrap.json": j})
}

// envoyValidate writes each file and runs envoy --mode validate on it, or
// does nothing if no Envoy binary is found.
func envoyValidate(t *testing.T, files map[string][]byte) {
	t.Helper()
	bin, err := FindBinary()
	if errors.Is(err, ErrBinaryNotFound) {
		t.Log(err)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := ValidateConfigFile(ctx, bin, path)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.ToLower(string(out)), "deprecated") {
			t.Errorf("envoy reports deprecated fields in %s:\n%s", name, out)
		}
	}
}

func TestBootstrapErrors(t *testing.T) {
	valid := BootstrapOptions{NodeID: "gw-0", Gateway: "public", XDSAddress: "127.0.0.1:18000"}
	tests := []struct {
		name    string
		mutate  func(o *BootstrapOptions)
		wantErr string
	}{
		{"no node ID", func(o *BootstrapOptions) { o.NodeID = "" }, "node ID is required"},
		{"no gateway", func(o *BootstrapOptions) { o.Gateway = "" }, "gateway (node cluster) is required"},
		{"no xDS address", func(o *BootstrapOptions) { o.XDSAddress = "" }, "xDS address is required"},
		{"xDS address without port", func(o *BootstrapOptions) { o.XDSAddress = "127.0.0.1" }, "xDS address"},
		{"xDS port 0", func(o *BootstrapOptions) { o.XDSAddress = "127.0.0.1:0" }, "port in 1-65535"},
		{"xDS port too large", func(o *BootstrapOptions) { o.XDSAddress = "127.0.0.1:70000" }, "port in 1-65535"},
		{"xDS without host", func(o *BootstrapOptions) { o.XDSAddress = ":18000" }, "port in 1-65535"},
		{"xDS list with a bad entry", func(o *BootstrapOptions) { o.XDSAddress = "127.0.0.1:18000,127.0.0.2" }, "xDS address"},
		{"xDS list with an empty entry", func(o *BootstrapOptions) { o.XDSAddress = "127.0.0.1:18000," }, "xDS address"},
		{"xDS TLS to replicas on different hosts without SNI", func(o *BootstrapOptions) {
			o.XDSAddress, o.XDSTLS = "cp-0:18000,cp-1:18000", &XDSTLS{CAFile: "/ca.pem"}
		}, "needs --xds-sni"},
		{"admin on all addresses", func(o *BootstrapOptions) { o.AdminAddress = "0.0.0.0" }, "not a loopback IP address"},
		{"admin host name", func(o *BootstrapOptions) { o.AdminAddress = "localhost" }, "not a loopback IP address"},
		{"unknown API type", func(o *BootstrapOptions) { o.APIType = "rest" }, `unknown xDS API type "rest"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := valid
			tt.mutate(&opts)
			_, err := Bootstrap(opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Bootstrap error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestBootstrapOverloadManager(t *testing.T) {
	opts := BootstrapOptions{NodeID: "n", Gateway: "g", XDSAddress: "127.0.0.1:18000"}
	b, err := Bootstrap(opts)
	if err != nil {
		t.Fatal(err)
	}
	if b.GetOverloadManager() != nil {
		t.Errorf("MaxHeapBytes 0: overload manager %v, want none", b.GetOverloadManager())
	}
	opts.MaxHeapBytes, opts.MaxDownstreamConnections = 512<<20, 1000
	if b, err = Bootstrap(opts); err != nil {
		t.Fatal(err)
	}
	if err := Validate(b); err != nil {
		t.Fatal(err)
	}
	om := b.GetOverloadManager()
	var monitors, actions []string
	for _, m := range om.GetResourceMonitors() {
		monitors = append(monitors, m.GetName())
	}
	for _, a := range om.GetActions() {
		actions = append(actions, fmt.Sprintf("%s@%.2f", a.GetName(), a.GetTriggers()[0].GetThreshold().GetValue()))
	}
	wantMonitors := []string{"envoy.resource_monitors.fixed_heap", "envoy.resource_monitors.global_downstream_max_connections"}
	wantActions := []string{"envoy.overload_actions.shrink_heap@0.90", "envoy.overload_actions.disable_http_keepalive@0.95",
		"envoy.overload_actions.stop_accepting_requests@0.98"}
	if !slices.Equal(monitors, wantMonitors) || !slices.Equal(actions, wantActions) {
		t.Errorf("overload manager: monitors %v actions %v", monitors, actions)
	}
}
