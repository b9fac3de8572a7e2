// ident.h: what the C hooks and the Go side share: the identity a verified
// token yields, in C memory (so C never holds Go pointers), and the
// filter configuration.
#ifndef TG_IDENT_H
#define TG_IDENT_H
#include <stdlib.h>
#include "tgabi.h"

typedef struct {
  tg_buf user_id; // "<namespace>:<user id>", also the consumer
  tg_buf roles;   // comma separated
  tg_buf tenant;
  tg_buf tier;
  int owned; // 1: made for this request, the hook frees it
} tg_identity;

static inline void tg_identity_free(tg_identity* id) {
  free((void*)id->user_id.ptr);
  free((void*)id->roles.ptr);
  free((void*)id->tenant.ptr);
  free((void*)id->tier.ptr);
  free(id);
}

// What the identity mode writes besides the four identity headers.
enum { MD_NONE = 0, MD_CONSUMER = 1, MD_MIN = 2, MD_FULL = 3 };

// tg_config is one filter configuration as the C hooks see it; Go fills
// it in tgConfigNew.
typedef struct {
  int mode;
  int metadata;        // MD_*: which dynamic-metadata keys are written
  int deny_ambiguous;  // refuse a comma in Authorization or any x-api-key (Tollgate's rbac rule)
  tg_buf state_key;    // filter-state key of the consumer ({0} = none)
  tg_buf md_namespace; // dynamic-metadata namespace
  long long handle;    // the Go side's config handle
  struct tg_table* table; // mode "ctable": token -> identity, consulted before Go (ctable.h)
} tg_config;
#endif
