package translator

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// namedLimit is one limit of a bucket with the name the rate-limit
// headers and body give it, as in exact mode: the tier's name, "anonymous",
// or the route's name for a route's extra limits.
type namedLimit struct {
	name string
	ir.Limit
}

// quotaDenial is the static denial of a bucket of limits (deny_response_settings:
// Envoy 1.40 cannot vary it per request): 429, a JSON body and headers. With
// the binding limit b (the longest emission interval T = Per/Requests, the
// one that admits last after every limit is exhausted) and RA = ⌈T_b⌉ s:
//   - Retry-After: RA (see retryAfter for its error bound);
//   - X-RateLimit-Limit: b's requests; X-RateLimit-Remaining: 0 (this
//     Envoy's share is spent); X-RateLimit-Reset: RA, the seconds until this
//     Envoy admits again as the backstop's draft-03 headers count it on
//     admitted responses (not exact mode's "until full");
//   - RateLimit-Policy: every limit of the bucket, exactly as exact mode
//     sends it; RateLimit: b with r=0 and t=RA.
func quotaDenial(limits []namedLimit, fallbackName string) (body string, headers []envoy.Header) {
	secs := int64(retryAfter(limits) / time.Second)
	ra := strconv.FormatInt(secs, 10)
	headers = []envoy.Header{{Name: "retry-after", Value: ra}, {Name: "content-type", Value: "application/json"}}
	b, ok := binding(limits)
	if !ok {
		return fmt.Sprintf(`{"error":"rate_limited","limit":%q,"retryAfter":%d}`, fallbackName, secs), headers
	}
	headers = append(headers,
		envoy.Header{Name: "x-ratelimit-limit", Value: strconv.FormatUint(b.Requests, 10)},
		envoy.Header{Name: "x-ratelimit-remaining", Value: "0"},
		envoy.Header{Name: "x-ratelimit-reset", Value: ra},
		envoy.Header{Name: "ratelimit-policy", Value: policyHeader(limits)},
		envoy.Header{Name: "ratelimit", Value: fmt.Sprintf("%q;r=0;t=%s", b.name, ra)})
	return fmt.Sprintf(`{"error":"rate_limited","limit":%q,"retryAfter":%d}`, b.name, secs), headers
}

// binding is the limit with the longest emission interval (the first of
// equals); ok is false when no limit counts requests.
func binding(limits []namedLimit) (b namedLimit, ok bool) {
	for _, l := range limits {
		if l.Requests == 0 {
			continue
		}
		if !ok || l.Per.Seconds()/float64(l.Requests) > b.Per.Seconds()/float64(b.Requests) {
			b, ok = l, true
		}
	}
	return b, ok
}

// retryAfter is the static Retry-After of a bucket's denials: the longest
// emission interval T_b = Per/Requests among its limits, in whole seconds
// rounded up (RA), at least 1 s. Its error, for the consumer's next request
// through the same Envoy:
//   - one Envoy (share 1): the assignment refills at the binding window's
//     rate, one token per T ≤ T_b (the minute/hour/day windows divide the
//     fill interval, so tokens_per_fill is exact), and a report finding
//     the account not empty grants at once: a client that waits RA is
//     admitted; RA is early by nothing and late by less than RA;
//   - k Envoys sharing a consumer: this Envoy's bucket refills at its share
//     s of the rate, one token per T_b/s, and a later report may grant
//     less than one token: RA may be early by up to the assignment's token
//     interval fill_interval/tokens_per_fill − RA, which is below the
//     bucket's fill interval (its longest window).
func retryAfter(limits []namedLimit) time.Duration {
	d := time.Second
	for _, l := range limits {
		if l.Requests > 0 {
			d = max(d, time.Duration(math.Ceil(l.Per.Seconds()/float64(l.Requests)))*time.Second)
		}
	}
	return d
}
