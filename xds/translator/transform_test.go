package translator

import (
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
	transformsvc "github.com/tollgate/tollgate/transform"
	"github.com/tollgate/tollgate/transform/contract"
)

func TestTranslateTransformErrors(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(tc *testCase)
		wantErr string
	}{
		{"no service address", func(tc *testCase) { tc.ExtProcAddress = "" }, "--extproc-addr"},
		{"malformed service address", func(tc *testCase) { tc.ExtProcAddress = "extproc" }, "ext_proc service: address"},
		{"unknown conversion", func(tc *testCase) { transformOf(tc, "xml").Response = "csv" }, `route "xml": transform: unknown conversion "csv"`},
		{"converts nothing", func(tc *testCase) { transformOf(tc, "xml").Response = "" }, "converts nothing"},
		{"no body bound", func(tc *testCase) { transformOf(tc, "xml").MaxBodyBytes = 0 }, "max body bytes 0"},
		{"bad root", func(tc *testCase) { transformOf(tc, "xml").Root = "a b" }, `root element "a b"`},
		{"reserved backend name", func(tc *testCase) {
			tc.Config.Backends[0].Name = contract.ClusterName
			for i := range tc.Config.Gateways[0].VirtualHosts[0].Routes {
				if r := &tc.Config.Gateways[0].VirtualHosts[0].Routes[i]; r.Backend == "api" {
					r.Backend = contract.ClusterName
				}
			}
		}, "reserved for the ext_proc service cluster"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := loadCase(t, "transform")
			tt.mutate(&tc)
			_, err := Translate(&tc.Config, tc.Gateway, tc.options())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Translate: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestTransformOnlyWhereAsked: gateways without a transform route get no
// ext_proc filter or cluster; with one, routes without a transform have the
// filter disabled and the others ask only for the directions they convert.
func TestTransformOnlyWhereAsked(t *testing.T) {
	for _, name := range caseNames(t) {
		res := translateCase(t, name)
		text := protoText(t, res)
		want := name == "transform"
		if got := strings.Contains(text, envoy.ExtProcName); got != want {
			t.Errorf("case %s: ext_proc filter present = %v, want %v", name, got, want)
		}
		if got := strings.Contains(text, contract.ClusterName); got != want {
			t.Errorf("case %s: cluster %s present = %v, want %v", name, contract.ClusterName, got, want)
		}
	}
	res := translateCase(t, "transform")
	want := map[string]*extprocv3.ExtProcPerRoute{
		"health": envoy.ExtProcPerRouteDisabled(),
		"web":    envoy.ExtProcPerRouteDisabled(),
	}
	modes := map[string]*extprocv3.ProcessingMode{
		"xml":    envoy.ExtProcMode(false, true),
		"upload": envoy.ExtProcMode(true, false),
		"legacy": envoy.ExtProcMode(true, true),
	}
	for _, vh := range res.Routes[0].GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			got := &extprocv3.ExtProcPerRoute{}
			if err := r.GetTypedPerFilterConfig()[envoy.ExtProcName].UnmarshalTo(got); err != nil {
				t.Fatalf("route %s: %v", r.GetName(), err)
			}
			if w, ok := want[r.GetName()]; ok && !proto.Equal(got, w) {
				t.Errorf("route %s: per-route config %v, want disabled", r.GetName(), got)
			}
			if m, ok := modes[r.GetName()]; ok && !proto.Equal(got.GetOverrides().GetProcessingMode(), m) {
				t.Errorf("route %s: processing mode %v, want %v", r.GetName(), got.GetOverrides().GetProcessingMode(), m)
			}
		}
	}
}

// TestTransformModesAgree: the mode the service restores in its mode
// overrides is the mode the translator gives the route.
func TestTransformModesAgree(t *testing.T) {
	for _, s := range []contract.Settings{{Request: contract.XMLToJSON}, {Response: contract.JSONToXML}, {Request: contract.JSONToXML, Response: contract.XMLToJSON}} {
		if got, want := transformsvc.RouteMode(s), envoy.ExtProcMode(s.Request != "", s.Response != ""); !proto.Equal(got, want) {
			t.Errorf("settings %+v: service mode %v, translator mode %v", s, got, want)
		}
	}
}

func transformOf(tc *testCase, route string) *ir.RouteTransform {
	for i, r := range tc.Config.Gateways[0].VirtualHosts[0].Routes {
		if r.Name == route {
			return tc.Config.Gateways[0].VirtualHosts[0].Routes[i].Transform
		}
	}
	panic("no route " + route)
}

// protoText renders every resource of res as text, for presence checks.
func protoText(t *testing.T, res *Resources) string {
	t.Helper()
	var b strings.Builder
	for _, l := range res.Listeners {
		b.WriteString(prototext.Format(l))
	}
	for _, r := range res.Routes {
		b.WriteString(prototext.Format(r))
	}
	for _, c := range res.Clusters {
		b.WriteString(prototext.Format(c))
	}
	return b.String()
}
