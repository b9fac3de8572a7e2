package main

/*
#include "limit.h"
#include "module.h"
#include "table.h"
*/
import "C"

import (
	"context"
	"time"
	"unsafe"

	"github.com/tollgate/tollgate/envoymodule/glue"
	"github.com/tollgate/tollgate/extauthz"
)

// outcome is a Go decision's TG_OUT_* (stats.h): the C hook counts it
// and continues the request only when it is allowed.
func outcome(status int) C.int {
	switch status {
	case 0:
		return C.TG_OUT_ALLOWED
	case 401:
		return C.TG_OUT_UNAUTHENTICATED
	case 403:
		return C.TG_OUT_FORBIDDEN
	case 429:
		return C.TG_OUT_RATE_LIMITED
	case 503:
		return C.TG_OUT_UNAVAILABLE
	}
	return C.TG_OUT_DENIED_OTHER
}

// tgDecide decides a request the C fast path did not: hs[:n] are the
// values of the headers the decision reads (Authorization, the key header,
// the client address header), tok[:tokLen] the strict-form bearer token
// or signed key (hooks.c strict_token; "" when the request has none), report the stream's rate-limit report
// (filled when the request is admitted on a limited route: its response
// carries it). It applies the decision through Envoy's
// callbacks (apply). A request whose decision is 503 jwks_unavailable
// while its provider's JWKS fetch is under way is parked instead, when the
// configuration's bound allows (park.go): nothing is written, *park gets
// the park's handle, and TG_OUT_PARKED is returned; tgResume decides it
// when the fetch ends. It returns the outcome (TG_OUT_*, stats.h): every
// one but TG_OUT_ALLOWED, TG_OUT_PASS and TG_OUT_PARKED sent a local
// reply. A panic is a 503 (internal_error); an unknown filter or route
// configuration decides with no requirement (403 no_route_requirement):
// fail closed.
//
//export tgDecide
func tgDecide(cfgH, routeH C.uintptr_t, envoyFilter unsafe.Pointer, hs *C.tg_header, n C.size_t,
	tok *C.char, tokLen C.size_t, report *C.tg_rl_report, park *C.uintptr_t) (out C.int) {
	f, ok := handleValue[*filter](cfgH)
	if !ok {
		deny(envoyFilter, extauthz.Unavailable("internal_error"))
		return C.TG_OUT_UNAVAILABLE
	}
	defer recoverTo(f.log, "decide", func() {
		deny(envoyFilter, extauthz.Unavailable("internal_error"))
		out = C.TG_OUT_UNAVAILABLE
	})
	f.calls.Add(1)
	r, _ := handleValue[*route](routeH)
	// Copies: Envoy's header values change under the mutations below.
	rq := request{headers: glue.Headers(headerValues(hs, n)), token: C.GoStringN(tok, C.int(tokLen))}
	if r != nil {
		rq.ext, rq.checkLimits = r.ext, r.checkLimits
	}
	epoch := C.tg_table_epoch(f.table) // before verifying: see remember
	d := f.decide(f.ended, rq)
	if f.waitsForJWKS(d) && f.park(envoyFilter, rq, epoch, park) {
		return C.TG_OUT_PARKED
	}
	return f.apply(envoyFilter, r, rq, d, epoch, report)
}

// request is what a decision reads of one request (copied from Envoy's).
type request struct {
	ext     map[string]string // the route's requirement; nil: none
	headers map[string]string
	token   string // the strict-form credential, "" when none
	// checkLimits: the route's limits are the Check's for what the module
	// passes (envoymod.RouteConfig.CheckLimits): no learned opaque key.
	checkLimits bool
}

// decide decides rq with the Local (ctx: see extauthz.Local.Decide).
func (f *filter) decide(ctx context.Context, rq request) extauthz.Decision {
	if rq.checkLimits {
		return f.local.DecideUnlearned(ctx, rq.ext, rq.headers)
	}
	return f.local.Decide(ctx, rq.ext, rq.headers)
}

// apply applies decision d of request rq on route r (nil: unknown) through
// Envoy's callbacks, on the stream's worker thread: a denial is a local
// reply, an allow sets and removes headers and writes the metadata, and a
// strict-form token's identity goes into the table (unless the table was
// cleared since epoch). With signed keys (FilterConfig.Keys) an allow also
// writes the native marker (envoymod.NativeMarkerKey = the method, kept in
// the table's identity so that the C fast path writes it too), and a
// request Local passes (Decision.Pass: an API key not in signed form) is
// TG_OUT_PASS: nothing written, no limit charged, the filters after the
// module decide it. It returns the outcome (TG_OUT_*).
func (f *filter) apply(envoyFilter unsafe.Pointer, r *route, rq request, d extauthz.Decision, epoch C.uint64_t,
	report *C.tg_rl_report) C.int {
	if d.Pass { // an opaque API key: the ext_authz filter after the module decides it
		f.log.Debug("passed", "route", rq.ext["route"])
		return C.TG_OUT_PASS
	}
	f.log.Debug("decided", "route", rq.ext["route"], "status", d.Status, "reason", d.Reason)
	if d.Status != 0 {
		deny(envoyFilter, d)
		return outcome(d.Status)
	}
	if f.cfg.Keys != nil { // the marker switches the ext_authz filter after the module off
		d.Metadata = glue.WithMarker(d.Metadata)
	}
	refused := f.chargeLimits(envoyFilter, r, d, report) // the 429 sent: nothing written upstream
	if !refused {
		allow(envoyFilter, d)
	}
	if rq.token != "" && !d.Expiry.IsZero() {
		f.remember(rq.token, d, epoch)
	}
	if refused {
		return C.TG_OUT_RATE_LIMITED
	}
	return C.TG_OUT_ALLOWED
}

