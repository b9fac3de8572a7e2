// limit.c: the process-wide bucket table (limit.h).
#include "limit.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "table.h"

enum { SHARDS = 64 }; // a power of two

enum { KIND_NONE = -1 }; // no assignment yet (else TG_ASSIGN_*)

typedef struct tg_lbucket {
  struct tg_lbucket* chain; // next in the hash chain
  struct tg_lbucket* newer; // LRU order within the shard
  struct tg_lbucket* older;
  uint64_t hash;
  uint32_t id_len, consumer_len;
  uint64_t allowed, denied; // since the last drain
  int64_t emission[TG_LIMIT_MAX]; // the spec's T each TAT was kept for (0: slot never used)
  int64_t tat[TG_LIMIT_MAX];      // GCRA theoretical arrival times
  int kind;                       // KIND_NONE or TG_ASSIGN_*
  int64_t expires;                // 0: never
  double tokens, max_tokens, per_ns; // token bucket (kind TG_ASSIGN_TOKEN_BUCKET)
  uint64_t tokens_per_fill;
  int64_t fill_ns, refilled;
  char key[]; // id then consumer
} tg_lbucket;

typedef struct {
  pthread_mutex_t mu;
  tg_lbucket** chains;
  size_t mask;
  tg_lbucket* newest;
  tg_lbucket* oldest;
  size_t count, cap, key_bytes;
  long long created, evicted, abandoned;
} __attribute__((aligned(64))) tg_lshard;

struct tg_limits {
  uint64_t seed;
  tg_lshard shards[SHARDS];
};

int64_t tg_monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

tg_limits* tg_limits_new(size_t capacity) {
  tg_limits* t = calloc(1, sizeof(*t));
  if (t == NULL) {
    return NULL;
  }
  if (getrandom(&t->seed, sizeof(t->seed), 0) != sizeof(t->seed)) {
    t->seed = (uint64_t)tg_monotonic_ns();
  }
  size_t per = capacity / SHARDS + (capacity % SHARDS != 0);
  per = per == 0 ? 1 : per;
  size_t nb = 1;
  while (nb < per) {
    nb <<= 1;
  }
  for (int i = 0; i < SHARDS; i++) {
    tg_lshard* s = &t->shards[i];
    pthread_mutex_init(&s->mu, NULL);
    s->cap = per;
    s->mask = nb - 1;
    s->chains = calloc(nb, sizeof(tg_lbucket*));
    if (s->chains == NULL) {
      tg_limits_free(t);
      return NULL;
    }
  }
  return t;
}

void tg_limits_free(tg_limits* t) {
  if (t == NULL) {
    return;
  }
  for (int i = 0; i < SHARDS; i++) {
    tg_lshard* s = &t->shards[i];
    for (tg_lbucket* b = s->newest; b != NULL;) {
      tg_lbucket* next = b->older;
      free(b);
      b = next;
    }
    free(s->chains);
    pthread_mutex_destroy(&s->mu);
  }
  free(t);
}

// The process-wide table: a C global because it must outlive every filter
// configuration (Envoy builds a new one on every push) and serve all of
// Envoy's worker threads; created once, never freed.
static tg_limits* process_table;
static pthread_once_t process_once = PTHREAD_ONCE_INIT;

static void process_init(void) { process_table = tg_limits_new(TG_LIMITS_CAPACITY); }

tg_limits* tg_limits_process(void) {
  pthread_once(&process_once, process_init);
  return process_table;
}

// nn makes an empty buffer's pointer non-NULL (memcmp and memcpy need one).
static tg_buf nn(tg_buf b) { return b.ptr != NULL ? b : (tg_buf){"", 0}; }

static uint64_t key_hash(const tg_limits* t, tg_buf id, tg_buf consumer) {
  return tg_hash(tg_hash(t->seed, id.ptr, id.len), consumer.ptr, consumer.len);
}

static tg_lshard* shard_of(tg_limits* t, uint64_t h) { return &t->shards[h & (SHARDS - 1)]; }
static size_t chain_of(const tg_lshard* s, uint64_t h) { return (size_t)(h >> 8) & s->mask; }

static tg_lbucket* find(tg_lshard* s, uint64_t h, tg_buf id, tg_buf consumer) {
  for (tg_lbucket* b = s->chains[chain_of(s, h)]; b != NULL; b = b->chain) {
    if (b->hash == h && b->id_len == id.len && b->consumer_len == consumer.len &&
        memcmp(b->key, id.ptr, id.len) == 0 &&
        memcmp(b->key + id.len, consumer.ptr, consumer.len) == 0) {
      return b;
    }
  }
  return NULL;
}

