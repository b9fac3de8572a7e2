// stress.c: a stand-alone check of ../table.c and ../blob.c under ASan
// (leaks, use after free, bounds) and TSan (races): 4 threads put and get
// 1,000 tokens in a 64-entry table, one of them clearing it now and then,
// and check that every hit is its own token's identity; then expiry, max
// TTL, exact-length keys, malformed blobs, clearing, a successor's copy (and copies racing
// writers of key entries the copy must leave behind). Not part of the module build (cgo compiles only ..). Run with
// `make module-test` (which also runs the smoke tests), or:
//
//	cc -O1 -g -fsanitize=address -I.. stress.c ../table.c ../blob.c -o /tmp/tg-stress -lpthread && /tmp/tg-stress
#define _DEFAULT_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "table.h"

enum { TOKENS = 1000, THREADS = 4, ROUNDS = 200000 };

static tg_table* table;
static char toks[TOKENS][64];
static char users[TOKENS][32];
static long long wrong, hits;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static size_t add(char* b, size_t off, const char* s) {
  uint32_t n = s == NULL ? 0xffffffffu : (uint32_t)strlen(s);
  memcpy(b + off, &n, 4); // little endian on the hosts this runs on
  if (s != NULL) {
    memcpy(b + off + 4, s, n);
    return off + 4 + n;
  }
  return off + 4;
}

// blob_of encodes token i's identity: ops (x-user-id set, x-tenant-id
// removed), metadata tier, role "r", scope "s".
static size_t blob_of(int i, char* b) {
  size_t off = 0;
  off = add(b, off, "x-user-id");
  off = add(b, off, users[i]);
  off = add(b, off, "x-tenant-id");
  off = add(b, off, NULL);
  off = add(b, off, "tier");
  off = add(b, off, users[i]);
  off = add(b, off, "r");
  return add(b, off, "s");
}

static int put(tg_table* t, const char* key, int i, int64_t exp) {
  char b[256];
  size_t n = blob_of(i, b);
  return tg_table_put(t, key, strlen(key), b, n, 2, 1, 1, 1, NULL, 0, exp, tg_table_epoch(t));
}

static int right(const tg_identity* id, int i) {
  size_t n = strlen(users[i]);
  return id->nops == 2 && id->ops[0].value_len == n && memcmp(id->ops[0].value, users[i], n) == 0 &&
         id->ops[1].value == NULL && id->nmd == 1 && id->md[0].value_len == n &&
         memcmp(id->md[0].value, users[i], n) == 0 && id->nroles == 1 && id->roles[0].len == 1 &&
         id->nscopes == 1 && id->scopes[0].ptr[0] == 's' && id->tier.len == n &&
         memcmp(id->tier.ptr, users[i], n) == 0 && id->consumer.ptr == NULL; // found at put time
}

static void* worker(void* arg) {
  unsigned seed = (unsigned)(size_t)arg;
  long long w = 0, h = 0;
  for (int r = 0; r < ROUNDS; r++) {
    int i = rand_r(&seed) % TOKENS;
    if ((size_t)arg == 1 && r % 4096 == 4095) { // now and then a clear (a withdrawn key) races the others
      tg_table_clear(table);
    }
    if ((size_t)arg == 2 && r % 8192 == 8191) { // and a successor's copy reads it (memory safety only)
      tg_table* succ = tg_table_new(64, 300000000000LL);
      tg_table_copy(succ, table, NULL, 0, 0);
      tg_table_free(succ);
    }
    tg_shard* held;
    const tg_identity* id = tg_table_get(table, toks[i], strlen(toks[i]), &held);
    if (id == NULL) {
      put(table, toks[i], i, now_ns() + 3600000000000LL);
      continue;
    }
    h++;
    w += !right(id, i);
    tg_table_release(held);
  }
  pthread_mutex_lock(&mu);
  wrong += w;
  hits += h;
  pthread_mutex_unlock(&mu);
  return NULL;
}

static int get_ok(tg_table* t, const char* key, size_t len) {
  tg_shard* held;
  const tg_identity* id = tg_table_get(t, key, len, &held);
  if (id != NULL) {
    tg_table_release(held);
  }
  return id != NULL;
}

