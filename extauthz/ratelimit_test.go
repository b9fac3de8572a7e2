package extauthz

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tollgate/tollgate/extauthz/contract"
	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/ratelimit"
	"github.com/tollgate/tollgate/ratelimit/counter"
)

// countingBackend counts Take calls and can fail them.
type countingBackend struct {
	counter.Backend
	takes int
	fail  error
}

func (c *countingBackend) Take(ctx context.Context, l []counter.Limit) (bool, []counter.Result, error) {
	c.takes++
	if c.fail != nil {
		return false, nil, c.fail
	}
	return c.Backend.Take(ctx, l)
}

// limitedService is newTestService with a rate limiter: tier pro 3/minute,
// route "r" tier-limited, route "bytenant" 2/minute keyed by the tenant
// identity header, route "anon" 2/minute per client IP (by clientIP).
func limitedService(t *testing.T, failureMode string) (*Service, string, *countingBackend) {
	t.Helper()
	s, key := newTestService(t)
	b := &countingBackend{Backend: counter.NewMemory(func() time.Time { return time.Unix(1_000_000, 0) })}
	rl := ratelimit.New(ratelimit.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Backend: b})
	minute := []ir.Limit{{Requests: 2, Per: time.Minute}}
	cfg := &ir.Config{RateLimits: ir.RateLimits{Tiers: []ir.Tier{{Name: "pro", Limits: []ir.Limit{{Requests: 3, Per: time.Minute}}}},
		DefaultTier: "pro", FailureMode: failureMode},
		Gateways: []ir.Gateway{{VirtualHosts: []ir.VirtualHost{{Routes: []ir.Route{
			{Name: "r", RateLimit: ir.RouteRateLimit{Enabled: true, Consumer: true}},
			{Name: "bytenant", RateLimit: ir.RouteRateLimit{Enabled: true, Extra: minute, By: []string{"header:x-tenant-id"}}},
			{Name: "anon", RateLimit: ir.RouteRateLimit{Enabled: true, Extra: minute, By: []string{"clientIP"}}},
		}}}}}}
	if _, err := rl.Swap(cfg); err != nil {
		t.Fatal(err)
	}
	s.opts.RateLimit = rl
	return s, key, b
}

func limitedRoute(name string) map[string]string {
	return map[string]string{contract.KeyRoute: name, contract.KeyMethods: "apiKey", contract.KeyRateLimit: contract.RateLimitExact}
}

