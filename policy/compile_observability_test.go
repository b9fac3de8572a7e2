package policy

import (
	"slices"
	"testing"
)

// TestRouteStats: observability.routeStats is on unless written false, and
// takes only a boolean.
func TestRouteStats(t *testing.T) {
	routes := "routes: [{name: r, backend: be, auth: none}]\n"
	for _, tt := range []struct {
		name, section string
		wantOff       bool
	}{
		{"default on", "", false},
		{"explicitly on", "observability: {routeStats: true}\n", false},
		{"off", "observability: {routeStats: false}\n", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := buildAllowingWarnings(t, base+routes+tt.section)
			if cfg.Observability.RouteStatsOff != tt.wantOff {
				t.Errorf("RouteStatsOff = %v, want %v", cfg.Observability.RouteStatsOff, tt.wantOff)
			}
		})
	}
	got := render(buildString(base + routes + "observability: {routeStats: none}\n"))
	want := []string{`5:29 error observability.routeStats: expected true or false, got string "none"`}
	if !slices.Equal(got, want) {
		t.Errorf("diagnostics = %q, want %q", got, want)
	}
}
