package ratelimit

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"

	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/ratelimit/counter"
)

// TestDecideMatchesShouldRateLimit: the in-process entry point gives the
// same answers, headers and bodies as the RLS for the same request, on
// twin services with twin clocks.
func TestDecideMatchesShouldRateLimit(t *testing.T) {
	tests := []struct {
		name    string
		req     Request
		entries []string
		n       int
	}{
		{"tier limits", Request{Route: "tiered", Consumer: "c", Tier: "free"}, []string{"route", "tiered", "consumer", "c", "tier", "free"}, 5},
		{"tier and extra", Request{Route: "search", Consumer: "a", Tier: "pro"}, []string{"route", "search", "consumer", "a", "tier", "pro"}, 4},
		{"anonymous per IP", Request{Route: "open", ClientIP: "10.0.0.9"}, []string{"route", "open", "remote_address", "10.0.0.9"}, 4},
		{"shadow", Request{Route: "shadowed", Consumer: "s", Tier: "free"}, []string{"route", "shadowed", "consumer", "s", "tier", "free"}, 5},
		{"unlimited tier", Request{Route: "tiered", Consumer: "e", Tier: "enterprise"}, []string{"route", "tiered", "consumer", "e", "tier", "enterprise"}, 2},
		{"unknown route", Request{Route: "gone", Consumer: "c"}, []string{"route", "gone", "consumer", "c"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rls, _, _ := newTestService(t)
			inproc, _, _ := newTestService(t)
			for i := 0; i < tt.n; i++ {
				want, err := rls.ShouldRateLimit(context.Background(), request(tt.entries...))
				if err != nil {
					t.Fatal(err)
				}
				d := inproc.Decide(context.Background(), tt.req)
				wantOK := want.GetOverallCode() == rlsv3.RateLimitResponse_OK
				if d.Err() != nil || d.Allowed() != wantOK || !sameHeaders(d.ResponseHeaders(), want.GetResponseHeadersToAdd()) ||
					string(d.Body()) != string(want.GetRawBody()) || d.Kind() != want.GetDynamicMetadata().GetFields()[MetadataDecision].GetStringValue() {
					t.Fatalf("request %d: Decide = %v %v %s %s, ShouldRateLimit = %v %v %s", i+1, d.Allowed(), d.ResponseHeaders(), d.Body(),
						d.Kind(), want.GetOverallCode(), want.GetResponseHeadersToAdd(), want.GetRawBody())
				}
			}
		})
	}
}

func sameHeaders(a, b []*corev3.HeaderValue) bool {
	return slices.EqualFunc(a, b, func(x, y *corev3.HeaderValue) bool { return x.GetKey() == y.GetKey() && x.GetValue() == y.GetValue() })
}

// TestDecideSharesCountersWithRLS: both entry points charge the same
// counters, so a consumer served on both paths has one account.
func TestDecideSharesCountersWithRLS(t *testing.T) {
	s, b, _ := newTestService(t)
	admitted(t, s, 2, "route", "tiered", "consumer", "shared", "tier", "free")
	req := Request{Route: "tiered", Consumer: "shared", Tier: "free"}
	if d := s.Decide(context.Background(), req); !d.Allowed() {
		t.Fatal("third request rejected; free allows 3/minute")
	}
	if d := s.Decide(context.Background(), req); d.Allowed() || d.Kind() != "over_limit" || !hasHeader(d.ResponseHeaders(), "retry-after", "20") {
		t.Fatalf("fourth request: allowed %v kind %s headers %v", d.Allowed(), d.Kind(), d.ResponseHeaders())
	}
	if b.takes != 4 {
		t.Errorf("backend calls = %d, want one per decision (4)", b.takes)
	}
}

func hasHeader(hs []*corev3.HeaderValue, k, v string) bool {
	return slices.ContainsFunc(hs, func(h *corev3.HeaderValue) bool { return h.GetKey() == k && h.GetValue() == v })
}

// TestDecideKeyedHeaders: extra limits keyed by a header read it through
// Request.Header, only for the headers the route keys on; requests without
// the header share one counter, as through the RLS.
func TestDecideKeyedHeaders(t *testing.T) {
	s, _, _ := newTestService(t)
	cfg := testConfig()
	cfg.Gateways[0].VirtualHosts[0].Routes = append(cfg.Gateways[0].VirtualHosts[0].Routes, ir.Route{Name: "byhdr",
		RateLimit: ir.RouteRateLimit{Enabled: true, Extra: []ir.Limit{{Requests: 2, Per: time.Minute}}, By: []string{"header:x-tenant-id"}}})
	if _, err := s.Swap(cfg); err != nil {
		t.Fatal(err)
	}
	var asked []string
	header := func(v string) func(string) string {
		return func(name string) string { asked = append(asked, name); return v }
	}
	count := func(v string, n int) int {
		ok := 0
		for i := 0; i < n; i++ {
			if s.Decide(context.Background(), Request{Route: "byhdr", Consumer: "c", Header: header(v)}).Allowed() {
				ok++
			}
		}
		return ok
	}
	if a, b, none := count("t1", 4), count("t2", 4), count("", 4); a != 2 || b != 2 || none != 2 {
		t.Fatalf("admitted t1 %d, t2 %d, no header %d; want 2 each", a, b, none)
	}
	if slices.ContainsFunc(asked, func(n string) bool { return n != "x-tenant-id" }) {
		t.Errorf("asked for headers %v, want only x-tenant-id", asked)
	}
	// The same counter as the RLS descriptor with that header entry.
	if ok := admitted(t, s, 1, "route", "byhdr", "consumer", "c", "header:x-tenant-id", "t1"); ok != 0 {
		t.Error("the RLS admitted a request the in-process path had used up")
	}
}

func TestDecideFailureModes(t *testing.T) {
	tests := []struct {
		mode    string
		wantOK  int
		wantErr bool
	}{
		{ir.FailOpen, 5, false},
		{ir.FailClosed, 0, true},
		{ir.FailLocal, 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			s, b, _ := newTestService(t)
			s.opts.Local = counter.NewMemory(time.Now)
			cfg := testConfig()
			cfg.RateLimits.FailureMode = tt.mode
			if _, err := s.Swap(cfg); err != nil {
				t.Fatal(err)
			}
			b.fail = errors.New("redis down")
			ok, errs := 0, 0
			for i := 0; i < 5; i++ {
				d := s.Decide(context.Background(), Request{Route: "tiered", Consumer: "c", Tier: "free"})
				if d.Err() != nil {
					errs++
				} else if d.Allowed() {
					ok++
				}
			}
			if ok != tt.wantOK || (errs > 0) != tt.wantErr || b.takes != 2 {
				t.Fatalf("ok %d errors %d backend calls %d; want ok %d, errors %v, 2 calls (two failures in a row open the breaker)",
					ok, errs, b.takes, tt.wantOK, tt.wantErr)
			}
		})
	}
}

func TestDecideWithoutPolicyIsAnError(t *testing.T) {
	s := New(Options{Backend: counter.NewMemory(time.Now)})
	if d := s.Decide(context.Background(), Request{Route: "r"}); d.Err() == nil || d.Allowed() {
		t.Fatalf("decided without a policy: allowed %v err %v", d.Allowed(), d.Err())
	}
}
