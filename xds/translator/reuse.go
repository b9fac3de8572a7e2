package translator

import (
	"bytes"
	"crypto/sha256"
	"slices"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/internal/parallel"
	"github.com/tollgate/tollgate/policy/ir"
)

// routeDigest is the SHA-256 of a route's deterministic protobuf encoding.
type routeDigest [sha256.Size]byte

// validRoutes is every route of a validated translation with the digest
// of its encoding, sorted by digest (40 bytes a route: half a map's). It is
// never modified once built.
type validRoutes []routeEntry

// routeEntry is a route and the digest of its encoding.
type routeEntry struct {
	d routeDigest
	r *routev3.Route
}

// find returns the route of digest d, if any.
func (v validRoutes) find(d routeDigest) (*routev3.Route, bool) {
	i, ok := slices.BinarySearchFunc(v, d, compareEntry)
	if !ok {
		return nil, false
	}
	return v[i].r, true
}

// compareEntry orders entries by digest.
func compareEntry(e routeEntry, d routeDigest) int { return bytes.Compare(e.d[:], d[:]) }

// TranslateValidated returns Translate(cfg, gateway, opts) once
// ValidateWith(types) accepted it (nil types: a fresh AnyTypes), with the route messages of prev (the gateway's resources
// of an earlier TranslateValidated; nil for none) shared where they can
// be:
//   - every route whose deterministic encoding equals that of a route of
//     prev (same SHA-256) is replaced by prev's message, so the result's
//     encoding is byte-identical to Translate's, and an unchanged route is
//     the same pointer in both versions (the served-vs-new diff compares
//     pointers before encodings);
//   - such a route is not validated again (Validate's verdict on a route
//     depends on its content alone: envoy.ValidateRouteTableKnown); every
//     other check, and every new or changed route, runs as in Validate,
//     which returns the same error for a table that fails.
//
// prev's routes count only if prev came from TranslateValidated, which
// succeeded: a translation that failed validation returns no resources,
// so it can never lend a route to a later one. The result remembers its
// own routes' digests for the next call (40 bytes per route: 0.4 MB at
// 10,000 routes), and shares their messages with prev: a version that
// keeps most routes of the one before costs little more memory than one.
func TranslateValidated(cfg *ir.Config, gateway string, opts Options, prev *Resources, types *envoy.AnyTypes) (*Resources, error) {
	r, err := Translate(cfg, gateway, opts)
	if err != nil {
		return nil, err
	}
	var known validRoutes
	if prev != nil {
		known = prev.valid
	}
	index, reused := shareRoutes(r, known)
	if types == nil {
		types = &envoy.AnyTypes{}
	}
	isReused := func(rt *routev3.Route) bool { _, ok := reused[rt]; return ok }
	if err := validateWith(r, types, validateWorkers, isReused); err != nil {
		return nil, err
	}
	r.valid = index
	return r, nil
}

// routeSlot is the place of one route: index i of a virtual host's routes.
type routeSlot struct {
	vh *routev3.VirtualHost
	i  int
}

// shareRoutes replaces each route of r whose digest is in known by
// known's message, and returns r's routes with their digests and the set
// of the routes it took from known. A route that does not encode is left alone
// (Validate reports it). Digests are computed on several goroutines for a
// large gateway, as routes are built.
func shareRoutes(r *Resources, known validRoutes) (validRoutes, map[*routev3.Route]struct{}) {
	slots := routeSlots(r)
	index := make(validRoutes, len(slots))
	encoded := make([]bool, len(slots))
	parallel.Chunks(len(slots), parallel.Workers(len(slots), translateRoutesMin), func(_, lo, hi int) {
		opts := proto.MarshalOptions{Deterministic: true}
		var buf []byte
		for i := lo; i < hi; i++ {
			s := slots[i]
			b, err := opts.MarshalAppend(buf[:0], s.vh.Routes[s.i])
			if err != nil {
				continue
			}
			buf, index[i], encoded[i] = b, routeEntry{sha256.Sum256(b), s.vh.Routes[s.i]}, true
		}
	})
	reused := make(map[*routev3.Route]struct{}, min(len(known), len(slots)))
	n := 0 // index[:n] holds the routes that encode, in place
	for i, s := range slots {
		if !encoded[i] {
			continue
		}
		e := index[i]
		if old, ok := known.find(e.d); ok {
			s.vh.Routes[s.i], e.r = old, old
			reused[old] = struct{}{}
		}
		index[n] = e
		n++
	}
	index = slices.Clip(index[:n])
	slices.SortFunc(index, func(a, b routeEntry) int { return compareEntry(a, b.d) })
	return index, reused
}

// routeSlots lists the places of r's routes, each virtual host once
// (route configurations share their virtual hosts).
func routeSlots(r *Resources) []routeSlot {
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
	clear(seen)
	out := make([]routeSlot, 0, n)
	for _, rc := range r.Routes {
		for _, vh := range rc.GetVirtualHosts() {
			if seen[vh] {
				continue
			}
			seen[vh] = true
			for i := range vh.GetRoutes() {
				out = append(out, routeSlot{vh, i})
			}
		}
	}
	return out
}
