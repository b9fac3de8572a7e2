package controlplane

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/xds/translator"
)

// TestChangedFieldsMatchesJSONComparison: changedFields compares messages
// field by field; it must name exactly what comparing their protojson
// encodings (the implementation it replaced, kept below) names, for every
// pair of same-typed resources the translator's test cases produce.
func TestChangedFieldsMatchesJSONComparison(t *testing.T) {
	byType := testdataResources(t)
	pairs := 0
	for typ, rs := range byType {
		for _, a := range rs {
			for _, b := range rs {
				if proto.Equal(a, b) {
					continue
				}
				pairs++
				got, want := changedFields(a, b), jsonChangedFields(a, b)
				if !slices.Equal(got, want) {
					t.Errorf("%s: changedFields = %q, JSON comparison = %q", typ, got, want)
				}
			}
		}
	}
	if pairs < 100 {
		t.Fatalf("only %d pairs compared: the test cases were not found", pairs)
	}
}

// TestMinLinesIsALowerBound: minLines never exceeds the lines render
// returns, so skipping the render when their product exceeds maxDiffCells
// gives the answer lineDiff would have given.
func TestMinLinesIsALowerBound(t *testing.T) {
	for typ, rs := range testdataResources(t) {
		for _, r := range rs {
			if lo, n := minLines(r, maxDiffCells), len(render(r)); lo > n || lo == 0 {
				t.Errorf("%s %s: minLines = %d, render has %d lines", typ, typ, lo, n)
			}
		}
	}
}

// testdataResources translates the translator's test cases (those that
// translate without test certificates), by type.
func testdataResources(t *testing.T) map[string][]types.Resource {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "xds", "translator", "testdata", "in", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no translator test cases: %v", err)
	}
	out := map[string][]types.Resource{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var tc struct {
			Gateway          string    `json:"gateway"`
			AuthzAddress     string    `json:"authzAddress"`
			RateLimitAddress string    `json:"rateLimitAddress"`
			ExtProcAddress   string    `json:"extProcAddress"`
			ACMEAddress      string    `json:"acmeAddress"`
			Config           ir.Config `json:"config"`
		}
		if err := json.Unmarshal(b, &tc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		r, err := translator.Translate(&tc.Config, tc.Gateway, translator.Options{AuthzAddress: tc.AuthzAddress,
			RateLimitAddress: tc.RateLimitAddress, ExtProcAddress: tc.ExtProcAddress, ACMEAddress: tc.ACMEAddress})
		if err != nil {
			continue // needs certificates
		}
		for typ, rs := range r.ByType() {
			if typ != resource.SecretType {
				out[typ] = append(out[typ], rs...)
			}
		}
	}
	return out
}

// jsonChangedFields is the former changedFields: it compares the
// resources' protojson encodings, top-level field by field.
func jsonChangedFields(a, b types.Resource) []string {
	before, after := jsonTopLevel(a), jsonTopLevel(b)
	var out []string
	for _, k := range unionKeys(before, after) {
		if bytes.Equal(before[k], after[k]) {
			continue
		}
		if k == "virtualHosts" {
			if routes := jsonRouteChanges(before[k], after[k]); len(routes) > 0 {
				out = append(out, routes...)
				continue
			}
		}
		out = append(out, k)
	}
	return out
}

func jsonTopLevel(m types.Resource) map[string]json.RawMessage {
	b, err := protojson.Marshal(m)
	out := map[string]json.RawMessage{}
	if err != nil || json.Unmarshal(b, &out) != nil {
		return map[string]json.RawMessage{}
	}
	for k, v := range out {
		var buf bytes.Buffer
		if json.Compact(&buf, v) == nil {
			out[k] = buf.Bytes()
		}
	}
	return out
}

func jsonRouteChanges(a, b json.RawMessage) []string {
	before, after := jsonNamedRoutes(a), jsonNamedRoutes(b)
	var out []string
	for _, n := range unionKeys(before, after) {
		x, inA := before[n]
		y, inB := after[n]
		switch {
		case !inA:
			out = append(out, "+"+n)
		case !inB:
			out = append(out, "-"+n)
		case !bytes.Equal(x, y):
			out = append(out, "~"+n)
		}
	}
	return out
}

func jsonNamedRoutes(vhs json.RawMessage) map[string]json.RawMessage {
	var hosts []struct {
		Routes []json.RawMessage `json:"routes"`
	}
	out := map[string]json.RawMessage{}
	if json.Unmarshal(vhs, &hosts) != nil {
		return out
	}
	for _, h := range hosts {
		for _, r := range h.Routes {
			var named struct {
				Name string `json:"name"`
			}
			if json.Unmarshal(r, &named) == nil && named.Name != "" {
				out[named.Name] = append(out[named.Name], r...)
			}
		}
	}
	return out
}

// TestEqualSharedIsProtoEqual: equalShared decides as proto.Equal does for
// every pair of same-typed resources of the translator's test cases, each
// against a deep copy of itself, and for versions that share some
// messages (the routes) and differ elsewhere.
func TestEqualSharedIsProtoEqual(t *testing.T) {
	pairs := 0
	for typ, rs := range testdataResources(t) {
		for _, a := range rs {
			others := append(slices.Clone(rs), proto.Clone(a), sharingRoutes(a))
			for _, b := range others {
				pairs++
				if got, want := equalShared(a.ProtoReflect(), b.ProtoReflect()), proto.Equal(a, b); got != want {
					t.Errorf("%s %s vs %s: equalShared = %v, proto.Equal = %v", typ,
						cache.GetResourceName(a), cache.GetResourceName(b), got, want)
				}
			}
		}
	}
	if pairs < 100 {
		t.Fatalf("only %d pairs compared: the test cases were not found", pairs)
	}
}

// sharingRoutes returns a copy of r that, for a route configuration,
// shares r's route messages but names its first virtual host otherwise;
// other resources are returned as they are.
func sharingRoutes(r types.Resource) types.Resource {
	rc, ok := r.(*routev3.RouteConfiguration)
	if !ok || len(rc.GetVirtualHosts()) == 0 {
		return r
	}
	out := proto.CloneOf(rc)
	for i, vh := range out.VirtualHosts {
		vh.Routes = rc.VirtualHosts[i].Routes
	}
	out.VirtualHosts[0].Name += "-renamed"
	return out
}