// lru_unlink and lru_push_newest keep the shard's LRU list.
static void lru_unlink(tg_lshard* s, tg_lbucket* b) {
  if (b->newer != NULL) {
    b->newer->older = b->older;
  } else {
    s->newest = b->older;
  }
  if (b->older != NULL) {
    b->older->newer = b->newer;
  } else {
    s->oldest = b->newer;
  }
}

static void lru_push_newest(tg_lshard* s, tg_lbucket* b) {
  b->newer = NULL;
  b->older = s->newest;
  if (s->newest != NULL) {
    s->newest->newer = b;
  } else {
    s->oldest = b;
  }
  s->newest = b;
}

// drop unlinks b from its chain and the LRU list and frees it.
static void drop(tg_lshard* s, tg_lbucket* b) {
  tg_lbucket** pp = &s->chains[chain_of(s, b->hash)];
  while (*pp != b) {
    pp = &(*pp)->chain;
  }
  *pp = b->chain;
  lru_unlink(s, b);
  s->count--;
  s->key_bytes -= b->id_len + b->consumer_len;
  free(b);
}

static tg_lbucket* make_bucket(uint64_t h, tg_buf id, tg_buf consumer) {
  if (id.len > UINT32_MAX || consumer.len > UINT32_MAX) {
    return NULL;
  }
  tg_lbucket* b = calloc(1, sizeof(*b) + id.len + consumer.len);
  if (b == NULL) {
    return NULL;
  }
  b->hash = h;
  b->id_len = (uint32_t)id.len;
  b->consumer_len = (uint32_t)consumer.len;
  memcpy(b->key, id.ptr, id.len);
  memcpy(b->key + id.len, consumer.ptr, consumer.len);
  b->kind = KIND_NONE;
  return b;
}

// insert adds fresh (not in the table) to s, evicting the least recently
// used buckets of a full shard; returns whether it evicted one.
static int insert(tg_lshard* s, tg_lbucket* fresh) {
  int evicted = 0;
  while (s->count >= s->cap && s->oldest != NULL) {
    drop(s, s->oldest);
    s->evicted++;
    evicted = 1;
  }
  size_t c = chain_of(s, fresh->hash);
  fresh->chain = s->chains[c];
  s->chains[c] = fresh;
  lru_push_newest(s, fresh);
  s->count++;
  s->created++;
  s->key_bytes += fresh->id_len + fresh->consumer_len;
  return evicted;
}

// sync_limits makes b's GCRA slots follow spec at now. A slot whose
// emission interval changed (another policy: after a push, or the route
// table of a replaced listener whose connections drain beside its
// successor's, each charging the bucket in turn) keeps the requests its
// backlog stands for, counted at the new interval: two live policies
// charged in turn never hand the consumer a fresh burst at each switch
// (starting afresh did: every request admitted), and switching back and
// forth loses nothing. The price: a push that moves a slot to a limit of
// a smaller burst makes a consumer that used more of the old one wait
// for the excess at the new rate (at most (old burst - new burst) × T).
// A slot never used (emission 0) has no backlog.
static void sync_limits(tg_lbucket* b, const tg_bucket_spec* spec, int64_t now) {
  for (size_t i = 0; i < spec->nlimits; i++) {
    const tg_gcra* g = &spec->limits[i];
    if (b->emission[i] == g->emission_ns) {
      continue;
    }
    if (b->emission[i] > 0 && b->tat[i] > now) {
      // At most 2 × TG_LIMIT_MAX_NS (a tolerance and T of the limits
      // charged since): a TAT stays far inside int64 (limit.h).
      double requests = (double)(b->tat[i] - now) / (double)b->emission[i];
      double backlog = fmin(requests * (double)g->emission_ns, (double)(2 * TG_LIMIT_MAX_NS));
      b->tat[i] = now + (int64_t)backlog;
    }
    b->emission[i] = g->emission_ns;
  }
}

static int expired(const tg_lbucket* b, int64_t now) {
  return b->kind != KIND_NONE && b->expires != 0 && now >= b->expires;
}

static void refill(tg_lbucket* b, int64_t now) {
  if (now > b->refilled) {
    b->tokens = fmin(b->max_tokens, b->tokens + (double)(now - b->refilled) * b->per_ns);
    b->refilled = now;
  }
}

// admit decides one request at now and, when admitted, spends it: the
// assignment's term, then every limit, checked before anything is spent.
static int admit(tg_lbucket* b, const tg_bucket_spec* spec, int fail_closed, int64_t now) {
  int kind = b->kind;
  if (expired(b, now)) {
    if (fail_closed) {
      return 0;
    }
    kind = KIND_NONE;
  }
  if (kind == TG_ASSIGN_DENY_ALL) {
    return 0;
  }
  if (kind == TG_ASSIGN_TOKEN_BUCKET) {
    refill(b, now);
    if (b->tokens < 1) {
      return 0;
    }
  }
  int64_t tat[TG_LIMIT_MAX];
  for (size_t i = 0; i < spec->nlimits; i++) {
    tat[i] = b->tat[i] > now ? b->tat[i] : now;
    if (tat[i] - now > spec->limits[i].tolerance_ns) {
      return 0;
    }
  }
  for (size_t i = 0; i < spec->nlimits; i++) {
    b->tat[i] = tat[i] + spec->limits[i].emission_ns;
  }
  if (kind == TG_ASSIGN_TOKEN_BUCKET) {
    b->tokens -= 1;
  }
  return 1;
}

