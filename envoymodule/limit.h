// limit.h: the rate limits the module enforces itself (envoymod.Quota,
// envoymod.RouteLimits): a route's bucket specs (what the route config
// says) and the process-wide table of live buckets (what the requests
// did). No Envoy callback here, so ctest/ links it alone.
//
// Contract of the bucket table (tg_limits):
//   - one bucket per (bucket id, consumer), compared as bytes (a seeded
//     hash only picks the shard and the chain); an unlimited or deny spec
//     never has one;
//   - per bucket, one GCRA per limit of its spec (emission T, tolerance
//     (burst-1)·T, CLOCK_MONOTONIC nanoseconds): a request is admitted when
//     every limit and the bucket's assignment admit it, and only then is
//     anything spent (check all, then commit): a request one limit refuses
//     spends nothing of the others, nor a token of the assignment; a
//     limit charged with another emission interval than its slot's (a
//     push changed it, or two route tables of one bucket live at once,
//     a replaced listener's draining connections and its successor's)
//     keeps the requests the slot's backlog stands for, at the new
//     interval: specs charged in turn never restart each other's burst;
//   - the assignment (RLQS, quotaclient.Assignment): none (no term),
//     allow-all (no term), deny-all (refuses), or a token bucket refilled
//     continuously at tokens_per_fill per fill_interval, one token per
//     request. Past its time to live an assignment refuses when the
//     caller's config fails closed, else it is as none. A token bucket
//     replacing none, a blanket rule or an expired assignment starts full;
//     one replacing a live token bucket of other parameters keeps the old
//     bucket's fill ratio (Envoy 1.40's rescale, which the quota server's
//     grants assume); an identical one keeps its tokens;
//   - bounded: at most `capacity` buckets (rounded up to a multiple of the
//     shard count); creating a bucket in a full shard evicts the shard's
//     least recently used bucket. Eviction costs what abandoning costs: the
//     consumer's next request builds the bucket anew, with a full local
//     burst and no assignment, and the evicted bucket's counts since the
//     last drain are never reported;
//   - safe for concurrent use: one mutex per shard, held only inside these
//     calls (no pointer into a bucket escapes). Charging an existing bucket
//     allocates nothing; creating one allocates once, outside the lock.
#ifndef TG_LIMIT_H
#define TG_LIMIT_H
#include <stddef.h>
#include <stdint.h>

#include "abi.h"

// Bounds of a spec: limits per bucket, headers of a denial.
enum { TG_LIMIT_MAX = 8, TG_LIMIT_MAX_HEADERS = 16 };

// TG_ROUTE_MAX_TIERS bounds the tiers of a route's limits.
enum { TG_ROUTE_MAX_TIERS = 1024 };

// TG_LIMIT_MAX_NS bounds a limit's emission interval and tolerance (2^60
// ns, 36 years: glue.maxTolerance): a TAT stays far inside int64 (now +
// tolerance + emission), where a larger one could wrap into the past and
// admit everything.
#define TG_LIMIT_MAX_NS ((int64_t)1 << 60)

// Spec flags (envoymod.LimitBucket): unlimited admits everything and is
// neither counted nor tabled; deny refuses everything, untabled too.
enum { TG_SPEC_UNLIMITED = 1, TG_SPEC_DENY = 2 };

// tg_gcra is one limit: emission interval T = Per/Requests (rounded up,
// at least 1 ns) and tolerance (burst-1)·T, in nanoseconds.
typedef struct {
  int64_t emission_ns, tolerance_ns;
} tg_gcra;

// tg_ietf is a bucket's IETF RateLimit headers on admitted responses
// (envoymod.IETFHeaders, rateLimits.ietfHeaders): RateLimit-Policy is
// policy; RateLimit is rate_r, the report's remaining, rate_t, its reset.
// The translator formats every byte but the two numbers.
typedef struct {
  tg_buf policy, rate_r, rate_t;
} tg_ietf;

