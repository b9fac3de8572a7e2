// limits.c: unit tests of ../limit.c and ../limitspec.c under ASan/UBSan
// (make module-test): GCRA bursts and refill, limits that do not drain
// each other, assignments (kinds, rescale, expiry open and closed), two
// policies of one bucket charged in turn, drain
// and abandon, route specs, the eviction bound, and threads charging one
// bucket against the real clock (admitted ≤ burst + refill). Or:
//
//	cc -O1 -g -fsanitize=address,undefined -I.. limits.c ../limit.c ../limitspec.c ../table.c
//	   ../blob.c -o /tmp/tg-limits -lpthread -lm && /tmp/tg-limits
#define _DEFAULT_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limit.h"

static int failures;

#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      failures++;                                                                                  \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                              \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fprintf(stderr, "\n");                                                                       \
    }                                                                                              \
  } while (0)

#define MS 1000000LL
#define SEC 1000000000LL
static const int64_t T0 = 1000LL * SEC; // any start: the table only compares times

static tg_buf str(const char* s) { return (tg_buf){s, strlen(s)}; }

// spec_of is a limited spec of id with n limits of (requests, per, burst).
static tg_bucket_spec spec_of(const char* id, size_t n, const int64_t (*l)[3]) {
  tg_bucket_spec s = {0};
  s.id = str(id);
  s.nlimits = n;
  for (size_t i = 0; i < n; i++) {
    int64_t T = (l[i][1] + l[i][0] - 1) / l[i][0];
    int64_t burst = l[i][2] > l[i][0] ? l[i][2] : l[i][0];
    s.limits[i] = (tg_gcra){T, (burst - 1) * T};
  }
  return s;
}

// burst charges n requests at now and returns how many were admitted.
static int burst(tg_limits* t, const tg_bucket_spec* s, const char* consumer, int n, int closed,
                 int64_t now) {
  int ok = 0;
  for (int i = 0; i < n; i++) {
    ok += !(tg_limits_charge(t, s, str(consumer), closed, now) & TG_CHARGE_REFUSED);
  }
  return ok;
}

static void test_gcra(void) {
  tg_limits* t = tg_limits_new(1000);
  const int64_t l[][3] = {{10, SEC, 0}}; // 10/s, burst 10
  tg_bucket_spec s = spec_of("b", 1, l);
  int r = tg_limits_charge(t, &s, str("alice"), 0, T0);
  CHECK(r == TG_CHARGE_CREATED, "first charge %d", r);
  CHECK(burst(t, &s, "alice", 19, 0, T0) == 9, "burst of 10 at once");
  CHECK(burst(t, &s, "alice", 5, 0, T0 + 99 * MS) == 0, "nothing before one emission interval");
  CHECK(burst(t, &s, "alice", 5, 0, T0 + 100 * MS) == 1, "one per 100 ms");
  CHECK(burst(t, &s, "alice", 50, 0, T0 + 10 * SEC) == 10, "a full burst after idling, not more");
  CHECK(burst(t, &s, "bob", 20, 0, T0) == 10, "another consumer has its own bucket");
  // Burst above requests: 2/s, burst 5.
  const int64_t lb[][3] = {{2, SEC, 5}};
  tg_bucket_spec sb = spec_of("burst", 1, lb);
  CHECK(burst(t, &sb, "alice", 20, 0, T0) == 5, "burst 5");
  CHECK(burst(t, &sb, "alice", 20, 0, T0 + SEC) == 2, "then 2 a second");
  tg_limits_free(t);
}

static void test_limits_do_not_drain_each_other(void) {
  tg_limits* t = tg_limits_new(1000);
  const int64_t l[][3] = {{2, SEC, 0}, {4, 60LL * SEC, 0}, {5, 3600LL * SEC, 0}};
  tg_bucket_spec s = spec_of("w", 3, l);
  CHECK(burst(t, &s, "c", 10, 0, T0) == 2, "2/s binds first");
  CHECK(burst(t, &s, "c", 10, 0, T0 + 1100 * MS) == 2, "the refused 8 spent no minute token");
  CHECK(burst(t, &s, "c", 10, 0, T0 + 2200 * MS) == 0, "4/minute spent");
  CHECK(burst(t, &s, "c", 10, 0, T0 + 61 * SEC) == 1, "hour: 5 in all");
  tg_limits_free(t);
}

