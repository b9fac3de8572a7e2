package xds

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"sync"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/xds/translator"
)

// The xDS types a gateway snapshot carries, in the order Envoy must apply
// them (clusters and endpoints before the listeners and routes that use them).
//
// SDS secrets move with the listeners: Envoy subscribes to a secret by name
// only once a listener or cluster references it, so a secret pushed ahead of
// its listener would never be ACKed (the step would wait out the ACK
// timeout). A new listener warms until its secret arrives in the same
// snapshot, the old one serving meanwhile; a rotation (same names, new
// content) is a single step that changes only the secrets' version.
//
// The ECDS resources (the key identity filter's, holding the API-key
// exceptions table, and jwt_authn's, holding the JWKS epoch) move with the
// listeners too, for the same reason: Envoy subscribes to them once a
// listener references them. Their filters have default configs (refusing
// every signed key; the policy's jwt_authn config), so the listener never
// waits for them. The table and the epoch also change on their own
// (SetKeyExceptions, BumpJWKSEpoch), changing those resources alone.
var (
	clusterTypes  = []resource.Type{resource.ClusterType, resource.EndpointType}
	listenerTypes = []resource.Type{resource.ListenerType, resource.RouteType, resource.SecretType, resource.ExtensionConfigType}
)

// ackTypes are the types an Apply step waits for: the exceptions table
// is left out, as it changes between and during pushes (a step's set
// would name an older table than the one the proxies were sent).
func ackTypes(among []resource.Type) []resource.Type {
	var out []resource.Type
	for _, t := range among {
		if t != resource.ExtensionConfigType {
			out = append(out, t)
		}
	}
	return out
}

// allTypes lists every type a gateway snapshot carries.
func allTypes() []resource.Type {
	return append(append([]resource.Type{}, clusterTypes...), listenerTypes...)
}

// typeSet is one gateway's resources of each xDS type with the content hash
// of each type's resources. It is immutable once built, and so is the one
// snapshot object built from it, which every node of the gateway shares.
type typeSet struct {
	of map[resource.Type]typed
	ecdsFilters

	once sync.Once
	snap *cache.Snapshot
	err  error
}

// ecdsFilters build a gateway's ExtensionConfigType resources.
type ecdsFilters struct {
	// keys builds the key identity's ExtensionConfigType resource from the
	// API-key exceptions table (nil: the gateway has no native key route).
	keys *translator.KeyIdentity
	// jwt builds jwt_authn's ExtensionConfigType resource from the JWKS
	// epoch (nil: the gateway's jwt_authn, if any, is inline).
	jwt *translator.JWTAuthn
	// retiredKeys and retiredJWT build the resources of filters an earlier
	// policy version named otherwise (retire), from the same inputs.
	retiredKeys *translator.KeyIdentity
	retiredJWT  *translator.JWTAuthn
}

// retire keeps prev's ECDS-served filters that f renames, until a later
// version renames them again (an unchanged policy pushed again keeps
// them: the same snapshot). A renamed filter means a new listener: the
// old one's filter chain drains, its connections (HTTP/1.1 keep-alive,
// HTTP/2 streams under way) still running the old filter. Were its
// resource removed, Envoy would put that filter's default config back on
// them: a jwt_authn config with an empty JWKS cache (every request waits
// for a fetch, or is cut by the drain's end when the IdP is slow), a key
// identity config refusing every signed key (503). The retired resources
// are built from the current exceptions table and JWKS epoch, so a
// revocation reaches the draining connections too. A proxy that no longer
// runs the old filter does not subscribe to its resource, and is sent
// nothing.
func (f ecdsFilters) retire(prev ecdsFilters) ecdsFilters {
	f.retiredKeys = retired(f.keys, prev.keys, prev.retiredKeys)
	f.retiredJWT = retired(f.jwt, prev.jwt, prev.retiredJWT)
	return f
}

// retiredName reports whether name is the resource of a retired filter
// (never a current one's: retire keeps only renamed filters).
func (f ecdsFilters) retiredName(name string) bool {
	return f.retiredKeys != nil && f.retiredKeys.Name() == name || f.retiredJWT != nil && f.retiredJWT.Name() == name
}