static int cleared(void);
static int copied(void);

// edges: expiry, max TTL, exact length, malformed blobs, clearing.
static int edges(void) {
  tg_table* t = tg_table_new(256, 200000000LL); // max TTL 200 ms; room enough that no shard evicts
  put(t, "short", 1, now_ns() + 100000000LL); // exp in 100 ms
  put(t, "long", 1, now_ns() + 3600000000000LL);
  int past = put(t, "past", 1, now_ns() - 1);
  char b[256];
  size_t n = blob_of(1, b);
  uint64_t ep = tg_table_epoch(t);
  int truncated = tg_table_put(t, "bad", 3, b, n - 1, 2, 1, 1, 1, NULL, 0, now_ns() + 1000000000LL, ep);
  int trailing = tg_table_put(t, "bad", 3, b, n, 2, 1, 1, 0, NULL, 0, now_ns() + 1000000000LL, ep);
  int short_now = get_ok(t, "short", 5), prefix = get_ok(t, "shor", 4), longer = get_ok(t, "shortx", 6);
  usleep(120000);
  int short_later = get_ok(t, "short", 5), long_mid = get_ok(t, "long", 4);
  usleep(100000);
  int long_late = get_ok(t, "long", 4);
  printf("edges: past exp stored %d, truncated blob %d, trailing bytes %d; short at 0 ms %d (prefix %d, longer %d), "
         "at 120 ms %d; long (max TTL 200 ms) at 120 ms %d, at 220 ms %d\n",
         past, truncated, trailing, short_now, prefix, longer, short_later, long_mid, long_late);
  tg_table_free(t);
  return past || truncated || trailing || !short_now || prefix || longer || short_later || !long_mid || long_late ||
         cleared() || copied();
}

// cleared: a clear drops every entry, and a put decided before it (an
// older epoch) is refused.
static int cleared(void) {
  tg_table* t = tg_table_new(8, 0);
  uint64_t before = tg_table_epoch(t);
  put(t, "kept", 1, now_ns() + 3600000000000LL);
  tg_table_clear(t);
  char b[256];
  size_t n = blob_of(1, b);
  int stale = tg_table_put(t, "late", 4, b, n, 2, 1, 1, 1, NULL, 0, now_ns() + 3600000000000LL, before);
  int fresh = put(t, "new", 1, now_ns() + 3600000000000LL);
  int kept = get_ok(t, "kept", 4), late = get_ok(t, "late", 4), added = get_ok(t, "new", 3);
  tg_table_counts c = tg_table_stats(t);
  printf("clear: entry kept %d, stale put stored %d (found %d), put after stored %d (found %d), live %lld, bytes %lld\n",
         kept, stale, late, fresh, added, c.live, c.bytes);
  tg_table_free(t);
  return kept || stale || late || !fresh || !added || c.live != 1;
}

// put_key stores signed key key (kid: its id, NULL: none) with identity i.
static int put_key(tg_table* t, const char* key, const char* kid, int i, int64_t exp) {
  char b[256];
  size_t n = blob_of(i, b);
  return tg_table_put(t, key, strlen(key), b, n, 2, 1, 1, 1, kid, kid == NULL ? 0 : strlen(kid), exp,
                      tg_table_epoch(t));
}

// found reports whether key is served from t (1) with identity i, 0 when
// absent, -1 when served with another identity.
static int found(tg_table* t, const char* key, int i) {
  tg_shard* held;
  const tg_identity* id = tg_table_get(t, key, strlen(key), &held);
  if (id == NULL) {
    return 0;
  }
  int ok = right(id, i);
  tg_table_release(held);
  return ok ? 1 : -1;
}

