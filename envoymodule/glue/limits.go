package glue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tollgate/tollgate/extauthz"
	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/policy/ir"
)

// Bounds of the C bucket specs (limit.h TG_LIMIT_MAX, TG_LIMIT_MAX_HEADERS,
// TG_ROUTE_MAX_TIERS; asserted equal in envoymodule/limits.go): the
// contract's, which the translator keeps to.
const (
	MaxLimits      = envoymod.MaxBucketLimits
	MaxDenyHeaders = envoymod.MaxDenyHeaders
	MaxTiers       = envoymod.MaxTiers
)

// Spec flags (limit.h TG_SPEC_*).
const (
	SpecUnlimited = 1
	SpecDeny      = 2
)

// maxTolerance caps a limit's tolerance (a burst of 2^64 requests would
// overflow), far beyond any real window: about 36 years. An emission
// interval beyond it is refused (limit.h TG_LIMIT_MAX_NS: the C table's
// times would overflow).
const maxTolerance = time.Duration(1 << 60)

// GCRA is one limit as the C table enforces it: one request per Emission
// (Per/Requests, rounded up to the nanosecond so that the rate is never
// exceeded), Tolerance = (burst-1)·Emission.
type GCRA struct {
	Emission, Tolerance time.Duration
}

// GCRAOf is l's GCRA; the burst is max(Requests, Burst) as the filter
// path's backstop takes it (ir.Limit.Backstop).
func GCRAOf(l ir.Limit) (GCRA, error) {
	if l.Requests == 0 || l.Per <= 0 {
		return GCRA{}, fmt.Errorf("limit %d per %s: requests and per must be positive", l.Requests, l.Per)
	}
	per := uint64(l.Per)
	emission := max(1, per/l.Requests+min(1, per%l.Requests)) // ceil, ≥ 1 ns
	if emission > uint64(maxTolerance) {
		return GCRA{}, fmt.Errorf("limit %d per %s: one request per %s is beyond %s", l.Requests, l.Per,
			time.Duration(emission), maxTolerance)
	}
	burst := max(l.Requests, l.Burst)
	tolerance := maxTolerance
	if burst-1 <= uint64(maxTolerance)/emission {
		tolerance = time.Duration((burst - 1) * emission)
	}
	return GCRA{Emission: time.Duration(emission), Tolerance: tolerance}, nil
}

// Bucket is one envoymod.LimitBucket as the C route block takes it
// (tg_route_limits_set): Tier is the tier it serves ("" for the default
// and the unidentified bucket).
type Bucket struct {
	Tier    string
	ID      string
	Flags   int
	Limits  []GCRA
	Body    string
	Headers []extauthz.Header
	// Reported is the index in Limits of the limit an admitted response's
	// X-RateLimit-* report (envoymod.LimitBucket.ReportedLimit), and
	// ReportLimit its X-RateLimit-Limit: max(requests, burst), as the
	// filter path's backstop bucket holds (ir.Limit.Backstop).
	Reported    int
	ReportLimit uint64
	// IETF is the bucket's RateLimit-Policy and RateLimit parts
	// (envoymod.LimitBucket.IETF; nil: none), written beside the report.
	IETF *envoymod.IETFHeaders
}

// BucketsOf is rl as the C route block orders it: the tiers (by name),
// then the default, then the unidentified bucket. The unidentified bucket
// always refuses (SpecDeny): a request without a consumer is never let
// through unlimited.
func BucketsOf(rl envoymod.RouteLimits) ([]Bucket, error) {
	if len(rl.Tiers) > MaxTiers {
		return nil, fmt.Errorf("%d tiers, at most %d", len(rl.Tiers), MaxTiers)
	}
	var out []Bucket
	for _, tier := range slices.Sorted(maps.Keys(rl.Tiers)) {
		b, err := bucketOf(tier, rl.Tiers[tier])
		if err != nil {
			return nil, fmt.Errorf("tier %q: %w", tier, err)
		}
		out = append(out, b)
	}
	def, err := bucketOf("", rl.Default)
	if err != nil {
		return nil, fmt.Errorf("default bucket: %w", err)
	}
	un, err := bucketOf("", rl.Unidentified)
	if err != nil {
		return nil, fmt.Errorf("unidentified bucket: %w", err)
	}
	un.Flags = SpecDeny
	return append(out, def, un), nil
}