// hashExtensions hashes ext, f's ECDS resources, as hashResources does,
// but for the type's version, which covers the current filters' resources
// alone. So a proxy's ACKed version (the type's version in the responses
// it gets) never goes stale for a resource it does not subscribe to (a
// retired filter's, once its listener has drained), and a snapshot
// without a retired filter keeps hashResources' version. A retired
// resource changes alone only when the policy no longer has its filter
// (a revocation for a removed gateway's draining connections): the delta
// server still sends it to a proxy that subscribes to it (it compares
// each resource's version); a state-of-the-world proxy gets it with the
// next change of a current filter.
func (f ecdsFilters) hashExtensions(ext []types.Resource) (typed, error) {
	ty, err := hashResources(ext, nil)
	if err != nil {
		return ty, err
	}
	h := sha256.New()
	for i, r := range ext {
		if name := cache.GetResourceName(r); !f.retiredName(name) {
			fmt.Fprintf(h, "%d:%s:", len(ty.enc[i]), name)
			h.Write(ty.enc[i])
		}
	}
	ty.version = hex.EncodeToString(h.Sum(nil)[:8])
	return ty, nil
}

// retired returns the filter to keep beside cur: prev when cur renames
// it, else prevRetired unless cur has its name again; nil for none.
func retired[F interface {
	*translator.KeyIdentity | *translator.JWTAuthn
	Name() string
}](cur, prev, prevRetired F) F {
	named := func(f F) bool { return f != nil && (cur == nil || f.Name() != cur.Name()) }
	switch {
	case named(prev):
		return prev
	case named(prevRetired):
		return prevRetired
	}
	return nil
}

// typed is the resources of one xDS type, hashed from one encoding.
type typed struct {
	items   []types.Resource
	version string // the type's version: a hash of every resource's encoding
	// each holds each resource's version by name: the snapshot's version
	// map, computed from the encoding hashed for version rather than by
	// encoding every resource again.
	each map[string]string
	// enc holds each resource's deterministic encoding, index-aligned
	// with items: the bytes hashed, which the snapshot's resources
	// marshal to (encodedResource).
	enc [][]byte
}

// newTypeSet hashes r's resources per type, with x as the exceptions
// table of a gateway with native key routes and JWKS epoch 0. A type's version is the hash
// of the deterministic encoding of its resources (sorted by name by the
// translator), so an unchanged type keeps its version and Envoy is not
// asked to reload it.
func newTypeSet(r *translator.Resources, x translator.KeyExceptions) (*typeSet, error) {
	h, err := hashTypes(r)
	if err != nil {
		return nil, err
	}
	return h.typeSet(r, extInputs{keys: x}, nil)
}

// extInputs are what a gateway's ExtensionConfigType resources are built
// from besides the policy: the API-key exceptions table and the JWKS epoch.
type extInputs struct {
	keys  translator.KeyExceptions
	epoch uint64
}

// hashed is a gateway's resources hashed per type, all types but the
// exceptions table's (ExtensionConfigType), which is built from the table
// when the resources are applied. Prepare computes it ahead of Apply.
type hashed struct {
	of map[resource.Type]typed
}

// hashTypes hashes r's resources of every type but ExtensionConfigType,
// the route tables from the encodings the translator kept
// (translator.Resources.RouteEncodings) when it did.
func hashTypes(r *translator.Resources) (*hashed, error) {
	byType := r.ByType()
	h := &hashed{of: map[resource.Type]typed{}}
	for _, t := range allTypes() {
		if t == resource.ExtensionConfigType {
			continue
		}
		var known [][]byte
		if t == resource.RouteType {
			known = r.RouteEncodings()
		}
		ty, err := hashResources(byType[t], known)
		if err != nil {
			return nil, fmt.Errorf("hash %s: %w", shortType(t), err)
		}
		h.of[t] = ty
	}
	return h, nil
}

