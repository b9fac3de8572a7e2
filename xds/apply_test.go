package xds

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"testing"
	"time"

	cache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/xds/translator"
)

// gatewayTo returns one gateway's resources with a catch-all route per
// (path prefix → backend) pair.
func gatewayTo(t *testing.T, routes map[string]string) *typeSet {
	t.Helper()
	r, err := translator.Translate(gatewayConfig(routes), "g", translator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := newTypeSet(r, translator.KeyExceptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// gatewayConfig is the IR of gatewayTo's gateway.
func gatewayConfig(routes map[string]string) *ir.Config {
	cfg := &ir.Config{Gateways: []ir.Gateway{{Name: "g", Listeners: []ir.Listener{{Name: "http", Address: "127.0.0.1", Port: 8080}}}}}
	vh := ir.VirtualHost{Name: "any", Domains: []string{"*"}}
	seen := map[string]bool{}
	var prefixes []string
	for p := range routes {
		prefixes = append(prefixes, p)
	}
	sort.Strings(prefixes)
	for _, p := range prefixes {
		b := routes[p]
		vh.Routes = append(vh.Routes, ir.Route{Name: "r" + b, Match: ir.Match{PathPrefix: p}, Backend: b, Timeout: time.Second, Auth: ir.RouteAuth{Public: true}})
		if !seen[b] {
			seen[b] = true
			cfg.Backends = append(cfg.Backends, ir.Backend{Name: b, Endpoints: []ir.Endpoint{{Host: "127.0.0.1", Port: 9000}}, LoadBalancing: ir.RoundRobin, ConnectTimeout: time.Second})
		}
	}
	sort.Slice(cfg.Backends, func(i, j int) bool { return cfg.Backends[i].Name < cfg.Backends[j].Name })
	cfg.Gateways[0].VirtualHosts = []ir.VirtualHost{vh}
	return cfg
}

// validatedGateway is gatewayTo's gateway through
// translator.TranslateValidated, with prev's routes (nil for none).
func validatedGateway(t *testing.T, routes map[string]string, prev *translator.Resources) *translator.Resources {
	t.Helper()
	cfg := gatewayConfig(routes)
	r, err := translator.TranslateValidated(cfg, "g", translator.Options{}, prev, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.RouteEncodings() == nil {
		t.Fatal("TranslateValidated kept no route encoding")
	}
	return r
}

func names(ts *typeSet, typ resource.Type) []string {
	var out []string
	for _, r := range ts.of[typ].items {
		out = append(out, cache.GetResourceName(r))
	}
	return out
}

func TestPlanGatewayMakeBeforeBreak(t *testing.T) {
	prev := gatewayTo(t, map[string]string{"/": "a"})
	next := gatewayTo(t, map[string]string{"/": "b"})
	p, err := planGateway("g", prev, next)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.steps) != 3 {
		t.Fatalf("%d steps, want 3 (add b, switch routes, remove a)", len(p.steps))
	}
	want := []struct {
		clusters   []string
		routesLike *typeSet
	}{
		{[]string{"a", "b"}, prev},
		{[]string{"a", "b"}, next},
		{[]string{"b"}, next},
	}
	for i, w := range want {
		st := p.steps[i].set
		if got := names(st, resource.ClusterType); !slices.Equal(got, w.clusters) {
			t.Errorf("step %d clusters = %v, want %v", i+1, got, w.clusters)
		}
		if st.of[resource.RouteType].version != w.routesLike.of[resource.RouteType].version {
			t.Errorf("step %d routes are not the expected version", i+1)
		}
		if _, err := st.snapshot(); err != nil {
			t.Errorf("step %d is not a consistent snapshot: %v", i+1, err)
		}
	}
}

func TestPlanGatewaySkipsNoOpSteps(t *testing.T) {
	base := gatewayTo(t, map[string]string{"/": "a"})
	tests := []struct {
		name      string
		next      *typeSet
		wantSteps int
	}{
		{"unchanged", gatewayTo(t, map[string]string{"/": "a"}), 0},
		{"route change only", gatewayTo(t, map[string]string{"/": "a", "/x": "a"}), 1},
		{"cluster added, none removed", gatewayTo(t, map[string]string{"/": "a", "/x": "b"}), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := planGateway("g", base, tt.next)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.steps) != tt.wantSteps {
				t.Fatalf("%d steps, want %d", len(p.steps), tt.wantSteps)
			}
		})
	}
}

func TestApplyWithoutProxiesSetsGateways(t *testing.T) {
	s := New(context.Background(), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	a := gatewayTo(t, map[string]string{"/": "a"})
	res, err := s.Apply(context.Background(), map[string]*translator.Resources{"g": resourcesOf(a)})
	if err != nil || len(res) != 1 || res[0].Version != a.version() {
		t.Fatalf("Apply = %+v, %v", res, err)
	}
	if v := s.GatewayVersions()["g"]; v != a.version() {
		t.Fatalf("gateway version %q, want %q", v, a.version())
	}
	// A gateway the next policy lacks is dropped.
	if _, err := s.Apply(context.Background(), map[string]*translator.Resources{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.GatewayVersions()["g"]; ok {
		t.Fatal("removed gateway still served")
	}
}

// resourcesOf turns a typeSet back into translator resources.
func resourcesOf(ts *typeSet) *translator.Resources {
	r := &translator.Resources{}
	for _, x := range ts.of[resource.ListenerType].items {
		r.Listeners = append(r.Listeners, x.(*listenerT))
	}
	for _, x := range ts.of[resource.RouteType].items {
		r.Routes = append(r.Routes, x.(*routeT))
	}
	for _, x := range ts.of[resource.ClusterType].items {
		r.Clusters = append(r.Clusters, x.(*clusterT))
	}
	for _, x := range ts.of[resource.EndpointType].items {
		r.Endpoints = append(r.Endpoints, x.(*endpointT))
	}
	return r
}

// TestSnapshotVersionMapIsTheCaches checks that the per-resource versions
// the typeSet computes while hashing (so that a push encodes each resource
// once, not twice) are the ones go-control-plane's ConstructVersionMap
// would compute, for every step of a make-before-break plan.
func TestSnapshotVersionMapIsTheCaches(t *testing.T) {
	prev := gatewayTo(t, map[string]string{"/": "a", "/x": "c"})
	next := gatewayTo(t, map[string]string{"/": "b", "/x": "c"})
	p, err := planGateway("g", prev, next)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range append(p.steps, step{set: prev}) {
		checkVersionMap(t, fmt.Sprintf("step %d", i), st.set)
	}
	// Route tables hashed from the encodings TranslateValidated kept, with
	// routes shared with the version before.
	before := validatedGateway(t, map[string]string{"/": "a", "/x": "c", "/y": "c"}, nil)
	after := validatedGateway(t, map[string]string{"/": "b", "/x": "c", "/y": "c"}, before)
	for _, r := range []*translator.Resources{before, after} {
		ts, err := newTypeSet(r, translator.KeyExceptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkVersionMap(t, "validated", ts)
	}
}

// checkVersionMap fails when ts's snapshot version map differs from the one
// go-control-plane computes for the same resources.
func checkVersionMap(t *testing.T, what string, ts *typeSet) {
	t.Helper()
	snap, err := ts.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// go-control-plane's own version map, of the typed resources (the
	// snapshot's marshal to the encodings ts hashed: encodedResource).
	fresh := &cache.Snapshot{}
	for _, typ := range allTypes() {
		fresh.Resources[cache.GetResponseType(typ)] = cache.NewResources(ts.of[typ].version, ts.of[typ].items)
	}
	if err := fresh.ConstructVersionMap(); err != nil {
		t.Fatal(err)
	}
	for _, typ := range allTypes() {
		got, want := snap.GetVersionMap(typ), fresh.GetVersionMap(typ)
		if len(want) == 0 && len(got) == 0 {
			continue
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s, %s: version map %v, go-control-plane computes %v", what, typ, got, want)
		}
	}
}

// TestApplyThenCallsSetOnceTheSnapshotIsSet: ApplyThen calls set once, when
// the new snapshot is already the gateway's, and not for an Apply that
// changes nothing.
func TestApplyThenCallsSetOnceTheSnapshotIsSet(t *testing.T) {
	s := New(context.Background(), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	a := gatewayTo(t, map[string]string{"/": "a"})
	desired := map[string]*translator.Resources{"g": resourcesOf(a)}
	var calls []string // the gateway's version at each call
	set := func() { calls = append(calls, s.GatewayVersions()["g"]) }
	if _, err := s.ApplyThen(context.Background(), desired, set); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(calls, []string{a.version()}) {
		t.Fatalf("set saw versions %q, want once %q", calls, a.version())
	}
	calls = nil
	if _, err := s.ApplyThen(context.Background(), map[string]*translator.Resources{}, set); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplyThen(context.Background(), map[string]*translator.Resources{}, set); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 {
		t.Fatalf("set called %d times for a removal and a no-op Apply, want 1", len(calls))
	}
}
