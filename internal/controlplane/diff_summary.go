package controlplane

import (
	"bytes"
	"slices"
	"sort"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// changedFields summarises how a changed resource differs: the names of
// its top-level fields that differ (protojson names, e.g. "loadAssignment",
// "connectTimeout"). For a route configuration, the routes themselves are
// listed instead of "virtualHosts": "+api-v2" (added), "-old" (removed),
// "~users" (changed), so a push reads as the policy's routes.
//
// It compares the messages field by field without encoding them: a route
// configuration of 10,000 routes is compared in about a millisecond, where
// encoding both versions to JSON took hundreds.
func changedFields(a, b types.Resource) []string {
	before, after := topLevel(a), topLevel(b)
	var out []string
	for _, k := range unionKeys(before, after) {
		x, inA := before[k]
		y, inB := after[k]
		if inA && inB && equalValues(x.fd, x.value, y.value) {
			continue
		}
		if k == "virtualHosts" {
			if routes := routeChanges(x.value, inA, y.value, inB); len(routes) > 0 {
				out = append(out, routes...)
				continue
			}
		}
		out = append(out, k)
	}
	return out
}

// fieldValue is one populated field of a message.
type fieldValue struct {
	fd    protoreflect.FieldDescriptor
	value protoreflect.Value
}

// topLevel returns m's populated fields by JSON name (the fields protojson
// would print).
func topLevel(m types.Resource) map[string]fieldValue {
	out := map[string]fieldValue{}
	if m == nil {
		return out
	}
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		out[fd.JSONName()] = fieldValue{fd: fd, value: v}
		return true
	})
	return out
}

// routeChanges compares the named routes of two virtualHosts lists; it
// returns nil when only something else about the virtual hosts changed.
// A list absent on one side (inA or inB false) has no routes.
//
// The routes both lists share (the same message at the same place from
// either end: an unchanged route of a push, translator.TranslateValidated)
// are left out of the comparison unless one of their names is also among
// the others', so a push of one route to 10,000 compares a few.
func routeChanges(a protoreflect.Value, inA bool, b protoreflect.Value, inB bool) []string {
	x, y := flatRoutes(a, inA), flatRoutes(b, inB)
	if mx, my, shared := trimShared(x, y); !namesAmong(shared, mx, my) {
		x, y = mx, my
	}
	before, after := namedRoutes(x), namedRoutes(y)
	var out []string
	var bufs encodeBuffers
	for _, n := range unionKeys(before, after) {
		xs, inX := before[n]
		ys, inY := after[n]
		switch {
		case !inX:
			out = append(out, "+"+n)
		case !inY:
			out = append(out, "-"+n)
		case !bufs.sameRoutes(xs, ys):
			out = append(out, "~"+n)
		}
	}
	return out
}

// flatRoutes returns the routes of every virtual host of a virtualHosts
// list, in order (none when ok is false).
func flatRoutes(vhs protoreflect.Value, ok bool) []protoreflect.Message {
	if !ok {
		return nil
	}
	list := vhs.List()
	out := make([]protoreflect.Message, 0, routeCount(list))
	for i := 0; i < list.Len(); i++ {
		vh := list.Get(i).Message()
		rfd := vh.Descriptor().Fields().ByName("routes")
		if rfd == nil {
			continue
		}
		routes := vh.Get(rfd).List()
		for j := 0; j < routes.Len(); j++ {
			out = append(out, routes.Get(j).Message())
		}
	}
	return out
}

// trimShared returns x and y without their longest common prefix and
// suffix of identical messages, and those messages (x's).
func trimShared(x, y []protoreflect.Message) (mx, my, shared []protoreflect.Message) {
	p := 0
	for p < min(len(x), len(y)) && x[p].Interface() == y[p].Interface() {
		p++
	}
	s := 0
	for s < min(len(x), len(y))-p && x[len(x)-1-s].Interface() == y[len(y)-1-s].Interface() {
		s++
	}
	shared = append(x[:p:p], x[len(x)-s:]...)
	return x[p : len(x)-s], y[p : len(y)-s], shared
}

// namesAmong reports whether a route of shared has the name of a route of
// xs or ys: then leaving it out would change the result (namedRoutes
// lists every route of a name).
func namesAmong(shared, xs, ys []protoreflect.Message) bool {
	names := make(map[string]bool, len(xs)+len(ys))
	for _, m := range append(slices.Clip(xs), ys...) {
		names[routeName(m)] = true
	}
	delete(names, "") // unnamed routes are never compared
	for _, m := range shared {
		if names[routeName(m)] {
			return true
		}
	}
	return false
}

// routeName returns a route's name ("" for none).
func routeName(r protoreflect.Message) string {
	if n, ok := r.Interface().(interface{ GetName() string }); ok {
		return n.GetName()
	}
	if nfd := r.Descriptor().Fields().ByName("name"); nfd != nil {
		return r.Get(nfd).String()
	}
	return ""
}

// namedRoutes returns routes by name (a route name appearing several
// times, as in several virtual hosts, lists all its routes in order).
// Unnamed routes are left out.
func namedRoutes(routes []protoreflect.Message) map[string][]protoreflect.Message {
	out := make(map[string][]protoreflect.Message, len(routes))
	for _, r := range routes {
		if name := routeName(r); name != "" {
			out[name] = append(out[name], r)
		}
	}
	return out
}

// encodeBuffers are reused by sameRoutes across the routes of a route
// configuration, so comparing 10,000 routes allocates two buffers, not
// 20,000.
type encodeBuffers struct{ x, y []byte }

// sameRoutes compares routes by identity, then by their deterministic
// encoding (the translator encodes every Any deterministically too),
// several times faster than a reflective comparison. An unchanged route is
// the served message itself (translator.TranslateValidated), so only new
// and changed routes are encoded.
func (bufs *encodeBuffers) sameRoutes(a, b []protoreflect.Message) bool {
	if len(a) != len(b) {
		return false
	}
	opts := proto.MarshalOptions{Deterministic: true}
	for i := range a {
		if a[i].Interface() == b[i].Interface() {
			continue
		}
		var errX, errY error
		bufs.x, errX = opts.MarshalAppend(bufs.x[:0], a[i].Interface())
		bufs.y, errY = opts.MarshalAppend(bufs.y[:0], b[i].Interface())
		if errX != nil || errY != nil || !bytes.Equal(bufs.x, bufs.y) {
			return false
		}
	}
	return true
}

// routeCount is the number of routes of a virtualHosts list.
func routeCount(list protoreflect.List) int {
	n := 0
	for i := 0; i < list.Len(); i++ {
		vh := list.Get(i).Message()
		if rfd := vh.Descriptor().Fields().ByName("routes"); rfd != nil {
			n += vh.Get(rfd).List().Len()
		}
	}
	return n
}

// unionKeys returns the keys of a and b, sorted.
func unionKeys[V any](a, b map[string]V) []string {
	keys := make([]string, 0, max(len(a), len(b)))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}