// copied: a successor's copy keeps every token and exactly the signed keys
// whose id is kept (a key without an id never), drops expired entries,
// keeps each entry's deadline, and its identity is intact.
static int copied(void) {
  tg_table* src = tg_table_new(64, 0);
  int64_t hour = now_ns() + 3600000000000LL;
  put(src, "tok.a.b", 1, hour);
  put(src, "tok.soon.b", 2, now_ns() + 100000000LL); // 100 ms
  put_key(src, "tg.k1.p.s", "k1", 3, hour);          // kept
  put_key(src, "tg.k2.p.s", "k2", 4, hour);          // its id changed: dropped
  put_key(src, "tg.k3.p.s", NULL, 5, hour);          // no id: dropped
  put_key(src, "tg.k10.p.s", "k10", 6, hour);        // kept (ids of other lengths)
  size_t len = 0, n = 0;
  char* ids = tg_table_key_ids(src, &len, &n);
  char keep[64];
  size_t off = add(keep, 0, "k10");
  off = add(keep, off, "k1");
  off = add(keep, off, "k9");
  tg_table* dst = tg_table_new(64, 0);
  tg_table_copied c = tg_table_copy(dst, src, keep, off, 3);
  int tok = found(dst, "tok.a.b", 1), soon = found(dst, "tok.soon.b", 2), k1 = found(dst, "tg.k1.p.s", 3);
  int k2 = found(dst, "tg.k2.p.s", 4), k3 = found(dst, "tg.k3.p.s", 5), k10 = found(dst, "tg.k10.p.s", 6);
  tg_table* none = tg_table_new(64, 0);
  tg_table_copied cn = tg_table_copy(none, src, NULL, 0, 0);
  tg_table* bad = tg_table_new(64, 0);
  tg_table_copied cb = tg_table_copy(bad, src, keep, off - 1, 3); // truncated: keeps no key
  usleep(120000);
  int soon_later = found(dst, "tok.soon.b", 2); // its deadline came along
  printf("copy: ids listed %zu (%zu bytes); copied %lld dropped %lld; token %d, token soon %d then %d, key kept %d, "
         "key changed %d, key without id %d, key k10 %d; keep none: copied %lld dropped %lld; malformed keep: copied %lld "
         "dropped %lld\n",
         n, len, c.copied, c.dropped, tok, soon, soon_later, k1, k2, k3, k10, cn.copied, cn.dropped, cb.copied, cb.dropped);
  free(ids);
  tg_table_free(src);
  tg_table_free(dst);
  tg_table_free(none);
  tg_table_free(bad);
  return n != 3 || c.copied != 4 || c.dropped != 2 || tok != 1 || soon != 1 || soon_later != 0 || k1 != 1 ||
         k2 != 0 || k3 != 0 || k10 != 1 || cn.copied != 2 || cn.dropped != 4 || cb.copied != 2 || cb.dropped != 4;
}

// racing_src and racing_stop: copy_race's source table and its writers' stop flag.
static tg_table* racing_src;
static int racing_stop;

// racing_writer puts signed keys of kid "revoked" (its exception changed:
// never to be kept) and "kept" into racing_src until racing_stop, as the
// predecessor's workers do while a successor copies its table.
static void* racing_writer(void* arg) {
  unsigned seed = (unsigned)(size_t)arg;
  char key[64];
  while (!__atomic_load_n(&racing_stop, __ATOMIC_ACQUIRE)) {
    int i = rand_r(&seed) % TOKENS;
    snprintf(key, sizeof(key), "tg.%d.p.s", i);
    put_key(racing_src, key, i % 2 == 0 ? "revoked" : "kept", i, now_ns() + 3600000000000LL);
  }
  return NULL;
}