tg_rl_report tg_rl_report_of(tg_gcra g, uint64_t limit, int64_t tat, int64_t now) {
  // The limit as a token bucket of burst = tolerance/T + 1 tokens: it
  // holds (tolerance + T - (tat - now)) / T tokens at now.
  tg_rl_report r = {1, limit, 0, 0, NULL};
  int64_t d = tat - now; // ≥ T after an admission
  int64_t left = g.tolerance_ns + g.emission_ns - d;
  if (left > 0) {
    r.remaining = (uint64_t)(left / g.emission_ns);
  }
  if (limit > 0 && r.remaining > limit) {
    r.remaining = limit;
  }
  int64_t wait = d - g.tolerance_ns; // until a whole token is back
  if (r.remaining == 0 && wait > 0) {
    r.reset = (uint64_t)(wait / 1000000000LL) + (wait % 1000000000LL != 0);
  }
  return r;
}

// charge_locked charges b (locked) and counts the answer; an admitted
// request's report goes to *report (when not NULL).
static int charge_locked(tg_lshard* s, tg_lbucket* b, const tg_bucket_spec* spec,
                         int fail_closed, int64_t now, tg_rl_report* report) {
  if (s->newest != b) {
    lru_unlink(s, b);
    lru_push_newest(s, b);
  }
  sync_limits(b, spec, now);
  if (admit(b, spec, fail_closed, now)) {
    b->allowed++;
    if (report != NULL && spec->reported < spec->nlimits) {
      *report = tg_rl_report_of(spec->limits[spec->reported], spec->report_limit,
                                b->tat[spec->reported], now);
      report->ietf = spec->ietf;
    }
    return 0;
  }
  b->denied++;
  return TG_CHARGE_REFUSED;
}

int tg_limits_charge(tg_limits* t, const tg_bucket_spec* spec, tg_buf consumer,
                     int fail_closed, int64_t now) {
  return tg_limits_charge_report(t, spec, consumer, fail_closed, now, NULL);
}

int tg_limits_charge_report(tg_limits* t, const tg_bucket_spec* spec, tg_buf consumer,
                            int fail_closed, int64_t now, tg_rl_report* report) {
  if (report != NULL) {
    report->set = 0;
  }
  if (consumer.ptr == NULL || consumer.len == 0 || (spec->flags & TG_SPEC_DENY)) {
    return TG_CHARGE_REFUSED;
  }
  if (spec->flags & TG_SPEC_UNLIMITED) {
    return 0;
  }
  if (t == NULL) {
    return TG_CHARGE_REFUSED;
  }
  uint64_t h = key_hash(t, nn(spec->id), consumer);
  tg_lshard* s = shard_of(t, h);
  pthread_mutex_lock(&s->mu);
  tg_lbucket* b = find(s, h, nn(spec->id), consumer);
  if (b != NULL) {
    int res = charge_locked(s, b, spec, fail_closed, now, report);
    pthread_mutex_unlock(&s->mu);
    return res;
  }
  pthread_mutex_unlock(&s->mu);
  tg_lbucket* fresh = make_bucket(h, nn(spec->id), consumer); // outside the lock
  if (fresh == NULL) {
    return TG_CHARGE_REFUSED;
  }
  int created = 0;
  pthread_mutex_lock(&s->mu);
  b = find(s, h, nn(spec->id), consumer); // another worker may have built it meanwhile
  if (b == NULL) {
    created = TG_CHARGE_CREATED | (insert(s, fresh) ? TG_CHARGE_EVICTED : 0);
    b = fresh;
    fresh = NULL;
  }
  int res = charge_locked(s, b, spec, fail_closed, now, report);
  pthread_mutex_unlock(&s->mu);
  free(fresh);
  return res | created;
}

// assign_token_bucket replaces b's assignment (kind before the call) by a
// token bucket: full unless it replaces a live token bucket.
static void assign_token_bucket(tg_lbucket* b, int live_tb, uint64_t max_tokens,
                                uint64_t tokens_per_fill, int64_t fill_ns, int64_t now) {
  double max = (double)max_tokens;
  double tokens = max;
  if (live_tb) {
    refill(b, now);
    int same = b->max_tokens == max && b->tokens_per_fill == tokens_per_fill &&
               b->fill_ns == fill_ns;
    tokens = same ? b->tokens : (b->max_tokens > 0 ? b->tokens / b->max_tokens * max : max);
  }
  b->kind = TG_ASSIGN_TOKEN_BUCKET;
  b->tokens = fmin(tokens, max);
  b->max_tokens = max;
  b->tokens_per_fill = tokens_per_fill;
  b->fill_ns = fill_ns;
  b->per_ns = fill_ns > 0 ? (double)tokens_per_fill / (double)fill_ns : 0;
  b->refilled = now;
}

