// table.h: the C table of verified tokens, so that a repeated token is
// decided without entering Go. Go fills it after an allowed request; the
// request-headers hook consults it first.
//
// Contract:
//   - keys are the full token bytes; a hit needs equal length and equal
//     bytes (memcmp), the seeded hash only picks the shard and the bucket;
//     only tokens Go verified ever enter, so a forger cannot fill it;
//   - an entry is served only while now < its deadline, min(the token's
//     exp, insertion + max TTL) in CLOCK_REALTIME nanoseconds; past it the
//     entry is a miss (Go then decides, and refuses an expired token);
//   - at most `capacity` entries (rounded up to a multiple of the shard
//     count): inserting into a full shard evicts that shard's oldest entry
//     (insertion order) and frees it at once;
//   - safe for concurrent use: one pthread rwlock per shard. A hit returns
//     with the shard's read lock held, so the identity stays valid while
//     the hook publishes it; the caller must call tg_table_release. A hit
//     allocates nothing and writes no shared memory but the lock word.
#ifndef TG_TABLE_H
#define TG_TABLE_H
#include <stddef.h>
#include <stdint.h>

#include "module.h"

typedef struct tg_shard tg_shard;

// tg_table_new returns an empty table, or NULL when out of memory.
tg_table* tg_table_new(size_t capacity, int64_t max_ttl_ns);

// tg_table_free frees t and every entry; nobody may use t any more.
void tg_table_free(tg_table* t);

// tg_table_get returns the identity of token key[:len] and sets *held to
// the shard whose read lock the caller now holds, or returns NULL (no lock
// held) when the token is absent or its entry has expired.
const tg_identity* tg_table_get(tg_table* t, const char* key, size_t len, tg_shard** held);

// tg_table_release releases the read lock tg_table_get took.
void tg_table_release(tg_shard* held);

// tg_table_put stores token key[:len] with the identity decoded from blob
// (nops header pairs, nmd metadata pairs, nroles roles, nscopes scopes;
// see module.h), copied, until min(exp_ns, now + max TTL); it replaces an
// entry of the same key. kid[:kid_len] is a signed API key's id (its jti;
// kid_len 0 for a JWT): tg_table_copy keeps a key's entry only by its id.
// A key in signed form ("tg." prefix) stored without a kid is a key entry
// that no copy keeps. epoch is tg_table_epoch's answer read before the
// token was verified. Returns 1 when stored, 0 when the deadline has
// passed, the table was cleared since epoch, the blob is malformed or
// memory is short.
int tg_table_put(tg_table* t, const char* key, size_t len, const char* blob, size_t blob_len,
                 size_t nops, size_t nmd, size_t nroles, size_t nscopes, const char* kid,
                 size_t kid_len, int64_t exp_ns, uint64_t epoch);

// tg_table_key_ids returns the kids of t's signed-key entries (*n of them,
// duplicates possible) in the blob format (module.h), *len bytes, malloc'd
// (the caller frees it); NULL with *n 0 when there are none or memory is
// short. Entries may be added or removed meanwhile: the list is a snapshot
// shard by shard.
char* tg_table_key_ids(tg_table* t, size_t* len, size_t* n);

// tg_table_copied counts a tg_table_copy: entries copied, dropped (a
// signed key whose kid is not kept), failed (memory short).
typedef struct {
  long long copied, dropped, failed;
} tg_table_copied;

// tg_table_copy copies src's live entries into dst (a successor
// configuration's table, not yet serving; the tables' max TTLs and seeds
// may differ): every token entry, and a signed key's entry only when its
// kid is one of the nkeep ids of keep[:keep_len] (blob format, any order;
// a malformed blob keeps no key); a key entry without a kid is never kept.
// Each copy keeps its entry's deadline (never extended), and dst's bound
// applies (a full shard evicts its oldest). Entries src gains during the
// copy may or may not be copied; a key's entry whose kid is not in keep
// never is, so the caller decides which ids to keep (default: none). The
// caller must exclude tg_table_clear of src and dst during the call (the
// module's lineage lock): a clear racing it could leave in dst an entry
// the clear dropped from src.
tg_table_copied tg_table_copy(tg_table* dst, tg_table* src, const char* keep, size_t keep_len,
                              size_t nkeep);

// tg_table_epoch returns the table's epoch, which tg_table_clear advances.
uint64_t tg_table_epoch(tg_table* t);

// tg_table_clear drops every entry and advances the epoch, so that an
// identity verified before the call (e.g. with a JWKS key withdrawn since)
// is never served afterwards, even one whose tg_table_put races the call.
void tg_table_clear(tg_table* t);

// tg_table_counts: entries now, ever stored, evicted because a shard was
// full, replaced, bytes held, capacity, dropped by tg_table_clear.
typedef struct {
  long long live, inserts, evictions, replaced, bytes, capacity, cleared;
} tg_table_counts;
tg_table_counts tg_table_stats(tg_table* t);

// tg_hash is the tables' seeded hash of p[:n] (p non-NULL): it only
// spreads entries, equality is always decided by comparing the bytes.
uint64_t tg_hash(uint64_t seed, const char* p, size_t n);

#endif