// tg_bucket_spec is one envoymod.LimitBucket of a route, in C memory.
typedef struct {
  tg_buf tier; // the tier it serves (tiers only)
  tg_buf id;   // ir.BucketKeyBucket value
  int flags;   // TG_SPEC_*
  size_t nlimits;
  tg_gcra limits[TG_LIMIT_MAX];
  tg_buf body;                // the static 429's body
  const tg_header* headers;   // and headers
  size_t nheaders;
  void* mem; // the block the strings and headers live in
  // The limit whose state an admitted response reports (X-RateLimit-*,
  // envoymod.LimitBucket.ReportedLimit): limits[reported], whose
  // X-RateLimit-Limit is report_limit (max(requests, burst)). No report
  // when reported >= nlimits (a bucket without local limits).
  size_t reported;
  uint64_t report_limit;
  // The IETF headers written beside the report (NULL: none), in ietf_mem.
  const tg_ietf* ietf;
  void* ietf_mem;
} tg_bucket_spec;

// tg_route_limits is a route's envoymod.RouteLimits: specs[0:ntiers] the
// tiers, then the default, then the unidentified bucket.
typedef struct tg_route_limits tg_route_limits;
struct tg_route_limits {
  size_t ntiers;
  tg_bucket_spec specs[];
};

// tg_route_limits_new returns limits for ntiers tiers with every spec
// empty (unlimited until set), or NULL when memory is short.
tg_route_limits* tg_route_limits_new(size_t ntiers);

// tg_route_limits_set fills spec i (see tg_route_limits) with copies of
// its tier name, id and body, the nheaders header pairs of hblob (blob
// format, module.h) and nlimits (emission, tolerance) pairs of lim. 0 when
// i, nlimits or nheaders is out of range, a limit is not positive
// (emission < 1, tolerance < 0) or beyond TG_LIMIT_MAX_NS, the blob is
// malformed or memory is short.
int tg_route_limits_set(tg_route_limits* rl, size_t i, tg_buf tier, tg_buf id, int flags,
                        const int64_t* lim, size_t nlimits, tg_buf body, const char* hblob,
                        size_t hlen, size_t nheaders);

// tg_route_limits_report sets which limit spec i's admitted responses
// report (tg_bucket_spec.reported) and its X-RateLimit-Limit value; 0 when
// i or reported is out of range (reported must be < the spec's nlimits,
// or 0 for a spec without limits).
int tg_route_limits_report(tg_route_limits* rl, size_t i, size_t reported, uint64_t limit);

// tg_route_limits_ietf gives spec i (set before: tg_route_limits_set
// drops them) the IETF headers policy and RateLimit's parts rate_r,
// rate_t (copied); 0 when i is out of range, the spec has no limits to
// report or memory is short.
int tg_route_limits_ietf(tg_route_limits* rl, size_t i, tg_buf policy, tg_buf rate_r,
                         tg_buf rate_t);

// tg_route_limits_free frees rl and its specs' memory (NULL is fine).
void tg_route_limits_free(tg_route_limits* rl);

// tg_route_limits_pick returns the spec of a caller: the unidentified
// spec without a consumer (empty), else the tier's (exact bytes), else
// the default.
const tg_bucket_spec* tg_route_limits_pick(const tg_route_limits* rl, tg_buf consumer,
                                           tg_buf tier);

typedef struct tg_limits tg_limits;

// tg_rl_report is what an admitted response's draft-03 headers say of the
// reported limit (x-ratelimit-limit, -remaining, -reset), with Envoy
// 1.40's local_ratelimit meaning (its token bucket of the same limit,
// max(requests, burst) tokens refilled at requests/per): remaining is the
// whole requests the limit still admits at once after this one; reset is
// 0 when remaining > 0, else the seconds until the next request is
// admitted again, rounded up. set is 0 when there is nothing to report
// (not admitted, unlimited, no local limit). ietf is the spec's IETF
// headers (NULL: none; set by the charge, not tg_rl_report_of), valid as
// long as the route configuration that holds the spec.
typedef struct {
  int set;
  uint64_t limit, remaining, reset;
  const tg_ietf* ietf;
} tg_rl_report;