static void assign(tg_limits* t, const char* id, const char* consumer, int kind, uint64_t max,
                   uint64_t tpf, int64_t fill, int64_t ttl, int64_t now) {
  int ok = tg_limits_assign(t, str(id), str(consumer), kind, max, tpf, fill, ttl, now);
  CHECK(ok == 1, "assign %s/%s kind %d", id, consumer, kind);
}

static void test_assignments(void) {
  tg_limits* t = tg_limits_new(1000);
  const int64_t l[][3] = {{1000, SEC, 0}};
  tg_bucket_spec s = spec_of("a", 1, l);
  CHECK(tg_limits_assign(t, str("a"), str("c"), TG_ASSIGN_DENY_ALL, 0, 0, 0, 0, T0) == 0,
        "no bucket yet");
  CHECK(burst(t, &s, "c", 1, 0, T0) == 1, "no assignment: local limits");
  assign(t, "a", "c", TG_ASSIGN_DENY_ALL, 0, 0, 0, 0, T0);
  CHECK(burst(t, &s, "c", 5, 0, T0 + 1) == 0, "deny-all");
  assign(t, "a", "c", TG_ASSIGN_ALLOW_ALL, 0, 0, 0, 0, T0);
  CHECK(burst(t, &s, "c", 5, 0, T0 + 2) == 5, "allow-all");
  // A token bucket replacing a blanket rule starts full: 3 tokens, 1/s.
  assign(t, "a", "c", TG_ASSIGN_TOKEN_BUCKET, 3, 1, SEC, 0, T0 + 3);
  CHECK(burst(t, &s, "c", 10, 0, T0 + 3) == 3, "token bucket: max tokens");
  CHECK(burst(t, &s, "c", 10, 0, T0 + 3 + SEC) == 1, "refilled at tokens_per_fill per fill");
  CHECK(tg_limits_assign(t, str("a"), str("c"), 7, 0, 0, 0, 0, T0) == 0, "unknown kind");
  // A request the token bucket refuses spends no local limit.
  const int64_t tight[][3] = {{2, 60LL * SEC, 0}};
  tg_bucket_spec st = spec_of("t", 1, tight);
  CHECK(burst(t, &st, "c", 1, 0, T0) == 1, "built");
  assign(t, "t", "c", TG_ASSIGN_TOKEN_BUCKET, 0, 1, 3600LL * SEC, 0, T0);
  CHECK(burst(t, &st, "c", 5, 0, T0) == 0, "empty token bucket refuses");
  assign(t, "t", "c", TG_ASSIGN_ALLOW_ALL, 0, 0, 0, 0, T0);
  CHECK(burst(t, &st, "c", 5, 0, T0) == 1, "the refused requests left the local limit's token");
  tg_limits_free(t);
}

static void test_rescale(void) {
  tg_limits* t = tg_limits_new(1000);
  const int64_t l[][3] = {{1000000, SEC, 0}};
  tg_bucket_spec s = spec_of("r", 1, l);
  burst(t, &s, "c", 1, 0, T0);
  assign(t, "r", "c", TG_ASSIGN_TOKEN_BUCKET, 10, 1, 3600LL * SEC, 0, T0);
  CHECK(burst(t, &s, "c", 5, 0, T0) == 5, "5 of 10");
  assign(t, "r", "c", TG_ASSIGN_TOKEN_BUCKET, 10, 1, 3600LL * SEC, 0, T0);
  CHECK(burst(t, &s, "c", 1, 0, T0) == 1, "the same bucket keeps its tokens: 4 left");
  assign(t, "r", "c", TG_ASSIGN_TOKEN_BUCKET, 20, 1, 3600LL * SEC, 0, T0);
  CHECK(burst(t, &s, "c", 20, 0, T0) == 8, "rescaled at the fill ratio 4/10 of 20");
  assign(t, "r", "c", TG_ASSIGN_ALLOW_ALL, 0, 0, 0, 0, T0);
  assign(t, "r", "c", TG_ASSIGN_TOKEN_BUCKET, 6, 1, 3600LL * SEC, 0, T0);
  CHECK(burst(t, &s, "c", 20, 0, T0) == 6, "after a blanket rule: full");
  assign(t, "r", "c", TG_ASSIGN_TOKEN_BUCKET, 4, 1, 3600LL * SEC, SEC, T0);
  CHECK(burst(t, &s, "c", 20, 0, T0) == 0, "rescaled from empty: empty");
  assign(t, "r", "c", TG_ASSIGN_TOKEN_BUCKET, 4, 1, 3600LL * SEC, SEC, T0 + 2 * SEC);
  CHECK(burst(t, &s, "c", 20, 0, T0 + 2 * SEC) == 4, "replacing an expired bucket: full");
  tg_limits_free(t);
}

