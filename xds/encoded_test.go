package xds

import (
	"bytes"
	"context"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/xds/translator"
)

// encodedSets returns typeSets whose route tables were hashed from the
// encodings TranslateValidated kept (the second sharing routes with the
// first), and one of resources that did not come from it.
func encodedSets(t *testing.T) map[string]*typeSet {
	t.Helper()
	before := validatedGateway(t, map[string]string{"/": "a", "/x": "c"}, nil)
	after := validatedGateway(t, map[string]string{"/": "b", "/x": "c"}, before)
	out := map[string]*typeSet{"translated": gatewayTo(t, map[string]string{"/": "a"})}
	for name, r := range map[string]*translator.Resources{"validated": before, "validated, shared routes": after} {
		ts, err := newTypeSet(r, translator.KeyExceptions{})
		if err != nil {
			t.Fatal(err)
		}
		out[name] = ts
	}
	out["native keys"], _ = newTypeSet(keyGateway(t), translator.KeyExceptions{})
	out["validated, two listeners"] = twoListenerSet(t)
	return out
}

// twoListenerSet returns the typeSet of a validated gateway of two
// listeners: two route tables (sharing their virtual host), so that a
// table served with another's encoding shows.
func twoListenerSet(t *testing.T) *typeSet {
	t.Helper()
	cfg := gatewayConfig(map[string]string{"/": "a", "/x": "c"})
	g := &cfg.Gateways[0]
	g.Listeners = append(g.Listeners, ir.Listener{Name: "alt", Address: "127.0.0.1", Port: 8081})
	r, err := translator.TranslateValidated(cfg, "g", translator.Options{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Routes) != 2 || len(r.RouteEncodings()) != 2 {
		t.Fatalf("%d route tables, %d encodings kept; want 2", len(r.Routes), len(r.RouteEncodings()))
	}
	ts, err := newTypeSet(r, translator.KeyExceptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// TestEncodedResourceMarshalsAsTheMessage: every resource of a snapshot
// marshals (cache.MarshalResource, as the delta server sends it) to the
// bytes of the typed resource it wraps, has its name, size and JSON, and
// a route table's bytes are those the translator kept (not an encoding of
// their own).
func TestEncodedResourceMarshalsAsTheMessage(t *testing.T) {
	for name, ts := range encodedSets(t) {
		snap, err := ts.snapshot()
		if err != nil {
			t.Fatal(err)
		}
		for _, typ := range allTypes() {
			served := snap.GetResources(typ)
			if len(served) != len(ts.of[typ].items) {
				t.Fatalf("%s, %s: %d resources served, %d typed", name, typ, len(served), len(ts.of[typ].items))
			}
			for i, typed := range ts.of[typ].items {
				checkServedEncoding(t, name, served[cache.GetResourceName(typed)], typed, ts.of[typ].enc[i])
			}
		}
	}
}

// checkServedEncoding fails unless got is an encodedResource of want that
// marshals to want's encoding, which is enc.
func checkServedEncoding(t *testing.T, what string, got, want types.Resource, enc []byte) {
	t.Helper()
	e, ok := got.(*encodedResource)
	if !ok {
		t.Fatalf("%s: %s served as %T, not from its encoding", what, cache.GetResourceName(want), got)
	}
	wantEnc, err := cache.MarshalResource(want)
	if err != nil {
		t.Fatal(err)
	}
	gotEnc, err := cache.MarshalResource(got)
	if err != nil {
		t.Fatal(err)
	}
	name := cache.GetResourceName(want)
	if !bytes.Equal(gotEnc, wantEnc) || !bytes.Equal(enc, wantEnc) || len(enc) > 0 && &e.enc[0] != &enc[0] {
		t.Fatalf("%s: %s: served bytes differ from the resource's encoding", what, name)
	}
	if cache.GetResourceName(got) != name || proto.Size(got) != len(wantEnc) {
		t.Fatalf("%s: %s: name %q, size %d; want %d", what, name, cache.GetResourceName(got), proto.Size(got), len(wantEnc))
	}
	gotJSON, errG := protojson.Marshal(got)
	wantJSON, errW := protojson.Marshal(want)
	if errG != nil || errW != nil || !bytes.Equal(gotJSON, wantJSON) {
		t.Fatalf("%s: %s: JSON %s (%v), want %s (%v)", what, name, gotJSON, errG, wantJSON, errW)
	}
}

// TestRouteTablesServedFromTheTranslatorsEncoding: the route tables of a
// validated translation are hashed and served from the very bytes
// TranslateValidated encoded, not encoded again.
func TestRouteTablesServedFromTheTranslatorsEncoding(t *testing.T) {
	r := validatedGateway(t, map[string]string{"/": "a", "/x": "c"}, nil)
	ts, err := newTypeSet(r, translator.KeyExceptions{})
	if err != nil {
		t.Fatal(err)
	}
	kept := r.RouteEncodings()
	if len(kept) == 0 || len(ts.of[resource.RouteType].enc) != len(kept) {
		t.Fatalf("%d encodings kept, %d hashed", len(kept), len(ts.of[resource.RouteType].enc))
	}
	for i := range kept {
		if &ts.of[resource.RouteType].enc[i][0] != &kept[i][0] {
			t.Fatalf("route table %d encoded again", i)
		}
	}
}

// TestDeltaResponseIsTheTypedResources: what go-control-plane's cache puts
// in a delta response for a wildcard subscription, through its public
// API, is each typed resource's encoding with the version map's version.
func TestDeltaResponseIsTheTypedResources(t *testing.T) {
	for name, ts := range encodedSets(t) {
		snap, err := ts.snapshot()
		if err != nil {
			t.Fatal(err)
		}
		c := cache.NewSnapshotCache(true, cache.IDHash{}, nil)
		if err := c.SetSnapshot(context.Background(), "n", snap); err != nil {
			t.Fatal(err)
		}
		for _, typ := range allTypes() {
			want := map[string][]byte{}
			for _, r := range ts.of[typ].items {
				want[cache.GetResourceName(r)], _ = cache.MarshalResource(r)
			}
			checkDeltaResponse(t, name, c, typ, want, ts.of[typ].each)
		}
	}
}

// checkDeltaResponse fails unless c's delta response for type typ holds
// exactly want's encodings, with versions.
func checkDeltaResponse(t *testing.T, what string, c cache.SnapshotCache, typ resource.Type, want map[string][]byte, versions map[string]string) {
	t.Helper()
	out := make(chan cache.DeltaResponse, 1)
	req := &cache.DeltaRequest{Node: &core.Node{Id: "n"}, TypeUrl: typ}
	cancel, err := c.CreateDeltaWatch(req, streamv3.NewDeltaSubscription(nil, nil, nil, true), out)
	if err != nil {
		t.Fatal(err)
	}
	if cancel != nil {
		defer cancel()
	}
	if len(want) == 0 {
		return // the cache answers no wildcard watch of an empty type
	}
	resp, err := (<-out).GetDeltaDiscoveryResponse()
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetResources()) != len(want) {
		t.Fatalf("%s, %s: %d resources in the response, want %d", what, typ, len(resp.GetResources()), len(want))
	}
	for _, r := range resp.GetResources() {
		if !bytes.Equal(r.GetResource().GetValue(), want[r.GetName()]) || r.GetVersion() != versions[r.GetName()] {
			t.Fatalf("%s, %s: %s sent with other bytes or version %q (want %q)", what, typ, r.GetName(), r.GetVersion(), versions[r.GetName()])
		}
	}
}
