// hooks.c: the event hooks Envoy 1.40 resolves in an HTTP-filter module.
// Only request headers do work: on a route with a per-route config, a
// token (or, with signed keys, a signed API key) found in the C table
// (table.h) whose identity meets the route's requirement is published
// here without entering Go; every other request is decided by Go
// (tgDecide, decide.go), which may park it while a JWKS fetch runs
// (park.go): the scheduled hook then decides it (tgResume) and the destroy
// hook tells Go when a parked stream goes (tgParkRelease). Response headers
// write the rate-limit report of an admitted request on a limited route
// (tg_stream); the other hooks continue at once. A charger configuration
// (tg_config.charge: the instance after ext_authz) decides nothing: it
// charges the requests ext_authz admitted (charge_admitted).
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "abi.h"
#include "limit.h"
#include "module.h"
#include "table.h"
#include "_cgo_export.h"

static const char filter_name[] = "tollgate_identity"; // envoymod.FilterName
static const char md_namespace[] = "envoy.filters.http.ext_authz";
static const char client_ip[] = "x-tollgate-client-ip"; // contract.HeaderClientIP

static tg_buf lit(const char* s) { return (tg_buf){s, strlen(s)}; }

static int is_filter_name(tg_buf name) {
  return name.len == sizeof(filter_name) - 1 && memcmp(name.ptr, filter_name, name.len) == 0;
}

// The ABI version 1.40 compares with its own: "v0.2.0" is logged as
// matched; any other string is only a warning (bench/dynmod/README.md).
const char* envoy_dynamic_module_on_program_init(void) { return "v0.2.0"; }

void* envoy_dynamic_module_on_http_filter_config_new(void* envoy_config, tg_buf name,
                                                     tg_buf config) {
  if (!is_filter_name(name)) {
    return NULL;
  }
  tg_config* c = calloc(1, sizeof(*c));
  if (c == NULL) {
    return NULL;
  }
  tg_stats_define(envoy_config, c->stats); // only here: Envoy freezes them when the hook returns
  if (!tgConfigNew((char*)config.ptr, config.len, c)) {
    tg_table_free(c->table);
    free((void*)c->key_header.ptr);
    free(c);
    return NULL;
  }
  return c;
}

void envoy_dynamic_module_on_http_filter_config_destroy(void* config) {
  tg_config* c = config;
  tgConfigDestroy(c->handle, c->table);
  tg_table_free(c->table);
  free((void*)c->key_header.ptr);
  free(c);
}

void* envoy_dynamic_module_on_http_filter_per_route_config_new(tg_buf name, tg_buf config) {
  if (!is_filter_name(name)) {
    return NULL;
  }
  return tgRouteNew((char*)config.ptr, config.len);
}

void envoy_dynamic_module_on_http_filter_per_route_config_destroy(void* route) {
  tg_route* r = route;
  tgRouteDestroy(r->handle);
  tg_route_limits_free(r->limits);
  free(r);
}

// A stream's module pointer is its tg_stream: the config, and the rate
// limit report its response writes (one small allocation per stream,
// freed by the filter's destroy hook).
void* envoy_dynamic_module_on_http_filter_new(void* config, void* envoy_filter) {
  (void)envoy_filter;
  tg_stream* s = malloc(sizeof(*s));
  if (s == NULL) {
    return NULL;
  }
  s->config = config;
  s->report.set = 0;
  s->park = 0;
  s->learn = NULL;
  s->learn_len = 0;
  return s;
}

// visible_dots returns the number of dots of p[:n], or -1 when it holds
// a byte outside visible ASCII or a comma.
static int visible_dots(const char* p, size_t n) {
  int dots = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)p[i];
    if (ch <= ' ' || ch >= 0x7f || ch == ',') {
      return -1;
    }
    dots += ch == '.';
  }
  return dots;
}

// signed_key reports whether v is a strict signed API key: "tg." then
// visible ASCII without a comma, three dots in all (apikey.IsSigned's
// prefix, a compact JWS after it).
static int signed_key(tg_buf v) {
  return v.ptr != NULL && v.len > 3 && memcmp(v.ptr, "tg.", 3) == 0 &&
         visible_dots(v.ptr, v.len) == 3;
}

// MAX_OPAQUE_KEY bounds the opaque keys the table may hold (an opaque key
// is ~50 bytes: apikey.Generate).
enum { MAX_OPAQUE_KEY = 256 };

