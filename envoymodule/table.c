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
  tg_identity id; // its arrays and strings point into data
  char data[];    // the arrays (aligned), the key, then the blob
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

// make_entry allocates one block holding the entry, its arrays, the key
// and a copy of the blob the arrays point into.
static tg_entry* make_entry(uint64_t h, const char* key, size_t len, const char* blob,
                            size_t blob_len, const size_t n[4], int64_t deadline) {
  size_t arrays = (n[0] + n[1]) * sizeof(tg_header) + (n[2] + n[3]) * sizeof(tg_buf);
  size_t size = sizeof(tg_entry) + arrays + len + blob_len;
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
  char* b = k + len;
  memcpy(k, key, len);
  e->key = k;
  memcpy(b, blob, blob_len);
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

int tg_table_put(tg_table* t, const char* key, size_t len, const char* blob, size_t blob_len,
                 size_t nops, size_t nmd, size_t nroles, size_t nscopes, int64_t exp_ns,
                 uint64_t epoch) {
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
  tg_entry* e = make_entry(h, key, len, blob, blob_len, n, deadline);
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
  tg_entry* old = find(s, h, key, len);
  if (old != NULL) {
    unlink_entry(s, old);
    s->replaced++;
  }
  while (s->count >= s->cap && s->oldest != NULL) {
    unlink_entry(s, s->oldest);
    s->evictions++;
  }
  size_t b = bucket_of(s, h);
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
