package ratelimit

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// response answers Envoy. Every answer for a limited request carries
// X-RateLimit-Limit/Remaining/Reset for the tightest limit and the IETF
// RateLimit-Policy (every limit) and RateLimit (the tightest) headers; an
// OVER_LIMIT answer adds Retry-After (whole seconds until every limit
// admits a request) and a JSON body (ResponseHeaders, Body).
func (d Decision) response() *rlsv3.RateLimitResponse {
	code := rlsv3.RateLimitResponse_OK
	if !d.allowed {
		code = rlsv3.RateLimitResponse_OVER_LIMIT
	}
	resp := &rlsv3.RateLimitResponse{OverallCode: code, DynamicMetadata: d.metadata()}
	if !d.counted() {
		return resp
	}
	i := d.tightest()
	ref, res := d.refs[i], d.results[i]
	status := &rlsv3.RateLimitResponse_DescriptorStatus{
		Code:               code,
		CurrentLimit:       &rlsv3.RateLimitResponse_RateLimit{RequestsPerUnit: uint32(min(ref.lim.Requests, 1<<32-1)), Unit: unit(ref.lim.Per)},
		LimitRemaining:     uint32(min(res.Remaining, 1<<32-1)),
		DurationUntilReset: durationpb.New(res.ResetAfter),
	}
	for range d.descriptors {
		resp.Statuses = append(resp.Statuses, status)
	}
	resp.ResponseHeadersToAdd = d.ResponseHeaders()
	resp.RawBody = d.Body()
	return resp
}

// counted reports whether limits applied and the backend counted them:
// only then are there headers to report.
func (d Decision) counted() bool {
	return len(d.refs) > 0 && !d.unknown && len(d.results) == len(d.refs)
}

// Allowed reports whether the request may proceed (shadow mode admits
// requests over the limit). It is false when Err is not nil.
func (d Decision) Allowed() bool { return d.allowed && d.err == nil }

// Err is not nil when no decision could be made: no policy yet, or the
// backend failed while the failure mode is closed. The request must then
// be denied with 503, as Envoy's ratelimit filter does.
func (d Decision) Err() error { return d.err }

// Kind names the decision: ok, over_limit, shadow_over_limit, unlimited or
// not_counted (the access log's rate_limit and the metrics label).
func (d Decision) Kind() string { return d.kind() }

// ResponseHeaders are the headers the client gets with the response,
// allowed or not: X-RateLimit-Limit/Remaining/Reset, RateLimit-Policy and
// RateLimit, plus Retry-After and Content-Type on a rejection. None when
// no limit applied or the backend did not count (failure mode open).
func (d Decision) ResponseHeaders() []*corev3.HeaderValue {
	if !d.counted() {
		return nil
	}
	hs := d.headers(d.tightest())
	if !d.allowed {
		hs = append(hs, hv("retry-after", strconv.FormatInt(seconds(d.retryAfter()), 10)), hv("content-type", "application/json"))
	}
	return hs
}

// Body is the JSON body of a rejection, naming the tightest limit and the
// Retry-After seconds; nil when the request is allowed.
func (d Decision) Body() []byte {
	if d.allowed || !d.counted() {
		return nil
	}
	ref := d.refs[d.tightest()]
	return []byte(fmt.Sprintf(`{"error":"rate_limited","limit":%q,"retryAfter":%d}`, ref.name, seconds(d.retryAfter())))
}

// tightest is the limit to report: when rejected, the one that admits the
// latest; otherwise the one with the fewest requests left.
func (d Decision) tightest() int {
	best := 0
	for i, r := range d.results {
		b := d.results[best]
		if !d.allowed && r.RetryAfter > b.RetryAfter || d.allowed && r.Remaining < b.Remaining {
			best = i
		}
	}
	return best
}

// retryAfter is when every limit admits again.
func (d Decision) retryAfter() time.Duration {
	var m time.Duration
	for _, r := range d.results {
		m = max(m, r.RetryAfter)
	}
	return m
}

func (d Decision) headers(i int) []*corev3.HeaderValue {
	ref, res := d.refs[i], d.results[i]
	reset := strconv.FormatInt(seconds(res.ResetAfter), 10)
	policies := make([]string, len(d.refs))
	for j, r := range d.refs {
		policies[j] = fmt.Sprintf("%q;q=%d;w=%d", r.name, r.lim.Requests, int64(r.lim.Per.Seconds()))
	}
	return []*corev3.HeaderValue{
		hv("x-ratelimit-limit", strconv.FormatUint(ref.lim.Requests, 10)),
		hv("x-ratelimit-remaining", strconv.FormatUint(res.Remaining, 10)),
		hv("x-ratelimit-reset", reset),
		hv("ratelimit-policy", strings.Join(policies, ", ")),
		hv("ratelimit", fmt.Sprintf("%q;r=%d;t=%s", ref.name, res.Remaining, reset)),
	}
}

func hv(k, v string) *corev3.HeaderValue { return &corev3.HeaderValue{Key: k, Value: v} }

// seconds rounds up to whole seconds: a client that waits that long is
// admitted.
func seconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// unit maps a window to the closest RLS unit for the descriptor status.
func unit(per time.Duration) rlsv3.RateLimitResponse_RateLimit_Unit {
	switch {
	case per <= time.Second:
		return rlsv3.RateLimitResponse_RateLimit_SECOND
	case per <= time.Minute:
		return rlsv3.RateLimitResponse_RateLimit_MINUTE
	case per <= time.Hour:
		return rlsv3.RateLimitResponse_RateLimit_HOUR
	case per <= 24*time.Hour:
		return rlsv3.RateLimitResponse_RateLimit_DAY
	}
	return rlsv3.RateLimitResponse_RateLimit_MONTH
}