// opaque_key reports whether v is a strict opaque API key: visible ASCII
// without a comma or a dot, at most MAX_OPAQUE_KEY bytes (Go learns only
// keys apikey.Parse accepts).
static int opaque_key(tg_buf v) {
  return v.ptr != NULL && v.len > 0 && v.len <= MAX_OPAQUE_KEY && visible_dots(v.ptr, v.len) == 0;
}

// key_kind is the kind of API key v: TG_CACHE_KEY (strict signed),
// TG_CACHE_OPAQUE (strict opaque), 0 (neither).
static int key_kind(tg_buf v) {
  return signed_key(v) ? TG_CACHE_KEY : opaque_key(v) ? TG_CACHE_OPAQUE : 0;
}

// strict_token finds the C fast path's credential and returns its kind
// (TG_CACHE_JWT, TG_CACHE_KEY, TG_CACHE_OPAQUE; 0: none), the credential
// in *tok:
//   - exactly one Authorization header "Bearer <token>" (scheme in any
//     case, one space), the token of visible ASCII without a comma and
//     with exactly two dots, and no API-key header: TG_CACHE_JWT;
//   - with signed keys (c->keys): exactly one Authorization header
//     "ApiKey <key>" (scheme in any case, one space) and no key header,
//     or exactly one key header and no Authorization, the key a strict
//     signed key (TG_CACHE_KEY) or a strict opaque one (TG_CACHE_OPAQUE).
// A token has two dots, a signed key three and an opaque key none, so
// their table entries never meet. Anything else is Go's to decide. A
// request with neither header and no signed keys reads one header, as
// before keys.
static int strict_token(void* f, const tg_config* c, tg_buf* tok) {
  static const size_t prefix = 7; // "bearer ", "apikey "
  tg_buf auth = {0, 0}, key = {0, 0};
  size_t nauth = 0, nkey = 0;
  envoy_dynamic_module_callback_http_get_header(f, TG_REQUEST_HEADERS, lit("authorization"), &auth,
                                                0, &nauth);
  if ((nauth != 1 && !c->keys) || nauth > 1) {
    return 0;
  }
  if (c->key_header.len > 0) {
    envoy_dynamic_module_callback_http_get_header(f, TG_REQUEST_HEADERS, c->key_header, &key, 0,
                                                  &nkey);
  }
  if (nauth == 1 && nkey == 0 && auth.ptr != NULL && auth.len > prefix) {
    tg_buf v = {auth.ptr + prefix, auth.len - prefix};
    if (strncasecmp(auth.ptr, "bearer ", prefix) == 0 && visible_dots(v.ptr, v.len) == 2) {
      *tok = v;
      return TG_CACHE_JWT;
    }
    int kind = c->keys && strncasecmp(auth.ptr, "apikey ", prefix) == 0 ? key_kind(v) : 0;
    if (kind != 0) {
      *tok = v;
    }
    return kind;
  }
  int kind = c->keys && nauth == 0 && nkey == 1 ? key_kind(key) : 0;
  if (kind != 0) {
    *tok = key;
  }
  return kind;
}

static int has(const tg_buf* list, size_t n, tg_buf want) {
  for (size_t i = 0; i < n; i++) {
    if (list[i].len == want.len && memcmp(list[i].ptr, want.ptr, want.len) == 0) {
      return 1;
    }
  }
  return 0;
}

// authorized applies the route's requirement as Go's authorize does:
// roles, any one; scopes, all.
static int authorized(const tg_route* r, const tg_identity* id) {
  int any = r->nroles == 0;
  for (size_t i = 0; i < r->nroles && !any; i++) {
    any = has(id->roles, id->nroles, r->roles[i]);
  }
  for (size_t i = 0; i < r->nscopes && any; i++) {
    any = has(id->scopes, id->nscopes, r->scopes[i]);
  }
  return any;
}