// bucketOf checks and converts one bucket. A bucket without an id nor
// limits (a RouteLimits.Default left empty) is unlimited; one with limits
// but no id is refused: it could not be reported.
func bucketOf(tier string, lb envoymod.LimitBucket) (Bucket, error) {
	b := Bucket{Tier: tier, ID: lb.ID, Body: lb.DenyBody}
	switch {
	case lb.Deny:
		b.Flags = SpecDeny
	case lb.Unlimited, lb.ID == "" && len(lb.Limits) == 0: // nothing to enforce nor report
		b.Flags = SpecUnlimited
	case lb.ID == "":
		return Bucket{}, errors.New("a limited bucket needs an id")
	}
	if len(lb.Limits) > MaxLimits {
		return Bucket{}, fmt.Errorf("%d limits, at most %d", len(lb.Limits), MaxLimits)
	}
	if len(lb.DenyHeaders) > MaxDenyHeaders {
		return Bucket{}, fmt.Errorf("%d deny headers, at most %d", len(lb.DenyHeaders), MaxDenyHeaders)
	}
	for _, l := range lb.Limits {
		g, err := GCRAOf(l)
		if err != nil {
			return Bucket{}, err
		}
		b.Limits = append(b.Limits, g)
	}
	if lb.ReportedLimit < 0 || lb.ReportedLimit >= max(1, len(lb.Limits)) {
		return Bucket{}, fmt.Errorf("reported limit %d of %d limits", lb.ReportedLimit, len(lb.Limits))
	}
	if len(lb.Limits) > 0 {
		maxTokens, _, _ := lb.Limits[lb.ReportedLimit].Backstop()
		b.Reported, b.ReportLimit = lb.ReportedLimit, uint64(maxTokens)
	}
	if lb.IETF != nil && len(lb.Limits) == 0 {
		return Bucket{}, errors.New("IETF headers need limits to report")
	}
	b.IETF = lb.IETF
	for _, h := range lb.DenyHeaders {
		b.Headers = append(b.Headers, extauthz.Header{Name: h.Name, Value: h.Value})
	}
	return b, nil
}

// LimitPairs is b's limits as the (emission, tolerance) nanosecond pairs
// tg_route_limits_set takes.
func (b Bucket) LimitPairs() []int64 {
	out := make([]int64, 0, 2*len(b.Limits))
	for _, g := range b.Limits {
		out = append(out, int64(g.Emission), int64(g.Tolerance))
	}
	return out
}

// Caller is the consumer and tier a decision's metadata names (the keys
// "consumer" and "tier"; "" when absent), as the C fast path reads them
// from a table entry.
func Caller(md []extauthz.Header) (consumer, tier string) {
	for _, m := range md {
		switch m.Name {
		case "consumer":
			consumer = m.Value
		case "tier":
			tier = m.Value
		}
	}
	return consumer, tier
}

// DrainRecord is one bucket of a drain (tg_limits_drain).
type DrainRecord struct {
	Bucket, Consumer string
	Allowed, Denied  uint64
}

// ParseDrain decodes n records of tg_limits_drain's format: id and
// consumer as blob items, then allowed and denied as 8-byte little-endian
// integers.
func ParseDrain(b []byte, n int) ([]DrainRecord, error) {
	out := make([]DrainRecord, 0, n)
	for i := range n {
		var r DrainRecord
		var ok bool
		if r.Bucket, b, ok = item(b); !ok {
			return nil, fmt.Errorf("drain record %d: short id", i)
		}
		if r.Consumer, b, ok = item(b); !ok || len(b) < 16 {
			return nil, fmt.Errorf("drain record %d: short consumer or counts", i)
		}
		r.Allowed, r.Denied = binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])
		b = b[16:]
		out = append(out, r)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("drain: %d bytes after %d records", len(b), n)
	}
	return out, nil
}

// item reads one blob item (not NULL) off b.
func item(b []byte) (string, []byte, bool) {
	if len(b) < 4 {
		return "", nil, false
	}
	n := binary.LittleEndian.Uint32(b)
	if n == nullItem || uint64(len(b)-4) < uint64(n) {
		return "", nil, false
	}
	return string(b[4 : 4+n]), b[4+n:], true
}
