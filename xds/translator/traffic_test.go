package translator

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

func TestTranslateTrafficErrors(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(c *ir.Config)
		wantErr string
	}{
		{"backend and split", func(c *ir.Config) { firstRoute(c).Split = []ir.WeightedBackend{{Name: "web", Weight: 1}} }, "both a backend and a split"},
		{"zero split", func(c *ir.Config) {
			r := firstRoute(c)
			r.Backend, r.Split = "", []ir.WeightedBackend{{Name: "web", Weight: 0}}
		}, "split weights add up to 0"},
		{"undefined split target", func(c *ir.Config) {
			r := firstRoute(c)
			r.Backend, r.Split = "", []ir.WeightedBackend{{Name: "nope", Weight: 1}}
		}, `backend "nope": referenced by a route but not defined`},
		{"undefined mirror", func(c *ir.Config) { firstRoute(c).Mirror = &ir.Mirror{Backend: "nope", Percent: 5} }, `backend "nope"`},
		{"mirror percent", func(c *ir.Config) { firstRoute(c).Mirror = &ir.Mirror{Backend: "web", Percent: 0} }, "mirror percent 0"},
		{"negative idle timeout", func(c *ir.Config) { firstRoute(c).IdleTimeout = -time.Second }, "negative idle timeout"},
		{"retries without conditions", func(c *ir.Config) { firstRoute(c).Retry = &ir.Retry{Attempts: 1} }, "retries need conditions"},
		{"negative per-try timeout", func(c *ir.Config) {
			firstRoute(c).Retry = &ir.Retry{Attempts: 1, On: []string{"5xx"}, PerTryTimeout: -1}
		}, "negative retry duration"},
		{"dns and endpoints", func(c *ir.Config) { c.Backends[0].DNS = &ir.DNSTarget{Host: "web.internal", Port: 80} }, "both endpoints and a DNS host"},
		{"health check without interval", func(c *ir.Config) {
			c.Backends[0].HealthCheck = &ir.HealthCheck{Path: "/", Timeout: time.Second, HealthyThreshold: 1, UnhealthyThreshold: 1}
		}, "health check needs a positive interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := loadCase(t, "minimal")
			tt.mutate(&tc.Config)
			_, err := Translate(&tc.Config, tc.Gateway, tc.options())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Translate error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestSplitAndMirrorTargetsGetClusters checks that a gateway gets the
// clusters of its routes' split and mirror targets, and that a DNS backend
// gets no ClusterLoadAssignment.
func TestSplitAndMirrorTargetsGetClusters(t *testing.T) {
	tc := loadCase(t, "traffic")
	r, err := Translate(&tc.Config, tc.Gateway, tc.options())
	if err != nil {
		t.Fatal(err)
	}
	var clusters, clas []string
	for _, c := range r.Clusters {
		clusters = append(clusters, c.GetName())
	}
	for _, cla := range r.Endpoints {
		clas = append(clas, strings.Split(cla.GetClusterName(), "~")[0])
	}
	for _, want := range []string{"checkout-v1", "checkout-v2", "users-shadow", "geo"} {
		if !slices.Contains(clusters, want) {
			t.Errorf("no cluster %q in %v", want, clusters)
		}
	}
	if slices.Contains(clas, "geo") {
		t.Errorf("DNS backend geo got a ClusterLoadAssignment: %v", clas)
	}
	if err := Validate(r); err != nil {
		t.Fatal(err)
	}
}