// publish writes what Go's decision for this token wrote, with the route's
// part: identity headers, credentials removed unless forwarded, the client
// address header removed (Go removes it when present: same effect), and
// the metadata with "route".
static void publish(void* f, const tg_config* c, const tg_route* r, const tg_identity* id) {
  for (size_t i = 0; i < id->nops; i++) {
    const tg_header* h = &id->ops[i];
    envoy_dynamic_module_callback_http_set_header(f, TG_REQUEST_HEADERS,
                                                  (tg_buf){h->key, h->key_len},
                                                  (tg_buf){h->value, h->value_len});
  }
  if (!r->forward) {
    envoy_dynamic_module_callback_http_set_header(f, TG_REQUEST_HEADERS, lit("authorization"),
                                                  (tg_buf){NULL, 0});
    if (c->key_header.len > 0) {
      envoy_dynamic_module_callback_http_set_header(f, TG_REQUEST_HEADERS, c->key_header,
                                                    (tg_buf){NULL, 0});
    }
  }
  envoy_dynamic_module_callback_http_set_header(
      f, TG_REQUEST_HEADERS, (tg_buf){client_ip, sizeof(client_ip) - 1}, (tg_buf){NULL, 0});
  tg_header md[TG_MAX_METADATA];
  size_t n = 0;
  md[n++] = (tg_header){"route", 5, r->name.ptr, r->name.len};
  for (size_t i = 0; i < id->nmd && n < TG_MAX_METADATA; i++) {
    md[n++] = id->md[i];
  }
  envoy_dynamic_module_callback_http_set_dynamic_metadata_string_batch(
      f, (tg_buf){md_namespace, sizeof(md_namespace) - 1}, md, n);
}

// Fast path answers: not decided (Go decides), continue, stop (a local
// reply was sent).
enum { FAST_MISS = 0, FAST_CONTINUE = 1, FAST_STOP = 2 };

// from_table decides tok from the table: its identity meeting the route's
// requirement is charged to the route's limits (when it has some), then
// published, or refused with the bucket's 429. FAST_MISS (nothing
// written) when the table lacks tok or the requirement is not met.
static int from_table(void* f, const tg_config* c, const tg_route* r, tg_buf tok,
                      tg_rl_report* report) {
  tg_shard* held = NULL;
  const tg_identity* id = tg_table_get(c->table, tok.ptr, tok.len, &held);
  if (id == NULL) {
    return FAST_MISS;
  }
  if (!authorized(r, id)) {
    tg_table_release(held);
    return FAST_MISS;
  }
  int res = 0;
  const tg_bucket_spec* spec = NULL;
  if (r->limits != NULL) { // the consumer's bytes live in the entry: charge under the lock
    spec = tg_route_limits_pick(r->limits, id->consumer, id->tier);
    res = tg_limits_charge_report(tg_limits_process(), spec, id->consumer, c->fail_closed,
                                  tg_monotonic_ns(), report);
  }
  if (!(res & TG_CHARGE_REFUSED)) {
    publish(f, c, r, id);
  }
  tg_table_release(held);
  if (res & TG_CHARGE_CREATED) {
    tg_stats_charged(f, c->stats, res);
    tgLimitNewBucket(c->handle);
  }
  if (res & TG_CHARGE_REFUSED) {
    tg_send_limited(f, spec);
    tg_stats_add(f, c->stats, TG_STAT_TABLE_RATE_LIMITED);
    return FAST_STOP;
  }
  tg_stats_add(f, c->stats, TG_STAT_TABLE_ALLOWED);
  return FAST_CONTINUE;
}

enum { MAX_VALUES = 16 };

// collect appends the values of header name (at most MAX_VALUES in all) to
// hs, as the ext_authz filter would see them (Go joins repeats with ",").
static size_t collect(void* f, tg_buf name, tg_header* hs, size_t n) {
  size_t count = 1;
  for (size_t i = 0; i < count && n < MAX_VALUES; i++) {
    tg_buf v = {0, 0};
    if (!envoy_dynamic_module_callback_http_get_header(f, TG_REQUEST_HEADERS, name, &v, i,
                                                       &count) ||
        v.ptr == NULL) {
      break;
    }
    hs[n++] = (tg_header){name.ptr, name.len, v.ptr, v.len};
  }
  return n;
}

// counted counts Go's outcome (TG_OUT_*, an unknown value as
// TG_OUT_DENIED_OTHER: Go stopped the request, as every refusal does) and
// reports whether the request continues: allowed, or passed (TG_OUT_PASS:
// Go wrote nothing, the filters after the module decide).
static int counted(void* f, const tg_config* c, int out) {
  if (out < TG_OUT_ALLOWED || out > TG_OUT_PASS) {
    out = TG_OUT_DENIED_OTHER;
  }
  tg_stats_add(f, c->stats, TG_STAT_GO_ALLOWED + out);
  return out == TG_OUT_ALLOWED || out == TG_OUT_PASS;
}