// test_two_policies: two live specs of one bucket with other limits (the
// route tables of a listener a push replaced, whose connections drain,
// and of its successor) charged in turn never hand the consumer a fresh
// burst at each switch: a slot whose emission interval changed keeps the
// requests its backlog stands for, at the new interval. Before, it
// started afresh: alternating 3/day and 4/day admitted every request.
static void test_two_policies(void) {
  tg_limits* t = tg_limits_new(1000);
  const int64_t day = 86400LL * SEC;
  const int64_t la[][3] = {{3, day, 0}}, lb[][3] = {{4, day, 0}};
  tg_bucket_spec a = spec_of("p", 1, la), b = spec_of("p", 1, lb);
  int ok = 0;
  for (int i = 0; i < 100; i++) {
    ok += burst(t, i % 2 ? &b : &a, "c", 1, 0, T0 + i * MS);
  }
  CHECK(ok <= 4, "alternating 3/day and 4/day admitted %d of 100, want at most 4", ok);
  CHECK(burst(t, &b, "c", 10, 0, T0 + day / 4 + SEC) == 1, "4/day: one more after 6 h");
  // Another number of limits: [minute, day] and [day] in turn.
  const int64_t lc[][3] = {{10, 60LL * SEC, 0}, {5, day, 0}}, ld[][3] = {{5, day, 0}};
  tg_bucket_spec c = spec_of("q", 2, lc), d = spec_of("q", 1, ld);
  ok = 0;
  for (int i = 0; i < 100; i++) {
    ok += burst(t, i % 2 ? &d : &c, "c", 1, 0, T0 + i * MS);
  }
  CHECK(ok <= 10, "alternating [10/minute, 5/day] and [5/day] admitted %d of 100, want at most 10", ok);
  // The requests used carry over to another limit, never the backlog of
  // a long window on a short one: 3 of 3/day used, then 10/s has 7 left.
  const int64_t le[][3] = {{10, SEC, 0}};
  tg_bucket_spec f = spec_of("r3", 1, la), g = spec_of("r3", 1, le);
  CHECK(burst(t, &f, "x", 5, 0, T0) == 3, "3/day");
  CHECK(burst(t, &g, "x", 20, 0, T0) == 7, "then 10/s at once: the 3 used carry over");
  CHECK(burst(t, &g, "x", 20, 0, T0 + SEC + 1) == 10, "and a full burst a second later");
  // Extreme limits (1 ns and 2^60 ns emission intervals) keep the TAT in
  // range (UBSan: no overflow).
  const int64_t lx[][3] = {{1000000000, SEC, 0}}, ly[][3] = {{1, TG_LIMIT_MAX_NS, 0}};
  tg_bucket_spec x = spec_of("x", 1, lx), y = spec_of("x", 1, ly);
  CHECK(burst(t, &x, "x", 1000, 0, T0) == 1000, "1e9/s");
  CHECK(burst(t, &y, "x", 2, 0, T0) == 0, "then 1 per 2^60 ns: the backlog is far beyond");
  tg_limits_free(t);
}

