package policy

import (
	"reflect"
	"slices"
	"testing"
)

// rlBase is base plus API keys, an authenticated route and the start of a
// rateLimits section: cases append the section's fields from line 7.
const rlBase = base + "auth: {apiKeys: {}}\nroutes: [{name: r, backend: be}]\nrateLimits:\n"

func TestLoadRateLimitShapeErrors(t *testing.T) {
	runCases(t, "", []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "unknown section field suggests the closest",
			src:  rlBase + "  tier: {free: unlimited}\n",
			want: []string{`7:3 error rateLimits.tier: unknown field "tier"; did you mean "tiers"?`},
		},
		{
			name: "tiers is a mapping",
			src:  rlBase + "  tiers: [free]\n  defaultTier: free\n",
			want: []string{`7:10 error rateLimits.tiers: expected a mapping, got a list`},
		},
		{
			name: "a tier is a list or unlimited",
			src: rlBase + "  tiers:\n    free: {requests: 1, per: day}\n    pro: Unlimited\n    gold: 5\n    max: ~\n" +
				"  defaultTier: free\n",
			want: []string{
				`8:12 error rateLimits.tiers.free: expected a list of limits or "unlimited", got a mapping`,
				`9:10 error rateLimits.tiers.pro: expected a list of limits or "unlimited", got string "Unlimited"; did you mean "unlimited"?`,
				`10:11 error rateLimits.tiers.gold: expected a list of limits or "unlimited", got integer 5`,
				`11:5 error rateLimits.tiers.max: tier "max" has no value`,
			},
		},
		{
			name: "a tier is defined once",
			src:  rlBase + "  tiers:\n    free: [{requests: 1, per: day}]\n    free: unlimited\n  defaultTier: free\n",
			want: []string{`9:5 error rateLimits.tiers.free: duplicate tier "free" (first defined at p.yaml:8:5)`},
		},
		{
			name: "a tier is defined once across documents",
			src: rlBase + "  tiers: {free: [{requests: 1, per: day}]}\n  defaultTier: free\n---\nversion: 1\n" +
				"rateLimits:\n  tiers: {pro: unlimited, free: unlimited}\n",
			want: []string{`12:27 error rateLimits.tiers.free: duplicate tier "free" (first defined at p.yaml:7:11)`},
		},
		{
			name: "tiers add up across documents",
			src: rlBase + "  tiers: {free: [{requests: 1, per: day}]}\n---\nversion: 1\n" +
				"rateLimits:\n  tiers: {pro: unlimited}\n  defaultTier: pro\n",
			want: nil,
		},
		{
			name: "a tier name that cannot be read hides the tiers",
			src:  rlBase + "  tiers:\n    <<: {free: unlimited}\n    Pro: []\n  defaultTier: gold\n",
			want: []string{`8:5 error rateLimits.tiers: YAML merge keys (<<) are not supported`},
		},
		{
			name: "limit fields",
			src: rlBase + "  tiers:\n    free:\n      - {request: 1, per: day}\n      - {requests: \"5\", per: 1}\n" +
				"      - {requests: 5, per: hour, burst: 0}\n  defaultTier: free\n",
			want: []string{
				`9:10 error rateLimits.tiers.free[0].request: unknown field "request"; did you mean "requests"?`,
				`9:10 error rateLimits.tiers.free[0].requests: missing required field "requests"`,
				`10:20 error rateLimits.tiers.free[1].requests: expected an integer, got string "5"`,
				`10:30 error rateLimits.tiers.free[1].per: expected a string, got integer 1`,
				`11:41 error rateLimits.tiers.free[2].burst: burst 0 is below the rate`,
			},
		},
		{
			name: "anonymous, defaultTier and failureMode are set once across documents",
			src: base + "routes: [{name: r, backend: be, auth: none}]\nrateLimits:\n  anonymous: [{requests: 1, per: second}]\n" +
				"  failureMode: open\n---\nversion: 1\nrateLimits:\n  anonymous: [{requests: 2, per: second}]\n  failureMode: closed\n" +
				"  defaultTier: free\n---\nversion: 1\nrateLimits: {defaultTier: pro}\n",
			want: []string{
				`11:14 error rateLimits.anonymous: duplicate field "anonymous" (first set at p.yaml:6:14)`,
				`12:16 error rateLimits.failureMode: duplicate field "failureMode" (first set at p.yaml:7:16)`,
				`13:16 error rateLimits.defaultTier: tier "free" is not defined: the policy has no tiers`,
				`16:27 error rateLimits.defaultTier: duplicate field "defaultTier" (first set at p.yaml:13:16)`,
			},
		},
		{
			name: "route rateLimit is none or a mapping",
			src: base + "routes:\n  - {name: r, backend: be, rateLimit: off}\n  - {name: s, backend: be, rateLimit: None, match: {path: /s}}\n" +
				"  - {name: t, backend: be, rateLimit: false, match: {path: /t}}\n  - {name: u, backend: be, rateLimit: [], match: {path: /u}}\n" +
				"auth: {apiKeys: {}}\n",
			want: []string{
				`5:39 error routes[0].rateLimit: expected "none" or a mapping, got string "off"`,
				`6:39 error routes[1].rateLimit: expected "none" or a mapping, got string "None"; did you mean "none"?`,
				`7:39 error routes[2].rateLimit: expected "none" or a mapping, got bool false`,
				`8:39 error routes[3].rateLimit: expected "none" or a mapping, got a list`,
			},
		},
		{
			name: "route rateLimit fields",
			src: base + "auth: {apiKeys: {}}\nroutes:\n  - name: r\n    backend: be\n    rateLimit:\n      consumers: true\n" +
				"      shadow: \"yes\"\n      by: consumer\n      extra: {requests: 1, per: second}\n",
			want: []string{
				`9:7 error routes[0].rateLimit.consumers: unknown field "consumers"; did you mean "consumer"?`,
				`10:15 error routes[0].rateLimit.shadow: expected true or false, got string "yes"`,
				`11:11 error routes[0].rateLimit.by: expected a list, got string "consumer"`,
				`12:15 error routes[0].rateLimit.extra: expected a list, got a mapping`,
			},
		},
	})
}

