package translator

import (
	"bytes"
	"fmt"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// routeEncodingsDiffer returns why r.RouteEncodings() is not the
// deterministic encoding of each of r.Routes ("" when it is).
func routeEncodingsDiffer(r *Resources) string {
	enc := r.RouteEncodings()
	if len(enc) != len(r.Routes) {
		return fmt.Sprintf("%d encodings for %d route tables", len(enc), len(r.Routes))
	}
	for i, rc := range r.Routes {
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(rc)
		if err != nil {
			return err.Error()
		}
		if !bytes.Equal(enc[i], want) {
			return fmt.Sprintf("route table %s: the kept encoding is not the table's", rc.GetName())
		}
	}
	return ""
}

// TestRouteEncodingsAreTheTables: the encodings TranslateValidated keeps
// are those of the route tables it returns, also when it replaced routes
// by the previous version's messages (every test case, with its own
// translation and with the one of an edit as the previous version), and
// with edits of a large gateway. Translate keeps none.
func TestRouteEncodingsAreTheTables(t *testing.T) {
	for _, name := range caseNames(t) {
		for _, e := range reuseEdits[:2] {
			before, after := caseInput(t, name, e.name, e.edit), caseInput(t, name, "", nil)
			prev, err := TranslateValidated(before.cfg, before.gateway, before.opts, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := TranslateValidated(after.cfg, after.gateway, after.opts, prev, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []*Resources{prev, got} {
				if why := routeEncodingsDiffer(r); why != "" {
					t.Fatalf("%s after %s: %s", name, e.name, why)
				}
			}
		}
	}
	opts := Options{AuthzAddress: "10.255.0.1:9191"}
	prev, err := TranslateValidated(benchConfig(1500), "bench", opts, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := benchConfig(1501)
	cfg.Gateways[0].VirtualHosts[2].Routes[9].Timeout++
	got, err := TranslateValidated(cfg, "bench", opts, prev, nil)
	if err != nil {
		t.Fatal(err)
	}
	if why := routeEncodingsDiffer(got); why != "" {
		t.Fatal(why)
	}
	plain, err := Translate(cfg, "bench", opts)
	if err != nil {
		t.Fatal(err)
	}
	if plain.RouteEncodings() != nil {
		t.Fatal("Translate kept route encodings")
	}
}

// TestEncodeRoutesFindsEachRoute: the bytes encodeRoutes finds for each
// route inside its table's encoding are the route's own deterministic
// encoding (the digest TranslateValidated compares), for every route of
// every test case and of a 600-route gateway of two listeners, each
// virtual host once.
func TestEncodeRoutesFindsEachRoute(t *testing.T) {
	all := map[string]*Resources{}
	for _, name := range caseNames(t) {
		all[name] = translateCase(t, name)
	}
	large, err := Translate(benchConfig(600), "bench", Options{AuthzAddress: "10.255.0.1:9191"})
	if err != nil {
		t.Fatal(err)
	}
	all["600 routes"] = large
	checked := 0
	for name, r := range all {
		enc, ok := encodeRoutes(r)
		if !ok {
			t.Fatalf("%s: route tables not encoded", name)
		}
		if len(enc.slots) != len(enc.routes) {
			t.Fatalf("%s: %d slots, %d route encodings", name, len(enc.slots), len(enc.routes))
		}
		for i, s := range enc.slots {
			want, err := proto.MarshalOptions{Deterministic: true}.Marshal(s.vh.GetRoutes()[s.i])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc.routes[i], want) {
				t.Fatalf("%s: route %s: bytes found in the table are not its encoding", name, s.vh.GetRoutes()[s.i].GetName())
			}
			checked++
		}
	}
	if checked < 600 {
		t.Fatalf("%d routes checked: the test proves little", checked)
	}
}

// TestEncodeRoutesRefusesWhatDoesNotEncode: a route table that does not
// encode (invalid UTF-8 in a string field) gives no encoding, and
// TranslateValidated then shares no route and keeps no encoding.
func TestEncodeRoutesRefusesWhatDoesNotEncode(t *testing.T) {
	opts := Options{AuthzAddress: "10.255.0.1:9191"}
	r, err := Translate(benchConfig(20), "bench", opts)
	if err != nil {
		t.Fatal(err)
	}
	r.Routes[0].VirtualHosts[0].Routes[0].Name = "bad\xff"
	if _, ok := encodeRoutes(r); ok {
		t.Fatal("a table with invalid UTF-8 encoded")
	}
	index, reused := shareRoutes(r, nil)
	if index.len() != 0 || len(reused) != 0 || r.RouteEncodings() != nil {
		t.Fatalf("index of %d routes, %d reused, %d encodings; want none", index.len(), len(reused), len(r.RouteEncodings()))
	}
}

// TestFieldPayloads: the payloads of one field number, in order, other
// fields of every wire type skipped; truncated input is refused.
func TestFieldPayloads(t *testing.T) {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 300)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("a"))
	b = protowire.AppendTag(b, 3, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, 7)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("bc"))
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("not this"))
	tests := []struct {
		name string
		in   []byte
		want []string
		ok   bool
	}{
		{"all", b, []string{"a", "bc"}, true},
		{"empty", nil, nil, true},
		{"truncated payload", b[:len(b)-1], nil, false},
		{"truncated tag", []byte{0x80}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := fieldPayloads(nil, tt.in, 2)
			if ok != tt.ok {
				t.Fatalf("ok %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSpliceTableIsMarshal: a route table built from its other fields'
// encoding and its virtual hosts' is its deterministic encoding, with
// fields numbered below and above virtual_hosts, a map, a wrapper, and
// none or several virtual hosts (one of them twice).
func TestSpliceTableIsMarshal(t *testing.T) {
	a := &routev3.VirtualHost{Name: "a", Domains: []string{"a.example"}, Routes: []*routev3.Route{{Name: "r1"}, {Name: "r2"}}}
	b := &routev3.VirtualHost{Name: "b", Domains: []string{"*"}}
	full := func(rc *routev3.RouteConfiguration) *routev3.RouteConfiguration {
		rc.InternalOnlyHeaders = []string{"x-internal"}
		rc.ResponseHeadersToRemove = []string{"server"}
		rc.MaxDirectResponseBodySizeBytes = wrapperspb.UInt32(4096)
		rc.TypedPerFilterConfig = map[string]*anypb.Any{"z": {TypeUrl: "t/z"}, "a": {TypeUrl: "t/a"}}
		return rc
	}
	tests := []struct {
		name string
		rc   *routev3.RouteConfiguration
	}{
		{"name only", &routev3.RouteConfiguration{Name: "t"}},
		{"no name, virtual hosts", &routev3.RouteConfiguration{VirtualHosts: []*routev3.VirtualHost{a, b}}},
		{"virtual hosts only after", full(&routev3.RouteConfiguration{VirtualHosts: []*routev3.VirtualHost{b}})},
		{"every kind of field", full(&routev3.RouteConfiguration{Name: "t", VirtualHosts: []*routev3.VirtualHost{a, b, a}})},
		{"no virtual host", full(&routev3.RouteConfiguration{Name: "t"})},
		{"unknown field numbered below virtual_hosts", withUnknown(&routev3.RouteConfiguration{VirtualHosts: []*routev3.VirtualHost{a}}, 1)},
		{"unknown field numbered above", withUnknown(&routev3.RouteConfiguration{Name: "t", VirtualHosts: []*routev3.VirtualHost{a}}, 1000)},
		{"unknown fields and fields above", withUnknown(full(&routev3.RouteConfiguration{Name: "t", VirtualHosts: []*routev3.VirtualHost{b}}), 2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Resources{Routes: []*routev3.RouteConfiguration{tt.rc}}
			enc, ok := encodeRoutes(r)
			if !ok {
				t.Fatal("not encoded")
			}
			want, err := proto.MarshalOptions{Deterministic: true}.Marshal(tt.rc)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc.tables[0], want) {
				t.Fatalf("spliced %x\nwant    %x", enc.tables[0], want)
			}
		})
	}
}

// withUnknown returns rc holding an unknown varint field numbered num (as
// a field of that number with another wire type decodes): the
// deterministic encoding writes unknown fields last, whatever their number.
func withUnknown(rc *routev3.RouteConfiguration, num protowire.Number) *routev3.RouteConfiguration {
	u := protowire.AppendTag(nil, num, protowire.VarintType)
	rc.ProtoReflect().SetUnknown(protowire.AppendVarint(u, 7))
	return rc
}