static void test_expiry(void) {
  tg_limits* t = tg_limits_new(1000);
  const int64_t l[][3] = {{3, 60LL * SEC, 0}};
  tg_bucket_spec s = spec_of("e", 1, l);
  burst(t, &s, "open", 1, 0, T0);
  burst(t, &s, "closed", 1, 1, T0);
  assign(t, "e", "open", TG_ASSIGN_DENY_ALL, 0, 0, 0, SEC, T0);
  assign(t, "e", "closed", TG_ASSIGN_ALLOW_ALL, 0, 0, 0, SEC, T0);
  CHECK(burst(t, &s, "open", 5, 0, T0 + SEC - 1) == 0, "deny-all until its ttl");
  CHECK(burst(t, &s, "closed", 1, 1, T0 + SEC - 1) == 1, "allow-all until its ttl");
  CHECK(burst(t, &s, "open", 5, 0, T0 + SEC) == 2, "expired, open: the local limit alone");
  CHECK(burst(t, &s, "closed", 5, 1, T0 + SEC) == 0, "expired, closed: refused");
  assign(t, "e", "closed", TG_ASSIGN_ALLOW_ALL, 0, 0, 0, 0, T0 + 2 * SEC);
  CHECK(burst(t, &s, "closed", 1, 1, T0 + 1000LL * SEC) == 1, "ttl 0 never expires");
  tg_limits_free(t);
}

// test_huge_ttl: a time to live past the clock's range (a quota server's
// 300 years: Go's Duration saturates at INT64_MAX) lives as long as the
// clock runs, instead of overflowing into "expired" (closed: every
// request refused) or UB.
static void test_huge_ttl(void) {
  tg_limits* t = tg_limits_new(1000);
  const int64_t l[][3] = {{3, 60LL * SEC, 0}};
  tg_bucket_spec s = spec_of("h", 1, l);
  burst(t, &s, "c", 1, 1, T0);
  assign(t, "h", "c", TG_ASSIGN_ALLOW_ALL, 0, 0, 0, INT64_MAX, T0);
  CHECK(burst(t, &s, "c", 1, 1, T0 + SEC) == 1, "a huge ttl is not expired");
  assign(t, "h", "c", TG_ASSIGN_ALLOW_ALL, 0, 0, 0, INT64_MAX - T0 + 1, T0);
  CHECK(burst(t, &s, "c", 1, 1, T0 + SEC) == 1, "a ttl one past the clock's range is not expired");
  tg_limits_free(t);
}

// drained finds (id, consumer) in a drain blob.
static int drained(const char* p, size_t len, size_t n, const char* id, const char* consumer,
                   uint64_t* allowed, uint64_t* denied) {
  size_t off = 0;
  for (size_t i = 0; i < n && off < len; i++) {
    uint32_t il, cl;
    memcpy(&il, p + off, 4);
    const char* ip = p + off + 4;
    off += 4 + il;
    memcpy(&cl, p + off, 4);
    const char* cp = p + off + 4;
    off += 4 + cl;
    if (il == strlen(id) && cl == strlen(consumer) && memcmp(ip, id, il) == 0 &&
        memcmp(cp, consumer, cl) == 0) {
      memcpy(allowed, p + off, 8);
      memcpy(denied, p + off + 8, 8);
      return 1;
    }
    off += 16;
  }
  return 0;
}

static void test_drain_abandon(void) {
  tg_limits* t = tg_limits_new(1000);
  size_t len, n;
  CHECK(tg_limits_drain(t, &len, &n) == NULL && n == 0, "empty");
  const int64_t l[][3] = {{3, 60LL * SEC, 0}};
  tg_bucket_spec s = spec_of("d", 1, l);
  burst(t, &s, "alice", 5, 0, T0);
  burst(t, &s, "bob", 1, 0, T0);
  char* p = tg_limits_drain(t, &len, &n);
  uint64_t a = 0, d = 0;
  CHECK(n == 2 && len == 2 * 24 + 2 + 8, "two records, %zu bytes", len);
  CHECK(drained(p, len, n, "d", "alice", &a, &d) && a == 3 && d == 2, "alice %llu/%llu",
        (unsigned long long)a, (unsigned long long)d);
  free(p);
  p = tg_limits_drain(t, &len, &n);
  CHECK(n == 2 && drained(p, len, n, "d", "bob", &a, &d) && a == 0 && d == 0, "reset, idle kept");
  free(p);
  CHECK(tg_limits_abandon(t, str("d"), str("alice")) == 1, "abandon");
  CHECK(tg_limits_abandon(t, str("d"), str("alice")) == 0, "gone");
  CHECK(tg_limits_charge(t, &s, str("alice"), 0, T0) == TG_CHARGE_CREATED,
        "built anew, with a fresh burst");
  tg_limits_counts c = tg_limits_stats(t);
  CHECK(c.live == 2 && c.created == 3 && c.abandoned == 1, "stats %lld %lld %lld", c.live,
        c.created, c.abandoned);
  tg_limits_free(t);
}

