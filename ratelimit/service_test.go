package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	commonrl "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/ratelimit/counter"
)

// testConfig: tiers free (3/minute, 5/day), pro (100/minute), enterprise
// (unlimited); routes search (consumer tier + 2/second extra), open
// (anonymous 2/minute), tiered (tier only) and shadowed (tier, shadow).
func testConfig() *ir.Config {
	minute, day := time.Minute, 24*time.Hour
	route := func(name string, rl ir.RouteRateLimit) ir.Route { return ir.Route{Name: name, RateLimit: rl} }
	return &ir.Config{
		RateLimits: ir.RateLimits{
			Tiers: []ir.Tier{
				{Name: "enterprise", Unlimited: true},
				{Name: "free", Limits: []ir.Limit{{Requests: 3, Per: minute, Unit: "minute"}, {Requests: 5, Per: day, Unit: "day"}}},
				{Name: "pro", Limits: []ir.Limit{{Requests: 100, Per: minute, Unit: "minute"}}},
			},
			DefaultTier: "free",
			Anonymous:   []ir.Limit{{Requests: 2, Per: minute, Unit: "minute"}},
		},
		Gateways: []ir.Gateway{{Name: "g", VirtualHosts: []ir.VirtualHost{{Name: "any", Routes: []ir.Route{
			route("tiered", ir.RouteRateLimit{Enabled: true, Consumer: true}),
			route("search", ir.RouteRateLimit{Enabled: true, Consumer: true, Extra: []ir.Limit{{Requests: 2, Per: time.Second, Unit: "second"}}, By: []string{"consumer"}}),
			route("open", ir.RouteRateLimit{Enabled: true, Anonymous: true}),
			route("shadowed", ir.RouteRateLimit{Enabled: true, Consumer: true, Shadow: true}),
		}}}}},
	}
}

// recordingBackend counts Take calls on top of a memory backend.
type recordingBackend struct {
	counter.Backend
	takes int
	fail  error
}

func (r *recordingBackend) Take(ctx context.Context, l []counter.Limit) (bool, []counter.Result, error) {
	r.takes++
	if r.fail != nil {
		return false, nil, r.fail
	}
	return r.Backend.Take(ctx, l)
}

func newTestService(t *testing.T) (*Service, *recordingBackend, *time.Time) {
	t.Helper()
	now := time.Unix(1_000_000, 0)
	b := &recordingBackend{Backend: counter.NewMemory(func() time.Time { return now })}
	s := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Backend: b})
	if _, err := s.Swap(testConfig()); err != nil {
		t.Fatal(err)
	}
	return s, b, &now
}

func request(entries ...string) *rlsv3.RateLimitRequest {
	d := &commonrl.RateLimitDescriptor{}
	for i := 0; i+1 < len(entries); i += 2 {
		d.Entries = append(d.Entries, &commonrl.RateLimitDescriptor_Entry{Key: entries[i], Value: entries[i+1]})
	}
	return &rlsv3.RateLimitRequest{Domain: ir.RateLimitDomain, Descriptors: []*commonrl.RateLimitDescriptor{d}}
}

func headerMap(resp *rlsv3.RateLimitResponse) map[string]string {
	out := map[string]string{}
	for _, h := range resp.GetResponseHeadersToAdd() {
		out[h.GetKey()] = h.GetValue()
	}
	return out
}

// admitted sends n requests and counts the OK answers.
func admitted(t *testing.T, s *Service, n int, entries ...string) int {
	t.Helper()
	ok := 0
	for i := 0; i < n; i++ {
		resp, err := s.ShouldRateLimit(context.Background(), request(entries...))
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetOverallCode() == rlsv3.RateLimitResponse_OK {
			ok++
		}
	}
	return ok
}

