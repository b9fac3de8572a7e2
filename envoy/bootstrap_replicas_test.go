package envoy

import (
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

// TestBootstrapReplicaList checks a bootstrap for a list of control-plane
// replicas: one xds_cluster with every replica (round robin), no retry
// budget, and an ADS stream re-established after 100 ms–2 s instead of
// Envoy's 500 ms–30 s; a single address keeps Envoy's default back-off.
// The real Envoy validates the bootstrap when it is available.
func TestBootstrapReplicaList(t *testing.T) {
	tests := []struct {
		name     string
		addr     string
		tls      *XDSTLS
		wantType clusterv3.Cluster_DiscoveryType
		wantEps  int
		backOff  bool
	}{
		{"one address", "127.0.0.1:18000", nil, clusterv3.Cluster_STATIC, 1, false},
		{"three IP replicas", "127.0.0.1:18000, 127.0.0.2:18000,127.0.0.3:18000", nil, clusterv3.Cluster_STATIC, 3, true},
		{"host names", "cp-0.cp:18000,cp-1.cp:18000", nil, clusterv3.Cluster_STRICT_DNS, 2, true},
		{"TLS, one host name on two ports", "cp.internal:18000,cp.internal:18001", &XDSTLS{CAFile: "/ca.pem"}, clusterv3.Cluster_STRICT_DNS, 2, true},
		{"TLS with SNI", "cp-0:18000,cp-1:18000", &XDSTLS{CAFile: "/ca.pem", SNI: "tollgate.internal"}, clusterv3.Cluster_STRICT_DNS, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := BootstrapOptions{NodeID: "n", Gateway: "g", XDSAddress: tt.addr, XDSTLS: tt.tls}
			b, err := Bootstrap(opts)
			if err != nil {
				t.Fatal(err)
			}
			xds := b.GetStaticResources().GetClusters()[0]
			if got := xds.GetType(); got != tt.wantType {
				t.Errorf("xds_cluster type = %v, want %v", got, tt.wantType)
			}
			if n := len(xds.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()); n != tt.wantEps {
				t.Errorf("xds_cluster has %d endpoints, want %d", n, tt.wantEps)
			}
			if xds.GetCircuitBreakers() != nil {
				t.Errorf("xds_cluster has circuit breakers %v, want none", xds.GetCircuitBreakers())
			}
			rp := b.GetDynamicResources().GetAdsConfig().GetGrpcServices()[0].GetEnvoyGrpc().GetRetryPolicy()
			if !tt.backOff {
				if rp != nil {
					t.Errorf("single address: ADS retry policy %v, want Envoy's default", rp)
				}
				return
			}
			bo := rp.GetRetryBackOff()
			if bo.GetBaseInterval().AsDuration() != 100*time.Millisecond || bo.GetMaxInterval().AsDuration() != 2*time.Second {
				t.Errorf("ADS stream back-off = %v, want 100ms–2s", bo)
			}
			if tt.tls == nil {
				checkRendering(t, b, opts)
			}
		})
	}
}
