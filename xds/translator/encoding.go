package translator

import (
	"errors"

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
// each route, its place and the bytes of its encoding.
type encodedRoutes struct {
	tables [][]byte    // the encoding of each RouteConfiguration
	slots  []routeSlot // every route, each virtual host once
	routes [][]byte    // the encoding of each slot's route
}

// encodeRoutes encodes each distinct virtual host of r's route tables once
// (on several goroutines when there are several), finds every route's
// encoding in its virtual host's, and builds each table's encoding from its
// other fields' and its virtual hosts' (spliceTable): the route tables of a
// gateway's listeners share their virtual hosts, which are nearly all of
// their bytes. In the protobuf wire format a sub-message's deterministic
// encoding is the payload of its field in its parent's, byte for byte, so
// the results are the deterministic encodings of the tables and routes
// (TestEncodeRoutesFindsEachRoute, TestRouteEncodingsAreTheTables). ok is
// false when a virtual host or table does not encode (Validate reports the
// route at fault) or an encoding does not hold its routes one for one.
func encodeRoutes(r *Resources) (enc encodedRoutes, ok bool) {
	vhs, at := distinctVirtualHosts(r)
	n := routeTotalOf(vhs)
	vhEnc := make([][]byte, len(vhs))
	errs := make([]error, len(vhs))
	parallel.Chunks(len(vhs), min(len(vhs), parallel.Workers(n, translateRoutesMin)), func(_, lo, hi int) {
		opts := proto.MarshalOptions{Deterministic: true}
		for i := lo; i < hi; i++ {
			vhEnc[i], errs[i] = opts.Marshal(vhs[i])
		}
	})
	if errors.Join(errs...) != nil {
		return encodedRoutes{}, false
	}
	enc = encodedRoutes{tables: make([][]byte, len(r.Routes)), slots: make([]routeSlot, 0, n), routes: make([][]byte, 0, n)}
	routeField := fieldNumber(&routev3.VirtualHost{}, "routes")
	for k, vh := range vhs {
		before := len(enc.routes)
		if enc.routes, ok = fieldPayloads(enc.routes, vhEnc[k], routeField); !ok || len(enc.routes)-before != len(vh.GetRoutes()) {
			return encodedRoutes{}, false
		}
		for j := range vh.GetRoutes() {
			enc.slots = append(enc.slots, routeSlot{vh, j})
		}
	}
	for i, rc := range r.Routes {
		var err error
		if enc.tables[i], err = spliceTable(rc, vhEnc, at); err != nil {
			return encodedRoutes{}, false
		}
	}
	return enc, true
}

// distinctVirtualHosts returns the virtual hosts of r's route tables, each
// once, in order, and the index of each in that list.
func distinctVirtualHosts(r *Resources) ([]*routev3.VirtualHost, map[*routev3.VirtualHost]int) {
	var out []*routev3.VirtualHost
	at := map[*routev3.VirtualHost]int{}
	for _, rc := range r.Routes {
		for _, vh := range rc.GetVirtualHosts() {
			if _, ok := at[vh]; !ok {
				at[vh] = len(out)
				out = append(out, vh)
			}
		}
	}
	return out, at
}

// routeTotalOf returns the number of routes of vhs.
func routeTotalOf(vhs []*routev3.VirtualHost) int {
	n := 0
	for _, vh := range vhs {
		n += len(vh.GetRoutes())
	}
	return n
}

// spliceTable returns rc's deterministic encoding from the encoding of
// its fields but virtual_hosts and the encodings of its virtual hosts
// (vhEnc[at[vh]]): the deterministic encoding writes known fields in field
// number order and then the unknown fields as they are, so the virtual
// hosts' records go before the first known field numbered above theirs,
// and before the unknown fields whatever their numbers.
func spliceTable(rc *routev3.RouteConfiguration, vhEnc [][]byte, at map[*routev3.VirtualHost]int) ([]byte, error) {
	vhFD := rc.ProtoReflect().Descriptor().Fields().ByName("virtual_hosts")
	rest, err := proto.MarshalOptions{Deterministic: true}.Marshal(withoutField(rc, vhFD))
	if err != nil {
		return nil, err
	}
	cut, ok := firstFieldAbove(rest, vhFD.Number())
	if !ok {
		return nil, errors.New("route table encoding does not parse")
	}
	cut = min(cut, len(rest)-len(rc.ProtoReflect().GetUnknown())) // the unknown fields end rest
	size := len(rest)
	for _, vh := range rc.GetVirtualHosts() {
		size += protowire.SizeTag(vhFD.Number()) + protowire.SizeBytes(len(vhEnc[at[vh]]))
	}
	out := append(make([]byte, 0, size), rest[:cut]...)
	for _, vh := range rc.GetVirtualHosts() {
		out = protowire.AppendTag(out, vhFD.Number(), protowire.BytesType)
		out = protowire.AppendBytes(out, vhEnc[at[vh]])
	}
	return append(out, rest[cut:]...), nil
}

// withoutField returns a shallow copy of m without field fd: its other
// fields hold m's values (sub-messages shared, not copied).
func withoutField(m proto.Message, fd protoreflect.FieldDescriptor) proto.Message {
	src := m.ProtoReflect()
	dst := src.New()
	src.Range(func(f protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if f != fd {
			dst.Set(f, v)
		}
		return true
	})
	if u := src.GetUnknown(); len(u) > 0 {
		dst.SetUnknown(u)
	}
	return dst.Interface()
}

// firstFieldAbove returns the offset in the encoded message b of its first
// field numbered above num (len(b) for none). ok is false when b does not
// parse.
func firstFieldAbove(b []byte, num protowire.Number) (int, bool) {
	off := 0
	for off < len(b) {
		n, typ, l := protowire.ConsumeTag(b[off:])
		if l < 0 {
			return 0, false
		}
		if n > num {
			return off, true
		}
		m := protowire.ConsumeFieldValue(n, typ, b[off+l:])
		if m < 0 {
			return 0, false
		}
		off += l + m
	}
	return off, true
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
