// table.c: see table.h. (From the spike bench/dynmod/module/ctable.c; the
// entry now holds Go's published identity, decoded from a blob.)
#include "table.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

enum { SHARDS = 16 }; // a power of two

typedef struct tg_entry {
  struct tg_entry* chain;  // next in the bucket
  struct tg_entry* older;  // insertion order within the shard
  struct tg_entry* newer;
  uint64_t hash;
  int64_t deadline_ns;
  const char* key; // into data
  size_t key_len, size;
  const char* kid; // a signed key's id, into data (kid_len 0: none)
  size_t kid_len;
  int is_key;          // a signed key's entry (a kid, or the key's "tg." form)
  const char* blob;    // the identity's blob, into data (tg_table_copy decodes it again)
  size_t blob_len;
  size_t counts[4];    // the blob's nops, nmd, nroles, nscopes
  tg_identity id; // its arrays and strings point into data
  char data[];    // the arrays (aligned), the key, the kid, then the blob
} tg_entry;

struct tg_shard {
  pthread_rwlock_t lock;
  tg_entry** buckets;
  size_t mask; // buckets - 1
  tg_entry* oldest;
  tg_entry* newest;
  size_t count, cap;
  long long inserts, evictions, replaced, bytes, cleared;
} __attribute__((aligned(64)));

struct tg_table {
  uint64_t seed;
  int64_t max_ttl_ns;
  uint64_t epoch; // atomic: tg_table_clear advances it before clearing
  tg_shard shards[SHARDS];
};

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t mix(uint64_t h) { // splitmix64's finaliser
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

// hash is a seeded 8-bytes-a-step hash: it only spreads entries, equality
// is always decided by comparing the bytes.
uint64_t tg_hash(uint64_t seed, const char* p, size_t n) {
  uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 32;
  }
  uint64_t w = 0;
  memcpy(&w, p + i, n - i);
  return mix(h ^ w);
}

tg_table* tg_table_new(size_t capacity, int64_t max_ttl_ns) {
  tg_table* t = calloc(1, sizeof(*t));
  if (t == NULL) {
    return NULL;
  }
  if (getrandom(&t->seed, sizeof(t->seed), 0) != sizeof(t->seed)) {
    t->seed = (uint64_t)now_ns();
  }
  t->max_ttl_ns = max_ttl_ns;
  size_t per = capacity / SHARDS + (capacity % SHARDS != 0);
  if (per == 0) {
    per = 1;
  }
  size_t nb = 1;
  while (nb < per) {
    nb <<= 1;
  }
  for (int i = 0; i < SHARDS; i++) {
    tg_shard* s = &t->shards[i];
    pthread_rwlock_init(&s->lock, NULL);
    s->cap = per;
    s->mask = nb - 1;
    s->buckets = calloc(nb, sizeof(tg_entry*));
    if (s->buckets == NULL) {
      tg_table_free(t);
      return NULL;
    }
  }
  return t;
}

void tg_table_free(tg_table* t) {
  if (t == NULL) {
    return;
  }
  for (int i = 0; i < SHARDS; i++) {
    tg_shard* s = &t->shards[i];
    for (tg_entry* e = s->oldest; e != NULL;) {
      tg_entry* next = e->newer;
      free(e);
      e = next;
    }
    free(s->buckets);
    pthread_rwlock_destroy(&s->lock);
  }
  free(t);
}

static tg_shard* shard_of(tg_table* t, uint64_t h) { return &t->shards[h & (SHARDS - 1)]; }
static size_t bucket_of(tg_shard* s, uint64_t h) { return (size_t)(h >> 8) & s->mask; }

static tg_entry* find(tg_shard* s, uint64_t h, const char* key, size_t len) {
  for (tg_entry* e = s->buckets[bucket_of(s, h)]; e != NULL; e = e->chain) {
    if (e->hash == h && e->key_len == len && memcmp(e->key, key, len) == 0) {
      return e;
    }
  }
  return NULL;
}

