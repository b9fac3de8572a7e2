package translator

import (
	"slices"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/tollgate/tollgate/envoy"
)

// detailsLocalRateLimited is the response code details of the backstop's
// refusals (Envoy's local_ratelimit filter).
const detailsLocalRateLimited = "local_rate_limited"

// backstopReply is the local reply mapper that gives the backstop's 429
// (Envoy's plain-text "local_rate_limited") a JSON body like the other
// refusals of a limit (the rate-limit service's, RLQS's):
// {"error":"rate_limited","retryAfter":N}, N being the refusal's own
// Retry-After (the backstop always sets it). The limit is not named: the
// backstop does not say which of its buckets refused.
func backstopReply() envoy.LocalReplyRewrite {
	return envoy.LocalReplyRewrite{
		DetailsPrefix: detailsLocalRateLimited,
		Body:          `{"error":"rate_limited","retryAfter":%RESP(retry-after)%}`,
		ContentType:   "application/json",
	}
}

// detailsRateLimiterError is the response code details of the ratelimit
// filter's own answer when the rate-limit call fails and the failure mode
// is closed (failure_mode_deny): the service is unreachable or did not
// answer within the timeout on any try.
const detailsRateLimiterError = "rate_limiter_error"

// rateLimitErrorReply is the local reply mapper that gives that answer
// (status_on_error, an empty body in Envoy) the body the ext_authz service
// gives the same failure when it takes the limit in its Check
// (extauthz/ratelimit.go): JSON
// {"error":"unavailable","reason":"rate_limit_unavailable"} and
// cache-control no-store.
func rateLimitErrorReply() envoy.LocalReplyRewrite {
	return envoy.LocalReplyRewrite{
		DetailsPrefix: detailsRateLimiterError,
		Body:          `{"error":"unavailable","reason":"rate_limit_unavailable"}`,
		ContentType:   "application/json",
		Headers:       map[string]string{"cache-control": "no-store"},
	}
}

// replies is the local reply mappers of the gateway's limits: in quota
// mode backstopReply; in exact mode, when the failure mode is closed,
// rateLimitErrorReply; else none.
func (rl *rateLimit) replies() []envoy.LocalReplyRewrite {
	switch {
	case rl.quota != nil && rl.quota.empty():
		return nil
	case rl.quota != nil:
		return []envoy.LocalReplyRewrite{backstopReply()}
	case rl.enabled && rl.filter.FailureModeDeny:
		return []envoy.LocalReplyRewrite{rateLimitErrorReply()}
	}
	return nil
}

// decorate returns next followed by appending rl.replies() to the
// connection manager's local reply mappers.
func (rl *rateLimit) decorate(next func(*hcmv3.HttpConnectionManager)) (func(*hcmv3.HttpConnectionManager), error) {
	rewrites := rl.replies()
	if len(rewrites) == 0 {
		return next, nil
	}
	lr, err := envoy.LocalReplyConfig(rewrites)
	if err != nil {
		return nil, err
	}
	return func(m *hcmv3.HttpConnectionManager) {
		next(m)
		appendLocalReplies(m, lr.Mappers)
	}, nil
}

// appendLocalReplies appends mappers to m's local reply mappers (after
// any already set: each matches its own details). The existing
// configuration may be shared by the gateway's connection managers, so it
// is copied, never changed.
func appendLocalReplies(m *hcmv3.HttpConnectionManager, mappers []*hcmv3.ResponseMapper) {
	if m.LocalReplyConfig == nil {
		m.LocalReplyConfig = &hcmv3.LocalReplyConfig{}
	} else {
		m.LocalReplyConfig = &hcmv3.LocalReplyConfig{Mappers: slices.Clone(m.LocalReplyConfig.Mappers),
			BodyFormat: m.LocalReplyConfig.BodyFormat}
	}
	m.LocalReplyConfig.Mappers = append(m.LocalReplyConfig.Mappers, mappers...)
}
