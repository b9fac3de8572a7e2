package main

/*
#include "module.h"
#include "table.h"
*/
import "C"

import (
	"context"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tollgate/tollgate/extauthz"
	"github.com/tollgate/tollgate/extauthz/jwt"
)

// parkWait bounds how long a parked request waits for the JWKS fetch it
// needs (extauthz.LocalOptions.JWKSWait of the module's Local): a fetch is
// itself bounded to 5 s, so a parked request is decided at most ~5 s
// after it arrived, as the ext_authz service decides it when its caller's
// deadline allows the wait.
const parkWait = 5 * time.Second

// Parking, the contract (hooks.c, park.go):
//   - A request whose decision on the worker (which never waits) is 503
//     jwks_unavailable while a JWKS fetch is under way (Local.JWKSFetching:
//     the fetch the decision started or joined) may be parked; without a
//     fetch in flight the 503 stands at once. While fewer than the configuration's MaxParked are parked, it is
//     parked: tgDecide creates the stream's scheduler (on the worker, as
//     the ABI requires), hands C the park's handle (tg_stream.park) and
//     starts a waiter goroutine; the C hook stops the stream
//     (StopAllIterationAndBuffer). Beyond the bound it is refused 503 at
//     once, as without parking (jwks_park_full).
//   - The waiter decides the request again with a context that may wait
//     (Local.Decide bounded by parkWait): it joins the fetch under way, or
//     (the fetch already over) sees its result at once; a kid still unknown
//     after the fetch is 401 unknown_kid, a failed or timed-out fetch 503
//     jwks_unavailable, as the ext_authz service answers (a waiter that
//     comes after a failed fetch ended sees the rate limit and the old
//     keys: 401 unknown_kid, as a service call arriving then would). No
//     second wait:
//     the Verifier's per-provider rate limit (one fetch per 5 s for unknown
//     kids) still applies.
//   - The waiter then, under the park's lock, commits the scheduler unless
//     the stream is gone (tgParkRelease, from the destroy hook on the
//     worker, takes the same lock), so a commit only happens while the
//     stream, and hence its worker's dispatcher, lives; it then deletes
//     the scheduler (the posted event holds its own weak reference).
//   - Envoy runs the scheduled hook on the stream's worker if the filter
//     still lives; tgResume applies the waiter's decision there (the only
//     thread that touches the stream) and C continues the stream or leaves
//     the local reply.
//
// Memory: a parked request holds one goroutine (a few KiB), its copied
// headers and Envoy's stopped stream; MaxParked bounds them per filter
// configuration.

// parked is one parked request.
type parked struct {
	rq    request
	sched unsafe.Pointer // the stream's scheduler; the waiter deletes it

	mu    sync.Mutex
	gone  bool // the stream was destroyed: never commit
	done  bool // the waiter decided: d is set
	d     extauthz.Decision
	epoch C.uint64_t // the table's epoch before the first decision (see remember)
}

// parker bounds one filter configuration's parked requests.
type parker struct {
	max int64        // MaxParked (<= 0: parks nothing)
	n   atomic.Int64 // requests parked now (waiters running)
}

// acquire takes a parking place; false when the bound is reached.
func (p *parker) acquire() bool {
	if p.n.Add(1) > p.max {
		p.n.Add(-1)
		return false
	}
	return true
}

func (p *parker) release() { p.n.Add(-1) }

// waitsForJWKS reports whether d is the refusal a parked request could
// avoid: 503 jwks_unavailable while a JWKS fetch is under way (the one
// the decision started or joined). Without a fetch (the provider has no
// keys and its fetches are rate-limited) the refusal stands at once.
func (f *filter) waitsForJWKS(d extauthz.Decision) bool {
	return d.Status == 503 && d.Reason == jwt.ReasonJWKSUnavailable && f.local.JWKSFetching()
}