func responseHeaders(resp *authv3.CheckResponse) map[string]string {
	out := map[string]string{}
	for _, h := range resp.GetOkResponse().GetResponseHeadersToAdd() {
		out[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	for _, h := range resp.GetDeniedResponse().GetHeaders() {
		out[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	return out
}

func TestCheckTakesRateLimits(t *testing.T) {
	s, key, b := limitedService(t, ir.FailOpen)
	req := checkReq(limitedRoute("r"), "GET", map[string]string{"x-api-key": key})
	for i := 1; i <= 3; i++ {
		resp, _ := s.Check(context.Background(), req)
		h := responseHeaders(resp)
		if status, _ := outcome(resp); status != 0 || h["x-ratelimit-limit"] != "3" || h["ratelimit-policy"] != `"pro";q=3;w=60` ||
			resp.GetDynamicMetadata().GetFields()[MetadataRateLimit].GetStringValue() != "ok" {
			t.Fatalf("request %d: status %d, headers %v, metadata %v", i, status, h, resp.GetDynamicMetadata())
		}
	}
	resp, _ := s.Check(context.Background(), req)
	h := responseHeaders(resp)
	body := resp.GetDeniedResponse().GetBody()
	if status, _ := outcome(resp); status != 429 || h["retry-after"] != "20" || h["x-ratelimit-remaining"] != "0" ||
		!strings.Contains(body, `"error":"rate_limited"`) || resp.GetDynamicMetadata().GetFields()["consumer"].GetStringValue() != "acme" ||
		resp.GetDynamicMetadata().GetFields()[MetadataRateLimit].GetStringValue() != "over_limit" {
		t.Fatalf("fourth request: status %d, headers %v, body %s, metadata %v", status, h, body, resp.GetDynamicMetadata())
	}
	if b.takes != 4 {
		t.Errorf("counter calls = %d, want one per request (4)", b.takes)
	}
}

// TestCheckRateLimitsOnlyWhenMarked: a route without the context extension
// (its limits are Envoy's ratelimit filter's) is never counted here, and a
// denied request is never counted.
func TestCheckRateLimitsOnlyWhenMarked(t *testing.T) {
	s, key, b := limitedService(t, ir.FailOpen)
	unmarked := limitedRoute("r")
	delete(unmarked, contract.KeyRateLimit)
	for i := 0; i < 5; i++ {
		if resp, _ := s.Check(context.Background(), checkReq(unmarked, "GET", map[string]string{"x-api-key": key})); len(responseHeaders(resp)) != 0 {
			t.Fatalf("unmarked route got rate-limit headers %v", responseHeaders(resp))
		}
		s.Check(context.Background(), checkReq(limitedRoute("r"), "GET", map[string]string{"x-api-key": "tg_unknown"}))
	}
	if b.takes != 0 {
		t.Fatalf("counter calls = %d, want 0", b.takes)
	}
}

// TestCheckRateLimitKeys: a limit keyed by an identity header counts the
// value the Check sets (not what the client sent; the gateway strips it),
// and one keyed by client IP reads the gateway's client-IP header, which
// the upstream never sees.
func TestCheckRateLimitKeys(t *testing.T) {
	s, key, _ := limitedService(t, ir.FailOpen)
	admitted := func(route string, headers map[string]string) int {
		n := 0
		for i := 0; i < 4; i++ {
			resp, _ := s.Check(context.Background(), checkReq(limitedRoute(route), "GET", headers))
			if status, _ := outcome(resp); status == 0 {
				n++
			}
		}
		return n
	}
	// The key's tenant is t1: spoofed values do not make new counters.
	if n := admitted("bytenant", map[string]string{"x-api-key": key, "x-tenant-id": "spoofed-1"}) +
		admitted("bytenant", map[string]string{"x-api-key": key, "x-tenant-id": "spoofed-2"}); n != 2 {
		t.Fatalf("admitted %d with varying client x-tenant-id, want 2 (one counter: tenant t1)", n)
	}
	ip := func(addr string) map[string]string {
		return map[string]string{"x-api-key": key, contract.HeaderClientIP: addr}
	}
	if a, b := admitted("anon", ip("10.0.0.1")), admitted("anon", ip("10.0.0.2")); a != 2 || b != 2 {
		t.Fatalf("admitted %d and %d, want 2 per client IP", a, b)
	}
	resp, _ := s.Check(context.Background(), checkReq(route("apiKey", ""), "GET", ip("10.0.0.3")))
	if !strings.Contains(strings.Join(resp.GetOkResponse().GetHeadersToRemove(), ","), contract.HeaderClientIP) {
		t.Errorf("client-IP header not removed from the upstream request: %v", resp.GetOkResponse().GetHeadersToRemove())
	}
}

func TestCheckRateLimitFailureModes(t *testing.T) {
	for _, tt := range []struct {
		mode       string
		wantStatus int
	}{{ir.FailOpen, 0}, {ir.FailClosed, 503}} {
		t.Run(tt.mode, func(t *testing.T) {
			s, key, b := limitedService(t, tt.mode)
			b.fail = errors.New("redis down")
			resp, _ := s.Check(context.Background(), checkReq(limitedRoute("r"), "GET", map[string]string{"x-api-key": key}))
			if status, _ := outcome(resp); status != tt.wantStatus || len(resp.GetOkResponse().GetResponseHeadersToAdd()) != 0 {
				t.Fatalf("status %d headers %v, want %d and no rate-limit headers", status, responseHeaders(resp), tt.wantStatus)
			}
		})
	}
}

func TestCheckRateLimitWithoutLimiterDenies(t *testing.T) {
	s, key := newTestService(t)
	resp, _ := s.Check(context.Background(), checkReq(limitedRoute("r"), "GET", map[string]string{"x-api-key": key}))
	if status, reason := outcome(resp); status != 503 || reason != "rate_limit_unavailable" {
		t.Fatalf("Check = %d %s, want 503 rate_limit_unavailable", status, reason)
	}
}
