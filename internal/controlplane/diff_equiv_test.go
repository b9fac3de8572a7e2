package controlplane

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
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

	"github.com/tollgate/tollgate/internal/racesample"
	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/xds/translator"
)

// TestChangedFieldsMatchesJSONComparison: changedFields compares messages
// field by field; it must name exactly what comparing their protojson
// encodings (the implementation it replaced, kept below) names, for every
// pair of same-typed resources the translator's test cases produce.
//
// Both are functions of one goroutine, where the race detector has nothing
// to find and which it slows down tenfold (10-16 s): under it the test
// compares a sample of the pairs (racesample), and test-unit runs the test
// in full without it (FULL_TESTS in the Makefile).
func TestChangedFieldsMatchesJSONComparison(t *testing.T) {
	byType := testdataResources(t)
	sample := racesample.New(t)
	pairs := 0
	for _, typ := range slices.Sorted(maps.Keys(byType)) {
		rs := byType[typ]
		for _, a := range rs {
			for _, b := range rs {
				if proto.Equal(a, b) {
					continue
				}
				pairs++
				if !sample.Keep() {
					continue
				}
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

// TestChangedFieldsOnSharedRoutes: when two route configurations share
// route messages (a push's unchanged routes, translator.TranslateValidated)
// changedFields still names exactly what the JSON comparison names, for
// edits at the start, middle and end of the routes, added and removed
// routes, reordered ones, and a route name that appears in two virtual
// hosts with one of its routes shared and the other changed.
func TestChangedFieldsOnSharedRoutes(t *testing.T) {
	edits := map[string]func(rc *routev3.RouteConfiguration){
		"nothing":          func(*routev3.RouteConfiguration) {},
		"first changed":    func(rc *routev3.RouteConfiguration) { changeRoute(rc, 0, 0) },
		"middle changed":   func(rc *routev3.RouteConfiguration) { changeRoute(rc, 1, 3) },
		"last changed":     func(rc *routev3.RouteConfiguration) { changeRoute(rc, 2, 9) },
		"two changed":      func(rc *routev3.RouteConfiguration) { changeRoute(rc, 0, 2); changeRoute(rc, 2, 5) },
		"added at the end": func(rc *routev3.RouteConfiguration) { addRoute(rc, 2, 10, "new") },
		"added first":      func(rc *routev3.RouteConfiguration) { addRoute(rc, 0, 0, "new") },
		"removed": func(rc *routev3.RouteConfiguration) {
			vh := rc.VirtualHosts[1]
			vh.Routes = slices.Delete(slices.Clone(vh.Routes), 4, 5)
		},
		"reordered": func(rc *routev3.RouteConfiguration) {
			vh := rc.VirtualHosts[1]
			vh.Routes = slices.Clone(vh.Routes)
			vh.Routes[2], vh.Routes[3] = vh.Routes[3], vh.Routes[2]
		},
		"name in two hosts, one changed": func(rc *routev3.RouteConfiguration) {
			addRoute(rc, 0, 0, "vh1-r5") // the name of a shared route of host 1
		},
		"virtual host renamed": func(rc *routev3.RouteConfiguration) { rc.VirtualHosts[1].Name += "-x" },
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			a := sharedRoutesConfig()
			b := proto.CloneOf(a)
			for i, vh := range b.VirtualHosts {
				vh.Routes = a.VirtualHosts[i].Routes // shared messages
			}
			edit(b)
			if got, want := changedFields(a, b), jsonChangedFields(a, b); !slices.Equal(got, want) {
				t.Fatalf("changedFields = %q, JSON comparison = %q", got, want)
			}
			if got, want := equalShared(a.ProtoReflect(), b.ProtoReflect()), proto.Equal(a, b); got != want {
				t.Fatalf("equalShared = %v, proto.Equal = %v", got, want)
			}
		})
	}
}

// sharedRoutesConfig is a route configuration of three virtual hosts of
// ten routes each, named vh<host>-r<route>.
func sharedRoutesConfig() *routev3.RouteConfiguration {
	rc := &routev3.RouteConfiguration{Name: "rc"}
	for v := range 3 {
		vh := &routev3.VirtualHost{Name: fmt.Sprintf("vh%d", v), Domains: []string{fmt.Sprintf("h%d.example", v)}}
		for r := range 10 {
			vh.Routes = append(vh.Routes, &routev3.Route{Name: fmt.Sprintf("vh%d-r%d", v, r),
				Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: fmt.Sprintf("/p%d", r)}}})
		}
		rc.VirtualHosts = append(rc.VirtualHosts, vh)
	}
	return rc
}

// changeRoute replaces route i of virtual host v by a changed copy.
func changeRoute(rc *routev3.RouteConfiguration, v, i int) {
	vh := rc.VirtualHosts[v]
	vh.Routes = slices.Clone(vh.Routes)
	r := proto.CloneOf(vh.Routes[i])
	r.Match.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: "/changed"}
	vh.Routes[i] = r
}

// addRoute inserts a new route named name at index i of virtual host v.
func addRoute(rc *routev3.RouteConfiguration, v, i int, name string) {
	vh := rc.VirtualHosts[v]
	r := &routev3.Route{Name: name, Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: "/new"}}}
	vh.Routes = slices.Insert(slices.Clone(vh.Routes), i, r)
}
