package envoy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// TestRuntimeRaisesRegexLimit checks with the real Envoy that the bootstrap's
// runtime layers are what lets a large regex through: [\p{L}\p{N}]{0,450}
// is 902 Go RE2 instructions (under the policy's cap of 1000) and about
// 4954 in Envoy's RE2, far above Envoy's default limit of 100 and below
// RE2MaxProgramSizeErrorLevel.
func TestRuntimeRaisesRegexLimit(t *testing.T) {
	bin, err := FindBinary()
	if errors.Is(err, ErrBinaryNotFound) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		runtime bool
		wantErr string
	}{
		{name: "with runtime layers", runtime: true},
		{name: "without runtime layers", runtime: false, wantErr: "max program size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bootstrapWithRegexRoute(t, `/[\p{L}\p{N}]{0,450}`)
			if !tt.runtime {
				b.LayeredRuntime = nil
			}
			y, err := YAML(b)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "bootstrap.yaml")
			if err := os.WriteFile(path, y, 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err = ValidateConfigFile(ctx, bin, path)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("envoy validate error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// bootstrapWithRegexRoute returns a bootstrap with a static listener whose
// inline route table has one route matching regex, forwarding to the
// xds_cluster (any existing cluster will do).
func bootstrapWithRegexRoute(t *testing.T, regex string) *bootstrapv3.Bootstrap {
	t.Helper()
	b, err := Bootstrap(BootstrapOptions{NodeID: "n", Gateway: "g", XDSAddress: "127.0.0.1:18000"})
	if err != nil {
		t.Fatal(err)
	}
	hcm := HTTPConnectionManager("regex", "regex")
	hcm.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{
		RouteConfig: RouteConfiguration("regex", VirtualHost("any", []string{"*"},
			Route("big", RouteMatchRegex(regex), RouteToCluster(XDSClusterName, 0)))),
	}
	filter, err := HTTPConnectionManagerFilter(hcm)
	if err != nil {
		t.Fatal(err)
	}
	b.StaticResources.Listeners = []*listenerv3.Listener{Listener("regex", "127.0.0.1", 10000, filter)}
	if err := Validate(b); err != nil {
		t.Fatal(err)
	}
	return b
}
