package policy

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestRouteStatsDefault: without a routeStats setting, per-route stats
// are on up to RouteStatsDefaultMaxRoutes routes and off above, with a
// warning naming the route count; an explicit setting wins either way and
// silences the warning.
func TestRouteStatsDefault(t *testing.T) {
	for _, tt := range []struct {
		name     string
		routes   int
		section  string
		wantOff  bool
		wantWarn bool
	}{
		{"at the bound: on", RouteStatsDefaultMaxRoutes, "", false, false},
		{"above the bound: off, warned", RouteStatsDefaultMaxRoutes + 1, "", true, true},
		{"above the bound, explicitly on", RouteStatsDefaultMaxRoutes + 1, "observability: {routeStats: true}\n", false, false},
		{"above the bound, explicitly off", RouteStatsDefaultMaxRoutes + 1, "observability: {routeStats: false}\n", true, false},
		{"small, explicitly off", 1, "observability: {routeStats: false}\n", true, false},
		{"other observability settings keep the default", RouteStatsDefaultMaxRoutes + 1, "observability: {accessLog: off}\n", true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString(base + tt.section + "routes:\n")
			for i := range tt.routes {
				fmt.Fprintf(&b, "  - {name: r%d, backend: be, auth: none, match: {pathPrefix: /r%d}}\n", i, i)
			}
			cfg, ds := Build([]File{{Name: "p.yaml", Content: []byte(b.String())}})
			if ds.HasErrors() {
				t.Fatalf("diagnostics: %s", render(ds))
			}
			if cfg.Observability.RouteStatsOff != tt.wantOff {
				t.Errorf("RouteStatsOff = %v, want %v", cfg.Observability.RouteStatsOff, tt.wantOff)
			}
			var want, got []string
			if tt.wantWarn {
				want = []string{fmt.Sprintf("observability.routeStats: per-route Envoy stats are off: the policy has %d routes, more than %d",
					tt.routes, RouteStatsDefaultMaxRoutes)}
			}
			for _, d := range ds.Warnings() {
				got = append(got, d.Path+": "+d.Summary)
			}
			if !slices.Equal(got, want) {
				t.Errorf("warnings = %q, want %q", got, want)
			}
		})
	}
}

// TestRouteStats: observability.routeStats is on by default for a small
// policy and when written true, off when written false, and takes only a
// boolean.
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

// TestRouteStatsDefaultBrokenSetting: a routeStats that failed to load is
// reported once, without the default's warning on top.
func TestRouteStatsDefaultBrokenSetting(t *testing.T) {
	var b strings.Builder
	b.WriteString(base + "observability: {routeStats: none}\nroutes:\n")
	for i := range RouteStatsDefaultMaxRoutes + 1 {
		fmt.Fprintf(&b, "  - {name: r%d, backend: be, auth: none, match: {pathPrefix: /r%d}}\n", i, i)
	}
	_, ds := Build([]File{{Name: "p.yaml", Content: []byte(b.String())}})
	if n := ds.Count(SeverityError); n != 1 || len(ds.Warnings()) != 0 {
		t.Errorf("diagnostics %q, want the one error", render(ds))
	}
}

// TestRouteStatsWarningBuildsNoIndex: the default's warning comes with
// every push of a large valid policy, so placing it must not build the
// path index of every field (~20 ms and megabytes at 10,000 routes).
func TestRouteStatsWarningBuildsNoIndex(t *testing.T) {
	var b strings.Builder
	b.WriteString(base + "routes:\n")
	for i := range RouteStatsDefaultMaxRoutes + 1 {
		fmt.Fprintf(&b, "  - {name: r%d, backend: be, auth: none, match: {pathPrefix: /r%d}}\n", i, i)
	}
	p, ds := Load([]File{{Name: "p.yaml", Content: []byte(b.String())}})
	ds = append(ds, p.Validate()...)
	if len(ds) != 1 || ds[0].Severity != SeverityWarning || ds[0].Range.Line != 1 {
		t.Fatalf("diagnostics %q, want the routeStats warning at 1:1", render(ds))
	}
	if p.src.index != nil {
		t.Error("placing the warning built the path index")
	}
}
