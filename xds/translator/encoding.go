package translator

import (
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tollgate/tollgate/internal/parallel"
)

// RouteEncodings returns the deterministic protobuf encoding
// (proto.MarshalOptions{Deterministic: true}, as go-control-plane's
// cache.MarshalResource encodes) of each of r.Routes, index-aligned, as
// TranslateValidated computed them to find the unchanged routes; nil when
// r did not come from TranslateValidated or a route table did not encode.
// A route TranslateValidated replaced by the previous version's message
// encodes to the same bytes (that is how it was found), so the encodings
// are those of the resources r holds. The slices must not be modified.
func (r *Resources) RouteEncodings() [][]byte { return r.routeEnc }

// encodedRoutes is the one encoding of a gateway's route tables and, for
// each route, its place and the bytes of its encoding inside it.
type encodedRoutes struct {
	tables [][]byte    // the encoding of each RouteConfiguration
	slots  []routeSlot // every route, each virtual host once
	routes [][]byte    // the encoding of each slot's route: a sub-slice of a table's
}

// encodeRoutes encodes each of r's route configurations once (on several
// goroutines when there are several) and finds every route's encoding in
// them: in the protobuf wire format a sub-message's deterministic encoding
// is the payload of its field in its parent's, byte for byte. ok is false
// when a table does not encode (Validate reports the route at fault) or
// its encoding does not hold its virtual hosts and routes one for one.
func encodeRoutes(r *Resources) (enc encodedRoutes, ok bool) {
	tables := make([][]byte, len(r.Routes))
	errs := make([]error, len(r.Routes))
	parallel.Chunks(len(r.Routes), len(r.Routes), func(_, lo, hi int) {
		opts := proto.MarshalOptions{Deterministic: true}
		for i := lo; i < hi; i++ {
			tables[i], errs[i] = opts.Marshal(r.Routes[i])
		}
	})
	for _, err := range errs {
		if err != nil {
			return encodedRoutes{}, false
		}
	}
	n := gatewayRouteCount(r)
	enc = encodedRoutes{tables: tables, slots: make([]routeSlot, 0, n), routes: make([][]byte, 0, n)}
	vhField := fieldNumber(&routev3.RouteConfiguration{}, "virtual_hosts")
	routeField := fieldNumber(&routev3.VirtualHost{}, "routes")
	seen := map[*routev3.VirtualHost]bool{}
	var vhs [][]byte
	for i, rc := range r.Routes {
		if vhs, ok = fieldPayloads(vhs[:0], tables[i], vhField); !ok || len(vhs) != len(rc.GetVirtualHosts()) {
			return encodedRoutes{}, false
		}
		for k, vh := range rc.GetVirtualHosts() {
			if seen[vh] {
				continue
			}
			seen[vh] = true
			before := len(enc.routes)
			if enc.routes, ok = fieldPayloads(enc.routes, vhs[k], routeField); !ok || len(enc.routes)-before != len(vh.GetRoutes()) {
				return encodedRoutes{}, false
			}
			for j := range vh.GetRoutes() {
				enc.slots = append(enc.slots, routeSlot{vh, j})
			}
		}
	}
	return enc, true
}

// fieldNumber returns the number of m's field name.
func fieldNumber(m proto.Message, name protoreflect.Name) protowire.Number {
	return m.ProtoReflect().Descriptor().Fields().ByName(name).Number()
}

// fieldPayloads appends to dst the payload of every top-level
// length-delimited field num of the encoded message b, in order (for a
// message field: each sub-message's encoding). ok is false when b does
// not parse.
func fieldPayloads(dst [][]byte, b []byte, num protowire.Number) (out [][]byte, ok bool) {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return dst, false
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return dst, false
			}
			dst, b = append(dst, v), b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(n, typ, b)
		if m < 0 {
			return dst, false
		}
		b = b[m:]
	}
	return dst, true
}

// gatewayRouteCount returns the number of routes of r, each virtual host once.
func gatewayRouteCount(r *Resources) int {
	seen := map[*routev3.VirtualHost]bool{}
	n := 0
	for _, rc := range r.Routes {
		for _, vh := range rc.GetVirtualHosts() {
			if !seen[vh] {
				seen[vh] = true
				n += len(vh.GetRoutes())
			}
		}
	}
	return n
}