// keep_to_learn keeps a copy of tok, the opaque API key Go passed on, for
// the response hook (learn); nothing when memory is short (the key is
// then not learned: ext_authz decides it again next time).
static void keep_to_learn(tg_stream* s, tg_buf tok) {
  free(s->learn);
  s->learn = malloc(tok.len);
  s->learn_len = s->learn != NULL ? tok.len : 0;
  if (s->learn != NULL) {
    memcpy(s->learn, tok.ptr, tok.len);
  }
  s->learn_at = tg_monotonic_ns();
}

// decide hands the request to Go, which applies its decision and names
// its outcome (TG_OUT_*): counted here, it continues only when allowed or
// passed. Go fills *report when it admits the request on a limited route.
// TG_OUT_PARKED: Go holds the request until its provider's JWKS fetch
// ends (s->park set, nothing written): the stream stops with its body
// buffered (StopAllIterationAndBuffer: no filter sees the body before the
// decision) and the scheduled hook decides it.
static int decide(void* f, const tg_config* c, const tg_route* r, tg_buf tok, tg_stream* s) {
  tg_header hs[MAX_VALUES];
  size_t n = collect(f, lit("authorization"), hs, 0);
  if (c->key_header.len > 0) {
    n = collect(f, c->key_header, hs, n);
  }
  n = collect(f, (tg_buf){client_ip, sizeof(client_ip) - 1}, hs, n);
  int out = tgDecide(c->handle, r->handle, f, hs, n, (char*)tok.ptr, tok.len, &s->report, &s->park);
  if (out == TG_OUT_PASS && tok.len > 0) {
    keep_to_learn(s, tok);
  }
  if (out == TG_OUT_PARKED) {
    tg_stats_add(f, c->stats, TG_STAT_JWKS_PARKED);
    return TG_STOP_ALL_BUFFER;
  }
  return counted(f, c, out) ? TG_CONTINUE : TG_STOP_ITERATION;
}

// no_stream answers a request whose per-stream state could not be
// allocated (filter_new found memory short): 503, never an undecided pass.
static int no_stream(void* f) {
  static const char body[] = "{\"error\":\"unavailable\",\"reason\":\"internal_error\"}";
  static const char details[] = "tollgate_identity_internal_error";
  tg_send_response(f, 503, NULL, 0, 0, body, sizeof(body) - 1, details, sizeof(details) - 1);
  return TG_STOP_ITERATION;
}

// ext_authz_md reads key of the ext_authz metadata namespace (the Check
// response's identity, the first instance's marker) into *v; {NULL, 0}
// when absent or not a string.
static tg_buf ext_authz_md(void* f, const char* key) {
  tg_buf v = {NULL, 0};
  if (!envoy_dynamic_module_callback_http_get_metadata_string(
          f, TG_METADATA_DYNAMIC, (tg_buf){md_namespace, sizeof(md_namespace) - 1}, lit(key), &v)) {
    return (tg_buf){NULL, 0};
  }
  return v;
}

// charge_admitted is the charger (envoymod.FilterConfig.Charge), after
// the ext_authz filter: on a route with limits, a request the first
// instance decided (its native marker; it charged it already) continues
// untouched; any other one reached here admitted by ext_authz, and is
// charged to the route's bucket of the identity ext_authz wrote (consumer,
// tier: Envoy's dynamic metadata from the Check response, never a client's
// header), in the process-wide table the first instance charges, and
// refused with the bucket's 429 as the first instance refuses. No consumer
// there picks the unidentified bucket, which refuses: never unlimited.
static int charge_admitted(void* f, const tg_config* c, const tg_route* r, tg_stream* s) {
  if (r->limits == NULL || ext_authz_md(f, "native").ptr != NULL) {
    return TG_CONTINUE;
  }
  tg_buf consumer = ext_authz_md(f, "consumer");
  tg_buf tier = ext_authz_md(f, "tier");
  const tg_bucket_spec* spec = tg_route_limits_pick(r->limits, consumer, tier);
  int res = tg_limits_charge_report(tg_limits_process(), spec, consumer, c->fail_closed,
                                    tg_monotonic_ns(), &s->report);
  if (res & TG_CHARGE_CREATED) {
    tg_stats_charged(f, c->stats, res);
    tgLimitNewBucket(c->handle);
  }
  if (res & TG_CHARGE_REFUSED) {
    tg_send_limited(f, spec);
    tg_stats_add(f, c->stats, TG_STAT_CHARGED_RATE_LIMITED);
    return TG_STOP_ITERATION;
  }
  tg_stats_add(f, c->stats, TG_STAT_CHARGED_ALLOWED);
  return TG_CONTINUE;
}

