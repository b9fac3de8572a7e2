package controlplane

import (
	"context"
	"errors"
	"slices"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/tollgate/tollgate/xds"
	"github.com/tollgate/tollgate/xds/translator"
)

// TestPushSharesServedRoutesOnly: a push's unchanged routes are the
// served version's route messages (translator.TranslateValidated), and a
// push the proxies rejected lends nothing to the next one: its new route
// is translated afresh, the others still come from the version served.
func TestPushSharesServedRoutesOnly(t *testing.T) {
	f := &fakeApplier{}
	c := newTestController(t, t.TempDir(), f)
	ctx := context.Background()
	if _, err := c.Push(ctx, manyRoutes(50, 0), "push", "test"); err != nil {
		t.Fatal(err)
	}
	first := routesOf(c.cur.Load().resources["g"])
	f.nack = true
	var nack *xds.NackError
	if _, err := c.Push(ctx, manyRoutes(50, 1), "push", "test"); !errors.As(err, &nack) {
		t.Fatalf("err = %v, want NackError", err)
	}
	rejected := routesOf(f.applied[len(f.applied)-1]["g"])
	f.nack = false
	res, err := c.Push(ctx, manyRoutes(50, 1), "push", "test")
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Changes; len(got) != 1 || !slices.Equal(got[0].Fields, []string{"+r50"}) {
		t.Fatalf("changes = %+v, want route r50 added", got)
	}
	for _, rt := range routesOf(c.cur.Load().resources["g"]) {
		switch {
		case rt.GetName() == "r50" && slices.Contains(rejected, rt):
			t.Fatal("route r50 is the rejected push's message")
		case rt.GetName() != "r50" && !slices.Contains(first, rt):
			t.Fatalf("route %s is not the served version's message", rt.GetName())
		}
	}
}

// routesOf returns the route messages of r's route configurations.
func routesOf(r *translator.Resources) []*routev3.Route {
	var out []*routev3.Route
	for _, rc := range r.Routes {
		for _, vh := range rc.GetVirtualHosts() {
			out = append(out, vh.GetRoutes()...)
		}
	}
	return out
}
