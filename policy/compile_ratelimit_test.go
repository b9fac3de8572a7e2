package policy

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

// buildAllowingWarnings builds src and fails the test on errors only.
func buildAllowingWarnings(t *testing.T, src string) *ir.Config {
	t.Helper()
	cfg, ds := Build([]File{{Name: "p.yaml", Content: []byte(src)}})
	if ds.HasErrors() {
		t.Fatalf("diagnostics: %s", render(ds))
	}
	return cfg
}

func TestCompileRateLimitsSection(t *testing.T) {
	src := base + `auth: {apiKeys: {}}
routes: [{name: r, backend: be}, {name: p, backend: be, auth: none, match: {path: /p}}]
rateLimits:
  tiers:
    pro: [{requests: 1000, per: minute}]
    free: [{requests: 10000, per: day}, {requests: 100, per: minute, burst: 100}, {requests: 5, per: second, burst: 8}]
    enterprise: unlimited
  defaultTier: free
  anonymous: [{requests: 1000, per: month}, {requests: 20, per: minute}]
`
	cfg := buildValid(t, []File{{Name: "p.yaml", Content: []byte(src)}})
	want := ir.RateLimits{
		Tiers: []ir.Tier{
			{Name: "enterprise", Unlimited: true},
			{Name: "free", Limits: []ir.Limit{
				{Requests: 5, Per: time.Second, Unit: "second", Burst: 8},
				{Requests: 100, Per: time.Minute, Unit: "minute"}, // a burst equal to the rate is the default
				{Requests: 10000, Per: 24 * time.Hour, Unit: "day"},
			}},
			{Name: "pro", Limits: []ir.Limit{{Requests: 1000, Per: time.Minute, Unit: "minute"}}},
		},
		DefaultTier: "free",
		Anonymous: []ir.Limit{
			{Requests: 20, Per: time.Minute, Unit: "minute"},
			{Requests: 1000, Per: 30 * 24 * time.Hour, Unit: "month"},
		},
		FailureMode: ir.FailOpen,
		Mode:        ir.RateLimitQuota, // left out: the default
	}
	if !reflect.DeepEqual(cfg.RateLimits, want) {
		got, _ := json.Marshal(cfg.RateLimits)
		wantJSON, _ := json.Marshal(want)
		t.Errorf("rateLimits:\n got %s\nwant %s", got, wantJSON)
	}
}

func TestCompileRateLimitUnits(t *testing.T) {
	tests := []struct {
		unit string
		want time.Duration
	}{
		{unit: "second", want: time.Second},
		{unit: "minute", want: time.Minute},
		{unit: "hour", want: time.Hour},
		{unit: "day", want: 24 * time.Hour},
		{unit: "month", want: 30 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.unit, func(t *testing.T) {
			cfg := buildValid(t, []File{{Name: "p.yaml", Content: []byte(base +
				"routes: [{name: r, backend: be, auth: none, rateLimit: {extra: [{requests: 1, per: " + tt.unit + "}]}}]\n")}})
			got := cfg.Gateways[0].VirtualHosts[0].Routes[0].RateLimit.Extra
			if want := []ir.Limit{{Requests: 1, Per: tt.want, Unit: tt.unit}}; !slices.Equal(got, want) {
				t.Errorf("extra = %+v, want %+v", got, want)
			}
		})
	}
}