static void test_specs(void) {
  tg_limits* t = tg_limits_new(1000);
  tg_route_limits* rl = tg_route_limits_new(2);
  int64_t lim[] = {100 * MS, 900 * MS};
  char hb[64];
  uint32_t n4 = 11, v2 = 1;
  memcpy(hb, &n4, 4);
  memcpy(hb + 4, "retry-after", 11);
  memcpy(hb + 15, &v2, 4);
  memcpy(hb + 19, "1", 1);
  tg_buf none = {0};
  CHECK(tg_route_limits_set(rl, 0, str("gold"), str("g"), 0, lim, 1, str("{}"), hb, 20, 1),
        "gold");
  CHECK(tg_route_limits_set(rl, 1, str("free"), str("f"), TG_SPEC_UNLIMITED, NULL, 0, none, hb, 0,
                            0), "free");
  CHECK(tg_route_limits_set(rl, 2, none, str("def"), 0, lim, 1, str("{}"), hb, 20, 1), "default");
  CHECK(tg_route_limits_set(rl, 3, none, none, TG_SPEC_DENY, NULL, 0, str("no"), hb, 0, 0),
        "unidentified");
  CHECK(!tg_route_limits_set(rl, 4, none, none, 0, NULL, 0, none, hb, 0, 0), "index");
  CHECK(!tg_route_limits_set(rl, 0, none, none, 0, lim, 1, none, hb, 19, 1), "short blob");
  CHECK(!tg_route_limits_set(rl, 0, none, none, 0, lim, 1, none, hb, 20, 0), "trailing bytes");
  int64_t bad[] = {0, 0};
  CHECK(!tg_route_limits_set(rl, 0, none, none, 0, bad, 1, none, hb, 0, 0), "zero emission");
  // Beyond 2^60 ns (36 years) a TAT could overflow into the past and admit
  // everything: such a spec is refused.
  tg_route_limits* rl2 = tg_route_limits_new(0);
  int64_t far[][2] = {{INT64_MAX, 0}, {SEC, INT64_MAX}, {TG_LIMIT_MAX_NS + 1, 0}};
  for (int i = 0; i < 3; i++) {
    CHECK(!tg_route_limits_set(rl2, 0, none, str("x"), 0, far[i], 1, none, hb, 0, 0),
          "limit %d past the clock's range", i);
  }
  int64_t edge[] = {TG_LIMIT_MAX_NS, TG_LIMIT_MAX_NS};
  CHECK(tg_route_limits_set(rl2, 0, none, str("x"), 0, edge, 1, none, hb, 0, 0), "edge limit");
  tg_limits* t2 = tg_limits_new(10);
  CHECK(burst(t2, &rl2->specs[0], "edge", 3, 0, INT64_MAX / 4) == 2, "edge burst of 2");
  CHECK(burst(t2, &rl2->specs[0], "edge", 1, 0, INT64_MAX / 4 + SEC) == 0, "edge limit holds");
  tg_limits_free(t2);
  tg_route_limits_free(rl2);
  const tg_bucket_spec* gold = tg_route_limits_pick(rl, str("c"), str("gold"));
  CHECK(gold == &rl->specs[0] && gold->nheaders == 1 && gold->headers[0].value_len == 1, "gold");
  CHECK(tg_route_limits_pick(rl, str("c"), str("silver")) == &rl->specs[2], "default");
  CHECK(tg_route_limits_pick(rl, str("c"), none) == &rl->specs[2], "no tier: default");
  const tg_bucket_spec* un = tg_route_limits_pick(rl, none, str("gold"));
  CHECK(un == &rl->specs[3], "no consumer: unidentified");
  CHECK(tg_limits_charge(t, un, none, 0, T0) == TG_CHARGE_REFUSED, "unidentified refused");
  const tg_bucket_spec* free_ = tg_route_limits_pick(rl, str("c"), str("free"));
  CHECK(burst(t, free_, "c", 100, 0, T0) == 100, "unlimited");
  CHECK(burst(t, gold, "c", 100, 0, T0) == 10, "gold 10/s");
  tg_limits_counts c = tg_limits_stats(t);
  CHECK(c.live == 1, "only the limited bucket is tabled: %lld", c.live);
  tg_route_limits_free(rl);
  tg_limits_free(t);
}

