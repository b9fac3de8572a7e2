// Command envoymodule is Tollgate's Envoy 1.40 dynamic module (build it
// with -buildmode=c-shared into libtollgate_envoy.so, see README.md): an
// HTTP filter named envoymod.FilterName that decides JWT routes, and with
// FilterConfig.Keys signed API keys, inside Envoy with the ext_authz
// service's own decision code (extauthz.Local). hooks.c holds the hooks
// Envoy calls and the C fast path (a verified token's or signed key's
// identity from table.c); this file is the Go side, reached on a table
// miss only.
//
// Process-wide state: Go hands C cgo.Handle values (the runtime's handle
// registry, the one global cgo forces: C cannot hold Go pointers) for
// each filter and route configuration, deleted by the destroy hooks.
package main

/*
#include "limit.h"
#include "module.h"
#include "table.h"
*/
import "C"

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime/cgo"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tollgate/tollgate/envoymodule/glue"
	"github.com/tollgate/tollgate/envoymodule/quotaclient"
	"github.com/tollgate/tollgate/extauthz"
	"github.com/tollgate/tollgate/extauthz/envoymod"
)

func main() {}

// filter is one filter configuration's Go state. cfg is the
// configuration without its signed keys' exceptions.
type filter struct {
	cfg   envoymod.FilterConfig
	local *extauthz.Local
	table *C.tg_table // owned by the C config, freed by its destroy hook
	log   *slog.Logger
	calls atomic.Int64               // requests decided in Go
	quota *quotaclient.Client        // the RLQS client of cfg.Quota, from quotas (nil: none)
	stats *[C.TG_STAT_COUNT]C.size_t // the C config's counter ids (stats.h), C memory freed after tgConfigDestroy
	// ended has ended: the context of a decision on a worker, which never
	// waits for the network (Local's JWKSWait is for parked requests).
	ended context.Context
	parks parker // requests waiting for a JWKS fetch (park.go)
	// lineage is the configurations f succeeds or precedes (lineage.go);
	// nil: none (set before f serves, then read-only).
	lineage *lineage
}

// route is one per-route configuration's Go state.
type route struct {
	ext         map[string]string
	checkLimits bool               // envoymod.RouteConfig.CheckLimits
	limits      *C.tg_route_limits // owned by the C route, freed by its destroy hook; nil: none
}