const tg_identity* tg_table_get(tg_table* t, const char* key, size_t len, tg_shard** held) {
  uint64_t h = tg_hash(t->seed, key, len);
  tg_shard* s = shard_of(t, h);
  pthread_rwlock_rdlock(&s->lock);
  tg_entry* e = find(s, h, key, len);
  if (e != NULL && now_ns() < e->deadline_ns) {
    *held = s;
    return &e->id;
  }
  pthread_rwlock_unlock(&s->lock);
  return NULL;
}

void tg_table_release(tg_shard* held) { pthread_rwlock_unlock(&held->lock); }

// unlink removes e from its bucket and from the insertion order and frees
// it; the caller holds the shard's write lock.
static void unlink_entry(tg_shard* s, tg_entry* e) {
  tg_entry** pp = &s->buckets[bucket_of(s, e->hash)];
  while (*pp != e) {
    pp = &(*pp)->chain;
  }
  *pp = e->chain;
  if (e->older != NULL) {
    e->older->newer = e->newer;
  } else {
    s->oldest = e->newer;
  }
  if (e->newer != NULL) {
    e->newer->older = e->older;
  } else {
    s->newest = e->older;
  }
  s->count--;
  s->bytes -= (long long)e->size;
  free(e);
}

// md_value is the value of metadata key (ptr NULL: absent).
static tg_buf md_value(const tg_header* md, size_t n, const char* key) {
  size_t len = strlen(key);
  for (size_t i = 0; i < n; i++) {
    if (md[i].key_len == len && memcmp(md[i].key, key, len) == 0 && md[i].value != NULL) {
      return (tg_buf){md[i].value, md[i].value_len};
    }
  }
  return (tg_buf){NULL, 0};
}

// make_entry allocates one block holding the entry, its arrays, the key,
// the kid and a copy of the blob the arrays point into.
static tg_entry* make_entry(uint64_t h, const char* key, size_t len, tg_buf kid, const char* blob,
                            size_t blob_len, const size_t n[4], int64_t deadline) {
  size_t arrays = (n[0] + n[1]) * sizeof(tg_header) + (n[2] + n[3]) * sizeof(tg_buf);
  size_t size = sizeof(tg_entry) + arrays + len + kid.len + blob_len;
  tg_entry* e = malloc(size);
  if (e == NULL) {
    return NULL;
  }
  memset(e, 0, sizeof(*e));
  e->hash = h;
  e->deadline_ns = deadline;
  e->key_len = len;
  e->size = size;
  tg_header* ops = (tg_header*)e->data;
  tg_header* md = ops + n[0];
  tg_buf* roles = (tg_buf*)(md + n[1]);
  tg_buf* scopes = roles + n[2];
  char* k = e->data + arrays;
  char* kd = k + len;
  char* b = kd + kid.len;
  memcpy(k, key, len);
  e->key = k;
  if (kid.len > 0) {
    memcpy(kd, kid.ptr, kid.len);
  }
  e->kid = kd;
  e->kid_len = kid.len;
  e->is_key = kid.len > 0 || (len >= 3 && memcmp(key, "tg.", 3) == 0);
  memcpy(b, blob, blob_len);
  e->blob = b;
  e->blob_len = blob_len;
  memcpy(e->counts, n, sizeof(e->counts));
  size_t off = 0;
  off = tg_blob_headers(b, blob_len, off, ops, n[0]);
  off = tg_blob_headers(b, blob_len, off, md, n[1]);
  off = tg_blob_bufs(b, blob_len, off, roles, n[2]);
  off = tg_blob_bufs(b, blob_len, off, scopes, n[3]);
  if (off != blob_len) { // malformed (TG_BLOB_BAD) or trailing bytes
    free(e);
    return NULL;
  }
  e->id = (tg_identity){ops, n[0], md, n[1], roles, n[2], scopes, n[3], {0}, {0}};
  e->id.consumer = md_value(md, n[1], "consumer");
  e->id.tier = md_value(md, n[1], "tier");
  return e;
}