func TestTiers(t *testing.T) {
	tests := []struct {
		name, tier string
		requests   int
		wantOK     int
		wantTakes  int
	}{
		{"free per minute", "free", 5, 3, 5},
		{"unknown tier gets the default", "gold", 5, 3, 5},
		{"no tier gets the default", "", 5, 3, 5},
		{"pro", "pro", 120, 100, 120},
		{"enterprise is never limited and never counted", "enterprise", 200, 200, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, b, _ := newTestService(t)
			if ok := admitted(t, s, tt.requests, "route", "tiered", "consumer", "c", "tier", tt.tier); ok != tt.wantOK {
				t.Fatalf("admitted %d of %d, want %d", ok, tt.requests, tt.wantOK)
			}
			if b.takes != tt.wantTakes {
				t.Fatalf("backend calls = %d, want %d", b.takes, tt.wantTakes)
			}
		})
	}
}

func TestDayLimitBitesIndependently(t *testing.T) {
	s, _, now := newTestService(t)
	req := []string{"route", "tiered", "consumer", "d", "tier", "free"}
	got := []int{admitted(t, s, 5, req...)}
	*now = now.Add(time.Minute)
	got = append(got, admitted(t, s, 5, req...))
	*now = now.Add(time.Minute)
	got = append(got, admitted(t, s, 5, req...))
	// 3/minute, then the day's 5 run out: 3, 2, 0.
	if got[0] != 3 || got[1] != 2 || got[2] != 0 {
		t.Fatalf("admitted per minute = %v, want [3 2 0]", got)
	}
}

func TestOverLimitResponse(t *testing.T) {
	s, _, now := newTestService(t)
	req := []string{"route", "search", "consumer", "alice", "tier", "pro"}
	if ok := admitted(t, s, 10, req...); ok != 2 {
		t.Fatalf("admitted %d, want 2 (the extra 2/second limit)", ok)
	}
	resp, _ := s.ShouldRateLimit(context.Background(), request(req...))
	h := headerMap(resp)
	if resp.GetOverallCode() != rlsv3.RateLimitResponse_OVER_LIMIT || h["retry-after"] != "1" || h["x-ratelimit-limit"] != "2" ||
		h["x-ratelimit-remaining"] != "0" || !strings.Contains(h["ratelimit-policy"], `"pro";q=100;w=60`) ||
		!strings.Contains(h["ratelimit-policy"], `"search";q=2;w=1`) {
		t.Fatalf("response = %v, headers %v", resp.GetOverallCode(), h)
	}
	if !strings.Contains(string(resp.GetRawBody()), `"retryAfter":1`) {
		t.Errorf("body = %s", resp.GetRawBody())
	}
	*now = now.Add(time.Second)
	if ok := admitted(t, s, 1, req...); ok != 1 {
		t.Fatal("not admitted after waiting Retry-After")
	}
}

func TestAllowedResponseCarriesHeaders(t *testing.T) {
	s, _, _ := newTestService(t)
	resp, _ := s.ShouldRateLimit(context.Background(), request("route", "tiered", "consumer", "e", "tier", "free"))
	h := headerMap(resp)
	if resp.GetOverallCode() != rlsv3.RateLimitResponse_OK || h["x-ratelimit-limit"] != "3" || h["x-ratelimit-remaining"] != "2" ||
		h["ratelimit"] != `"free";r=2;t=20` || h["retry-after"] != "" {
		t.Fatalf("headers = %v", h)
	}
}

func TestAnonymousPerClientIP(t *testing.T) {
	s, _, _ := newTestService(t)
	a := admitted(t, s, 5, "route", "open", "remote_address", "10.0.0.1")
	b := admitted(t, s, 5, "route", "open", "remote_address", "10.0.0.2")
	if a != 2 || b != 2 {
		t.Fatalf("admitted %d and %d, want 2 per client IP", a, b)
	}
}

func TestShadowNeverRejects(t *testing.T) {
	s, _, _ := newTestService(t)
	if ok := admitted(t, s, 10, "route", "shadowed", "consumer", "f", "tier", "free"); ok != 10 {
		t.Fatalf("shadow route admitted %d of 10", ok)
	}
}