// park parks rq when the bound allows (see the contract above): true when
// parked (*out holds the park's handle), false when it is refused 503 as
// before (counted in jwks_park_full when the bound was reached; a nil out
// means parking is not allowed here).
//
// epoch is the table's epoch read before the first decision (on the
// worker: the waiter must not read the C table, which the configuration's
// destroy hook may free once the stream is gone).
func (f *filter) park(envoyFilter unsafe.Pointer, rq request, epoch C.uint64_t, out *C.uintptr_t) bool {
	if out == nil || f.parks.max <= 0 {
		return false
	}
	if !f.parks.acquire() {
		C.tg_stats_add(envoyFilter, &f.stats[0], C.TG_STAT_JWKS_PARK_FULL)
		return false
	}
	sched := C.envoy_dynamic_module_callback_http_filter_scheduler_new(envoyFilter)
	if sched == nil {
		f.parks.release()
		return false
	}
	p := &parked{rq: rq, sched: sched, epoch: epoch}
	*out = C.uintptr_t(cgo.NewHandle(p))
	f.log.Debug("parked until the JWKS fetch ends", "route", rq.ext["route"])
	go f.wait(p)
	return true
}

// wait decides p once its provider's JWKS fetch ends (or parkWait
// passes), then wakes its stream through the scheduler unless the stream
// is gone, and deletes the scheduler. Runs on its own goroutine; it may
// outlive the stream and the filter configuration's C memory (the table),
// so it touches nothing of C but the scheduler (Local works after Close).
func (f *filter) wait(p *parked) {
	defer f.parks.release()
	d := f.decideWaiting(p.rq)
	p.mu.Lock()
	p.d, p.done = d, true
	if !p.gone {
		C.envoy_dynamic_module_callback_http_filter_scheduler_commit(p.sched, 0)
	}
	p.mu.Unlock()
	C.envoy_dynamic_module_callback_http_filter_scheduler_delete(p.sched)
}

// decideWaiting is Local.Decide allowed to wait (parkWait); a panic is a
// 503 internal_error, so that the parked stream is always woken.
func (f *filter) decideWaiting(rq request) (d extauthz.Decision) {
	defer recoverTo(f.log, "parked decide", func() { d = extauthz.Unavailable("internal_error") })
	return f.decide(context.Background(), rq)
}

// tgResume applies a parked request's decision on its stream's worker
// thread (the scheduled hook): park is the handle tgDecide gave
// (tg_stream.park, which C has cleared), routeH the stream's route
// config's handle. It returns the outcome as tgDecide does (never
// TG_OUT_PARKED: no second wait).
//
//export tgResume
func tgResume(cfgH, routeH C.uintptr_t, envoyFilter unsafe.Pointer, park C.uintptr_t, report *C.tg_rl_report) (out C.int) {
	p, _ := handleValue[*parked](park)
	if p != nil {
		cgo.Handle(park).Delete()
	}
	f, ok := handleValue[*filter](cfgH)
	if !ok || p == nil {
		deny(envoyFilter, extauthz.Unavailable("internal_error"))
		return C.TG_OUT_UNAVAILABLE
	}
	defer recoverTo(f.log, "resume", func() {
		deny(envoyFilter, extauthz.Unavailable("internal_error"))
		out = C.TG_OUT_UNAVAILABLE
	})
	p.mu.Lock()
	d, done := p.d, p.done
	p.mu.Unlock()
	if !done { // never: the waiter commits after deciding
		d = extauthz.Unavailable(jwt.ReasonJWKSUnavailable)
	}
	r, _ := handleValue[*route](routeH)
	return f.apply(envoyFilter, r, p.rq, d, p.epoch, report)
}

// tgParkRelease: the parked stream is being destroyed (the destroy hook,
// on its worker thread; cfgH is its configuration's handle). The waiter
// will not commit; the handle goes.
//
//export tgParkRelease
func tgParkRelease(cfgH, park C.uintptr_t) {
	p, _ := handleValue[*parked](park)
	if p == nil {
		return
	}
	cgo.Handle(park).Delete()
	p.mu.Lock()
	p.gone = true
	p.mu.Unlock()
	if f, ok := handleValue[*filter](cfgH); ok {
		f.log.Debug("parked stream gone before its decision", "route", p.rq.ext["route"])
	}
}
