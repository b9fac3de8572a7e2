package envoy

import (
	"strings"
	"testing"
)

func TestBootstrapStatsListener(t *testing.T) {
	tests := []struct {
		name          string
		statsPort     uint32
		wantListeners int
		wantClusters  int
		wantErr       string
	}{
		{name: "off", statsPort: 0, wantListeners: 0, wantClusters: 1},
		{name: "on", statsPort: 19001, wantListeners: 1, wantClusters: 2},
		{name: "same as admin", statsPort: DefaultAdminPort, wantErr: "is the admin port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Bootstrap(BootstrapOptions{NodeID: "n", Gateway: "g", XDSAddress: "127.0.0.1:18000", StatsPort: tt.statsPort})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(b); err != nil {
				t.Fatal(err)
			}
			sr := b.GetStaticResources()
			if len(sr.GetListeners()) != tt.wantListeners || len(sr.GetClusters()) != tt.wantClusters {
				t.Fatalf("listeners %d clusters %d, want %d and %d", len(sr.GetListeners()), len(sr.GetClusters()), tt.wantListeners, tt.wantClusters)
			}
			if tt.wantListeners == 1 {
				l := sr.GetListeners()[0]
				if l.GetName() != StatsListenerName || l.GetAddress().GetSocketAddress().GetPortValue() != tt.statsPort {
					t.Errorf("listener %s on %v", l.GetName(), l.GetAddress())
				}
				if a := sr.GetClusters()[1].GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress(); a.GetAddress() != DefaultAdminAddress || a.GetPortValue() != DefaultAdminPort {
					t.Errorf("admin cluster points at %v", a)
				}
			}
		})
	}
}