// link inserts e into s, evicting the shard's oldest entries while it is
// full (and an entry of the same key); the caller holds s's write lock.
static void link_entry(tg_shard* s, tg_entry* e) {
  tg_entry* old = find(s, e->hash, e->key, e->key_len);
  if (old != NULL) {
    unlink_entry(s, old);
    s->replaced++;
  }
  while (s->count >= s->cap && s->oldest != NULL) {
    unlink_entry(s, s->oldest);
    s->evictions++;
  }
  size_t b = bucket_of(s, e->hash);
  e->chain = s->buckets[b];
  s->buckets[b] = e;
  e->older = s->newest;
  if (s->newest != NULL) {
    s->newest->newer = e;
  } else {
    s->oldest = e;
  }
  s->newest = e;
  s->count++;
  s->inserts++;
  s->bytes += (long long)e->size;
}

int tg_table_put(tg_table* t, const char* key, size_t len, const char* blob, size_t blob_len,
                 size_t nops, size_t nmd, size_t nroles, size_t nscopes, const char* kid,
                 size_t kid_len, int64_t exp_ns, uint64_t epoch) {
  int64_t now = now_ns();
  int64_t deadline = exp_ns;
  if (t->max_ttl_ns > 0 && now + t->max_ttl_ns < deadline) {
    deadline = now + t->max_ttl_ns;
  }
  if (deadline <= now) {
    return 0;
  }
  uint64_t h = tg_hash(t->seed, key, len);
  const size_t n[4] = {nops, nmd, nroles, nscopes};
  tg_entry* e = make_entry(h, key, len, (tg_buf){kid, kid_len}, blob, blob_len, n, deadline);
  if (e == NULL) {
    return 0;
  }
  tg_shard* s = shard_of(t, h);
  pthread_rwlock_wrlock(&s->lock);
  // Under the shard's lock: a clear that advanced the epoch before this
  // check clears this shard after the insertion, one that advances it
  // after finds the entry.
  if (__atomic_load_n(&t->epoch, __ATOMIC_ACQUIRE) != epoch) {
    pthread_rwlock_unlock(&s->lock);
    free(e);
    return 0;
  }
  link_entry(s, e);
  pthread_rwlock_unlock(&s->lock);
  return 1;
}

uint64_t tg_table_epoch(tg_table* t) { return __atomic_load_n(&t->epoch, __ATOMIC_ACQUIRE); }

void tg_table_clear(tg_table* t) {
  __atomic_add_fetch(&t->epoch, 1, __ATOMIC_ACQ_REL);
  for (int i = 0; i < SHARDS; i++) {
    tg_shard* s = &t->shards[i];
    pthread_rwlock_wrlock(&s->lock);
    while (s->oldest != NULL) {
      unlink_entry(s, s->oldest);
      s->cleared++;
    }
    pthread_rwlock_unlock(&s->lock);
  }
}

tg_table_counts tg_table_stats(tg_table* t) {
  tg_table_counts c = {0};
  for (int i = 0; i < SHARDS; i++) {
    tg_shard* s = &t->shards[i];
    pthread_rwlock_rdlock(&s->lock);
    c.live += (long long)s->count;
    c.capacity += (long long)s->cap;
    c.inserts += s->inserts;
    c.evictions += s->evictions;
    c.replaced += s->replaced;
    c.bytes += s->bytes;
    c.cleared += s->cleared;
    pthread_rwlock_unlock(&s->lock);
  }
  return c;
}

// put_item appends one blob item (a 4-byte little-endian length, then p[:n]).
static char* put_item(char* out, const char* p, size_t n) {
  uint32_t len = (uint32_t)n;
  unsigned char le[4] = {(unsigned char)len, (unsigned char)(len >> 8), (unsigned char)(len >> 16),
                         (unsigned char)(len >> 24)};
  memcpy(out, le, 4);
  memcpy(out + 4, p, n);
  return out + 4 + n;
}