static void test_eviction(void) {
  tg_limits* t = tg_limits_new(128);
  const int64_t l[][3] = {{1, 3600LL * SEC, 0}};
  tg_bucket_spec s = spec_of("ev", 1, l);
  char name[32];
  long long created = 0, evicted = 0; // as the charges' bits tell them (the module's counters)
  for (int i = 0; i < 10000; i++) {
    snprintf(name, sizeof(name), "consumer-%d", i);
    int r = tg_limits_charge(t, &s, str(name), 0, T0);
    CHECK(!(r & TG_CHARGE_REFUSED) && (r & TG_CHARGE_CREATED), "%s: %d", name, r);
    created += (r & TG_CHARGE_CREATED) != 0;
    evicted += (r & TG_CHARGE_EVICTED) != 0;
    CHECK(burst(t, &s, name, 1, 0, T0) == 0, "%s: its burst of 1 spent", name);
  }
  tg_limits_counts c = tg_limits_stats(t);
  CHECK(created == c.created && evicted == c.evicted && evicted > 0,
        "bits: created %lld evicted %lld; table: created %lld evicted %lld", created, evicted,
        c.created, c.evicted);
  CHECK(c.live <= c.capacity && c.capacity >= 128 && c.capacity < 256, "bound %lld of %lld",
        c.live, c.capacity);
  CHECK(c.created - c.evicted == c.live, "created %lld evicted %lld live %lld", c.created,
        c.evicted, c.live);
  CHECK(burst(t, &s, "consumer-0", 1, 0, T0) == 1, "evicted: a fresh local burst");
  tg_limits_free(t);
}

// Threads charging one bucket (and their own) against the real clock.
enum { THREADS = 4, RATE = 1000, BURST = 50 }; // 50 per 50 ms: burst 50, 1,000/s
typedef struct {
  tg_limits* t;
  const tg_bucket_spec* s;
  int64_t until;
  long admitted;
  int idx;
} worker;

static void* work(void* arg) {
  worker* w = arg;
  char own[16];
  snprintf(own, sizeof(own), "own-%d", w->idx);
  while (tg_monotonic_ns() < w->until) {
    for (int i = 0; i < 100; i++) {
      w->admitted += !(tg_limits_charge(w->t, w->s, str("shared"), 0, tg_monotonic_ns()) &
                       TG_CHARGE_REFUSED);
      tg_limits_charge(w->t, w->s, str(own), 0, tg_monotonic_ns());
    }
    if (w->idx == 0) { // the RLQS client's calls meanwhile
      size_t len, n;
      free(tg_limits_drain(w->t, &len, &n));
      tg_limits_assign(w->t, w->s->id, str(own), TG_ASSIGN_ALLOW_ALL, 0, 0, 0, SEC, tg_monotonic_ns());
    }
  }
  return NULL;
}

static void test_threads(void) {
  tg_limits* t = tg_limits_new(1000); // no eviction of "shared"
  const int64_t l[][3] = {{BURST, BURST * SEC / RATE, 0}};
  tg_bucket_spec s = spec_of("mt", 1, l);
  int64_t start = tg_monotonic_ns();
  worker w[THREADS];
  pthread_t th[THREADS];
  for (int i = 0; i < THREADS; i++) {
    w[i] = (worker){t, &s, start + 300 * MS, 0, i};
    pthread_create(&th[i], NULL, work, &w[i]);
  }
  long total = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(th[i], NULL);
    total += w[i].admitted;
  }
  double secs = (double)(tg_monotonic_ns() - start) / SEC;
  long bound = BURST + (long)(RATE * secs) + 1;
  CHECK(total <= bound, "admitted %ld > burst + refill %ld", total, bound);
  CHECK(total >= BURST, "admitted %ld < burst", total);
  printf("threads: %ld admitted in %.3f s, bound %ld\n", total, secs, bound);
  tg_limits_free(t);
}