// copy_race: copies made while two threads keep adding entries to the
// source hold every kept key's entry they copied and never one of a kid
// left out of keep, whatever the entries added during the copy.
static int copy_race(void) {
  racing_src = tg_table_new(256, 0);
  char key[64];
  for (int i = 0; i < 256; i++) { // full from the start: each copy has both kids to sort out
    snprintf(key, sizeof(key), "tg.%d.p.s", i);
    put_key(racing_src, key, i % 2 == 0 ? "revoked" : "kept", i, now_ns() + 3600000000000LL);
  }
  pthread_t th[2];
  for (size_t t = 0; t < 2; t++) {
    pthread_create(&th[t], NULL, racing_writer, (void*)(t + 7));
  }
  char keep[16];
  size_t off = add(keep, 0, "kept");
  long long leaked = 0, copied = 0;
  int rounds = 0;
  for (int64_t end = now_ns() + 200000000LL; rounds < 200 || now_ns() < end; rounds++) { // 200 ms, the writers running
    tg_table* dst = tg_table_new(256, 0);
    copied += tg_table_copy(dst, racing_src, keep, off, 1).copied;
    size_t len = 0, n = 0;
    char* ids = tg_table_key_ids(dst, &len, &n);
    for (size_t at = 0; at + 4 <= len;) {
      uint32_t l;
      memcpy(&l, ids + at, 4);
      leaked += l != 4 || memcmp(ids + at + 4, "kept", 4) != 0;
      at += 4 + l;
    }
    free(ids);
    tg_table_free(dst);
  }
  __atomic_store_n(&racing_stop, 1, __ATOMIC_RELEASE);
  for (int t = 0; t < 2; t++) {
    pthread_join(th[t], NULL);
  }
  tg_table_free(racing_src);
  printf("copy race: %lld entries copied in %d copies, %lld of a kid not kept\n", copied, rounds, leaked);
  return leaked != 0 || copied == 0;
}

// copy_cost: a successor's copy of a full default-size table (10,000
// tokens and keys, less what full shards evicted; every second key kept),
// timed (reported, not checked: it runs on Envoy's main thread at each
// push).
static int copy_cost(void) {
  enum { N = 10000 };
  tg_table* src = tg_table_new(N, 0);
  int64_t hour = now_ns() + 3600000000000LL;
  char key[64], kid[32], keep[N / 2 * 40];
  size_t off = 0;
  for (int i = 0; i < N; i++) {
    if (i % 2 == 0) {
      snprintf(key, sizeof(key), "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.sig-%06d", i);
      put(src, key, i % TOKENS, hour);
      continue;
    }
    snprintf(key, sizeof(key), "tg.eyJhbGciOiJFZERTQSJ9.eyJqdGkiOiJrIn0.sig-%06d", i);
    snprintf(kid, sizeof(kid), "k%021d", i);
    put_key(src, key, kid, i % TOKENS, hour);
    if (i % 4 == 1) {
      off = add(keep, off, kid);
    }
  }
  tg_table* dst = tg_table_new(N, 0);
  int64_t start = now_ns();
  tg_table_copied c = tg_table_copy(dst, src, keep, off, N / 4);
  int64_t took = now_ns() - start;
  tg_table_counts n = tg_table_stats(src);
  printf("copy cost: %lld of %lld entries copied, %lld left behind, in %lld us\n", c.copied, n.live, c.dropped,
         (long long)(took / 1000));
  tg_table_free(src);
  tg_table_free(dst);
  return c.copied + c.dropped != n.live || c.dropped == 0 || c.copied == 0;
}

int main(void) {
  for (int i = 0; i < TOKENS; i++) {
    // Tokens share long prefixes and differ late, as JWTs of one issuer do.
    snprintf(toks[i], sizeof(toks[i]), "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwcyJ9.sig-%06d", i);
    snprintf(users[i], sizeof(users[i]), "corp:user-%d", i);
  }
  table = tg_table_new(64, 300000000000LL);
  pthread_t th[THREADS];
  for (size_t t = 0; t < THREADS; t++) {
    pthread_create(&th[t], NULL, worker, (void*)(t + 1));
  }
  for (int t = 0; t < THREADS; t++) {
    pthread_join(th[t], NULL);
  }
  tg_table_counts c = tg_table_stats(table);
  printf("concurrent: hits %lld, wrong %lld; live %lld (capacity %lld), inserts %lld, evictions %lld, replaced %lld, "
         "cleared %lld, bytes %lld\n",
         hits, wrong, c.live, c.capacity, c.inserts, c.evictions, c.replaced, c.cleared, c.bytes);
  int bad = wrong != 0 || hits == 0 || c.live > c.capacity || c.cleared == 0 ||
            c.inserts - c.evictions - c.replaced - c.cleared != c.live;
  bad |= edges();
  bad |= copy_cost();
  bad |= copy_race();
  tg_table_free(table);
  printf("%s\n", bad ? "FAIL" : "ok");
  return bad;
}
