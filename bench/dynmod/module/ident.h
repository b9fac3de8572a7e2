// ident.h: the identity a verified token yields, in C memory, so the C
// hook can hand it to Envoy without holding Go pointers.
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
#endif