func TestUnknownRouteAndDomainAreNotLimited(t *testing.T) {
	s, b, _ := newTestService(t)
	if ok := admitted(t, s, 10, "route", "gone", "consumer", "c"); ok != 10 {
		t.Fatalf("unknown route: admitted %d of 10", ok)
	}
	resp, err := s.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{Domain: "other"})
	if err != nil || resp.GetOverallCode() != rlsv3.RateLimitResponse_OK || b.takes != 0 {
		t.Fatalf("other domain: %v %v, takes %d", resp, err, b.takes)
	}
}

func TestFailureModes(t *testing.T) {
	tests := []struct {
		mode    string
		wantOK  int  // of 5 requests with the backend down
		wantErr bool // answered with a gRPC error (Envoy denies with 503)
	}{
		{ir.FailOpen, 5, false},
		{ir.FailClosed, 0, true},
		{ir.FailLocal, 3, false}, // counted in memory: free is 3/minute
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			s, b, _ := newTestService(t)
			s.opts.Local = counter.NewMemory(time.Now)
			cfg := testConfig()
			cfg.RateLimits.FailureMode = tt.mode
			s.Swap(cfg)
			b.fail = errors.New("redis down")
			ok, errs := 0, 0
			for i := 0; i < 5; i++ {
				resp, err := s.ShouldRateLimit(context.Background(), request("route", "tiered", "consumer", "c", "tier", "free"))
				switch {
				case err != nil:
					errs++
				case resp.GetOverallCode() == rlsv3.RateLimitResponse_OK:
					ok++
				}
			}
			if ok != tt.wantOK || (errs > 0) != tt.wantErr {
				t.Fatalf("ok %d errors %d; want ok %d, errors %v", ok, errs, tt.wantOK, tt.wantErr)
			}
			if b.takes != 2 {
				t.Errorf("backend tried %d times, want 2 (two failures in a row open the breaker)", b.takes)
			}
		})
	}
}

func TestNoPolicyIsAnError(t *testing.T) {
	s := New(Options{Backend: counter.NewMemory(time.Now)})
	if _, err := s.ShouldRateLimit(context.Background(), request("route", "r")); err == nil {
		t.Fatal("decided without a policy")
	}
}

// TestInvalidLimitIsThatLimitsProblem: a limit the counters cannot enforce
// (a bucket of a billion at one request per month) is skipped; it neither
// fails its own route nor trips the backoff for the others, in any failure
// mode. Before ir.CheckLimit was applied at Swap, every Take on the broken
// route failed, and in closed mode every other route was denied too.
func TestInvalidLimitIsThatLimitsProblem(t *testing.T) {
	for _, mode := range []string{ir.FailOpen, ir.FailClosed} {
		t.Run(mode, func(t *testing.T) {
			s, b, _ := newTestService(t)
			cfg := testConfig()
			cfg.RateLimits.FailureMode = mode
			huge := ir.Limit{Requests: 1, Per: 30 * 24 * time.Hour, Unit: "month", Burst: 1_000_000_000}
			vh := &cfg.Gateways[0].VirtualHosts[0]
			vh.Routes = append(vh.Routes, ir.Route{Name: "broken", RateLimit: ir.RouteRateLimit{Enabled: true, Consumer: true,
				Extra: []ir.Limit{huge, {Requests: 4, Per: time.Second, Unit: "second"}}, By: []string{"consumer"}}})
			s.opts.Metrics = NewMetrics(prometheus.NewRegistry())
			if _, err := s.Swap(cfg); err != nil {
				t.Fatal(err)
			}
			// The broken route keeps its free tier (3/minute) and its valid extra limit.
			if ok := admitted(t, s, 5, "route", "broken", "consumer", "x", "tier", "free"); ok != 3 {
				t.Fatalf("broken route admitted %d of 5, want 3 (its tier limit)", ok)
			}
			if ok := admitted(t, s, 5, "route", "tiered", "consumer", "y", "tier", "free"); ok != 3 {
				t.Fatalf("other route admitted %d of 5, want 3", ok)
			}
			if b.takes != 10 || s.guard.Open() {
				t.Fatalf("backend takes %d (want 10), breaker open %v (want closed: no backoff)", b.takes, s.guard.Open())
			}
			var m dto.Metric
			if err := s.opts.Metrics.invalid.Write(&m); err != nil || m.GetGauge().GetValue() != 1 {
				t.Errorf("invalid limits gauge = %v (%v), want 1", m.GetGauge().GetValue(), err)
			}
		})
	}
}