int tg_limits_assign(tg_limits* t, tg_buf id, tg_buf consumer, int kind, uint64_t max_tokens,
                     uint64_t tokens_per_fill, int64_t fill_ns, int64_t ttl_ns, int64_t now) {
  if (kind != TG_ASSIGN_ALLOW_ALL && kind != TG_ASSIGN_DENY_ALL &&
      kind != TG_ASSIGN_TOKEN_BUCKET) {
    return 0;
  }
  id = nn(id);
  consumer = nn(consumer);
  uint64_t h = key_hash(t, id, consumer);
  tg_lshard* s = shard_of(t, h);
  pthread_mutex_lock(&s->mu);
  tg_lbucket* b = find(s, h, id, consumer);
  if (b == NULL) {
    pthread_mutex_unlock(&s->mu);
    return 0;
  }
  int live_tb = b->kind == TG_ASSIGN_TOKEN_BUCKET && !expired(b, now);
  if (kind == TG_ASSIGN_TOKEN_BUCKET) {
    assign_token_bucket(b, live_tb, max_tokens, tokens_per_fill, fill_ns, now);
  } else {
    b->kind = kind;
  }
  // A ttl past the clock's range lives as long as the clock runs (now +
  // ttl would overflow into the past: expired at once).
  b->expires = ttl_ns <= 0 ? 0 : (ttl_ns > INT64_MAX - now ? INT64_MAX : now + ttl_ns);
  pthread_mutex_unlock(&s->mu);
  return 1;
}

int tg_limits_abandon(tg_limits* t, tg_buf id, tg_buf consumer) {
  id = nn(id);
  consumer = nn(consumer);
  uint64_t h = key_hash(t, id, consumer);
  tg_lshard* s = shard_of(t, h);
  pthread_mutex_lock(&s->mu);
  tg_lbucket* b = find(s, h, id, consumer);
  if (b != NULL) {
    drop(s, b);
    s->abandoned++;
  }
  pthread_mutex_unlock(&s->mu);
  return b != NULL;
}

static char* put_item(char* p, const char* s, uint32_t n) {
  for (int i = 0; i < 4; i++) {
    *p++ = (char)(n >> (8 * i));
  }
  memcpy(p, s, n);
  return p + n;
}

static char* put_u64(char* p, uint64_t v) {
  for (int i = 0; i < 8; i++) {
    *p++ = (char)(v >> (8 * i));
  }
  return p;
}

// drain_shard appends s's records to *buf (grown as needed) and resets
// their counts; 0 when memory is short (nothing appended nor reset).
static int drain_shard(tg_lshard* s, char** buf, size_t* len, size_t* n) {
  pthread_mutex_lock(&s->mu);
  size_t need = s->count * 24 + s->key_bytes;
  if (need == 0) {
    pthread_mutex_unlock(&s->mu);
    return 1;
  }
  char* grown = realloc(*buf, *len + need);
  if (grown == NULL) {
    pthread_mutex_unlock(&s->mu);
    return 0;
  }
  *buf = grown;
  char* p = grown + *len;
  for (tg_lbucket* b = s->newest; b != NULL; b = b->older) {
    p = put_item(p, b->key, b->id_len);
    p = put_item(p, b->key + b->id_len, b->consumer_len);
    p = put_u64(p, b->allowed);
    p = put_u64(p, b->denied);
    b->allowed = b->denied = 0;
  }
  *len += need;
  *n += s->count;
  pthread_mutex_unlock(&s->mu);
  return 1;
}

char* tg_limits_drain(tg_limits* t, size_t* len, size_t* n) {
  char* buf = NULL;
  *len = 0;
  *n = 0;
  for (int i = 0; i < SHARDS; i++) {
    if (!drain_shard(&t->shards[i], &buf, len, n)) {
      break;
    }
  }
  if (*n == 0) {
    free(buf);
    return NULL;
  }
  return buf;
}

tg_limits_counts tg_limits_stats(tg_limits* t) {
  tg_limits_counts c = {0};
  for (int i = 0; i < SHARDS; i++) {
    tg_lshard* s = &t->shards[i];
    pthread_mutex_lock(&s->mu);
    c.live += (long long)s->count;
    c.capacity += (long long)s->cap;
    c.created += s->created;
    c.evicted += s->evicted;
    c.abandoned += s->abandoned;
    pthread_mutex_unlock(&s->mu);
  }
  return c;
}