func TestLoadRateLimitFixes(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{
			name: "a tier that is neither a list nor unlimited",
			src:  rlBase + "  tiers: {free: 100}\n  defaultTier: free\n",
			want: "write `free: [{requests: 100, per: minute}]` with its limits, or `free: unlimited`",
		},
		{
			name: "a route rateLimit that is neither none nor a mapping",
			src:  base + "auth: {apiKeys: {}}\nroutes: [{name: r, backend: be, rateLimit: disabled}]\n",
			want: "write `rateLimit: none` for a route that is not rate limited, or a mapping such as " +
				"`rateLimit: {extra: [{requests: 5, per: second}]}`",
		},
		{
			name: "a burst of 0",
			src:  rlBase + "  tiers: {free: [{requests: 1, per: second, burst: 0}]}\n  defaultTier: free\n",
			want: "set burst to at least requests, or remove burst to use the rate as the burst",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := buildString(tt.src)
			if len(ds) != 1 || ds[0].Detail != tt.want {
				t.Errorf("diagnostics %q, want one with the fix %q", ds, tt.want)
			}
		})
	}
}

func TestLoadRateLimitModel(t *testing.T) {
	src := base + `auth: {apiKeys: {}}
routes:
  - {name: r, backend: be, rateLimit: {consumer: false, extra: [{requests: 5, per: second, burst: 10}], by: [consumer, header:X-Tenant, "header:x-b"], shadow: true}}
  - {name: s, backend: be, rateLimit: none, match: {path: /s}}
  - {name: t, backend: be, rateLimit: {}, match: {path: /t}}
rateLimits:
  tiers:
    free: [{requests: 100, per: minute}, {requests: 10000, per: day}]
    enterprise: unlimited
  defaultTier: free
  anonymous: [{requests: 20, per: minute}]
  failureMode: closed
---
version: 1
rateLimits:
  tiers: {pro: &pro [{requests: 1000, per: minute}], team: *pro}
`
	p, ds := Load([]File{{Name: "p.yaml", Content: []byte(src)}})
	if len(ds) != 0 {
		t.Fatalf("Load: %q", render(ds))
	}
	pro := []Limit{{Requests: 1000, Per: "minute"}}
	want := &RateLimits{
		Tiers: []Tier{
			{Name: "free", Limits: []Limit{{Requests: 100, Per: "minute"}, {Requests: 10000, Per: "day"}}},
			{Name: "enterprise", Unlimited: true},
			{Name: "pro", Limits: pro},
			{Name: "team", Limits: pro},
		},
		DefaultTier: "free",
		Anonymous:   []Limit{{Requests: 20, Per: "minute"}},
		FailureMode: "closed",
	}
	if !reflect.DeepEqual(p.RateLimits, want) {
		t.Errorf("rateLimits:\n got %+v\nwant %+v", p.RateLimits, want)
	}
	consumer := false
	routes := []*RouteRateLimit{
		{
			Consumer: &consumer, Extra: []Limit{{Requests: 5, Per: "second", Burst: 10}},
			By: []string{"consumer", "header:X-Tenant", "header:x-b"}, Shadow: true,
		},
		{None: true},
		{},
	}
	for i, r := range p.Routes {
		if !reflect.DeepEqual(r.RateLimit, routes[i]) {
			t.Errorf("routes[%d].rateLimit = %+v, want %+v", i, r.RateLimit, routes[i])
		}
	}
}

func TestLoadWithoutRateLimits(t *testing.T) {
	p, ds := Load([]File{{Name: "p.yaml", Content: []byte(base + "routes: [{name: r, backend: be, auth: none}]\n")}})
	if len(ds) != 0 || p.RateLimits != nil || p.Routes[0].RateLimit != nil {
		t.Errorf("diagnostics %q, rateLimits %+v, route rateLimit %+v: want none", render(ds), p.RateLimits, p.Routes[0].RateLimit)
	}
	if got := render(buildString(base + "routes: [{name: r, backend: be, auth: none}]\n")); !slices.Equal(got, []string{}) {
		t.Errorf("Build: %q", got)
	}
}
