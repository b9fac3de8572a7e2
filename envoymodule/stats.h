// stats.h: the module's Envoy counters. Each filter configuration defines
// them in its config hook (Envoy refuses definitions afterwards); Envoy's
// stats store keeps a counter by its name, so every configuration of the
// process (each listener's, each push's) increments the same counters and
// a push neither resets nor duplicates them. Names carry no credential,
// consumer or route: a fixed set, in Envoy's dynamic-module namespace
// (`/stats` shows dynamicmodulescustom.tollgate_module.<name>,
// `/stats/prometheus` envoy_dynamicmodulescustom_tollgate_module_<name>:
// Envoy 1.40 strips neither the namespace nor adds labels).
//
// Contract: a request the module decides (a route with its per-route
// config) increments exactly one rq_* counter, once (a parked request
// when it is decided, besides jwks_parked) (rq_go_passed when Go
// passes it on undecided: an opaque API key); a request the charger
// (envoymod.FilterConfig.Charge) charges increments exactly one
// rq_charged_* counter (one it passes untouched, none); a passed opaque
// key whose record the module learned from ext_authz's answer adds one to
// keys_learned (hooks.c learn); a bucket the charge
// created, and one it evicted doing so, add one to limit_buckets_created
// and limit_buckets_evicted. An increment is one call into Envoy (an
// atomic add); a counter whose definition failed has id 0, and its
// increments do nothing.
#ifndef TG_STATS_H
#define TG_STATS_H
#include <stddef.h>

// The counters, in the order of tg_stat_names (stats.c).
enum {
  TG_STAT_TABLE_ALLOWED,      // decided from the C table, admitted
  TG_STAT_TABLE_RATE_LIMITED, // decided from the C table, refused by the route's limits (429)
  TG_STAT_GO_ALLOWED,         // decided in Go, admitted
  TG_STAT_GO_RATE_LIMITED,    // decided in Go, refused by the route's limits (429)
  TG_STAT_GO_UNAUTHENTICATED, // decided in Go, refused 401
  TG_STAT_GO_FORBIDDEN,       // decided in Go, refused 403
  TG_STAT_GO_UNAVAILABLE,     // decided in Go, refused 503 (JWKS, key store, internal error)
  TG_STAT_GO_DENIED_OTHER,    // decided in Go, refused with another status
  TG_STAT_GO_PASSED,          // seen by Go, not decided: passed on untouched (an opaque API key)
  TG_STAT_BUCKETS_CREATED,    // rate-limit buckets created (limit.h)
  TG_STAT_BUCKETS_EVICTED,    // rate-limit buckets evicted by a full shard
  TG_STAT_JWKS_PARKED,        // requests held while their provider's JWKS was fetched (each is also
                              // counted in one rq_go_* counter when decided)
  TG_STAT_JWKS_PARK_FULL,     // requests refused 503 at once: the parked bound was reached
  TG_STAT_CHARGED_ALLOWED,    // the charger (after ext_authz): an admitted request charged, admitted
  TG_STAT_CHARGED_RATE_LIMITED, // the charger: refused by the route's limits (429)
  TG_STAT_KEYS_LEARNED,       // opaque API keys learned from the ext_authz answer admitting them
  TG_STAT_COUNT
};

// Outcomes of a decision made in Go (tgDecide): TG_STAT_GO_* minus
// TG_STAT_GO_ALLOWED, so that the hook counts and answers in C. Only
// TG_OUT_ALLOWED and TG_OUT_PASS continue the request.
enum {
  TG_OUT_ALLOWED = 0,
  TG_OUT_RATE_LIMITED = TG_STAT_GO_RATE_LIMITED - TG_STAT_GO_ALLOWED,
  TG_OUT_UNAUTHENTICATED = TG_STAT_GO_UNAUTHENTICATED - TG_STAT_GO_ALLOWED,
  TG_OUT_FORBIDDEN = TG_STAT_GO_FORBIDDEN - TG_STAT_GO_ALLOWED,
  TG_OUT_UNAVAILABLE = TG_STAT_GO_UNAVAILABLE - TG_STAT_GO_ALLOWED,
  TG_OUT_DENIED_OTHER = TG_STAT_GO_DENIED_OTHER - TG_STAT_GO_ALLOWED,
  TG_OUT_PASS = TG_STAT_GO_PASSED - TG_STAT_GO_ALLOWED,
  // Not a decision: Go parked the request until its provider's JWKS
  // fetch ends (module.h tg_stream.park); nothing was written.
  TG_OUT_PARKED = 100,
};

// tg_stats_define defines every counter in the filter configuration
// envoy_config (the config hook's argument) and writes their ids to
// ids[TG_STAT_COUNT] (0 for one Envoy refused: tgConfigNew logs a
// warning, and its increments do nothing).
void tg_stats_define(void* envoy_config, size_t* ids);

// tg_stats_add adds 1 to counter which (TG_STAT_*) of ids for the request
// of envoy_filter.
void tg_stats_add(void* envoy_filter, const size_t* ids, int which);

// tg_stats_charged counts what a charge's result bits (limit.h) say of
// the bucket table: created, evicted.
void tg_stats_charged(void* envoy_filter, const size_t* ids, int res);

#endif
