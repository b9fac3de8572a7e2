package main

import (
	"math"
	"strings"
	"testing"
)

func TestLegend(t *testing.T) {
	metric := map[string]string{"envoy_route": "search", "envoy_response_code_class": "5", "tier": "pro"}
	tests := []struct {
		name, format, want string
	}{
		{"one label", "{{envoy_route}}", "search"},
		{"two labels and text", "{{envoy_route}} {{envoy_response_code_class}}xx", "search 5xx"},
		{"spaces inside braces", "{{ tier }}/{{envoy_route}}", "pro/search"},
		{"missing label is empty", "{{route}} {{tier}}", " pro"},
		{"literal text", "Envoy ext_authz denied (all)", "Envoy ext_authz denied (all)"},
		{"no format is the label set", "", `{"envoy_response_code_class": "5", "envoy_route": "search", "tier": "pro"}`},
	}
	for _, tt := range tests {
		if got := legend(tt.format, metric); got != tt.want {
			t.Errorf("%s: legend(%q) = %q, want %q", tt.name, tt.format, got, tt.want)
		}
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		v    float64
		unit string
		want string
	}{
		{math.NaN(), "reqps", "-"},
		{0.0912, "percentunit", "9.1%"},
		{17.34, "reqps", "17.3 req/s"},
		{0.0412, "s", "41.2 ms"},
		{1.5, "s", "1.50 s"},
		{0.00025, "s", "0.25 ms"},
		{0, "ms", "0.0 ms"},
		{333.66, "ms", "333.7 ms"},
		{1000, "ms", "1.00 s"},
		{0.5, "ms", "0.5 ms"},
		{4, "short", "4"},
		{2.5, "short", "2.50"},
		{-3, "short", "-3"},
	}
	for _, tt := range tests {
		if got := formatValue(tt.v, tt.unit); got != tt.want {
			t.Errorf("formatValue(%v, %q) = %q, want %q", tt.v, tt.unit, got, tt.want)
		}
	}
}

func TestPanelBox(t *testing.T) {
	tests := []struct {
		g               gridPos
		left, top, w, h int
	}{
		{gridPos{X: 0, Y: 0, W: 24, H: 1}, 0, 44, 1432, 26},
		{gridPos{X: 12, Y: 1, W: 12, H: 8}, 720, 78, 712, 264},
		{gridPos{X: 16, Y: 26, W: 8, H: 8}, 960, 928, 472, 264},
	}
	for _, tt := range tests {
		left, top, w, h := panelBox(tt.g)
		if left != tt.left || top != tt.top || w != tt.w || h != tt.h {
			t.Errorf("panelBox(%+v) = %d,%d %dx%d, want %d,%d %dx%d", tt.g, left, top, w, h, tt.left, tt.top, tt.w, tt.h)
		}
	}
}

func TestLegendHeight(t *testing.T) {
	tests := []struct {
		name  string
		names []string
		w     int
		want  int
	}{
		{"no series is one row", nil, 472, 18},
		{"three short names fit one row", []string{"users", "search", "orders"}, 712, 18},
		{"four names wrap in a narrow panel", []string{"users", "search", "orders", "health"}, 472, 36},
		{"at most four rows", []string{strings.Repeat("x", 400)}, 472, 72},
		{"only the first nine count", []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"}, 1432, 18},
	}
	for _, tt := range tests {
		if got := legendHeight(tt.names, tt.w); got != tt.want {
			t.Errorf("%s: legendHeight = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestSVGPathBreaksAtNaN(t *testing.T) {
	pts := []point{{100, 0}, {110, 1}, {120, math.NaN()}, {130, 1}}
	got := svgPath(pts, 62, 100, 100, 1, 100, 130)
	want := "M62.0,106.0 L95.3,6.0 M162.0,6.0"
	if got != want {
		t.Errorf("svgPath = %q, want %q", got, want)
	}
}

func TestExpand(t *testing.T) {
	got := expand(`sum by (envoy_route) (rate(x{envoy_route=~"$route"}[$__rate_interval]))`)
	want := `sum by (envoy_route) (rate(x{envoy_route=~".*"}[1m]))`
	if got != want {
		t.Errorf("expand = %q, want %q", got, want)
	}
}
