// # Algorithm: GCRA
//
// Every limit is enforced with the generic cell rate algorithm (GCRA), the
// exact form of a token bucket, on one value per limit and key: the
// theoretical arrival time TAT, the time at which the bucket will be full
// again. For a limit of Requests per Per with a bucket of Burst (at least
// Requests; 0 means Requests), in integer microseconds:
//
//	T   = Per / Requests          emission interval (truncated, at least 1 µs)
//	τ   = T × (Burst − 1)         burst tolerance; τ + T = T × Burst is the bucket
//	TAT = stored value, or now when the key is absent (or expired)
//
// A request at now is admitted by the limit iff
//
//	TAT' = max(TAT, now) + T  satisfies  TAT' − now ≤ τ + T,
//	i.e.                      max(TAT, now) − now ≤ τ,
//
// and then TAT' is stored. A Take is all or nothing: the TAT of every limit
// is read first, and written (each to its TAT') only when every limit
// admits the request; otherwise nothing is written. With d = max(TAT, now)
// − now for the TAT after the Take (TAT' when admitted, the unchanged TAT
// otherwise), each Result is
//
//	ResetAfter = d                          until the bucket is full again
//	Remaining  = floor((τ + T − d) / T) ≥ 0  requests admitted right now
//	RetryAfter = max(0, d − τ)              until one more is admitted
//
// A rejected caller that retries after RetryAfter, at now₂ = TAT − τ, finds
// max(TAT, now₂) − now₂ = τ ≤ τ and is admitted (if no other limit rejects
// it); one microsecond earlier it is not. Remaining ≥ 1 exactly when
// RetryAfter = 0. N immediate requests against a fresh limit admit exactly
// Burst of them, whatever the rounding of T.
//
// # Why GCRA
//
//   - Exact under concurrency: a decision is one atomic read-modify-write of
//     one integer per limit (one Lua script in Redis, one locked section in
//     memory), so replicas sharing Redis never over-admit, and several
//     limits are checked and charged together.
//   - O(1) memory per key: one integer, which expires by itself when the
//     bucket is full (a key past its TAT means the same as no key).
//   - No window-boundary burst: fixed windows admit up to twice the limit
//     around a window boundary; GCRA spaces requests by T after the burst.
//   - No approximation: sliding-window counters interpolate between two
//     windows and are only approximately right; GCRA is the exact token
//     bucket, with exact Remaining, ResetAfter and RetryAfter.
//
// # Backends
//
// RedisBackend runs one Lua script (script.lua, EVALSHA with EVAL on
// NOSCRIPT) per Take with every limit's key in KEYS. The script reads the
// server's clock (TIME), so replicas with skewed clocks agree, decides
// every limit, and writes the TATs with a PX expiry of ResetAfter rounded
// up to the millisecond. On a cluster the keys of one Take must share a
// hash slot: callers give them one hash tag ("{c:alice}:tier:…"); the key
// prefix must not contain '{'.
//
// MemoryBackend runs the same math (gcra.go) in a sharded, mutex-guarded
// map, for one replica, tests, and the local failure mode. It drops full
// buckets lazily and in periodic sweeps, so its memory stays bounded.
//
// OverLimitCache remembers rejected limits until their RetryAfter and
// rejects them without a round trip:
//
//	NewOverLimitCache(NewRedis(client, opts), time.Now)
//
// The policy's failure mode (ir.FailOpen, FailClosed, FailLocal) is applied
// by the caller (package ratelimit), which knows the route and the answer.
//
// Time is in microseconds throughout, so results are exact to the
// microsecond; a bucket (Burst × T) is at most ir.MaxBucket, 2^51 µs (about
// 71 years): ir.CheckLimit, which the policy validator calls too, defines
// the limits the backends accept.
package counter