// logger writes to Envoy's stderr; TOLLGATE_MODULE_LOG=debug logs every
// decision made in Go (route, status, reason; never a credential).
func logger() *slog.Logger {
	level := slog.LevelInfo
	if strings.EqualFold(os.Getenv("TOLLGATE_MODULE_LOG"), "debug") {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("module", "tollgate_envoy")
}

// jwksWarmup bounds how long a new filter configuration waits for the
// first fetch of its remote JWKS (Local.WaitKeys) before Envoy may serve
// with it: a worker never waits for the network while deciding, so without
// this every token would be parked (park.go), or beyond MaxParked refused
// with 503 jwks_unavailable, until the fetch completes (after each
// listener update, and at Envoy's start). jwt_authn warms its listener
// likewise. A fetch is bounded to 5 s.
const jwksWarmup = 6 * time.Second

// tgConfigNew builds a filter configuration from its JSON
// (envoymod.FilterConfig) into out; 0 refuses it (Envoy rejects the
// configuration). It runs on Envoy's main thread. A configuration of
// another contract than the module's (envoymod.CheckContract: a control
// plane of another Tollgate version) is refused first. A successor of a live
// configuration of its lineage (lineage.go: only the exceptions table or
// its freshness differ) shares its JWT verifiers and starts with the
// entries of its table that still hold; any other configuration builds
// its own verifiers and holds the main thread until their remote JWKS are
// fetched or failed (at most jwksWarmup): the configuration it replaces
// keeps serving meanwhile. On 0 the caller frees out.table and
// out.key_header.
//
//export tgConfigNew
func tgConfigNew(p *C.char, n C.size_t, out *C.tg_config) (ok C.int) {
	log := logger()
	defer recoverTo(log, "filter config", func() { ok = 0 })
	start := time.Now()
	cfg, decoded := decodeFilterConfig(log, unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n)))
	if !decoded {
		return 0
	}
	if cfg.Charge {
		return newCharger(cfg, out, log)
	}
	size := cmp.Or(cfg.CacheSize, envoymod.DefaultCacheSize)
	ttl := cmp.Or(cfg.CacheMaxTTL, envoymod.DefaultCacheMaxTTL)
	if size < 0 || ttl < 0 {
		log.Error("filter config refused: negative cacheSize or cacheMaxTtl")
		return 0
	}
	// The table first: a provider's withdrawn key clears it (below).
	if out.table = C.tg_table_new(C.size_t(size), C.int64_t(ttl.Nanoseconds())); out.table == nil {
		return 0
	}
	key, err := lineageKey(cfg)
	if err != nil {
		log.Error("filter config refused", "err", err)
		return 0
	}
	lin, pred := processLineages.get(key, cfg)
	local, lin, derived := buildLocal(log, cfg, key, lin, pred, out.table)
	if local == nil {
		return 0
	}
	defer func() { // a panic below: the caller frees the table its hook writes
		if ok == 0 {
			local.Close()
		}
	}()
	f := newFilter(log, cfg, local, out)
	defer func() { // a panic after the join: the caller frees the table, no withdrawal may clear it
		if ok == 0 {
			processLineages.leave(f)
		}
	}()
	var in inherited
	if lin != nil { // last: nothing fails after the join, so a refused config never is a member
		f.lineage = lin
		if !derived {
			pred = nil
		}
		in = processLineages.join(lin, f, pred)
	}
	out.handle = C.uintptr_t(cgo.NewHandle(f))
	log.Info("filter config created", "providers", len(cfg.JWT), "signedKeys", cfg.Keys != nil, "cacheSize", size,
		"cacheMaxTtl", ttl, "successor", derived, "inherited", in.copied, "leftBehind", in.dropped,
		"keptKeys", in.keptKeys, "copyTook", in.took, "took", time.Since(start))
	return 1
}

// decodeFilterConfig decodes b (copying what it keeps); false when it is
// not a configuration of the module's contract (logged).
func decodeFilterConfig(log *slog.Logger, b []byte) (envoymod.FilterConfig, bool) {
	cfg, err := envoymod.DecodeFilterConfig(b)
	if err != nil {
		if !contractRefusedJSON(log, "filter config", b) {
			log.Error("filter config: bad JSON", "err", err)
		}
		return envoymod.FilterConfig{}, false
	}
	if contractRefused(log, "filter config", cfg.Contract) {
		return envoymod.FilterConfig{}, false
	}
	return cfg, true
}

// buildLocal returns the Local of cfg (nil: refused, logged) and the
// lineage the filter joins (nil: none): derived from pred's when cfg
// succeeds a live member of its lineage (derived true), else a new one
// whose JWKS are waited for (jwksWarmup) and whose withdrawn keys clear
// the lineage's tables (or t alone when the derivation failed).
func buildLocal(log *slog.Logger, cfg envoymod.FilterConfig, key string, lin *lineage, pred *filter,
	t *C.tg_table) (*extauthz.Local, *lineage, bool) {
	if pred != nil {
		local, err := pred.local.Derive(cfg)
		if err == nil {
			return local, lin, true
		}
		log.Warn("filter config: not derived from its predecessor: built on its own", "err", err)
		lin = nil
	} else {
		lin = processLineages.ensure(key)
	}
	hook := withdrawn(log, t)
	if lin != nil {
		hook = lin.withdrawn
	}
	local, err := extauthz.NewLocal(context.Background(), cfg, extauthz.LocalOptions{Options: extauthz.Options{
		Logger: log, KeysWithdrawn: hook, JWKS: processJWKS}, JWKSWait: parkWait})
	if err != nil {
		log.Error("filter config refused", "err", err)
		return nil, nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), jwksWarmup)
	defer cancel()
	if err := local.WaitKeys(ctx); err != nil {
		log.Warn("filter config serves without a provider's JWKS: its tokens are refused with 503 jwks_unavailable "+
			"until a fetch succeeds", "err", err)
	}
	return local, lin, false
}