// learn hands the opaque API key the request carried (s->learn: Go passed
// it on) and the record the ext_authz service's answer admitting it
// carries (envoymod.MetadataKeyRecord in the ext_authz namespace, written
// by Envoy from the Check response; absent when ext_authz refused it or
// did not run) to Go, which learns it (tgLearn: the key's later requests
// are decided in the module), then frees the copy.
static void learn(void* f, tg_stream* s) {
  tg_buf rec = ext_authz_md(f, "key_record");
  if (rec.ptr != NULL && tgLearn(s->config->handle, s->learn, s->learn_len, (char*)rec.ptr, rec.len,
                                   s->learn_at)) {
    tg_stats_add(f, s->config->stats, TG_STAT_KEYS_LEARNED);
  }
  free(s->learn);
  s->learn = NULL;
  s->learn_len = 0;
}

int envoy_dynamic_module_on_http_filter_request_headers(void* f, void* m, bool eos) {
  (void)eos;
  tg_stream* s = m;
  if (s == NULL) {
    return no_stream(f);
  }
  const tg_config* c = s->config;
  const tg_route* r = envoy_dynamic_module_callback_get_most_specific_route_config(f);
  if (r == NULL) {
    return TG_CONTINUE;
  }
  if (c->charge) {
    return charge_admitted(f, c, r, s);
  }
  tg_buf tok = {0, 0};
  int kind = strict_token(f, c, &tok);
  if ((kind == TG_CACHE_KEY || kind == TG_CACHE_OPAQUE) && !c->keys_cached) {
    kind = 0; // a stale table or no epoch: Go refuses every signed key and passes every opaque one
  }
  if (kind & r->cacheable) {
    switch (from_table(f, c, r, tok, &s->report)) {
    case FAST_CONTINUE:
      return TG_CONTINUE;
    case FAST_STOP:
      return TG_STOP_ITERATION;
    }
  }
  return decide(f, c, r, tok, s);
}

