// stats.c: the module's Envoy counters (stats.h).
#include "stats.h"

#include <string.h>

#include "abi.h"
#include "limit.h"

// tg_stat_names: the counters' names, prefixed "tollgate_module."; Envoy
// puts them in its dynamic modules' stats namespace.
static const char* const tg_stat_names[TG_STAT_COUNT] = {
    [TG_STAT_TABLE_ALLOWED] = "tollgate_module.rq_table_allowed",
    [TG_STAT_TABLE_RATE_LIMITED] = "tollgate_module.rq_table_rate_limited",
    [TG_STAT_GO_ALLOWED] = "tollgate_module.rq_go_allowed",
    [TG_STAT_GO_RATE_LIMITED] = "tollgate_module.rq_go_rate_limited",
    [TG_STAT_GO_UNAUTHENTICATED] = "tollgate_module.rq_go_unauthenticated",
    [TG_STAT_GO_FORBIDDEN] = "tollgate_module.rq_go_forbidden",
    [TG_STAT_GO_UNAVAILABLE] = "tollgate_module.rq_go_unavailable",
    [TG_STAT_GO_DENIED_OTHER] = "tollgate_module.rq_go_denied_other",
    [TG_STAT_GO_PASSED] = "tollgate_module.rq_go_passed",
    [TG_STAT_BUCKETS_CREATED] = "tollgate_module.limit_buckets_created",
    [TG_STAT_BUCKETS_EVICTED] = "tollgate_module.limit_buckets_evicted",
    [TG_STAT_JWKS_PARKED] = "tollgate_module.jwks_parked",
    [TG_STAT_JWKS_PARK_FULL] = "tollgate_module.jwks_park_full",
    [TG_STAT_CHARGED_ALLOWED] = "tollgate_module.rq_charged_allowed",
    [TG_STAT_CHARGED_RATE_LIMITED] = "tollgate_module.rq_charged_rate_limited",
    [TG_STAT_KEYS_LEARNED] = "tollgate_module.keys_learned",
};

void tg_stats_define(void* envoy_config, size_t* ids) {
  for (int i = 0; i < TG_STAT_COUNT; i++) {
    size_t id = 0;
    tg_buf name = {tg_stat_names[i], strlen(tg_stat_names[i])};
    if (envoy_dynamic_module_callback_http_filter_config_define_counter(envoy_config, name, NULL, 0,
                                                                        &id) != TG_METRICS_SUCCESS) {
      id = 0;
    }
    ids[i] = id;
  }
}

void tg_stats_add(void* envoy_filter, const size_t* ids, int which) {
  envoy_dynamic_module_callback_http_filter_increment_counter(envoy_filter, ids[which], NULL, 0, 1);
}

void tg_stats_charged(void* envoy_filter, const size_t* ids, int res) {
  if (res & TG_CHARGE_CREATED) {
    tg_stats_add(envoy_filter, ids, TG_STAT_BUCKETS_CREATED);
  }
  if (res & TG_CHARGE_EVICTED) {
    tg_stats_add(envoy_filter, ids, TG_STAT_BUCKETS_EVICTED);
  }
}
