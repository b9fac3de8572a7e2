package translator

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/internal/racesample"
	"github.com/tollgate/tollgate/policy/ir"
)

// reuseInput is one policy to translate, with its options.
type reuseInput struct {
	name    string
	cfg     *ir.Config
	gateway string
	opts    Options
}

// TestTranslateValidatedIsTranslate: whatever translation lends its
// routes, TranslateValidated gives resources byte-identical to a fresh
// Translate (deterministic encoding, every resource of every type) and
// validates alike. The previous versions are every other test case of the
// same gateway (other features, other gateway-wide settings: authz, rate
// limits, transforms, TLS, ACME, native keys), and for each case its
// route-level and gateway-level edits.
//
// Under the race detector it checks a sample of the pairs (racesample).
func TestTranslateValidatedIsTranslate(t *testing.T) {
	var bases []reuseInput
	pairs, shared := 0, 0
	types := &envoy.AnyTypes{} // shared, as a Controller shares it
	sample := racesample.New(t)
	for _, name := range caseNames(t) {
		variants := []reuseInput{caseInput(t, name, "", nil)}
		for _, e := range reuseEdits {
			variants = append(variants, caseInput(t, name, e.name, e.edit))
		}
		bases = append(bases, variants[0])
		p, s := crossCheck(t, variants, variants, types, sample)
		pairs, shared = pairs+p, shared+s
	}
	p, s := crossCheck(t, bases, bases, types, sample)
	pairs, shared = pairs+p, shared+s
	if pairs < sample.AtLeast(900) || shared < sample.AtLeast(1000) {
		t.Fatalf("%d pairs, %d routes shared (%s): the test compared too little", pairs, shared, sample)
	}
}

// crossCheck translates every input of afters that sample keeps with the
// routes of every input of befores of the same gateway (checkSameAsFresh),
// and returns the pairs checked and the routes shared.
func crossCheck(t *testing.T, befores, afters []reuseInput, types *envoy.AnyTypes, sample *racesample.Sampler) (pairs, shared int) {
	t.Helper()
	fresh := make([]*freshResult, len(afters))
	for _, before := range befores {
		var prev *Resources
		for i, after := range afters {
			if after.gateway != before.gateway || !sample.Keep() {
				continue
			}
			if prev == nil {
				var err error
				if prev, err = TranslateValidated(before.cfg, before.gateway, before.opts, nil, types); err != nil {
					t.Fatalf("%s: %v", before.name, err)
				}
			}
			if fresh[i] == nil {
				f := translateFresh(t, after, types)
				fresh[i] = &f
			}
			pairs++
			shared += checkSameAsFresh(t, after, *fresh[i], prev, types)
		}
	}
	return pairs, shared
}

// freshResult is a fresh translation's encoding and Validate's verdict.
type freshResult struct {
	encoded [][]byte
	err     string
}

// translateFresh translates and validates in without any reuse.
func translateFresh(t *testing.T, in reuseInput, types *envoy.AnyTypes) freshResult {
	t.Helper()
	r, err := Translate(in.cfg, in.gateway, in.opts)
	if err != nil {
		t.Fatalf("%s: %v", in.name, err)
	}
	return freshResult{encoded: encodeResources(t, r), err: fmt.Sprint(ValidateWith(r, types))}
}

// checkSameAsFresh translates in with prev's routes, fails the test unless
// the result encodes as the fresh translation want does, and returns how
// many routes came from prev.
func checkSameAsFresh(t *testing.T, in reuseInput, want freshResult, prev *Resources, types *envoy.AnyTypes) int {
	t.Helper()
	got, err := TranslateValidated(in.cfg, in.gateway, in.opts, prev, types)
	if fmt.Sprint(err) != want.err {
		t.Fatalf("%s: error %v, fresh translation: %s", in.name, err, want.err)
	}
	if err != nil {
		return 0
	}
	if !slices.EqualFunc(encodeResources(t, got), want.encoded, bytes.Equal) {
		t.Fatalf("%s after %d routes of another version: resources differ from a fresh translation", in.name, prev.valid.len())
	}
	if why := routeEncodingsDiffer(got); why != "" {
		t.Fatalf("%s after %d routes of another version: %s", in.name, prev.valid.len(), why)
	}
	old := map[*routev3.Route]bool{}
	for _, rt := range allRoutes(prev) {
		old[rt] = true
	}
	n := 0
	for _, rt := range allRoutes(got) {
		if old[rt] {
			n++
		}
	}
	return n
}

// reuseEdits change a test case's IR: a route, the route list, a backend,
// a virtual host.
var reuseEdits = []struct {
	name string
	edit func(cfg *ir.Config, gw *ir.Gateway)
}{
	{"first route's timeout", func(_ *ir.Config, gw *ir.Gateway) {
		if r := gatewayFirstRoute(gw); r != nil {
			r.Timeout += time.Second
		}
	}},
	{"first route renamed", func(_ *ir.Config, gw *ir.Gateway) {
		if r := gatewayFirstRoute(gw); r != nil {
			r.Name += "-v2"
		}
	}},
	{"last route dropped", func(_ *ir.Config, gw *ir.Gateway) {
		for i := len(gw.VirtualHosts) - 1; i >= 0; i-- {
			if rs := gw.VirtualHosts[i].Routes; len(rs) > 1 {
				gw.VirtualHosts[i].Routes = rs[:len(rs)-1]
				return
			}
		}
	}},
	{"routes reversed", func(_ *ir.Config, gw *ir.Gateway) {
		for i := range gw.VirtualHosts {
			slices.Reverse(gw.VirtualHosts[i].Routes)
		}
	}},
	{"first backend's connect timeout", func(cfg *ir.Config, _ *ir.Gateway) {
		if len(cfg.Backends) > 0 {
			cfg.Backends[0].ConnectTimeout += time.Second
		}
	}},
	{"first virtual host's domains", func(_ *ir.Config, gw *ir.Gateway) {
		if len(gw.VirtualHosts) > 0 {
			vh := &gw.VirtualHosts[0]
			vh.Domains = append(slices.Clone(vh.Domains), "extra.example.com")
		}
	}},
}