// test_report: the X-RateLimit-* an admitted request reports, with Envoy
// 1.40's local_ratelimit meaning (checked against the pinned binary: a
// 5-token bucket refilled 1 per 12 s answers remaining 4,3,2,1,0 with
// reset 0,0,0,0,12 to five requests at once, and 0/11 to one 13 s later).
static void test_report(void) {
  const tg_gcra g = {12 * SEC, 48 * SEC}; // 5/minute
  const struct {
    int64_t d; // tat - now after the admission
    uint64_t remaining, reset;
  } cases[] = {
      {12 * SEC, 4, 0},    {24 * SEC, 3, 0}, {48 * SEC, 1, 0},
      {60 * SEC, 0, 12},   {60 * SEC - 1, 0, 12}, {57 * SEC, 0, 9},
      {49 * SEC, 0, 1},    {48 * SEC + 1, 0, 1}, {59 * SEC, 0, 11},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    tg_rl_report r = tg_rl_report_of(g, 5, T0 + cases[i].d, T0);
    CHECK(r.set && r.limit == 5 && r.remaining == cases[i].remaining && r.reset == cases[i].reset,
          "d %lld: %llu/%llu/%llu, want 5/%llu/%llu", (long long)cases[i].d,
          (unsigned long long)r.limit, (unsigned long long)r.remaining,
          (unsigned long long)r.reset, (unsigned long long)cases[i].remaining,
          (unsigned long long)cases[i].reset);
  }
  tg_rl_report big = tg_rl_report_of((tg_gcra){SEC, 9 * SEC}, 3, T0 + SEC, T0);
  CHECK(big.remaining == 3, "remaining capped at the limit: %llu", (unsigned long long)big.remaining);

  tg_limits* t = tg_limits_new(1000);
  const int64_t l[][3] = {{10, SEC, 0}, {5, 60 * SEC, 0}}; // 10/s and 5/minute
  tg_bucket_spec s = spec_of("rep", 2, l);
  s.reported = 1;
  s.report_limit = 5;
  const uint64_t want[][2] = {{4, 0}, {3, 0}, {2, 0}, {1, 0}, {0, 12}};
  for (int i = 0; i < 5; i++) {
    tg_rl_report r = {0};
    int res = tg_limits_charge_report(t, &s, str("alice"), 0, T0 + i * 100 * MS, &r);
    CHECK(!(res & TG_CHARGE_REFUSED) && r.set && r.limit == 5 && r.remaining == want[i][0] &&
              r.reset == want[i][1],
          "request %d: %d %llu/%llu/%llu", i + 1, res, (unsigned long long)r.limit,
          (unsigned long long)r.remaining, (unsigned long long)r.reset);
  }
  tg_rl_report r = {1, 0, 0, 0, NULL};
  CHECK(tg_limits_charge_report(t, &s, str("alice"), 0, T0 + 3 * SEC, &r) & TG_CHARGE_REFUSED,
        "sixth refused");
  CHECK(!r.set, "a refusal reports nothing");
  CHECK(!(tg_limits_charge_report(t, &s, str("alice"), 0, T0 + 13 * SEC, &r) & TG_CHARGE_REFUSED) &&
            r.set && r.remaining == 0 && r.reset == 11,
        "13 s later: %llu/%llu", (unsigned long long)r.remaining, (unsigned long long)r.reset);
  tg_bucket_spec un = {.flags = TG_SPEC_UNLIMITED};
  r.set = 1;
  CHECK(tg_limits_charge_report(t, &un, str("alice"), 0, T0, &r) == 0 && !r.set,
        "unlimited: admitted, nothing reported");
  tg_bucket_spec none = {.id = {"n", 1}}; // an RLQS-only bucket: no local limit
  r.set = 1;
  CHECK(tg_limits_charge_report(t, &none, str("alice"), 0, T0, &r) == TG_CHARGE_CREATED && !r.set,
        "no local limit: nothing reported");
  tg_limits_free(t);

  tg_route_limits* rl = tg_route_limits_new(0);
  const int64_t lim[] = {12 * SEC, 48 * SEC, SEC, 0};
  CHECK(tg_route_limits_set(rl, 0, str(""), str("d"), 0, lim, 2, str(""), "", 0, 0), "set");
  CHECK(rl->specs[0].reported == 0 && rl->specs[0].report_limit == 5, "first limit by default: %llu",
        (unsigned long long)rl->specs[0].report_limit);
  CHECK(tg_route_limits_report(rl, 0, 1, 1) && rl->specs[0].reported == 1 &&
            rl->specs[0].report_limit == 1,
        "report the second");
  CHECK(!tg_route_limits_report(rl, 0, 2, 1), "beyond the limits");
  CHECK(!tg_route_limits_report(rl, 2, 0, 1), "beyond the specs");
  CHECK(tg_route_limits_report(rl, 1, 0, 0), "a spec without limits: 0");
  tg_route_limits_free(rl);
}

