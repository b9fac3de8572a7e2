// limitspec.c: a route's bucket specs (limit.h), built once per route
// configuration from what Go parsed (glue.BucketsOf).
#include <stdlib.h>
#include <string.h>

#include "limit.h"
#include "module.h"

tg_route_limits* tg_route_limits_new(size_t ntiers) {
  if (ntiers > TG_ROUTE_MAX_TIERS) {
    return NULL;
  }
  tg_route_limits* rl = calloc(1, sizeof(*rl) + (ntiers + 2) * sizeof(tg_bucket_spec));
  if (rl == NULL) {
    return NULL;
  }
  rl->ntiers = ntiers;
  for (size_t i = 0; i < ntiers + 2; i++) {
    rl->specs[i].flags = TG_SPEC_UNLIMITED;
  }
  return rl;
}

void tg_route_limits_free(tg_route_limits* rl) {
  if (rl == NULL) {
    return;
  }
  for (size_t i = 0; i < rl->ntiers + 2; i++) {
    free(rl->specs[i].mem);
    free(rl->specs[i].ietf_mem);
  }
  free(rl);
}

static tg_buf copy_to(char** p, tg_buf b) {
  if (b.len > 0) {
    memcpy(*p, b.ptr, b.len);
  }
  tg_buf out = {*p, b.len};
  *p += b.len;
  return out;
}

static int valid_limits(const int64_t* lim, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (lim[2 * i] < 1 || lim[2 * i] > TG_LIMIT_MAX_NS || lim[2 * i + 1] < 0 ||
        lim[2 * i + 1] > TG_LIMIT_MAX_NS) {
      return 0;
    }
  }
  return 1;
}

int tg_route_limits_set(tg_route_limits* rl, size_t i, tg_buf tier, tg_buf id, int flags,
                        const int64_t* lim, size_t nlimits, tg_buf body, const char* hblob,
                        size_t hlen, size_t nheaders) {
  if (rl == NULL || i >= rl->ntiers + 2 || nlimits > TG_LIMIT_MAX ||
      nheaders > TG_LIMIT_MAX_HEADERS || !valid_limits(lim, nlimits)) {
    return 0;
  }
  size_t size = nheaders * sizeof(tg_header) + tier.len + id.len + body.len + hlen;
  char* mem = malloc(size + 1);
  if (mem == NULL) {
    return 0;
  }
  tg_header* hs = (tg_header*)mem;
  char* p = mem + nheaders * sizeof(tg_header);
  tg_bucket_spec s = {0};
  s.tier = copy_to(&p, tier);
  s.id = copy_to(&p, id);
  s.body = copy_to(&p, body);
  tg_buf blob = copy_to(&p, (tg_buf){hblob, hlen});
  if (tg_blob_headers(blob.ptr, blob.len, 0, hs, nheaders) != hlen) {
    free(mem);
    return 0;
  }
  for (size_t k = 0; k < nheaders; k++) {
    if (hs[k].value == NULL) { // a NULL item: no value to send
      free(mem);
      return 0;
    }
  }
  s.flags = flags;
  s.nlimits = nlimits;
  for (size_t k = 0; k < nlimits; k++) {
    s.limits[k] = (tg_gcra){lim[2 * k], lim[2 * k + 1]};
  }
  s.headers = hs;
  s.nheaders = nheaders;
  s.mem = mem;
  if (nlimits > 0) { // report the first limit until told otherwise (tg_route_limits_report)
    s.report_limit = (uint64_t)(s.limits[0].tolerance_ns / s.limits[0].emission_ns) + 1;
  }
  free(rl->specs[i].mem);
  free(rl->specs[i].ietf_mem);
  rl->specs[i] = s;
  return 1;
}

int tg_route_limits_ietf(tg_route_limits* rl, size_t i, tg_buf policy, tg_buf rate_r,
                         tg_buf rate_t) {
  if (rl == NULL || i >= rl->ntiers + 2 || rl->specs[i].nlimits == 0) {
    return 0;
  }
  char* mem = malloc(sizeof(tg_ietf) + policy.len + rate_r.len + rate_t.len + 1);
  if (mem == NULL) {
    return 0;
  }
  tg_ietf* h = (tg_ietf*)mem;
  char* p = mem + sizeof(tg_ietf);
  h->policy = copy_to(&p, policy);
  h->rate_r = copy_to(&p, rate_r);
  h->rate_t = copy_to(&p, rate_t);
  tg_bucket_spec* s = &rl->specs[i];
  free(s->ietf_mem);
  s->ietf = h;
  s->ietf_mem = mem;
  return 1;
}

int tg_route_limits_report(tg_route_limits* rl, size_t i, size_t reported, uint64_t limit) {
  if (rl == NULL || i >= rl->ntiers + 2) {
    return 0;
  }
  tg_bucket_spec* s = &rl->specs[i];
  if (reported >= s->nlimits && !(reported == 0 && s->nlimits == 0)) {
    return 0;
  }
  s->reported = reported;
  s->report_limit = limit;
  return 1;
}

const tg_bucket_spec* tg_route_limits_pick(const tg_route_limits* rl, tg_buf consumer,
                                           tg_buf tier) {
  if (consumer.ptr == NULL || consumer.len == 0) {
    return &rl->specs[rl->ntiers + 1];
  }
  if (tier.ptr != NULL) {
    for (size_t i = 0; i < rl->ntiers; i++) {
      const tg_buf* t = &rl->specs[i].tier;
      if (t->len == tier.len && memcmp(t->ptr, tier.ptr, tier.len) == 0) {
        return &rl->specs[i];
      }
    }
  }
  return &rl->specs[rl->ntiers];
}