// tg_rl_report_of computes the report of limit g (X-RateLimit-Limit
// limit) whose TAT after the admitted request is tat, at now. Pure.
tg_rl_report tg_rl_report_of(tg_gcra g, uint64_t limit, int64_t tat, int64_t now);

// tg_limits_new returns an empty table of at most capacity buckets, or
// NULL when memory is short.
tg_limits* tg_limits_new(size_t capacity);

// tg_limits_free frees t and its buckets; nobody may use t any more.
void tg_limits_free(tg_limits* t);

// TG_LIMITS_CAPACITY bounds the process-wide table.
enum { TG_LIMITS_CAPACITY = 100000 };

// tg_limits_process returns the process-wide table (created on first
// use, never freed: it outlives every filter configuration, so a config
// swap keeps every consumer's state), or NULL when memory is short.
tg_limits* tg_limits_process(void);

// tg_monotonic_ns is CLOCK_MONOTONIC in nanoseconds: the tables' clock.
int64_t tg_monotonic_ns(void);

// Charge results (bits).
enum { TG_CHARGE_REFUSED = 1, TG_CHARGE_CREATED = 2, TG_CHARGE_EVICTED = 4 };

// tg_limits_charge charges one request of consumer to spec's bucket at
// now: TG_CHARGE_REFUSED when refused (a deny spec, a missing consumer,
// or when memory for a new bucket is short: a limited route never lets a
// request through unlimited), plus TG_CHARGE_CREATED when the bucket was
// created (the quota client reports it at once), plus TG_CHARGE_EVICTED
// when creating it evicted another bucket (a full shard). An unlimited
// spec admits without a bucket.
int tg_limits_charge(tg_limits* t, const tg_bucket_spec* spec, tg_buf consumer,
                     int fail_closed, int64_t now);

// tg_limits_charge_report is tg_limits_charge that also fills *report
// (when not NULL) for an admitted request of a bucket with local limits
// (tg_rl_report; set 0 otherwise), under the bucket's lock.
int tg_limits_charge_report(tg_limits* t, const tg_bucket_spec* spec, tg_buf consumer,
                            int fail_closed, int64_t now, tg_rl_report* report);

// Assignment kinds: quotaclient.Kind's values.
enum { TG_ASSIGN_ALLOW_ALL = 0, TG_ASSIGN_DENY_ALL = 1, TG_ASSIGN_TOKEN_BUCKET = 2 };

// tg_limits_assign applies an assignment to bucket (id, consumer) at now
// (ttl_ns 0: it never expires); 1 when applied, 0 when the table holds no
// such bucket (evicted or abandoned since it was reported: its next
// request builds it anew and reports it) or kind is unknown.
int tg_limits_assign(tg_limits* t, tg_buf id, tg_buf consumer, int kind, uint64_t max_tokens,
                     uint64_t tokens_per_fill, int64_t fill_ns, int64_t ttl_ns, int64_t now);

// tg_limits_abandon drops bucket (id, consumer); 1 when it existed.
int tg_limits_abandon(tg_limits* t, tg_buf id, tg_buf consumer);

// tg_limits_drain returns every live bucket's counts since the previous
// drain and resets them: *n records of id, consumer (blob items, module.h)
// then allowed and denied as 8-byte little-endian integers, *len bytes, in
// memory the caller frees with free(). NULL (with *n 0) when the table is
// empty. When memory is short it returns the shards it could copy: the
// others keep their counts for the next drain.
char* tg_limits_drain(tg_limits* t, size_t* len, size_t* n);

// tg_limits_counts: buckets now, created, evicted (a full shard),
// abandoned, capacity.
typedef struct {
  long long live, created, evicted, abandoned, capacity;
} tg_limits_counts;
tg_limits_counts tg_limits_stats(tg_limits* t);

#endif