// headerValues copies the C hook's header values.
func headerValues(hs *C.tg_header, n C.size_t) []glue.HeaderValue {
	out := make([]glue.HeaderValue, 0, int(n))
	for _, h := range unsafe.Slice(hs, int(n)) {
		out = append(out, glue.HeaderValue{Name: C.GoStringN(h.key, C.int(h.key_len)),
			Value: C.GoStringN(h.value, C.int(h.value_len))})
	}
	return out
}

// deny sends d's local reply.
func deny(envoyFilter unsafe.Pointer, d extauthz.Decision) {
	blob := glue.Blob(nil).AddHeaders(d.Headers)
	details := "tollgate_identity_" + d.Reason
	C.tg_send_response(envoyFilter, C.uint32_t(d.Status), cbytes(blob), C.size_t(len(blob)), C.size_t(len(d.Headers)),
		cstr(d.Body), C.size_t(len(d.Body)), cstr(details), C.size_t(len(details)))
}

// allow applies an allowed decision's header mutations and metadata.
func allow(envoyFilter unsafe.Pointer, d extauthz.Decision) {
	for _, h := range d.Set {
		C.tg_set_header(envoyFilter, cstr(h.Name), C.size_t(len(h.Name)), cstr(h.Value), C.size_t(len(h.Value)), 0)
	}
	for _, name := range d.Remove {
		C.tg_set_header(envoyFilter, cstr(name), C.size_t(len(name)), nil, 0, 1)
	}
	md := glue.Blob(nil).AddHeaders(d.Metadata)
	C.tg_set_metadata_blob(envoyFilter, cbytes(md), C.size_t(len(md)), C.size_t(len(d.Metadata)))
}

// remember puts token's identity (d, allowed) into the C table until its
// exp (the table caps that at the configuration's cacheMaxTtl), with a
// signed key's id (d.KeyID: a successor keeps the entry by it), unless
// the table was cleared (a key withdrawn) since epoch, read before d was
// decided: d may come from a verification the withdrawal invalidated.
func (f *filter) remember(token string, d extauthz.Decision, epoch C.uint64_t) {
	id := glue.IdentityOf(d, f.cfg.IdentityHeaders)
	blob := glue.Blob(nil).AddOps(id.Ops).AddHeaders(id.Metadata).AddList(d.Roles).AddList(d.Scopes)
	C.tg_table_put(f.table, cstr(token), C.size_t(len(token)), cbytes(blob), C.size_t(len(blob)),
		C.size_t(len(id.Ops)), C.size_t(len(id.Metadata)), C.size_t(len(d.Roles)), C.size_t(len(d.Scopes)),
		cstr(d.KeyID), C.size_t(len(d.KeyID)), C.int64_t(d.Expiry.UnixNano()), epoch)
}

// tgLearn hands the Local of configuration cfgH the record rec[:recLen]
// (envoymod.KeyRecord JSON) that the ext_authz service's answer admitting
// the opaque API key key[:keyLen] carried, which the module had passed
// on at passed (CLOCK_MONOTONIC ns; hooks.c learn): the key's later
// requests are decided in the module (extauthz.Local.Learn, given how
// long ago the request was passed on: an answer older than
// extauthz.MaxLearnAge is not learned). It returns 1 when the record was
// learned, 0 when Learn refused it (logged at debug level, without the
// key: a record of another key-store epoch among the reasons) or the
// configuration is gone. A panic learns nothing.
//
//export tgLearn
func tgLearn(cfgH C.uintptr_t, key *C.char, keyLen C.size_t, rec *C.char, recLen C.size_t, passed C.int64_t) (ok C.int) {
	f, found := handleValue[*filter](cfgH)
	if !found || f.local == nil {
		return 0
	}
	defer recoverTo(f.log, "learn", func() { ok = 0 })
	age := time.Duration(int64(C.tg_monotonic_ns()) - int64(passed))
	if err := f.local.Learn(C.GoStringN(key, C.int(keyLen)), C.GoStringN(rec, C.int(recLen)), age); err != nil {
		f.log.Debug("api key not learned", "err", err)
		return 0
	}
	return 1
}