// caseInput loads test case name (a fresh copy) and applies edit to it.
func caseInput(t *testing.T, name, edit string, fn func(*ir.Config, *ir.Gateway)) reuseInput {
	t.Helper()
	tc := loadCase(t, name)
	if fn != nil {
		for i := range tc.Config.Gateways {
			if tc.Config.Gateways[i].Name == tc.Gateway {
				fn(&tc.Config, &tc.Config.Gateways[i])
			}
		}
	}
	return reuseInput{name: name + "/" + edit, cfg: &tc.Config, gateway: tc.Gateway, opts: tc.options()}
}

// gatewayFirstRoute returns the gateway's first route, nil for none.
func gatewayFirstRoute(gw *ir.Gateway) *ir.Route {
	for i := range gw.VirtualHosts {
		if len(gw.VirtualHosts[i].Routes) > 0 {
			return &gw.VirtualHosts[i].Routes[0]
		}
	}
	return nil
}

// encodeResources returns every resource's deterministic encoding in Resources
// order.
func encodeResources(t *testing.T, r *Resources) [][]byte {
	t.Helper()
	var out [][]byte
	for _, typ := range []resource.Type{resource.ListenerType, resource.RouteType, resource.ClusterType, resource.EndpointType, resource.SecretType} {
		for _, res := range r.ByType()[typ] {
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
	}
	return out
}

// allRoutes returns the route messages of every route configuration of r.
func allRoutes(r *Resources) []*routev3.Route {
	var out []*routev3.Route
	for _, rc := range r.Routes {
		for _, vh := range rc.GetVirtualHosts() {
			out = append(out, vh.GetRoutes()...)
		}
	}
	return out
}

// TestTranslateValidatedSharesUnchangedRoutes: across pushes of a
// 2,000-route gateway, exactly the routes whose translation is unchanged
// are the previous version's messages; an edited route, a new one and
// every route after a gateway-wide change that reaches the routes are
// fresh. Resources that did not come from TranslateValidated (not known
// to validate) lend nothing.
func TestTranslateValidatedSharesUnchangedRoutes(t *testing.T) {
	opts := Options{AuthzAddress: "10.255.0.1:9191"}
	base := benchConfig(2000)
	prev, err := TranslateValidated(base, "bench", opts, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		edit  func(cfg *ir.Config)
		fresh int // routes not shared with prev
	}{
		{"unchanged", func(*ir.Config) {}, 0},
		{"one route's timeout", func(cfg *ir.Config) { cfg.Gateways[0].VirtualHosts[3].Routes[7].Timeout++ }, 1},
		{"one route added", func(cfg *ir.Config) {
			vh := &cfg.Gateways[0].VirtualHosts[5]
			vh.Routes = append(vh.Routes, benchRoute(2000, "backend-00001"))
		}, 1},
		{"one route removed", func(cfg *ir.Config) {
			vh := &cfg.Gateways[0].VirtualHosts[5]
			vh.Routes = vh.Routes[1:]
		}, 0},
		{"route stats off (every route changes)", func(cfg *ir.Config) {
			cfg.Observability.RouteStatsOff = true
		}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := benchConfig(2000)
			tt.edit(cfg)
			got, err := TranslateValidated(cfg, "bench", opts, prev, nil)
			if err != nil {
				t.Fatal(err)
			}
			old := map[*routev3.Route]bool{}
			for _, rt := range allRoutes(prev) {
				old[rt] = true
			}
			fresh := 0
			for _, rt := range allRoutes(got) {
				if !old[rt] {
					fresh++
				}
			}
			if tt.fresh >= 0 && fresh != tt.fresh*len(got.Routes) || tt.fresh < 0 && fresh != len(allRoutes(got)) {
				t.Fatalf("%d fresh route messages, want %d per route table", fresh, tt.fresh)
			}
		})
	}
	t.Run("not validated", func(t *testing.T) {
		unvalidated, err := Translate(base, "bench", opts)
		if err != nil {
			t.Fatal(err)
		}
		got, err := TranslateValidated(base, "bench", opts, unvalidated, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rt := allRoutes(got)[0]; slices.Contains(allRoutes(unvalidated), rt) {
			t.Fatal("a route of resources never validated was reused")
		}
	})
}

// TestTranslateValidatedRejectsAsValidate: a translation that fails
// validation returns Validate's error and no resources (so nothing of it
// can be lent to a later translation), even when every other route comes
// from the previous version.
func TestTranslateValidatedRejectsAsValidate(t *testing.T) {
	opts := Options{AuthzAddress: "10.255.0.1:9191"}
	prev, err := TranslateValidated(benchConfig(1200), "bench", opts, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := benchConfig(1200)
	r := &cfg.Gateways[0].VirtualHosts[2].Routes[4]
	r.Match.Headers = append(r.Match.Headers, ir.HeaderMatch{Name: "bad\nname", Exact: "x"})
	fresh, err := Translate(cfg, "bench", opts)
	if err != nil {
		t.Fatal(err)
	}
	want := Validate(fresh)
	if want == nil {
		t.Fatal("the broken header name validated: the test proves nothing")
	}
	got, err := TranslateValidated(cfg, "bench", opts, prev, nil)
	if got != nil || fmt.Sprint(err) != fmt.Sprint(want) {
		t.Fatalf("got %v, %v; want no resources and %v", got != nil, err, want)
	}
}