// newFilter returns the Go state of cfg served by local and fills out's
// flags, key header and quota. The filter keeps cfg without its exceptions
// (local's verifier holds them).
func newFilter(log *slog.Logger, cfg envoymod.FilterConfig, local *extauthz.Local, out *C.tg_config) *filter {
	if cfg.KeyHeader != "" {
		out.key_header = C.tg_buf{ptr: C.CString(cfg.KeyHeader), len: C.size_t(len(cfg.KeyHeader))}
	}
	out.keys = cbool(cfg.Keys != nil)
	if cfg.Keys != nil {
		out.keys_cached = cbool(cfg.Keys.Fresh && cfg.Keys.Epoch != "")
		k := *cfg.Keys
		k.Exceptions = nil
		cfg.Keys = &k
	}
	ended, end := context.WithCancel(context.Background())
	end()
	f := &filter{cfg: cfg, local: local, table: out.table, log: log, stats: &out.stats, ended: ended}
	f.parks.max = int64(cmp.Or(cfg.MaxParked, envoymod.DefaultMaxParked))
	if undefined := f.undefinedStats(); undefined > 0 {
		log.Warn("Envoy refused some of the module's counters: they stay at 0", "refused", undefined)
	}
	out.fail_closed = cbool(f.startQuota(log))
	return f
}

// newCharger builds a charger configuration (envoymod.FilterConfig.Charge)
// into out: the quota client and the counters, no table, no decision
// state (hooks.c charge_admitted charges in C). A charger without Quota
// is refused: it would have no account to charge.
func newCharger(cfg envoymod.FilterConfig, out *C.tg_config, log *slog.Logger) C.int {
	if cfg.Quota == nil || cfg.Keys != nil || len(cfg.JWT) > 0 {
		log.Error("charger config refused: it needs quota, and decides no credential")
		return 0
	}
	f := &filter{cfg: cfg, log: log, stats: &out.stats}
	out.fail_closed = cbool(f.startQuota(log))
	out.charge = 1
	out.handle = C.uintptr_t(cgo.NewHandle(f))
	log.Info("charger config created")
	return 1
}

// undefinedStats counts the counters Envoy did not define (id 0).
func (f *filter) undefinedStats() int {
	n := 0
	for _, id := range f.stats {
		if id == 0 {
			n++
		}
	}
	return n
}

// withdrawn returns the KeysWithdrawn hook of a Local in no lineage (see
// lineage.withdrawn): the JWT verifier has purged its own cache, and the
// table must not serve a token verified with the withdrawn key either (the
// ext_authz service refuses it from then on). The verifier's goroutines
// end in Local.Close, before the config's destroy hook frees the table.
func withdrawn(log *slog.Logger, t *C.tg_table) func(provider string) {
	return func(provider string) {
		C.tg_table_clear(t)
		log.Info("a JWKS key was withdrawn: verified-token table cleared", "provider", provider)
	}
}

// tgConfigDestroy releases a filter configuration's Go state; C frees the
// table afterwards.
//
//export tgConfigDestroy
func tgConfigDestroy(h C.uintptr_t, t *C.tg_table) {
	f, _ := handleValue[*filter](h)
	if f == nil {
		return
	}
	defer recoverTo(f.log, "filter config destroy", func() {})
	cgo.Handle(h).Delete()
	if f.local == nil { // a charger: no table, no lineage
		if f.quota != nil {
			quotas.release(f.quota)
		}
		f.log.Info("charger config destroyed")
		return
	}
	processLineages.leave(f) // before Close: a withdrawal may be clearing the lineage's tables
	f.local.Close()
	if f.quota != nil {
		quotas.release(f.quota)
	}
	n := C.tg_table_stats(t)
	f.log.Info("filter config destroyed", "decidedInGo", f.calls.Load(), "tableLive", int64(n.live),
		"tableInserts", int64(n.inserts), "tableEvictions", int64(n.evictions))
}

