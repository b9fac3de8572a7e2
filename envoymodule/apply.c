// apply.c: the helpers Go calls to apply a decision through Envoy's
// callbacks (module.h).
#include "limit.h"
#include "module.h"

static const char md_namespace[] = "envoy.filters.http.ext_authz";

void tg_set_header(void* filter, const char* name, size_t name_len, const char* value,
                   size_t value_len, int remove) {
  tg_buf v = {remove ? NULL : (value != NULL ? value : ""), remove ? 0 : value_len};
  envoy_dynamic_module_callback_http_set_header(filter, TG_REQUEST_HEADERS,
                                                (tg_buf){name, name_len}, v);
}

void tg_set_metadata_blob(void* filter, const char* blob, size_t len, size_t n) {
  tg_header md[TG_MAX_METADATA];
  if (n > TG_MAX_METADATA || tg_blob_headers(blob, len, 0, md, n) == TG_BLOB_BAD || n == 0) {
    return;
  }
  envoy_dynamic_module_callback_http_set_dynamic_metadata_string_batch(
      filter, (tg_buf){md_namespace, sizeof(md_namespace) - 1}, md, n);
}

void tg_send_response(void* filter, uint32_t status, const char* blob, size_t len, size_t n,
                      const char* body, size_t body_len, const char* details,
                      size_t details_len) {
  tg_header hs[8];
  if (n > 8) {
    n = 8;
  }
  if (tg_blob_headers(blob, len, 0, hs, n) == TG_BLOB_BAD) {
    n = 0;
  }
  envoy_dynamic_module_callback_http_send_response(filter, status, hs, n, (tg_buf){body, body_len},
                                                   (tg_buf){details, details_len});
}

void tg_send_limited(void* filter, const void* spec) {
  static const char details[] = "tollgate_rate_limited";
  const tg_bucket_spec* s = spec;
  envoy_dynamic_module_callback_http_send_response(
      filter, 429, s->headers, s->nheaders, s->body, (tg_buf){details, sizeof(details) - 1});
}

int tg_route_limit(void* filter, const tg_route_limits* rl, int fail_closed, tg_buf consumer,
                   tg_buf tier, tg_rl_report* report) {
  const tg_bucket_spec* spec = tg_route_limits_pick(rl, consumer, tier);
  int res = tg_limits_charge_report(tg_limits_process(), spec, consumer, fail_closed,
                                    tg_monotonic_ns(), report);
  if (res & TG_CHARGE_REFUSED) {
    tg_send_limited(filter, spec);
  }
  return res;
}
