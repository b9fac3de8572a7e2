// stress.c: a stand-alone check of ../module/ctable.c under ASan (leaks,
// use after free) and TSan (races): 4 threads put and get 1,000 tokens in
// a 64-entry table and check that every hit is its own token's identity;
// then expiry and max TTL. Not part of the module build (cgo compiles only
// ../module). Run:
//
//	cc -O1 -g -fsanitize=address -I../module stress.c ../module/ctable.c -o /tmp/dync-stress-asan -lpthread && /tmp/dync-stress-asan
//	cc -O1 -g -fsanitize=thread -I../module stress.c ../module/ctable.c -o /tmp/dync-stress-tsan -lpthread && /tmp/dync-stress-tsan
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctable.h"

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

static tg_identity ident(int i) {
  tg_identity id = {0};
  id.user_id = (tg_buf){users[i], strlen(users[i])};
  id.roles = (tg_buf){"r", 1};
  id.tier = (tg_buf){users[i], strlen(users[i])};
  return id;
}

static void* worker(void* arg) {
  unsigned seed = (unsigned)(size_t)arg;
  long long w = 0, h = 0;
  for (int r = 0; r < ROUNDS; r++) {
    int i = rand_r(&seed) % TOKENS;
    tg_shard* held;
    const tg_identity* id = tg_table_get(table, toks[i], strlen(toks[i]), &held);
    if (id == NULL) {
      tg_identity in = ident(i);
      tg_table_put(table, toks[i], strlen(toks[i]), &in, now_ns() + 3600000000000LL);
      continue;
    }
    h++;
    if (id->user_id.len != strlen(users[i]) || memcmp(id->user_id.ptr, users[i], id->user_id.len) != 0 ||
        id->tier.len != id->user_id.len || id->tenant.ptr != NULL) {
      w++;
    }
    tg_table_release(held);
  }
  pthread_mutex_lock(&mu);
  wrong += w;
  hits += h;
  pthread_mutex_unlock(&mu);
  return NULL;
}

int main(void) {
  for (int i = 0; i < TOKENS; i++) {
    // Tokens share long prefixes and differ late, as JWTs of one issuer do.
    snprintf(toks[i], sizeof(toks[i]), "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwcyJ9.sig-%06d", i);
    snprintf(users[i], sizeof(users[i]), "idp:user-%d", i);
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
  printf("concurrent: hits %lld, wrong %lld; live %lld (capacity %lld), inserts %lld, evictions %lld, replaced %lld, bytes %lld\n",
         hits, wrong, c.live, c.capacity, c.inserts, c.evictions, c.replaced, c.bytes);
  int bad = wrong != 0 || c.live > c.capacity || c.inserts - c.evictions - c.replaced != c.live;

  // Expiry: an entry is served until its exp, then is a miss; one whose
  // exp has passed is not stored; max TTL caps a long exp.
  tg_table* t2 = tg_table_new(8, 200000000LL); // max TTL 200 ms
  tg_identity in = ident(1);
  tg_shard* held;
  tg_table_put(t2, "short", 5, &in, now_ns() + 100000000LL); // exp in 100 ms
  tg_table_put(t2, "long", 4, &in, now_ns() + 3600000000000LL);
  int stored_past = tg_table_put(t2, "past", 4, &in, now_ns() - 1);
  int short_now = tg_table_get(t2, "short", 5, &held) != NULL;
  if (short_now) tg_table_release(held);
  int prefix = tg_table_get(t2, "shor", 4, &held) != NULL;
  if (prefix) tg_table_release(held);
  usleep(120000);
  int short_later = tg_table_get(t2, "short", 5, &held) != NULL;
  if (short_later) tg_table_release(held);
  int long_mid = tg_table_get(t2, "long", 4, &held) != NULL;
  if (long_mid) tg_table_release(held);
  usleep(100000);
  int long_late = tg_table_get(t2, "long", 4, &held) != NULL;
  if (long_late) tg_table_release(held);
  printf("expiry: past exp stored %d; short at 0 ms %d, its prefix %d, at 120 ms %d; long (max TTL 200 ms) at 120 ms %d, at 220 ms %d\n",
         stored_past, short_now, prefix, short_later, long_mid, long_late);
  bad |= stored_past || !short_now || prefix || short_later || !long_mid || long_late;
  tg_table_free(t2);
  tg_table_free(table);
  printf("%s\n", bad ? "FAIL" : "ok");
  return bad;
}