// tgRouteNew builds a per-route configuration from its JSON
// (envoymod.RouteConfig); nil refuses it (Envoy rejects the route
// configuration), as it does one of another contract.
//
//export tgRouteNew
func tgRouteNew(p *C.char, n C.size_t) (out unsafe.Pointer) {
	log := logger()
	defer recoverTo(log, "route config", func() { out = nil })
	var rc envoymod.RouteConfig
	b := C.GoBytes(unsafe.Pointer(p), C.int(n))
	if err := json.Unmarshal(b, &rc); err != nil {
		if !contractRefusedJSON(log, "route config", b) {
			log.Error("route config: bad JSON", "err", err)
		}
		return nil
	}
	if contractRefused(log, "route config", rc.Contract) {
		return nil
	}
	limits, err := routeLimits(rc.Limits)
	if err != nil {
		log.Error("route config refused: limits", "route", rc.Extensions["route"], "err", err)
		return nil
	}
	info := glue.RouteOf(rc.Extensions)
	h := cgo.NewHandle(&route{ext: rc.Extensions, limits: limits, checkLimits: rc.CheckLimits})
	blob := glue.Blob(nil).AddList(info.Roles).AddList(info.Scopes)
	cacheable := cbool(info.Cacheable)*C.TG_CACHE_JWT | cbool(info.KeyCacheable)*C.TG_CACHE_KEY |
		cbool(info.KeyCacheable && !rc.CheckLimits)*C.TG_CACHE_OPAQUE
	r := C.tg_route_new(C.uintptr_t(h), cacheable, cbool(info.Forward), cstr(info.Name),
		C.size_t(len(info.Name)), cbytes(blob), C.size_t(len(blob)), C.size_t(len(info.Roles)), C.size_t(len(info.Scopes)))
	if r == nil {
		h.Delete()
		C.tg_route_limits_free(limits)
		return nil
	}
	r.limits = limits
	return unsafe.Pointer(r)
}

// tgRouteDestroy releases a per-route configuration's Go state.
//
//export tgRouteDestroy
func tgRouteDestroy(h C.uintptr_t) {
	if r, _ := handleValue[*route](h); r != nil {
		cgo.Handle(h).Delete()
	}
}

// contractRefused reports whether a configuration (what: "filter config"
// or "route config") whose Contract is got is of another contract than
// the module's (envoymod.CheckContract; an empty one included), logging
// then one line that names both contracts and the fix.
func contractRefused(log *slog.Logger, what, got string) bool {
	if err := envoymod.CheckContract(got); err != nil {
		log.Error(what+" refused", "err", err)
		return true
	}
	return false
}

// contractRefusedJSON is contractRefused for a configuration's JSON b that
// did not decode (one of another contract may not): its "contract" field
// alone is read; false when b is not JSON at all.
func contractRefusedJSON(log *slog.Logger, what string, b []byte) bool {
	var c struct {
		Contract string `json:"contract"`
	}
	if json.Unmarshal(b, &c) != nil {
		return false
	}
	return contractRefused(log, what, c.Contract)
}

// handleValue returns the value of handle h, or ok false when h is not a
// live handle of a T (a panic of cgo.Handle.Value, recovered).
func handleValue[T any](h C.uintptr_t) (v T, ok bool) {
	if h == 0 {
		return v, false
	}
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	v, ok = cgo.Handle(h).Value().(T)
	return v, ok
}

// recoverTo recovers a panic of the calling export, logs it and runs
// fail: a Go panic escaping into C would abort Envoy.
func recoverTo(log *slog.Logger, what string, fail func()) {
	if r := recover(); r != nil {
		log.Error("recovered from a panic", "in", what, "panic", fmt.Sprint(r))
		fail()
	}
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// cstr and cbytes pass Go memory (without Go pointers in it) to a C call
// that copies it before returning, as the cgo pointer rules allow.
func cstr(s string) *C.char { return (*C.char)(unsafe.Pointer(unsafe.StringData(s))) }

func cbytes(b []byte) *C.char { return (*C.char)(unsafe.Pointer(unsafe.SliceData(b))) }