// TestInvalidLimitErrorIsNoOutage: should a backend still refuse a limit
// as invalid, that request is admitted uncounted and the backend is not
// skipped: the next request of another route reaches it.
func TestInvalidLimitErrorIsNoOutage(t *testing.T) {
	s, b, _ := newTestService(t)
	cfg := testConfig()
	cfg.RateLimits.FailureMode = ir.FailClosed
	s.Swap(cfg)
	b.fail = fmt.Errorf("%w: stricter backend", counter.ErrInvalidLimit)
	if ok := admitted(t, s, 1, "route", "tiered", "consumer", "x", "tier", "free"); ok != 1 {
		t.Fatal("a Take refused for an invalid limit was not admitted")
	}
	b.fail = nil
	if ok := admitted(t, s, 4, "route", "open", "remote_address", "10.0.0.9"); ok != 2 || b.takes != 5 {
		t.Fatalf("after an invalid-limit error: admitted %d of 4 (want 2), takes %d (want 5)", ok, b.takes)
	}
}

// stallBackend blocks every Take until release is closed, then fails it
// with err (nil: answers from the memory backend).
type stallBackend struct {
	counter.Backend
	mu      sync.Mutex
	takes   int
	started chan struct{}
	release chan struct{}
	err     error
}

func (b *stallBackend) Take(ctx context.Context, l []counter.Limit) (bool, []counter.Result, error) {
	b.mu.Lock()
	b.takes++
	release, err := b.release, b.err
	b.mu.Unlock()
	if release != nil {
		b.started <- struct{}{}
		<-release
		return false, nil, err
	}
	return b.Backend.Take(ctx, l)
}

// TestOneStallDoesNotOpenTheBreaker: three calls in flight together that
// all time out (one stall of the process or of Redis) count as one
// failure, so the next call goes to the backend and is counted; before,
// the first timeout opened the breaker and the replica answered every call
// with the failure mode for 500 ms (26 refused 503s in a replica kill-loop
// soak). Two failures in a row, or one refused connection, still open it.
func TestOneStallDoesNotOpenTheBreaker(t *testing.T) {
	b := &stallBackend{Backend: counter.NewMemory(time.Now), started: make(chan struct{}), release: make(chan struct{}),
		err: fmt.Errorf("counter: redis take: %w", context.DeadlineExceeded)}
	s := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Backend: b})
	cfg := testConfig()
	cfg.RateLimits.FailureMode = ir.FailClosed
	if _, err := s.Swap(cfg); err != nil {
		t.Fatal(err)
	}
	req := request("route", "tiered", "consumer", "c", "tier", "free")
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { _, _ = s.ShouldRateLimit(context.Background(), req) })
		<-b.started
	}
	close(b.release)
	wg.Wait()
	b.mu.Lock()
	b.release = nil
	b.mu.Unlock()
	resp, err := s.ShouldRateLimit(context.Background(), req)
	if err != nil || resp.GetOverallCode() != rlsv3.RateLimitResponse_OK || b.takes != 4 {
		t.Fatalf("after one stall: %v %v, backend takes %d; want OK from the backend (4 takes)", resp.GetOverallCode(), err, b.takes)
	}
	for _, fail := range []error{context.DeadlineExceeded, &net.OpError{Op: "dial", Err: errors.New("connection refused")}} {
		s := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Backend: &recordingBackend{fail: fail}})
		s.Swap(cfg)
		for range 5 {
			_, _ = s.ShouldRateLimit(context.Background(), req)
		}
		if !s.guard.Open() {
			t.Errorf("backend failing with %v on every call: breaker closed, want open", fail)
		}
	}
}
