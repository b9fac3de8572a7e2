// hooks.c: the event hooks Envoy 1.40 resolves in an HTTP-filter module.
// Only request headers do work; every other hook continues at once in C,
// so a request crosses into Go at most once (tgIdentify or tgGoEmpty).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "tgabi.h"
#include "ident.h"
#include "ctable.h"
#include "_cgo_export.h"

// The ABI version Envoy 1.40 compares with its own: "v0.2.0" is logged
// as matched; any other string is only a warning, never a refusal.
// TG_ABI_VERSION overrides it (the spike's check of what 1.40 expects).
const char* envoy_dynamic_module_on_program_init(void) {
  const char* v = getenv("TG_ABI_VERSION");
  fprintf(stderr, "tgspike: program init, pid %d\n", (int)getpid());
  return v != NULL ? v : "v0.2.0";
}

// Modes, chosen by the filter_config's "mode".
enum { MODE_C_EMPTY = 1, MODE_GO_EMPTY = 2, MODE_IDENTITY = 3 };

void* envoy_dynamic_module_on_http_filter_config_new(void* envoy_config, tg_buf name,
                                                     tg_buf config) {
  (void)envoy_config;
  (void)name;
  tg_config* c = calloc(1, sizeof(*c));
  long long h = tgConfigNew((char*)config.ptr, (long long)config.len, c);
  if (h <= 0) {
    tg_table_free(c->table);
    free((void*)c->state_key.ptr);
    free((void*)c->md_namespace.ptr);
    free(c);
    return NULL;
  }
  c->handle = h;
  return c;
}

void envoy_dynamic_module_on_http_filter_config_destroy(void* config) {
  tg_config* c = config;
  tgConfigDestroy(c->handle);
  tg_table_free(c->table);
  free((void*)c->state_key.ptr);
  free((void*)c->md_namespace.ptr);
  free(c);
}

// The filter keeps no per-stream state: its module pointer is the config.
void* envoy_dynamic_module_on_http_filter_new(void* config, void* envoy_filter) {
  (void)envoy_filter;
  return config;
}

static tg_buf lit(const char* s) { return (tg_buf){s, strlen(s)}; }

static void set_or_remove(void* f, const char* name, tg_buf v) {
  if (v.len == 0) {
    v.ptr = NULL;
  }
  envoy_dynamic_module_callback_http_set_header(f, TG_REQUEST_HEADERS, lit(name), v);
}

static int deny(void* f, uint32_t status) {
  tg_header h = {"www-authenticate", 16, "Bearer", 6};
  envoy_dynamic_module_callback_http_send_response(f, status, &h, 1, lit("unauthorized\n"),
                                                   lit("tollgate_identity_denied"));
  return TG_STOP_ITERATION;
}

static void set_md(void* f, tg_config* c, const char* key, tg_buf v) {
  if (v.len > 0) {
    envoy_dynamic_module_callback_http_set_dynamic_metadata_string(f, c->md_namespace, lit(key), v);
  }
}

// publish writes what the chain after the filter reads: the identity
// headers (set, or removed when empty: the client's copies never pass),
// the consumer filter state, and the dynamic-metadata keys.
static void publish(void* f, tg_config* c, const tg_identity* id) {
  set_or_remove(f, "x-user-id", id->user_id);
  set_or_remove(f, "x-user-roles", id->roles);
  set_or_remove(f, "x-tenant-id", id->tenant);
  set_or_remove(f, "x-consumer-tier", id->tier);
  if (c->state_key.len > 0) {
    envoy_dynamic_module_callback_http_set_filter_state_bytes(f, c->state_key, id->user_id);
  }
  if (c->metadata >= MD_CONSUMER) {
    set_md(f, c, "consumer", id->user_id);
  }
  if (c->metadata >= MD_MIN) {
    set_md(f, c, "method", lit("jwt"));
    set_md(f, c, "tier", id->tier);
  }
  if (c->metadata >= MD_FULL) {
    set_md(f, c, "user_id", id->user_id);
    set_md(f, c, "roles", id->roles);
    set_md(f, c, "tenant", id->tenant);
  }
}