// put_u64 writes v in decimal ending at end; returns its start (20
// bytes before end suffice).
static char* put_u64(char* end, uint64_t v) {
  do {
    *--end = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  return end;
}

// set_response adds response header name = v. add_header, not
// set_header: ~950 Envoy instructions against ~2,200 (set_header looks
// for copies to replace; a get_header probe costs as much), so an
// upstream's own X-RateLimit-* stay beside the module's, exactly as the
// filter path's local_ratelimit adds its own (addReferenceKey).
static void set_response(void* f, const char* name, uint64_t v) {
  char buf[20];
  char* p = put_u64(buf + sizeof(buf), v);
  envoy_dynamic_module_callback_http_add_header(f, TG_RESPONSE_HEADERS, lit(name),
                                                (tg_buf){p, (size_t)(buf + sizeof(buf) - p)});
}

// put_buf copies b to p; returns the end.
static char* put_buf(char* p, tg_buf b) {
  if (b.len > 0) {
    memcpy(p, b.ptr, b.len);
  }
  return p + b.len;
}

// set_ietf writes the IETF headers h of report r (tg_ietf): RateLimit-
// Policy, then RateLimit with r's remaining and reset. set_header, as the
// filter path's header_mutation (OVERWRITE_IF_EXISTS_OR_ADD) replaces an
// upstream's. The value is built on the stack unless its tier name is
// long (one allocation then; none sent when memory is short).
static void set_ietf(void* f, const tg_ietf* h, const tg_rl_report* r) {
  char stack[256];
  size_t n = h->rate_r.len + h->rate_t.len + 40;
  char* buf = n <= sizeof(stack) ? stack : malloc(n);
  if (buf == NULL) {
    return;
  }
  char num[20];
  char* end = num + sizeof(num);
  char* d = put_u64(end, r->remaining);
  char* p = put_buf(put_buf(buf, h->rate_r), (tg_buf){d, (size_t)(end - d)});
  d = put_u64(end, r->reset);
  p = put_buf(put_buf(p, h->rate_t), (tg_buf){d, (size_t)(end - d)});
  envoy_dynamic_module_callback_http_set_header(f, TG_RESPONSE_HEADERS, lit("ratelimit-policy"),
                                                h->policy);
  envoy_dynamic_module_callback_http_set_header(f, TG_RESPONSE_HEADERS, lit("ratelimit"),
                                                (tg_buf){buf, (size_t)(p - buf)});
  if (buf != stack) {
    free(buf);
  }
}

// An admitted request of a limited route: its response carries the
// reported limit's draft-03 headers, as the filter path's local_ratelimit
// backstop writes them, and with rateLimits.ietfHeaders the IETF headers
// the filter path's header filter writes after them; every other
// response passes untouched (a 429 of the module keeps its static
// headers, as the filter path's RLQS denial does).
int envoy_dynamic_module_on_http_filter_response_headers(void* f, void* m, bool eos) {
  (void)eos;
  tg_stream* s = m;
  if (s != NULL && s->learn != NULL) {
    learn(f, s);
  }
  if (s != NULL && s->report.set) {
    set_response(f, "x-ratelimit-limit", s->report.limit);
    set_response(f, "x-ratelimit-remaining", s->report.remaining);
    set_response(f, "x-ratelimit-reset", s->report.reset);
    if (s->report.ietf != NULL) {
      set_ietf(f, s->report.ietf, &s->report);
    }
  }
  return TG_CONTINUE;
}

// A parked request's body and trailers wait for its decision: the headers
// hook's StopAllIterationAndBuffer keeps Envoy from calling these until
// the stream continues (smoke: a POST's body reaches the upstream after
// the decision), and should one come anyway, a Continue here would resume
// the request undecided, so they stop (StopIterationAndBuffer, for
// trailers StopIteration: both 1) while the stream is parked.
int envoy_dynamic_module_on_http_filter_request_body(void* f, void* m, bool eos) {
  const tg_stream* s = m;
  return s != NULL && s->park != 0 ? TG_STOP_ITERATION : TG_CONTINUE;
}
int envoy_dynamic_module_on_http_filter_request_trailers(void* f, void* m) {
  const tg_stream* s = m;
  return s != NULL && s->park != 0 ? TG_STOP_ITERATION : TG_CONTINUE;
}

// The remaining hooks Envoy requires: nothing to do.
int envoy_dynamic_module_on_http_filter_response_body(void* f, void* m, bool eos) { return TG_CONTINUE; }
int envoy_dynamic_module_on_http_filter_response_trailers(void* f, void* m) { return TG_CONTINUE; }
void envoy_dynamic_module_on_http_filter_stream_complete(void* f, void* m) {}
// A stream destroyed while parked (the client reset it, Envoy's timeout,
// shutdown): Go's waiter learns it (tgParkRelease) before the stream's
// memory goes, and commits nothing afterwards; an event already posted
// finds the filter gone and is dropped by Envoy.
void envoy_dynamic_module_on_http_filter_destroy(void* m) {
  tg_stream* s = m;
  if (s != NULL && s->park != 0) {
    tgParkRelease(s->config->handle, s->park);
  }
  if (s != NULL) {
    free(s->learn);
  }
  free(m);
}
void envoy_dynamic_module_on_http_filter_http_callout_done(void) {}
void envoy_dynamic_module_on_http_filter_http_stream_headers(void) {}
void envoy_dynamic_module_on_http_filter_http_stream_data(void) {}
void envoy_dynamic_module_on_http_filter_http_stream_trailers(void) {}
void envoy_dynamic_module_on_http_filter_http_stream_complete(void) {}
void envoy_dynamic_module_on_http_filter_http_stream_reset(void) {}
void envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(void* f, void* m) {}
void envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(void* f, void* m) {}

// The JWKS fetch a parked request waited for ended (Go's waiter committed
// the stream's scheduler): on the stream's worker thread, Go applies the
// decision it made when the fetch ended (tgResume: a local reply, or the
// identity written), counted here; an admitted request continues. Envoy
// calls this only while the filter lives; an event without a park (none
// is ever committed twice) does nothing.
void envoy_dynamic_module_on_http_filter_scheduled(void* f, void* m, uint64_t event_id) {
  (void)event_id;
  tg_stream* s = m;
  if (s == NULL || s->park == 0) {
    return;
  }
  uintptr_t park = s->park;
  s->park = 0;
  const tg_config* c = s->config;
  const tg_route* r = envoy_dynamic_module_callback_get_most_specific_route_config(f);
  int out = tgResume(c->handle, r != NULL ? r->handle : 0, f, park, &s->report);
  if (counted(f, c, out)) {
    envoy_dynamic_module_callback_http_filter_continue_decoding(f);
  }
}
