package controlplane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/xds/translator"
)

func endpointsPolicy(endpoint string) []store.File {
	return []store.File{{Name: "p.yaml", Content: fmt.Sprintf(`version: 1
gateways:
  - name: public
    listeners: [{name: http, port: 8080}]
routes:
  - {name: r, backend: b, auth: none}
  - {name: d, backend: d, auth: none, match: {pathPrefix: /d}}
backends:
  - {name: b, endpoints: [%q]}
  - {name: d, dns: "localhost:9001"}
`, endpoint)}}
}

// sameExceptEndpoints fails unless a and b differ in their endpoints only.
func sameExceptEndpoints(t *testing.T, a, b *translator.Resources) {
	t.Helper()
	for i := range a.Listeners {
		if !proto.Equal(a.Listeners[i], b.Listeners[i]) {
			t.Error("listener changed")
		}
	}
	for i := range a.Routes {
		if !proto.Equal(a.Routes[i], b.Routes[i]) {
			t.Error("route configuration changed")
		}
	}
	for i := range a.Clusters {
		if !proto.Equal(a.Clusters[i], b.Clusters[i]) {
			t.Error("cluster changed")
		}
	}
	if proto.Equal(a.Endpoints[0], b.Endpoints[0]) {
		t.Error("endpoints did not change")
	}
}

func TestSetEndpointsChangesOnlyEDSAndLastsUntilThePolicyChangesThem(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	f := &fakeApplier{}
	c := newTestController(t, dir, f)
	if _, err := c.Push(ctx, endpointsPolicy("127.0.0.1:9001"), "push", "test"); err != nil {
		t.Fatal(err)
	}
	v, err := c.SetEndpoints(ctx, "b", []string{"127.0.0.3:9003", "127.0.0.2:9002", "127.0.0.2:9002"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if !v.Overridden || !slices.Equal(v.Endpoints, []string{"127.0.0.2:9002", "127.0.0.3:9003"}) {
		t.Fatalf("view = %+v", v)
	}
	sameExceptEndpoints(t, f.applied[0]["public"], f.applied[1]["public"])

	// A restart keeps the override.
	f2 := &fakeApplier{}
	c2 := newTestController(t, dir, f2)
	if err := c2.Restore(ctx, nil, ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := c2.Endpoints("b"); !got.Overridden || !proto.Equal(f2.applied[0]["public"].Endpoints[0], f.applied[1]["public"].Endpoints[0]) {
		t.Fatalf("after restart: %+v", got)
	}
	// A push that leaves b's endpoints alone keeps it too.
	files := endpointsPolicy("127.0.0.1:9001")
	files[0].Content += "  - {name: unused, endpoints: [\"127.0.0.9:1\"]}\n"
	if _, err := c2.Push(ctx, files, "push", "test"); err != nil {
		t.Fatal(err)
	}
	if got, _ := c2.Endpoints("b"); !got.Overridden {
		t.Fatalf("a push that keeps b's endpoints ended the override: %+v", got)
	}
	// A push that changes b's endpoints ends it, durably.
	if _, err := c2.Push(ctx, endpointsPolicy("127.0.0.1:9005"), "push", "test"); err != nil {
		t.Fatal(err)
	}
	got, _ := c2.Endpoints("b")
	if got.Overridden || !slices.Equal(got.Endpoints, []string{"127.0.0.1:9005"}) {
		t.Fatalf("after a push changing b's endpoints: %+v", got)
	}
	if stored, _ := c2.store.EndpointOverrides(); len(stored) != 0 {
		t.Fatalf("stored overrides = %+v, want none", stored)
	}
}

func TestSetEndpointsRefusals(t *testing.T) {
	ctx := context.Background()
	f := &fakeApplier{}
	c := newTestController(t, t.TempDir(), f)
	if _, err := c.Push(ctx, endpointsPolicy("127.0.0.1:9001"), "push", "test"); err != nil {
		t.Fatal(err)
	}
	var epErr *EndpointsError
	for _, tt := range []struct {
		backend string
		eps     []string
		check   func(error) bool
	}{
		{"nope", []string{"127.0.0.1:1"}, func(err error) bool { return errors.Is(err, ErrUnknownBackend) }},
		{"d", []string{"127.0.0.1:1"}, func(err error) bool { return errors.As(err, &epErr) }},
		{"b", []string{"localhost:1"}, func(err error) bool { return errors.As(err, &epErr) }},
		{"b", []string{"127.0.0.1:0"}, func(err error) bool { return errors.As(err, &epErr) }},
		{"b", []string{}, func(err error) bool { return errors.As(err, &epErr) }},
	} {
		if _, err := c.SetEndpoints(ctx, tt.backend, tt.eps, "test"); !tt.check(err) {
			t.Errorf("SetEndpoints(%s, %v) = %v", tt.backend, tt.eps, err)
		}
	}
	if len(f.applied) != 1 {
		t.Fatalf("refused changes reached the applier: %d applies", len(f.applied))
	}
	// Reset goes back to the policy's endpoints.
	if _, err := c.SetEndpoints(ctx, "b", []string{"127.0.0.2:1"}, "test"); err != nil {
		t.Fatal(err)
	}
	v, err := c.SetEndpoints(ctx, "b", nil, "test")
	if err != nil || v.Overridden || !slices.Equal(v.Endpoints, []string{"127.0.0.1:9001"}) {
		t.Fatalf("reset = %+v, %v", v, err)
	}
}