// typeSet completes h, the hashed resources of r, with r's ECDS resources
// built from in: the key identity's (for a gateway with native key routes),
// jwt_authn's (for a gateway whose jwt_authn is served over ECDS). h is
// not changed: a typeSet gets maps of its own.
func (h *hashed) typeSet(r *translator.Resources, in extInputs, prev *typeSet) (*typeSet, error) {
	ts := &typeSet{of: maps.Clone(h.of), ecdsFilters: ecdsFilters{keys: r.KeyIdentity, jwt: r.JWTAuthn}}
	if prev != nil {
		ts.ecdsFilters = ts.retire(prev.ecdsFilters)
	}
	ext, err := ts.extensions(in)
	if err != nil {
		return nil, err
	}
	ty, err := ts.hashExtensions(ext)
	if err != nil {
		return nil, fmt.Errorf("hash %s: %w", shortType(resource.ExtensionConfigType), err)
	}
	ts.of[resource.ExtensionConfigType] = ty
	return ts, nil
}

// extensions returns ts's ECDS resources built from in, sorted by name.
func (ts *typeSet) extensions(in extInputs) ([]types.Resource, error) {
	var ext []types.Resource
	for _, j := range []*translator.JWTAuthn{ts.jwt, ts.retiredJWT} {
		if j == nil {
			continue
		}
		e, err := j.Extension(in.epoch)
		if err != nil {
			return nil, err
		}
		ext = append(ext, e)
	}
	for _, k := range []*translator.KeyIdentity{ts.keys, ts.retiredKeys} {
		if k == nil {
			continue
		}
		e, err := k.Extension(in.keys)
		if err != nil {
			return nil, err
		}
		ext = append(ext, e)
	}
	sortByName(ext)
	return ext, nil
}

// set makes rs ts's resources of type t, with their versions.
func (ts *typeSet) set(t resource.Type, rs []types.Resource) error {
	ty, err := hashResources(rs, nil)
	if err != nil {
		return err
	}
	ts.of[t] = ty
	return nil
}

// hashResources returns rs typed: the version, a short hex digest of rs'
// deterministic encoding, each resource's version by name as
// go-control-plane computes it (cache.HashResource of
// cache.MarshalResource), and each resource's encoding, from one
// encoding: known's (index-aligned with rs; nil for none), which must be
// the resources' deterministic encodings, or its own.
func hashResources(rs []types.Resource, known [][]byte) (typed, error) {
	h := sha256.New()
	each := make(map[string]string, len(rs))
	enc := make([][]byte, len(rs))
	opts := proto.MarshalOptions{Deterministic: true}
	for i, r := range rs {
		name := cache.GetResourceName(r)
		b, err := encodingOf(opts, r, i, known)
		if err != nil {
			return typed{}, fmt.Errorf("marshal %s: %w", name, err)
		}
		fmt.Fprintf(h, "%d:%s:", len(b), name)
		h.Write(b)
		sum := sha256.Sum256(b) // cache.HashResource(b), without its allocations
		each[name], enc[i] = hex.EncodeToString(sum[:]), b
	}
	return typed{items: rs, version: hex.EncodeToString(h.Sum(nil)[:8]), each: each, enc: enc}, nil
}

// encodingOf returns known[i] when known holds rs' encodings, else r's
// deterministic encoding.
func encodingOf(opts proto.MarshalOptions, r types.Resource, i int, known [][]byte) ([]byte, error) {
	if i < len(known) && known[i] != nil {
		return known[i], nil
	}
	return opts.Marshal(r)
}

// mix returns a typeSet whose types in from come from other and the rest
// from ts: the building block of a make-before-break push.
func (ts *typeSet) mix(other *typeSet, from []resource.Type) *typeSet {
	out := &typeSet{of: maps.Clone(ts.of), ecdsFilters: ts.ecdsFilters}
	for _, t := range from {
		out.of[t] = other.of[t]
		if t == resource.ExtensionConfigType {
			out.ecdsFilters = other.ecdsFilters
		}
	}
	return out
}