// shard_key_ids appends the kids of s's key entries to *out (grown as
// needed: *cap bytes, *len used); 0 when memory is short. The caller holds
// s's read lock.
static int shard_key_ids(tg_shard* s, char** out, size_t* len, size_t* cap, size_t* n) {
  for (tg_entry* e = s->oldest; e != NULL; e = e->newer) {
    if (e->kid_len == 0) {
      continue;
    }
    if (*len + 4 + e->kid_len > *cap) {
      size_t grown = (*cap + 4 + e->kid_len) * 2;
      char* p = realloc(*out, grown);
      if (p == NULL) {
        return 0;
      }
      *out = p;
      *cap = grown;
    }
    *len = (size_t)(put_item(*out + *len, e->kid, e->kid_len) - *out);
    (*n)++;
  }
  return 1;
}

char* tg_table_key_ids(tg_table* t, size_t* len, size_t* n) {
  char* out = NULL;
  size_t cap = 0;
  *len = 0;
  *n = 0;
  for (int i = 0; i < SHARDS; i++) {
    tg_shard* s = &t->shards[i];
    pthread_rwlock_rdlock(&s->lock);
    int ok = shard_key_ids(s, &out, len, &cap, n);
    pthread_rwlock_unlock(&s->lock);
    if (!ok) {
      free(out);
      *len = 0;
      *n = 0;
      return NULL;
    }
  }
  return out;
}

static int buf_cmp(const void* a, const void* b) {
  const tg_buf* x = a;
  const tg_buf* y = b;
  if (x->len != y->len) {
    return x->len < y->len ? -1 : 1;
  }
  return x->len == 0 ? 0 : memcmp(x->ptr, y->ptr, x->len);
}

// kept reports whether e may enter a successor's table: a token always,
// a signed key only when its kid is one of keep[:n] (sorted by buf_cmp).
static int kept(const tg_entry* e, const tg_buf* keep, size_t n) {
  if (!e->is_key) {
    return 1;
  }
  if (e->kid_len == 0 || n == 0) {
    return 0;
  }
  tg_buf kid = {e->kid, e->kid_len};
  return bsearch(&kid, keep, n, sizeof(tg_buf), buf_cmp) != NULL;
}

// copy_shard copies src shard s's live kept entries into dst, oldest
// first, each with its deadline; the caller holds s's read lock.
static void copy_shard(tg_table* dst, tg_shard* s, const tg_buf* keep, size_t n, int64_t now,
                       tg_table_copied* c) {
  for (tg_entry* e = s->oldest; e != NULL; e = e->newer) {
    if (e->deadline_ns <= now) {
      continue;
    }
    if (!kept(e, keep, n)) {
      c->dropped++;
      continue;
    }
    uint64_t h = tg_hash(dst->seed, e->key, e->key_len);
    tg_entry* d = make_entry(h, e->key, e->key_len, (tg_buf){e->kid, e->kid_len}, e->blob,
                             e->blob_len, e->counts, e->deadline_ns);
    if (d == NULL) {
      c->failed++;
      continue;
    }
    tg_shard* ds = shard_of(dst, h);
    pthread_rwlock_wrlock(&ds->lock);
    link_entry(ds, d);
    pthread_rwlock_unlock(&ds->lock);
    c->copied++;
  }
}

tg_table_copied tg_table_copy(tg_table* dst, tg_table* src, const char* keep, size_t keep_len,
                              size_t nkeep) {
  tg_table_copied c = {0};
  tg_buf* ids = NULL;
  if (nkeep > 0) {
    ids = malloc(nkeep * sizeof(tg_buf));
    if (ids == NULL || tg_blob_bufs(keep, keep_len, 0, ids, nkeep) != keep_len) {
      free(ids); // memory short or a malformed blob: keep no key
      ids = NULL;
      nkeep = 0;
    } else {
      qsort(ids, nkeep, sizeof(tg_buf), buf_cmp);
    }
  }
  int64_t now = now_ns();
  for (int i = 0; i < SHARDS; i++) {
    tg_shard* s = &src->shards[i];
    pthread_rwlock_rdlock(&s->lock);
    copy_shard(dst, s, ids, nkeep, now, &c);
    pthread_rwlock_unlock(&s->lock);
  }
  free(ids);
  return c;
}
