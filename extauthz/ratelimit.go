package extauthz

import (
	"context"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tollgate/tollgate/extauthz/contract"
	"github.com/tollgate/tollgate/ratelimit"
)

// RateLimiter takes a route's rate limits in process: the rate-limit
// service's Decide, over the same table, counters and failure mode as its
// RLS endpoint.
type RateLimiter interface {
	Decide(ctx context.Context, req ratelimit.Request) ratelimit.Decision
}

// MetadataRateLimit is contract.MetadataRateLimit.
const MetadataRateLimit = contract.MetadataRateLimit

// respond builds the answer to an authenticated request (v.status 0): the
// OK response, or, on a route whose limits the Check takes (one hop), the
// rate-limit decision's 429 or 503, or the OK response with the rate-limit
// headers for the client.
func (s *Service) respond(ctx context.Context, t *Table, v verdict, headers map[string]string) *authv3.CheckResponse {
	resp := allowed(t, v)
	ok := resp.GetOkResponse()
	if _, set := headers[contract.HeaderClientIP]; set {
		ok.HeadersToRemove = append(ok.HeadersToRemove, contract.HeaderClientIP)
	}
	if !v.req.rateLimit {
		return resp
	}
	if s.opts.RateLimit == nil {
		s.log.Error("route takes its rate limits in the ext_authz call but the service has no rate limiter", "route", v.req.route)
		return denied(verdict{status: 503, reason: "rate_limit_unavailable", req: v.req})
	}
	d := s.opts.RateLimit.Decide(ctx, limitRequest(v, headers, ok))
	switch {
	case d.Err() != nil: // failure mode closed and the backend is down
		return denied(verdict{status: 503, reason: "rate_limit_unavailable", req: v.req})
	case !d.Allowed():
		return overLimit(d, resp.GetDynamicMetadata())
	}
	for _, h := range d.ResponseHeaders() {
		ok.ResponseHeadersToAdd = append(ok.ResponseHeadersToAdd, header(h.GetKey(), h.GetValue()))
	}
	resp.DynamicMetadata.Fields[MetadataRateLimit] = structpb.NewStringValue(d.Kind())
	return resp
}

// limitRequest is what the route's limits need, as Envoy's rate-limit
// actions would have read it after this Check: the published consumer and
// tier, the trusted client address, and request headers with the OK
// response's mutations applied (an identity header has the value the Check
// sets, credentials are gone unless forwarded).
func limitRequest(v verdict, headers map[string]string, ok *authv3.OkHttpResponse) ratelimit.Request {
	req := ratelimit.Request{Route: v.req.route, ClientIP: headers[contract.HeaderClientIP]}
	if v.id != nil {
		req.Consumer, req.Tier = v.id.consumer, v.id.tier
	}
	req.Header = func(name string) string { return mutatedHeader(headers, ok, name) }
	return req
}

// mutatedHeader is the value of the request header name once Envoy has
// applied ok's mutations.
func mutatedHeader(headers map[string]string, ok *authv3.OkHttpResponse, name string) string {
	for _, h := range ok.GetHeaders() {
		if h.GetHeader().GetKey() == name {
			return h.GetHeader().GetValue()
		}
	}
	for _, r := range ok.GetHeadersToRemove() {
		if r == name {
			return ""
		}
	}
	return headers[name]
}

// overLimit is the 429 of a request over its limits: the body, Retry-After,
// X-RateLimit-* and RateLimit headers the rate-limit service gives Envoy's
// ratelimit filter, and the identity and decision as dynamic metadata for
// the access log.
func overLimit(d ratelimit.Decision, md *structpb.Struct) *authv3.CheckResponse {
	hs := d.ResponseHeaders()
	opts := make([]*corev3.HeaderValueOption, len(hs))
	for i, h := range hs {
		opts[i] = header(h.GetKey(), h.GetValue())
	}
	md.Fields[MetadataRateLimit] = structpb.NewStringValue(d.Kind())
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code.Code_RESOURCE_EXHAUSTED), Message: "rate_limited"},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode_TooManyRequests},
			Headers: opts,
			Body:    string(d.Body()),
		}},
		DynamicMetadata: md,
	}
}