// withExtensions returns ts with its ECDS resources built from in (the
// exceptions table it enforces, the JWKS epoch of its jwt_authn): ts
// itself when it has no ECDS resource or already has these (same
// version), else a copy whose ExtensionConfigType resources alone changed.
func (ts *typeSet) withExtensions(in extInputs) (*typeSet, error) {
	if ts.ecdsFilters == (ecdsFilters{}) {
		return ts, nil
	}
	ext, err := ts.extensions(in)
	if err != nil {
		return nil, err
	}
	ty, err := ts.hashExtensions(ext)
	if err != nil {
		return nil, err
	}
	if maps.Equal(ty.each, ts.of[resource.ExtensionConfigType].each) {
		return ts, nil
	}
	out := ts.mix(ts, nil)
	out.of[resource.ExtensionConfigType] = ty
	return out, nil
}

// union returns ts with other's clusters and endpoints added where ts has no
// resource of that name, so routes of either version find their cluster.
func (ts *typeSet) union(other *typeSet) (*typeSet, error) {
	out := ts.mix(ts, nil)
	for _, t := range clusterTypes {
		if err := out.set(t, mergeByName(ts.of[t].items, other.of[t].items)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// mergeByName returns a followed by b's resources whose names a lacks,
// sorted by name.
func mergeByName(a, b []types.Resource) []types.Resource {
	seen := make(map[string]bool, len(a))
	out := append([]types.Resource{}, a...)
	for _, r := range a {
		seen[cache.GetResourceName(r)] = true
	}
	for _, r := range b {
		if !seen[cache.GetResourceName(r)] {
			out = append(out, r)
		}
	}
	sortByName(out)
	return out
}

// version is the gateway snapshot version: a hash of the per-type versions.
func (ts *typeSet) version() string {
	h := sha256.New()
	for _, t := range allTypes() {
		fmt.Fprintf(h, "%s=%s;", t, ts.of[t].version)
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
}

// snapshot returns the go-control-plane snapshot, each type with its own
// version, built once, its resources marshalling to the encodings ts
// hashed (encodedResource: the delta server does not encode them again).
// It checks the snapshot is consistent (with ADS, an EDS or RDS set that
// does not match the references exactly leaves Envoy waiting forever)
// and computes its per-resource version map up front: the
// cache would otherwise build it lazily on the first delta watch, and two
// nodes sharing the snapshot would race doing so.
func (ts *typeSet) snapshot() (*cache.Snapshot, error) {
	ts.once.Do(func() {
		s := &cache.Snapshot{}
		for _, t := range allTypes() {
			s.Resources[cache.GetResponseType(t)] = cache.NewResources(ts.of[t].version, ts.of[t].items)
		}
		if err := s.Consistent(); err != nil { // of the typed resources: it reads listeners and clusters
			ts.err = fmt.Errorf("inconsistent snapshot: %w", err)
			return
		}
		for _, t := range allTypes() { // served from the encodings hashed
			s.Resources[cache.GetResponseType(t)] = cache.NewResources(ts.of[t].version, encodedAll(ts.of[t].items, ts.of[t].enc))
		}
		s.VersionMap = make(map[string]map[string]string, len(ts.of))
		for t, ty := range ts.of {
			s.VersionMap[t] = ty.each
		}
		if err := s.ConstructVersionMap(); err != nil { // a no-op now that VersionMap is set
			ts.err = fmt.Errorf("snapshot version map: %w", err)
			return
		}
		ts.snap = s
	})
	return ts.snap, ts.err
}

// holds reports whether a proxy that says it has the resources in initial
// (name → version, as a delta request's initial_resource_versions carries
// them) has every resource of type t in ts, but perhaps a retired filter's
// (it subscribes to that one only while its old listener drains): then
// the server sends nothing and the proxy will not ACK, yet it is in sync.
func (ts *typeSet) holds(t resource.Type, initial map[string]string) bool {
	snap, err := ts.snapshot()
	if err != nil || len(initial) == 0 {
		return false
	}
	want := snap.GetVersionMap(t)
	for name := range initial {
		if _, ok := want[name]; !ok {
			return false
		}
	}
	for name, v := range want {
		if v2, ok := initial[name]; v2 != v && (ok || !ts.retiredName(name)) {
			return false
		}
	}
	return true
}

// changed reports the types whose version differs between ts and other.
func (ts *typeSet) changed(other *typeSet, among []resource.Type) bool {
	for _, t := range among {
		if other == nil || ts.of[t].version != other.of[t].version {
			return true
		}
	}
	return false
}