// from_table publishes the identity of auth's bearer token from the C
// table and returns 1, or returns 0 (a miss: not a bearer token, absent,
// expired) without publishing anything. The shard's read lock is held
// while the identity is published: Envoy copies every value.
static int from_table(void* f, tg_config* c, tg_buf auth) {
  static const size_t prefix = 7; // "bearer ", any case, as the Go side parses it
  if (auth.len <= prefix || strncasecmp(auth.ptr, "bearer ", prefix) != 0) {
    return 0;
  }
  tg_shard* held = NULL;
  const tg_identity* id = tg_table_get(c->table, auth.ptr + prefix, auth.len - prefix, &held);
  if (id == NULL) {
    return 0;
  }
  publish(f, c, id);
  tg_table_release(held);
  return 1;
}

// identify reads the one Authorization header, finds the caller's identity
// (in the C table, or else from Go) and publishes it.
static int identify(void* f, tg_config* c) {
  tg_buf auth = {0, 0};
  size_t count = 0;
  if (!envoy_dynamic_module_callback_http_get_header(f, TG_REQUEST_HEADERS, lit("authorization"),
                                                     &auth, 0, &count) ||
      count != 1 || auth.ptr == NULL) {
    return deny(f, 401);
  }
  if (c->deny_ambiguous) {
    tg_buf key = {0, 0};
    size_t keys = 0;
    envoy_dynamic_module_callback_http_get_header(f, TG_REQUEST_HEADERS, lit("x-api-key"), &key, 0,
                                                  &keys);
    if (keys > 0 || memchr(auth.ptr, ',', auth.len) != NULL) {
      return deny(f, 403);
    }
  }
  if (c->table != NULL && from_table(f, c, auth)) {
    return TG_CONTINUE;
  }
  tg_identity* id = tgIdentify(c->handle, (char*)auth.ptr, (long long)auth.len);
  if (id == NULL) {
    return deny(f, 401);
  }
  publish(f, c, id);
  if (id->owned) {
    tg_identity_free(id);
  }
  return TG_CONTINUE;
}

int envoy_dynamic_module_on_http_filter_request_headers(void* f, void* m, bool eos) {
  (void)eos;
  tg_config* c = m;
  switch (c->mode) {
  case MODE_C_EMPTY:
    return TG_CONTINUE;
  case MODE_GO_EMPTY:
    tgGoEmpty();
    return TG_CONTINUE;
  default:
    return identify(f, c);
  }
}

// The remaining hooks Envoy requires: nothing to do.
int envoy_dynamic_module_on_http_filter_request_body(void* f, void* m, bool eos) { return TG_CONTINUE; }
int envoy_dynamic_module_on_http_filter_request_trailers(void* f, void* m) { return TG_CONTINUE; }
int envoy_dynamic_module_on_http_filter_response_headers(void* f, void* m, bool eos) { return TG_CONTINUE; }
int envoy_dynamic_module_on_http_filter_response_body(void* f, void* m, bool eos) { return TG_CONTINUE; }
int envoy_dynamic_module_on_http_filter_response_trailers(void* f, void* m) { return TG_CONTINUE; }
void envoy_dynamic_module_on_http_filter_stream_complete(void* f, void* m) {}
void envoy_dynamic_module_on_http_filter_destroy(void* m) {}
void envoy_dynamic_module_on_http_filter_http_callout_done(void) {}
void envoy_dynamic_module_on_http_filter_http_stream_headers(void) {}
void envoy_dynamic_module_on_http_filter_http_stream_data(void) {}
void envoy_dynamic_module_on_http_filter_http_stream_trailers(void) {}
void envoy_dynamic_module_on_http_filter_http_stream_complete(void) {}
void envoy_dynamic_module_on_http_filter_http_stream_reset(void) {}
void envoy_dynamic_module_on_http_filter_scheduled(void) {}
void envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(void* f, void* m) {}
void envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(void* f, void* m) {}
