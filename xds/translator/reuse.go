package translator

import (
	"crypto/sha256"
	"encoding/binary"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/internal/parallel"
	"github.com/tollgate/tollgate/policy/ir"
)

// routeDigest is the SHA-256 of a route's deterministic protobuf encoding.
type routeDigest [sha256.Size]byte

// validRoutes is every route of a validated translation with the digest
// of its encoding (about 60 bytes a route). It is never modified once
// built; the nil *validRoutes has no route.
type validRoutes struct {
	entries []routeEntry
	// byPrefix indexes entries by the first 8 bytes of their digest (a
	// lookup compares the whole digest: an entry lost to a shared prefix
	// is only a route not reused).
	byPrefix map[uint64]int32
}

// routeEntry is a route and the digest of its encoding.
type routeEntry struct {
	d routeDigest
	r *routev3.Route
}

// prefix returns the first 8 bytes of d.
func (d routeDigest) prefix() uint64 { return binary.LittleEndian.Uint64(d[:8]) }

// find returns the route of digest d, if any.
func (v *validRoutes) find(d routeDigest) (*routev3.Route, bool) {
	if v == nil {
		return nil, false
	}
	if i, ok := v.byPrefix[d.prefix()]; ok && v.entries[i].d == d {
		return v.entries[i].r, true
	}
	return nil, false
}

// len returns the number of routes of v.
func (v *validRoutes) len() int {
	if v == nil {
		return 0
	}
	return len(v.entries)
}

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
// own routes' digests for the next call (about 60 bytes per route: 0.6 MB
// at 10,000 routes), and shares their messages with prev: a version that
// keeps most routes of the one before costs little more memory than one.
// It also keeps the deterministic encoding of each route table, built
// from the one encoding of each virtual host the digests were taken from
// (RouteEncodings: 0.34 MB per table at 10,000 prefix routes), which the
// xDS server hashes and sends instead of encoding the tables again.
func TranslateValidated(cfg *ir.Config, gateway string, opts Options, prev *Resources, types *envoy.AnyTypes) (*Resources, error) {
	r, err := Translate(cfg, gateway, opts)
	if err != nil {
		return nil, err
	}
	var known *validRoutes
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
// of the routes it took from known. It encodes each virtual host of r once
// (encodeRoutes), takes every route's digest from that encoding, and keeps
// the route tables' encodings in r (RouteEncodings): a route replaced by
// known's message has the same encoding, so they stay r's. When a virtual
// host does not encode, no route is shared or indexed (Validate reports
// the route at fault). Digests are computed on several goroutines for a
// large gateway.
func shareRoutes(r *Resources, known *validRoutes) (*validRoutes, map[*routev3.Route]struct{}) {
	enc, ok := encodeRoutes(r)
	if !ok {
		return &validRoutes{}, nil
	}
	r.routeEnc = enc.tables
	slots := enc.slots
	entries := make([]routeEntry, len(slots))
	reused := make([]bool, len(slots))
	parallel.Chunks(len(slots), parallel.Workers(len(slots), translateRoutesMin), func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			s := slots[i]
			entries[i] = routeEntry{sha256.Sum256(enc.routes[i]), s.vh.Routes[s.i]}
			if old, ok := known.find(entries[i].d); ok { // distinct slots: no race
				s.vh.Routes[s.i], entries[i].r, reused[i] = old, old, true
			}
		}
	})
	index := &validRoutes{entries: entries, byPrefix: make(map[uint64]int32, len(slots))}
	set := make(map[*routev3.Route]struct{}, min(known.len(), len(slots)))
	for i, e := range entries {
		if reused[i] {
			set[e.r] = struct{}{}
		}
		index.byPrefix[e.d.prefix()] = int32(i)
	}
	return index, set
}
