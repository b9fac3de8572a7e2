// blob.c: decoding the blobs Go hands over (module.h) and the route block.
// No Envoy callback here, so ctest/ links it alone.
#include <stdlib.h>
#include <string.h>

#include "module.h"

// item reads one blob item at *off into *out.
static int item(const char* blob, size_t len, size_t* off, tg_buf* out) {
  if (*off == TG_BLOB_BAD || *off > len || len - *off < 4) {
    return 0;
  }
  const unsigned char* p = (const unsigned char*)blob + *off;
  uint32_t n = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
  *off += 4;
  if (n == 0xffffffffu) {
    *out = (tg_buf){NULL, 0};
    return 1;
  }
  if (len - *off < n) {
    return 0;
  }
  *out = (tg_buf){blob + *off, n};
  *off += n;
  return 1;
}

size_t tg_blob_headers(const char* blob, size_t len, size_t off, tg_header* out, size_t n) {
  for (size_t i = 0; i < n; i++) {
    tg_buf k, v;
    if (!item(blob, len, &off, &k) || !item(blob, len, &off, &v) || k.ptr == NULL) {
      return TG_BLOB_BAD;
    }
    out[i] = (tg_header){k.ptr, k.len, v.ptr, v.len};
  }
  return off;
}

size_t tg_blob_bufs(const char* blob, size_t len, size_t off, tg_buf* out, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (!item(blob, len, &off, &out[i]) || out[i].ptr == NULL) {
      return TG_BLOB_BAD;
    }
  }
  return off;
}

tg_route* tg_route_new(uintptr_t handle, int cacheable, int forward, const char* name,
                       size_t name_len, const char* blob, size_t len, size_t nroles,
                       size_t nscopes) {
  size_t arrays = (nroles + nscopes) * sizeof(tg_buf);
  tg_route* r = malloc(sizeof(tg_route) + arrays + name_len + len);
  if (r == NULL) {
    return NULL;
  }
  tg_buf* roles = (tg_buf*)(r + 1);
  tg_buf* scopes = roles + nroles;
  char* n = (char*)(scopes + nscopes);
  char* b = n + name_len;
  memcpy(n, name, name_len);
  memcpy(b, blob, len);
  size_t off = tg_blob_bufs(b, len, 0, roles, nroles);
  off = tg_blob_bufs(b, len, off, scopes, nscopes);
  if (off != len) {
    free(r);
    return NULL;
  }
  *r = (tg_route){handle, cacheable, forward, {n, name_len}, roles, nroles, scopes, nscopes, NULL};
  return r;
}
