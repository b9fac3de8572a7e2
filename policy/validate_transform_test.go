package policy

import (
	"testing"

	"github.com/tollgate/tollgate/policy/ir"
)

// transformRoute is a route on line 4 of base with the given transform.
func transformRoute(t string) string {
	return "routes: [{name: r, backend: be, auth: none, transform: " + t + "}]\n"
}

func TestValidateTransform(t *testing.T) {
	runCases(t, base, []struct {
		name string
		src  string
		want []string
	}{
		{name: "response only", src: transformRoute("{response: json-to-xml}")},
		{name: "both, every field", src: transformRoute("{request: xml-to-json, response: json-to-xml, rootElement: order, maxBodyBytes: 65536, failureMode: open}")},
		{
			name: "converts nothing",
			src:  transformRoute("{maxBodyBytes: 10}"),
			want: []string{`4:57 error routes[0].transform: transform converts nothing: set request, response or both`},
		},
		{
			name: "unknown conversion, with a did-you-mean",
			src:  transformRoute("{request: json2xml, response: xml-to-jsn}"),
			want: []string{
				`4:66 error routes[0].transform.request: unknown conversion "json2xml"`,
				`4:86 error routes[0].transform.response: unknown conversion "xml-to-jsn"`,
			},
		},
		{
			name: "root element is an XML name",
			src:  transformRoute("{response: json-to-xml, rootElement: 1st}"),
			want: []string{`4:93 error routes[0].transform.rootElement: invalid rootElement "1st"`},
		},
		{
			name: "root element needs json-to-xml",
			src:  transformRoute("{response: xml-to-json, rootElement: order}"),
			want: []string{`4:93 error routes[0].transform.rootElement: rootElement is only used by json-to-xml, and this transform has none`},
		},
		{
			name: "max body bytes in range",
			src: "routes:\n  - {name: a, backend: be, auth: none, transform: {response: json-to-xml, maxBodyBytes: 2000000}}\n" +
				"  - {name: b, match: {path: /b}, backend: be, auth: none, transform: {response: json-to-xml, maxBodyBytes: 0}}\n",
			want: []string{
				`5:89 error routes[0].transform.maxBodyBytes: maxBodyBytes 2000000 is out of range`,
				`6:108 error routes[1].transform.maxBodyBytes: maxBodyBytes must be greater than 0, got 0`,
			},
		},
		{
			name: "failure mode",
			src:  transformRoute("{response: json-to-xml, failureMode: opne}"),
			want: []string{`4:93 error routes[0].transform.failureMode: unknown failureMode "opne"`},
		},
		{
			name: "unknown field",
			src:  transformRoute("{response: json-to-xml, root: x}"),
			want: []string{`4:80 error routes[0].transform.root: unknown field "root"`},
		},
	})
}

func TestCompileTransform(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want *ir.RouteTransform
	}{
		{"no transform", "routes: [{name: r, backend: be, auth: none}]\n", nil},
		{"defaults", transformRoute("{response: json-to-xml}"), &ir.RouteTransform{Response: "json-to-xml", Root: "root", MaxBodyBytes: 1 << 20}},
		{"xml-to-json has no root", transformRoute("{request: xml-to-json, maxBodyBytes: 10, failureMode: open}"),
			&ir.RouteTransform{Request: "xml-to-json", MaxBodyBytes: 10, FailOpen: true}},
		{"custom root", transformRoute("{request: json-to-xml, rootElement: order}"), &ir.RouteTransform{Request: "json-to-xml", Root: "order", MaxBodyBytes: 1 << 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, ds := Build([]File{{Name: "p.yaml", Content: []byte(base + tt.src)}})
			if ds.HasErrors() {
				t.Fatalf("diagnostics: %v", render(ds))
			}
			got := cfg.Gateways[0].VirtualHosts[0].Routes[0].Transform
			switch {
			case tt.want == nil && got != nil, tt.want != nil && (got == nil || *got != *tt.want):
				t.Fatalf("transform = %+v, want %+v", got, tt.want)
			}
			if cfg.Gateways[0].NeedsTransform() != (tt.want != nil) {
				t.Errorf("NeedsTransform = %v", cfg.Gateways[0].NeedsTransform())
			}
		})
	}
}
