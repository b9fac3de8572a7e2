// module.h: what the C hooks and the Go side share. C never holds Go
// pointers: Go hands over cgo.Handle values (integers) and bytes, which C
// copies into its own memory.
#ifndef TG_MODULE_H
#define TG_MODULE_H

#include <stddef.h>
#include <stdint.h>

#include "abi.h"
#include "limit.h"
#include "stats.h"

typedef struct tg_table tg_table;
typedef struct tg_route_limits tg_route_limits;

// tg_config is one filter configuration (envoymod.FilterConfig) as the C
// hooks see it. Go fills it in tgConfigNew; the config's destroy hook frees
// it after Go's tgConfigDestroy.
typedef struct {
  uintptr_t handle;  // Go's cgo.Handle of its filter state
  tg_table* table;   // verified tokens -> identity (table.h)
  tg_buf key_header; // the API-key header ({0}: none), C memory
  int fail_closed;   // envoymod.Quota.FailClosed: an expired assignment refuses
  int keys;          // envoymod.FilterConfig.Keys is set: signed API keys are decided (and cached)
  int keys_cached;   // signed keys may be served from the table: Keys is Fresh with an epoch (else
                     // Go refuses every signed key, 503/401, whatever the table holds)
  int charge;        // envoymod.FilterConfig.Charge: the charger after ext_authz (hooks.c charge_admitted);
                     // table is NULL, nothing is decided
  size_t stats[TG_STAT_COUNT]; // the config's counter ids (stats.h), set before tgConfigNew
} tg_config;

// tg_stream is one stream's module filter (on_http_filter_new): its
// configuration, what its admitted response reports of the route's
// rate limit (report.set 0: nothing, the response passes untouched), and
// its park: the cgo.Handle of Go's parked request while the request waits
// for a JWKS fetch (0: not parked). Only the worker thread reads or
// writes it: the scheduled hook takes it (tgResume), the destroy hook
// releases it (tgParkRelease) if still set. learn is a copy of the opaque
// API key Go passed on (NULL: none; learn_len bytes), which the response
// hook hands to Go with the record ext_authz's answer carried (hooks.c
// learn); the destroy hook frees it.
typedef struct {
  const tg_config* config;
  tg_rl_report report;
  uintptr_t park;
  char* learn;
  size_t learn_len;
  int64_t learn_at; // when Go passed it on (tg_monotonic_ns)
} tg_stream;

// Bits of tg_route.cacheable: the route takes no limits in the check and
// its methods include jwt (a cached bearer token may decide it), apiKey (a
// cached signed key may), and the Check does not take its limits for what
// the module passes (envoymod.RouteConfig.CheckLimits: a cached learned
// opaque key may).
enum { TG_CACHE_JWT = 1, TG_CACHE_KEY = 2, TG_CACHE_OPAQUE = 4 };

// tg_route is one per-route configuration (envoymod.RouteConfig): what the
// C fast path checks and publishes. One block of C memory (tg_route_new).
typedef struct {
  uintptr_t handle;  // Go's cgo.Handle of the route's context extensions
  int cacheable;     // TG_CACHE_* bits: which cached credentials may decide the route in C
  int forward;       // the route forwards credentials upstream
  tg_buf name;       // the route name (metadata "route")
  const tg_buf* roles; // any one of them is needed (none: any caller)
  size_t nroles;
  const tg_buf* scopes; // all of them are needed
  size_t nscopes;
  tg_route_limits* limits; // the route's rate limits (limit.h), NULL: none; freed with the route
} tg_route;

// tg_identity is a verified token's part of an allowed request, exactly as
// Go's decision published it: identity header mutations (value.ptr NULL:
// remove), ext_authz metadata without "route", and the caller's roles and
// scopes for other routes' requirements; consumer and tier are the values
// of its "consumer" and "tier" metadata (ptr NULL: absent), found when the
// entry is built, for the route's rate limits (limit.h).
typedef struct {
  const tg_header* ops;
  size_t nops;
  const tg_header* md;
  size_t nmd;
  const tg_buf* roles;
  size_t nroles;
  const tg_buf* scopes;
  size_t nscopes;
  tg_buf consumer;
  tg_buf tier;
} tg_identity;

// Blobs: Go hands lists of strings to C as one byte string: each item a
// 4-byte little-endian length then its bytes; length 0xffffffff is a NULL
// item (a header removal). tg_blob_headers decodes n pairs from blob[off:]
// into out (as tg_header), tg_blob_bufs n items into out; both return the
// offset after what they read, or TG_BLOB_BAD (also when off already is)
// when blob is too short. The results point into blob.
#define TG_BLOB_BAD SIZE_MAX
size_t tg_blob_headers(const char* blob, size_t len, size_t off, tg_header* out, size_t n);
size_t tg_blob_bufs(const char* blob, size_t len, size_t off, tg_buf* out, size_t n);

// tg_route_new builds a route from a blob of nroles roles then nscopes
// scopes (copied); NULL when memory is short or the blob is malformed.
tg_route* tg_route_new(uintptr_t handle, int cacheable, int forward, const char* name,
                       size_t name_len, const char* blob, size_t len, size_t nroles,
                       size_t nscopes);

// Helpers Go calls to apply its decision (all copy what they are given).
// tg_send_limited sends the static 429 of spec (a const tg_bucket_spec*,
// limit.h), details "tollgate_rate_limited".
void tg_send_limited(void* filter, const void* spec);
// tg_route_limit charges a request of consumer (tier.ptr NULL: none) to
// its bucket of rl in the process-wide table (limit.h) and sends the
// bucket's 429 when refused; returns tg_limits_charge's bits. An
// admitted request's report goes to *report (tg_limits_charge_report).
int tg_route_limit(void* filter, const tg_route_limits* rl, int fail_closed, tg_buf consumer,
                   tg_buf tier, tg_rl_report* report);
void tg_set_header(void* filter, const char* name, size_t name_len, const char* value,
                   size_t value_len, int remove);
// tg_set_metadata_blob writes n key/value pairs decoded from blob into the
// ext_authz metadata namespace in one call (at most TG_MAX_METADATA).
#define TG_MAX_METADATA 16
void tg_set_metadata_blob(void* filter, const char* blob, size_t len, size_t n);
// tg_send_response sends a local reply with n headers decoded from blob
// (at most 8; more are dropped).
void tg_send_response(void* filter, uint32_t status, const char* blob, size_t len, size_t n,
                      const char* body, size_t body_len, const char* details,
                      size_t details_len);

#endif
