package xds

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"testing"

	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/tollgate/tollgate/xds/translator"
)

// TestPrepareIsPlain: a plan made after Prepare has the same types,
// versions and resource versions as one made without, for the prepared
// resources (the exceptions table's resource included) and for other
// ones; Apply takes a Prepare once, and a discarded one is not used.
func TestPrepareIsPlain(t *testing.T) {
	prepared := keyGateway(t)
	tests := []struct {
		name    string
		prepare map[string]*translator.Resources
		discard bool
		desired *translator.Resources
	}{
		{name: "prepared", prepare: map[string]*translator.Resources{"g": prepared}, desired: prepared},
		{name: "discarded", prepare: map[string]*translator.Resources{"g": prepared}, discard: true, desired: prepared},
		{name: "other resources", prepare: map[string]*translator.Resources{"g": prepared}, desired: &translator.Resources{}},
		{name: "none", desired: prepared},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(context.Background(), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if tt.prepare != nil {
				discard := s.Prepare(tt.prepare)
				if tt.discard {
					discard()
				}
			}
			if got := s.prepared != nil; got != (tt.prepare != nil && !tt.discard) {
				t.Fatalf("prepared kept: %v", got)
			}
			plans, err := s.plan(map[string]*translator.Resources{"g": tt.desired})
			if err != nil {
				t.Fatal(err)
			}
			if s.prepared != nil {
				t.Error("plan left the Prepare for another Apply")
			}
			want, err := newTypeSet(tt.desired, s.keyExceptions())
			if err != nil {
				t.Fatal(err)
			}
			got := plans[0].steps[len(plans[0].steps)-1].set
			if len(got.of) != len(want.of) {
				t.Errorf("%d types, want %d", len(got.of), len(want.of))
			}
			for typ, w := range want.of {
				if got.of[typ].version != w.version {
					t.Errorf("%s: version %s, want %s", typ, got.of[typ].version, w.version)
				}
				if !maps.Equal(got.of[typ].each, w.each) {
					t.Errorf("%s: resource versions %v, want %v", typ, got.of[typ].each, w.each)
				}
			}
		})
	}
}

// TestPreparedHashGateway: the hashing of prepared resources is the
// future's; other resources, or no Prepare, are hashed on the spot.
func TestPreparedHashGateway(t *testing.T) {
	r, other := keyGateway(t), &translator.Resources{}
	sentinel := &hashed{}
	p := &prepared{futures: map[*translator.Resources]func() (*hashed, error){r: func() (*hashed, error) { return sentinel, nil }}}
	if h, err := p.hashGateway(r); err != nil || h != sentinel {
		t.Errorf("prepared resources: %p, %v; want the future's result", h, err)
	}
	for name, h := range map[string]func() (*hashed, error){
		"other resources": func() (*hashed, error) { return p.hashGateway(other) },
		"no Prepare":      func() (*hashed, error) { return (*prepared)(nil).hashGateway(r) },
	} {
		if got, err := h(); err != nil || got == sentinel || got.of[resource.RouteType].version == "" {
			t.Errorf("%s: %+v, %v; want a hashing of its own", name, got, err)
		}
	}
}