func TestCompileRouteRateLimit(t *testing.T) {
	const (
		tiers     = "rateLimits: {tiers: {free: unlimited}, defaultTier: free}\n"
		anonymous = "rateLimits: {anonymous: [{requests: 1, per: second}]}\n"
		both      = "rateLimits: {tiers: {free: unlimited}, defaultTier: free, anonymous: [{requests: 1, per: second}]}\n"
		extra     = "extra: [{requests: 5, per: second}]"
		public    = ", auth: none"
	)
	second := []ir.Limit{{Requests: 5, Per: time.Second, Unit: "second"}}
	tests := []struct {
		name      string
		section   string // the policy's rateLimits section, if any
		auth      string // the route's auth field, if any
		rateLimit string // the route's rateLimit field, if any
		want      ir.RouteRateLimit
	}{
		{name: "no section, no block: not limited"},
		{name: "no section, public: not limited", auth: public},
		{
			name: "no section, extra keyed by the consumer", rateLimit: "{" + extra + "}",
			want: ir.RouteRateLimit{Enabled: true, Extra: second, By: []string{"consumer"}},
		},
		{
			name: "no section, public extra keyed by the client IP", auth: public, rateLimit: "{" + extra + "}",
			want: ir.RouteRateLimit{Enabled: true, Extra: second, By: []string{"clientIP"}},
		},
		{name: "tiers: an authenticated route applies the tier", section: tiers, want: ir.RouteRateLimit{Enabled: true, Consumer: true}},
		{name: "tiers: a public route does not", section: tiers, auth: public},
		{name: "tiers: consumer false opts out", section: tiers, rateLimit: "{consumer: false}"},
		{
			name: "tiers: consumer false keeps extra", section: tiers, rateLimit: "{consumer: false, " + extra + "}",
			want: ir.RouteRateLimit{Enabled: true, Extra: second, By: []string{"consumer"}},
		},
		{name: "tiers: none is not limited", section: both, rateLimit: "none"},
		{name: "anonymous: a public route applies them", section: anonymous, auth: public, want: ir.RouteRateLimit{Enabled: true, Anonymous: true}},
		{name: "anonymous: an authenticated route does not", section: both, want: ir.RouteRateLimit{Enabled: true, Consumer: true}},
		{name: "anonymous: none is not limited", section: anonymous, auth: public, rateLimit: "none"},
		{
			name: "by is sorted, header names lower case", section: tiers,
			rateLimit: "{" + extra + ", by: [header:X-B, clientIP, consumer, \"header:x-a\"]}",
			want: ir.RouteRateLimit{
				Enabled: true, Consumer: true, Extra: second, By: []string{"clientIP", "consumer", "header:x-a", "header:x-b"},
			},
		},
		{name: "by without extra keys nothing", section: tiers, rateLimit: "{by: [clientIP]}", want: ir.RouteRateLimit{Enabled: true, Consumer: true}},
		{name: "shadow", section: tiers, rateLimit: "{shadow: true}", want: ir.RouteRateLimit{Enabled: true, Consumer: true, Shadow: true}},
		{
			name: "extra limits are sorted by window", rateLimit: "{extra: [{requests: 100, per: hour}, {requests: 5, per: second, burst: 9}]}",
			want: ir.RouteRateLimit{Enabled: true, By: []string{"consumer"}, Extra: []ir.Limit{
				{Requests: 5, Per: time.Second, Unit: "second", Burst: 9}, {Requests: 100, Per: time.Hour, Unit: "hour"},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route := "routes: [{name: r, backend: be" + tt.auth
			if tt.rateLimit != "" {
				route += ", rateLimit: " + tt.rateLimit
			}
			src := base + "auth: {apiKeys: {}}\n" + tt.section + route + "}]\n"
			cfg := buildAllowingWarnings(t, src)
			if got := cfg.Gateways[0].VirtualHosts[0].Routes[0].RateLimit; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("route rateLimit = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCompileNeedsRateLimit(t *testing.T) {
	tests := []struct {
		name   string
		routes string
		want   bool
	}{
		{name: "no limited route", routes: "[{name: r, backend: be, auth: none}]"},
		{name: "a limited route", routes: "[{name: r, backend: be, auth: none}, {name: s, backend: be, match: {path: /s}}]", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := base + "auth: {apiKeys: {}}\nrateLimits: {tiers: {free: unlimited}, defaultTier: free}\nroutes: " + tt.routes + "\n"
			cfg := buildValid(t, []File{{Name: "p.yaml", Content: []byte(src)}})
			if got := cfg.Gateways[0].NeedsRateLimit(); got != tt.want {
				t.Errorf("NeedsRateLimit() = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestCompileRateLimitsIgnoreListOrder reverses every rate-limit list of
// valid_ratelimit.yaml: the IR must not change, nor the policy itself.
func TestCompileRateLimitsIgnoreListOrder(t *testing.T) {
	p, ds := Load(readFiles(t, "testdata/valid_ratelimit.yaml"))
	if len(ds) != 0 {
		t.Fatal(ds.Err())
	}
	want := Compile(p).Hash()
	rl := p.RateLimits
	slices.Reverse(rl.Tiers)
	slices.Reverse(rl.Anonymous)
	for _, tier := range rl.Tiers {
		slices.Reverse(tier.Limits)
	}
	var search *RouteRateLimit
	for _, r := range p.Routes {
		if r.RateLimit != nil {
			slices.Reverse(r.RateLimit.Extra)
			slices.Reverse(r.RateLimit.By)
		}
		if r.Name == "search" {
			search = r.RateLimit
		}
	}
	before := slices.Clone(search.By)
	if got := Compile(p).Hash(); got != want {
		t.Errorf("hash %s after reversing the rate-limit lists, want %s", got, want)
	}
	if !slices.Equal(search.By, before) {
		t.Errorf("Compile changed the policy's by list in place: %q, was %q", search.By, before)
	}
}
