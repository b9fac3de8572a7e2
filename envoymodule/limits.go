package main

/*
#include <stdlib.h>
#include "limit.h"
#include "module.h"
*/
import "C"

import (
	"errors"
	"log/slog"
	"unsafe"

	"github.com/tollgate/tollgate/envoymodule/glue"
	"github.com/tollgate/tollgate/envoymodule/quotaclient"
	"github.com/tollgate/tollgate/extauthz"
	"github.com/tollgate/tollgate/extauthz/envoymod"
)

// limitStore is the process-wide C bucket table as an RLQS client's
// Store: its methods are called from the client's goroutine, and do
// nothing unless its client owns the table (processQuota).
type limitStore struct {
	t *C.tg_limits
	q *processQuota
}

var _ quotaclient.Store = (*limitStore)(nil)

// The RLQS client must keep every live bucket of the table (a bucket it
// drops is never reported nor assigned): this fails to compile otherwise.
const _ = uint(quotaclient.MaxPendingBuckets - C.TG_LIMITS_CAPACITY - 1)

// The contract's bounds (envoymod.MaxBucketLimits..., which the translator
// keeps to) are the C route block's: these fail to compile otherwise.
const (
	_ = uint(glue.MaxLimits-C.TG_LIMIT_MAX) + uint(C.TG_LIMIT_MAX-glue.MaxLimits)
	_ = uint(glue.MaxDenyHeaders-C.TG_LIMIT_MAX_HEADERS) + uint(C.TG_LIMIT_MAX_HEADERS-glue.MaxDenyHeaders)
	_ = uint(glue.MaxTiers-C.TG_ROUTE_MAX_TIERS) + uint(C.TG_ROUTE_MAX_TIERS-glue.MaxTiers)
)

// gobuf passes a Go string to a C call that copies what it keeps (the
// pointer may be nil for ""; limit.c accepts that).
func gobuf(s string) C.tg_buf { return C.tg_buf{ptr: cstr(s), len: C.size_t(len(s))} }

// Drain returns every live bucket's counts since the previous Drain and
// resets them.
func (s *limitStore) Drain() []quotaclient.Usage {
	if !s.q.owns(s) {
		return nil
	}
	var n, size C.size_t
	p := C.tg_limits_drain(s.t, &size, &n)
	if p == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(p))
	recs, err := glue.ParseDrain(C.GoBytes(unsafe.Pointer(p), C.int(size)), int(n))
	if err != nil { // C wrote it: a bug, never input
		panic(err)
	}
	out := make([]quotaclient.Usage, len(recs))
	for i, r := range recs {
		out[i] = quotaclient.Usage{ID: quotaclient.BucketID{Bucket: r.Bucket, Consumer: r.Consumer},
			Allowed: r.Allowed, Denied: r.Denied}
	}
	return out
}

// Assign applies a to its bucket, if the table still holds it.
func (s *limitStore) Assign(a quotaclient.Assignment) {
	if !s.q.owns(s) {
		return
	}
	var kind C.int
	switch a.Kind {
	case quotaclient.AllowAll:
		kind = C.TG_ASSIGN_ALLOW_ALL
	case quotaclient.DenyAll:
		kind = C.TG_ASSIGN_DENY_ALL
	case quotaclient.TokenBucket:
		kind = C.TG_ASSIGN_TOKEN_BUCKET
	default:
		return
	}
	C.tg_limits_assign(s.t, gobuf(a.ID.Bucket), gobuf(a.ID.Consumer), kind,
		C.uint64_t(a.MaxTokens), C.uint64_t(a.TokensPerFill), C.int64_t(a.FillInterval.Nanoseconds()),
		C.int64_t(a.TTL.Nanoseconds()), C.tg_monotonic_ns())
}

// Abandon drops the bucket: its next request builds it anew.
func (s *limitStore) Abandon(id quotaclient.BucketID) {
	if !s.q.owns(s) {
		return
	}
	C.tg_limits_abandon(s.t, gobuf(id.Bucket), gobuf(id.Consumer))
}

// startQuota takes the RLQS client of cfg.Quota for f (nil Quota: none)
// and reports whether the config fails closed.
func (f *filter) startQuota(log *slog.Logger) (failClosed bool) {
	q := f.cfg.Quota
	if q == nil {
		return false
	}
	if t := C.tg_limits_process(); t != nil {
		f.quota = quotas.get(*q, t, log)
	}
	return q.FailClosed
}

// tgLimitNewBucket tells the config's RLQS client that the C fast path
// created a bucket (reported at once). It never blocks.
//
//export tgLimitNewBucket
func tgLimitNewBucket(h C.uintptr_t) {
	if f, ok := handleValue[*filter](h); ok && f.quota != nil {
		f.quota.NewBucket()
	}
}

var errNoMemory = errors.New("route limits: C memory is short or a spec was refused")

// routeLimits builds the C block of a route's limits (nil: none); an
// error refuses the route configuration.
func routeLimits(rl *envoymod.RouteLimits) (*C.tg_route_limits, error) {
	if rl == nil {
		return nil, nil
	}
	buckets, err := glue.BucketsOf(*rl)
	if err != nil {
		return nil, err
	}
	c := C.tg_route_limits_new(C.size_t(len(buckets) - 2))
	if c == nil {
		return nil, errNoMemory
	}
	for i, b := range buckets {
		lim := b.LimitPairs()
		hs := glue.Blob(nil).AddHeaders(b.Headers)
		var limp *C.int64_t
		if len(lim) > 0 {
			limp = (*C.int64_t)(unsafe.Pointer(&lim[0]))
		}
		if C.tg_route_limits_set(c, C.size_t(i), gobuf(b.Tier), gobuf(b.ID), C.int(b.Flags), limp,
			C.size_t(len(b.Limits)), gobuf(b.Body), cbytes(hs), C.size_t(len(hs)), C.size_t(len(b.Headers))) == 0 ||
			C.tg_route_limits_report(c, C.size_t(i), C.size_t(b.Reported), C.uint64_t(b.ReportLimit)) == 0 ||
			b.IETF != nil && C.tg_route_limits_ietf(c, C.size_t(i), gobuf(b.IETF.Policy), gobuf(b.IETF.RateLimitR),
				gobuf(b.IETF.RateLimitT)) == 0 {
			C.tg_route_limits_free(c)
			return nil, errNoMemory
		}
	}
	return c, nil
}

// chargeLimits charges an allowed decision d to route r's limits (Go's
// path: the C fast path charges in hooks.c); true when refused, the 429
// sent. An admitted request's report goes to *report (C memory).
func (f *filter) chargeLimits(envoyFilter unsafe.Pointer, r *route, d extauthz.Decision, report *C.tg_rl_report) bool {
	if r == nil || r.limits == nil {
		return false
	}
	consumer, tier := glue.Caller(d.Metadata)
	res := C.tg_route_limit(envoyFilter, r.limits, cbool(f.cfg.Quota != nil && f.cfg.Quota.FailClosed),
		gobuf(consumer), gobuf(tier), report)
	if res&C.TG_CHARGE_CREATED != 0 {
		C.tg_stats_charged(envoyFilter, &f.stats[0], res)
		if f.quota != nil {
			f.quota.NewBucket()
		}
	}
	return res&C.TG_CHARGE_REFUSED != 0
}
