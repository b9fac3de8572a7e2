// Package quota is Tollgate's rate-limit quota service (RLQS,
// envoy.service.rate_limit_quota.v3.RateLimitQuotaService): with
// rateLimits.mode quota, Envoy enforces the limits in-process and makes
// no call per request; this server turns the usage Envoy reports into the
// token buckets Envoy enforces, with Redis as the one shared account.
//
// # Design
//
// Each Envoy opens one stream and reports, per bucket (a route, tier and
// consumer, or a route and client address; ids built by the translator
// from ir.BucketKey*), the requests it admitted and denied: at once for a
// new bucket, then every 5 s (Envoy 1.40 ignores reporting_interval). A
// participant is one bucket of one client: of one stream, or of every
// stream of a client that names itself (ir.RateLimitQuotaClientHeader:
// Tollgate's Envoy module), on any server sharing the account, so a
// reconnected module is the participant it was (server.go participant;
// TestReconnectedClientKeepsItsShare). Every report is settled
// (Account) against each limit of the bucket, under the same Redis keys and
// GCRA as the exact mode's rate-limit service (package counter); the
// buckets of one report are settled as one batch (BatchAccount: with Redis,
// one pipelined round trip per 128 buckets, not one per bucket: a report
// of 1,000 buckets cost 60-90 ms of server CPU and 60-75 ms of Redis CPU in
// 150-170 ms of wall time one by one, a burst every 5 s that Envoy's
// worker felt as a p99 tail; batched 7-10 ms, 18-20 ms and 28-45 ms,
// BenchmarkServerReport1000; the round trips of a batch are paced, each
// followed by a pause as long as itself, so the batch takes about twice
// that wall time at half the intensity):
//
//   - the admitted requests are charged to the limit's TAT (Redis time), so
//     Redis holds what every Envoy admitted, and R, what the limit has left;
//   - the participant's share s of the limit's rate is demand-weighted
//     (0.9·own demand/total demand + 0.1/n), and never more than what the
//     other live participants leave, nor less than the floor 0.1/n: the
//     shares of a key add up to ≤ 1 but for those floors, until the
//     others next report. Without the floor, a lone Envoy held share 1
//     and a new Envoy (a replacement of a killed one, a scale-out) got
//     share 0, DENY_ALL, until the old share expired (15 s after the dead
//     Envoy's last report) or shrank: 299 of 300 requests refused at
//     100/s against 100,000,000/minute (e2e
//     TestQuotaReplacedEnvoyIsNotThrottled);
//   - its grant g = min(s·R, R − Σ others' holdings), where another
//     participant holds its last grant plus its share of the refill since
//     (what it may have admitted without reporting yet).
//
// The answer is a token bucket of ⌊g⌋ tokens refilled at s × the rate
// (several windows of one bucket combine into one: see combine). Envoy 1.40
// rescales a changed bucket at its old fill ratio, but builds a bucket that
// replaces a blanket rule full; so the server sends ALLOW_ALL and the token
// bucket in one response, and Envoy holds exactly the grant. Tokens an
// Envoy leaves unused go back to R (they were never charged). An exhausted
// participant (g < 1) keeps its bucket size and only refills. Fill
// intervals are whole seconds and fixed per bucket (Envoy 1.40 compares
// only the nanoseconds of a changed interval); times to live are whole
// seconds (AssignmentTTL: two report intervals and a bit).
//
// Why not local_ratelimit shares pushed over xDS: a push per rebalance
// rebuilds listeners' filter configs on every Envoy; RLQS is the protocol
// for per-bucket assignments. Why not RLQS alone: before its first
// assignment a bucket follows a blanket rule (a token-bucket fallback
// crashes Envoy 1.40), so a new consumer's first burst would pass. The
// translator therefore puts a per-Envoy local_ratelimit backstop after
// RLQS: the full limit per consumer per Envoy, so that one Envoy never
// exceeds a limit whatever RLQS admits; with one Envoy the backstop alone
// is exact (e2e TestQuotaColdStartBurstIsExact).
//
// # Guarantees and the bound
//
// Over any interval t, the Envoys sharing a limit of burst B and rate r
// admit at most B + r·t (what GCRA admits) plus:
//
//   - requests admitted before a participant's first assignment (ALLOW_ALL,
//     one report round trip, ~1 ms; each Envoy ≤ B by the backstop);
//   - max(1, ⌊0.1 s × its share of the rate⌋) requests per participant
//     that gets its first token bucket while nothing is left (Envoy builds
//     it full; newcomerBurst);
//   - requests admitted between a report and its answer (~1 ms) beyond
//     the old grant;
//   - a participant's floor of the rate (0.1/n · r) while the others'
//     last shares leave it less: at most until they next report (5 s);
//   - requests an Envoy admits from a bucket between building its idle
//     report and applying the abandon action that answers it (2–17 ms,
//     at most its grant; abandon.go): Envoy drops them unreported;
//   - once per graceful stop of a server (Close), the tokens the Envoys
//     of its unnamed streams hold, and their shares' refill: released,
//     they no longer count against the consumer's other Envoys until those
//     Envoys report on their next stream (at most 5 s once a server is
//     reachable); what they admit is charged then.
//
// Rebalancing (rebalance.go) adds nothing to it: it moves only shares of
// the rate, never tokens a holder may have spent without reporting them
// (e2e TestQuotaRebalanceKeepsTheBound: 62 admitted against GCRA's 62).
//
// A participant that no longer reports (a dead Envoy) still holds its
// share and grant for AssignmentTTL + holdMargin (15 s) after its last
// report: a replacement gets no tokens of what the dead one held, only
// its floor of the rate (a bucket of 0.1 s of it, at least one token;
// DENY_ALL when the floor is less than one token per fill interval, below
// 20 per minute with two participants) until then. That was also every
// reconnected Envoy's lot (its new stream a newcomer, its old one holding
// the limit: 1 admitted a second of 20 against 1,000 a minute for 12 s
// after a restart of serve, e2e TestQuotaModuleReconnectKeepsTheShare);
// now a named client's new stream is its old participant, and a server
// stopping gracefully releases the participants of its unnamed streams
// (close.go; e2e TestQuotaFilterReconnectKeepsTheShare). A killed server
// releases nothing: Envoy's filter, reconnected, waits out the hold.
//
// A live holder does not wait for its next report to share the rate:
// when a bucket is first reported by another Envoy, the rate is split at
// once, on this server directly and with the others sharing the account
// through Redis pub/sub (one message per report, naming its squeezed
// buckets); the burst follows at the holders' next reports (rebalance.go;
// TestRebalanceANewcomer, TestRebalanceAcrossServers,
// TestRebalancedNewcomerIsRescaled, TestPushesKeepSettlementOrder,
// TestSqueezedReportIsOneMessage, e2e TestQuotaSecondEnvoyIsNotStarved,
// TestQuotaSecondEnvoyOnAnotherReplica). Each new Envoy of a bucket costs
// one settlement per Envoy already holding it on this server.
//
// Measured: two Envoys, 80/20, 60/minute, 30 s: 83–85 admitted for a
// GCRA bound of 90 (TestQuotaTwoEnvoysShareOneLimit). The shares take one
// or two report intervals (5–10 s) to follow a change of demand; until
// then an Envoy may admit less than its demand would earn, never more than
// its share. Requests the backstop refuses after RLQS admitted them are
// reported by Envoy as admitted; they are charged only up to what that
// Envoy's backstop can have admitted (backstopBound, below).
//
// Failure modes, when the account (Redis) cannot settle: closed answers
// DENY_ALL, open ALLOW_ALL (the backstop still bounds each Envoy to the
// limit), local settles in memory on this replica. Assignments live for
// AssignmentTTL, then Envoy applies the bucket's expired rule (DENY_ALL
// when closed, else ALLOW_ALL) and later its no-assignment rule
// (ALLOW_ALL). Run pushes fresh assignments as soon as the account is back
// (TestQuotaRedisOutage: within 1 s). A restarted server is reached
// again as soon as it listens: Envoy 1.40 reopens a broken stream only on
// its 5 s report tick, but the stream it opens at the first tick of an
// outage is retried (envoy.RLQSStreamRetryPolicy, every 0–500 ms) with
// the later ticks' reports waiting in it, and they are answered when it
// connects; StreamRateLimitQuotas sends the response headers at once, so
// no report a live server has read is retried. The waiting reports are
// charged late (settle.lua keeps a limit's TAT within two bursts of now).
// Envoy keeps at most 64 KiB of reports in a waiting stream: the report
// that overflows it ends the stream, and the next opens a tick later, so
// an Envoy with many buckets (a report holds every bucket it holds,
// ~70–100 bytes each; from ~650–900 on none fits; idle buckets are
// abandoned, abandon.go) is reached on its tick for part or all of an
// outage. TestQuotaRLQSServerRestart kills the
// process serving RLQS for 15 s under 20 req/s against 5/s: open admits
// 5/s throughout (the last assignment, then ALLOW_ALL under the backstop);
// closed admits 5/s until the assignment expires, then nothing until the
// restarted process assigns, 0.08–0.27 s after its start although it
// came 0.3 s after Envoy's report tick (4.7 s without the retries); a consumer
// first seen during the outage gets exactly its limit.
//
// Denials are static (deny_response_settings: Envoy 1.40 cannot vary them
// per request): 429, a JSON body and, for the bucket's binding limit b (the
// longest emission interval T = Per/Requests), Retry-After ⌈T_b⌉,
// X-RateLimit-Limit (b's requests), X-RateLimit-Remaining 0,
// X-RateLimit-Reset ⌈T_b⌉, RateLimit-Policy (every limit of the bucket, as
// exact mode) and RateLimit (b, r=0, t=⌈T_b⌉) (xds/translator quotaDenial).
// For a consumer on one Envoy Retry-After is never early (late by less
// than ⌈T_b⌉: exact mode says when the binding limit admits, ≤ T_b); with
// k Envoys it may be early by up to the assignment's token interval
// fill_interval/tokens_per_fill − ⌈T_b⌉, below the bucket's longest
// window. The backstop's own denials (local_rate_limited, text) carry the
// refusing bucket's Retry-After, and every response the backstop saw one
// set of X-RateLimit-* (draft 03) from its first filter, the shortest
// window's bucket — this Envoy's view of the full limit: exact with one
// Envoy, above the truth by what other Envoys admitted otherwise. Admitted
// responses carry RateLimit and RateLimit-Policy only with
// rateLimits.ietfHeaders (off by default: it costs Envoy CPU per request):
// a composite filter before the backstop picks the tier's values by the
// tier filter state, and RateLimit copies the backstop's X-RateLimit-*
// (xds/translator ratelimit_quota_headers.go).
//
// # Several windows and the backstop
//
// The translator gives the backstop a chain of local_ratelimit filters: a
// request meets the buckets of all its limits (its tier's, or the
// anonymous, and the route's extra limits) in the order they refill from
// empty, one filter per step (Envoy 1.40 spends a token of every bucket it
// checked before one refuses, so a minute and a second in one filter let a
// request the second refused spend a minute token, whichever list each
// belongs to); only the first filter writes X-RateLimit-*, so each
// response carries one set, of the shortest window. e2e
// TestQuotaBackstopWindows: with Redis down, 2/s, 4/minute and 5/hour, a
// refused burst leaves the longer windows (2 of 3 admitted 1.1 s later; 0
// with one filter); TestQuotaBackstopListsDoNotDrainEachOther: anonymous
// 20/minute and a route's 2/second, bursts of 10 admit 2, 2, 2 (2, 2, 0
// with both in one filter).
//
// RLQS runs before the backstop, so requests RLQS let through under a
// blanket ALLOW_ALL (the ~1 ms before a participant's first assignment,
// failure mode open, an expired assignment) and the backstop refused are
// reported as admitted. The server charges each report no more than the
// backstop can have admitted since the bucket's previous report
// (backstopBound: per limit, a bucket of the limit's burst refilled at its
// rate, charged what was charged): never less than the backstop admitted;
// at most what the tightest modelled bucket held plus its refill since
// the previous report, and over any span never more than one limit admits
// (its burst plus its refill). Cut requests are counted in
// tollgate_rlqs_uncharged_requests_total. TestQuotaBackstopWindows: 14
// let through by RLQS during the outage, 4 admitted, 4 charged (14
// before); TestBackstopBound and TestBackstopBoundNeverBelowAdmitted
// (unit).
//
// What the bound allows follows what the backstops can really hold:
//
//   - a bucket's first bound on a stream (a new or reconnected Envoy, a
//     restarted server) starts full when the report's interval began
//     (time_elapsed, whole seconds, plus one), with a fresh burst per push
//     within that interval: its first report may carry the burst plus 5 s
//     of refill, not just the burst (500 at 100/s were charged 125);
//   - every refill counts at least the interval Envoy reports, so a report
//     the server saw late does not shorten the next one's
//     (TestBackstopBoundReportSeenLate, ...WithStalls);
//   - Envoy 1.40 rebuilds a route's local_ratelimit buckets, full, on every
//     route configuration update, so the first report after policy pushes
//     may also carry one fresh burst per push (chargeAfterPushes, also when
//     a report races a swap: TestBackstopChargeReportRacingASwap; e2e
//     TestQuotaBackstopResetByPush: 3 admitted per push against 3/minute
//     with Redis down, 9 charged for 9, 4 before);
//   - each listener of a gateway has its own route configuration and so
//     its own backstop, but one RLQS bucket: the bound counts one backstop
//     per listener (ratelimit.Table.Listeners; e2e
//     TestQuotaBackstopTwoListeners: 6 admitted, 6 charged, 3 before).
//
// A backstop reset the server cannot see (the LRU of 100,000 descriptors
// per route and backstop filter evicting a client, a push applied by an Envoy
// after its next report) can still admit one burst uncharged while RLQS
// is on a blanket rule.
//
// Idle buckets (AbandonAfter reports in a row without a request, their
// limits refilled completely in the account) are abandoned: Envoy drops
// them, the account releases their participants, and a returning
// consumer's bucket is built again as a newcomer's, from the same account
// (abandon.go; e2e TestQuotaAbandonedBucketComesBackLimited,
// TestQuotaAbandonWaitsForAFullAccount).
// It adds one term to the bound: what an Envoy admits from a bucket between
// building its idle report and applying the abandon action (a few ms) is
// never reported.
//
// # The Envoy module as a client
//
// Tollgate's Envoy module (envoymodule/, serve --envoy-module) speaks the
// same protocol for the routes whose limits it enforces itself
// (envoymodule/quotaclient): one stream per Envoy process, the same bucket
// ids, reports at once for a new bucket and every 5 s. It reports exactly
// what it admitted (its local limits run with the assignment, not after
// it), so backstopBound never cuts its reports; it keeps usage it could
// not deliver and sends it when a stream connects again. It names its
// client on every stream (ir.RateLimitQuotaClientHeader), which Envoy's
// filter cannot; nothing else here tells the two kinds of client apart.
//
// Metrics (tollgate_rlqs_*, metrics.go): open streams and reported
// buckets, reports and reported requests, assignments by strategy,
// unknown buckets, settle latency and errors, answers per failure mode,
// recovery pushes, abandoned buckets.
package quota