// test_ietf: a spec's IETF headers are copied, reach an admitted
// request's report (nothing else), and go with the spec they belong to.
static void test_ietf(void) {
  tg_route_limits* rl = tg_route_limits_new(0);
  const int64_t lim[] = {SEC, 0};
  CHECK(!tg_route_limits_ietf(rl, 0, str("p"), str("r"), str("t")), "no limits to report");
  CHECK(tg_route_limits_set(rl, 0, str(""), str("i"), 0, lim, 1, str(""), "", 0, 0), "set");
  char policy[] = "\"gold\";q=1;w=1";
  CHECK(tg_route_limits_ietf(rl, 0, str(policy), str("\"gold\";r="), str(";t=")) &&
            tg_route_limits_ietf(rl, 0, str(policy), str("\"gold\";r="), str(";t=")),
        "ietf, twice");
  CHECK(!tg_route_limits_ietf(rl, 2, str(""), str(""), str("")), "beyond the specs");
  policy[1] = 'x'; // copied
  const tg_ietf* h = rl->specs[0].ietf;
  CHECK(h != NULL && h->policy.len == 14 && memcmp(h->policy.ptr, "\"gold\";q=1;w=1", 14) == 0 &&
            h->rate_r.len == 9 && h->rate_t.len == 3,
        "copied");
  tg_limits* t = tg_limits_new(100);
  tg_rl_report r = {0};
  CHECK(tg_limits_charge_report(t, &rl->specs[0], str("alice"), 0, T0, &r) == TG_CHARGE_CREATED &&
            r.set && r.ietf == h,
        "admitted: the spec's headers");
  r.ietf = NULL;
  CHECK(tg_limits_charge_report(t, &rl->specs[0], str("alice"), 0, T0, &r) & TG_CHARGE_REFUSED,
        "refused");
  CHECK(!r.set, "a refusal reports nothing");
  CHECK(tg_route_limits_set(rl, 0, str(""), str("i"), 0, lim, 1, str(""), "", 0, 0) &&
            rl->specs[0].ietf == NULL,
        "a new spec drops them");
  CHECK(tg_route_limits_ietf(rl, 1, str("p"), str("r"), str("t")) == 0, "the default has no limits");
  CHECK(tg_route_limits_ietf(rl, 0, str("p"), str("r"), str("t")), "set again, freed with rl");
  tg_limits_free(t);
  tg_route_limits_free(rl);
}

int main(void) {
  test_gcra();
  test_report();
  test_ietf();
  test_limits_do_not_drain_each_other();
  test_assignments();
  test_rescale();
  test_two_policies();
  test_expiry();
  test_huge_ttl();
  test_drain_abandon();
  test_specs();
  test_eviction();
  test_threads();
  CHECK(tg_limits_process() == tg_limits_process() && tg_limits_process() != NULL, "process");
  if (failures > 0) {
    fprintf(stderr, "%d failed\n", failures);
    return 1;
  }
  printf("limits: all passed\n");
  return 0;
}
