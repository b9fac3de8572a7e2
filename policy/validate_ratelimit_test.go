package policy

import (
	"testing"
)

// tiered is a valid rateLimits section with the tiers free and pro, on
// lines 4 to 7: route cases append their routes from line 8.
const tiered = "rateLimits:\n  tiers: {free: [{requests: 100, per: minute}], pro: unlimited}\n" +
	"  defaultTier: free\nauth: {apiKeys: {}}\n"

func TestValidateRateLimits(t *testing.T) {
	runCases(t, rlBase, []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "a valid section",
			src: "  tiers:\n    free: [{requests: 100, per: minute}, {requests: 10000, per: day, burst: 20000}]\n" +
				"    enterprise: unlimited\n  defaultTier: free\n  failureMode: local\n",
		},
		{
			name: "tier names follow the name rule",
			src:  "  tiers: {Free_1: unlimited, free-1: unlimited}\n  defaultTier: free-1\n",
			want: []string{`7:11 error rateLimits.tiers.Free_1: invalid tier name "Free_1"`},
		},
		{
			name: "a tier lists limits",
			src:  "  tiers: {free: []}\n  defaultTier: free\n",
			want: []string{`7:11 error rateLimits.tiers.free: tier "free" has no limits`},
		},
		{
			name: "requests are positive",
			src:  "  tiers: {free: [{requests: 0, per: minute}, {requests: -5, per: day}]}\n  defaultTier: free\n",
			want: []string{
				`7:29 error rateLimits.tiers.free[0].requests: requests must be greater than 0, got 0`,
				`7:57 error rateLimits.tiers.free[1].requests: requests must be greater than 0, got -5`,
			},
		},
		{
			name: "units are known, with a did-you-mean",
			src:  "  tiers: {free: [{requests: 1, per: minutes}, {requests: 1, per: Day}, {requests: 1, per: 1m}]}\n  defaultTier: free\n",
			want: []string{
				`7:37 error rateLimits.tiers.free[0].per: unknown unit "minutes"; did you mean "minute"?`,
				`7:66 error rateLimits.tiers.free[1].per: unknown unit "Day"; did you mean "day"?`,
				`7:91 error rateLimits.tiers.free[2].per: unknown unit "1m"`,
			},
		},
		{
			name: "a burst is not below the rate",
			src:  "  tiers: {free: [{requests: 10, per: second, burst: 5}, {requests: 10, per: minute, burst: 10}]}\n  defaultTier: free\n",
			want: []string{`7:53 error rateLimits.tiers.free[0].burst: burst 5 is below the rate of 10 requests`},
		},
		{
			name: "a bucket is within what the counters enforce",
			src: "  tiers: {free: [{requests: 1, per: month, burst: 1000000000}, {requests: 1, per: day, burst: 26063}, " +
				"{requests: 3000000000000000, per: second}], pro: [{requests: 1, per: month, burst: 868}]}\n  defaultTier: free\n",
			want: []string{
				`7:51 error rateLimits.tiers.free[0].burst: burst 1000000000 is more than the rate-limit counters can enforce at 1 requests per month: ` +
					`a bucket may take at most 2^51 µs (about 71 years) to refill, 868 requests at this rate`,
				`7:95 error rateLimits.tiers.free[1].burst: burst 26063 is more than the rate-limit counters can enforce at 1 requests per day: ` +
					`a bucket may take at most 2^51 µs (about 71 years) to refill, 26062 requests at this rate`,
				`7:114 error rateLimits.tiers.free[2].requests: requests 3000000000000000 is more than the rate-limit counters can enforce at 3000000000000000 requests per second: ` +
					`a bucket may take at most 2^51 µs (about 71 years) to refill, 2251799813685248 requests at this rate`,
			},
		},
		{
			name: "one limit per unit",
			src:  "  tiers:\n    free:\n      - {requests: 10, per: minute}\n      - {requests: 20, per: minute}\n  defaultTier: free\n",
			want: []string{`10:29 error rateLimits.tiers.free[1].per: duplicate unit "minute"; first used at rateLimits.tiers.free[0].per (p.yaml:9:29)`},
		},
		{
			name: "defaultTier is required with tiers",
			src:  "  tiers: {free: unlimited}\n",
			want: []string{`7:3 error rateLimits.defaultTier: rateLimits.defaultTier is required when tiers are defined`},
		},
		{
			name: "defaultTier names a tier, with a did-you-mean",
			src:  "  tiers: {free: unlimited, pro: unlimited}\n  defaultTier: fre\n",
			want: []string{`8:16 error rateLimits.defaultTier: tier "fre" is not defined; did you mean "free"?`},
		},
		{
			name: "defaultTier without tiers",
			src:  "  defaultTier: free\n",
			want: []string{`7:16 error rateLimits.defaultTier: tier "free" is not defined: the policy has no tiers`},
		},
		{
			name: "tier references are not checked when the tiers could not be read",
			src:  "  tiers: free\n  defaultTier: gold\n",
			want: []string{`7:10 error rateLimits.tiers: expected a mapping, got string "free"`},
		},
		{
			name: "anonymous limits are checked like a tier's",
			src:  "  anonymous: []\n---\nversion: 1\nroutes: [{name: p, backend: be, auth: none, match: {path: /p}}]\n",
			want: []string{`7:14 error rateLimits.anonymous: anonymous has no limits`},
		},
		{
			name: "anonymous limits that no public route uses",
			src:  "  anonymous: [{requests: 1, per: second}]\n",
			want: []string{`7:14 warning rateLimits.anonymous: anonymous limits are not used: no public route (auth: none) is rate limited`},
		},
		{
			name: "a public route that is not rate limited does not use them",
			src:  "  anonymous: [{requests: 1, per: second}]\n---\nversion: 1\nroutes: [{name: p, backend: be, auth: none, rateLimit: none, match: {path: /p}}]\n",
			want: []string{`7:14 warning rateLimits.anonymous: anonymous limits are not used: no public route (auth: none) is rate limited`},
		},
		{
			name: "a public route uses them",
			src:  "  anonymous: [{requests: 1, per: second}]\n---\nversion: 1\nroutes: [{name: p, backend: be, auth: none, match: {path: /p}}]\n",
		},
		{
			name: "failureMode is open, closed or local",
			src:  "  failureMode: opne\n---\nversion: 1\nrateLimits: {failureMode: deny}\n",
			want: []string{
				`7:16 error rateLimits.failureMode: unknown failureMode "opne"; did you mean "open"?`,
				`10:27 error rateLimits.failureMode: duplicate field "failureMode" (first set at p.yaml:7:16)`,
			},
		},
	})
}

func TestValidateRouteRateLimit(t *testing.T) {
	runCases(t, base+tiered, []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "valid routes",
			src: "routes:\n  - {name: a, backend: be, rateLimit: {consumer: true, extra: [{requests: 5, per: second, burst: 10}], " +
				"by: [consumer, \"header:X-Tenant-Id\", clientIP]}}\n" +
				"  - {name: b, backend: be, auth: none, match: {path: /b}, rateLimit: {extra: [{requests: 1, per: second}], by: [clientIP, header:x-key]}}\n" +
				"  - {name: c, backend: be, auth: none, match: {path: /c}, rateLimit: none}\n" +
				"  - {name: d, backend: be, match: {path: /d}, rateLimit: {shadow: true}}\n",
		},
		{
			name: "there is no consumer on a public route",
			src:  "routes: [{name: p, backend: be, auth: none, rateLimit: {consumer: true, extra: [{requests: 1, per: second}]}}]\n",
			want: []string{`8:67 error routes[0].rateLimit.consumer: there is no consumer on a public route (auth: none)`},
		},
		{
			name: "a public route keys by no consumer",
			src:  "routes: [{name: p, backend: be, auth: none, rateLimit: {extra: [{requests: 1, per: second}], by: [clientIP, consumer]}}]\n",
			want: []string{`8:109 error routes[0].rateLimit.by[1]: there is no consumer on a public route (auth: none) to key limits by`},
		},
		{
			name: "by keys",
			src: "routes:\n  - name: r\n    backend: be\n    rateLimit:\n      extra: [{requests: 1, per: second}]\n" +
				"      by: [clientIp, ip, x-tenant, \"header:\", \"header::path\", \"header:a b\", Header:x-a, header:X-A, \"header:x-a\", consumer, consumer]\n",
			want: []string{
				`13:12 error routes[0].rateLimit.by[0]: unknown key "clientIp"; did you mean "clientIP"?`,
				`13:22 error routes[0].rateLimit.by[1]: unknown key "ip"`,
				`13:26 error routes[0].rateLimit.by[2]: unknown key "x-tenant"`,
				`13:36 error routes[0].rateLimit.by[3]: invalid key "header:": no header name`,
				`13:47 error routes[0].rateLimit.by[4]: invalid key "header::path": a pseudo-header is not a request header`,
				`13:63 error routes[0].rateLimit.by[5]: invalid key "header:a b": not a valid header name`,
				`13:77 error routes[0].rateLimit.by[6]: unknown key "Header:x-a"; did you mean "header:x-a"?`,
				`13:101 error routes[0].rateLimit.by[8]: duplicate key "header:x-a"; first listed at routes[0].rateLimit.by[7] (p.yaml:13:89)`,
				`13:125 error routes[0].rateLimit.by[10]: duplicate key "consumer"; first listed at routes[0].rateLimit.by[9] (p.yaml:13:115)`,
			},
		},
		{
			name: "by is not empty",
			src:  "routes: [{name: r, backend: be, rateLimit: {extra: [{requests: 1, per: second}], by: []}}]\n",
			want: []string{`8:86 error routes[0].rateLimit.by: by is empty`},
		},
		{
			name: "extra limits are checked like a tier's",
			src: "routes:\n  - {name: r, backend: be, rateLimit: {extra: []}}\n" +
				"  - {name: s, backend: be, match: {path: /s}, rateLimit: {extra: [{requests: 2, per: secnd, burst: 1}, {requests: 0, per: hour}]}}\n",
			want: []string{
				`9:47 error routes[0].rateLimit.extra: extra has no limits`,
				`10:86 error routes[1].rateLimit.extra[0].per: unknown unit "secnd"; did you mean "second"?`,
				`10:100 error routes[1].rateLimit.extra[0].burst: burst 1 is below the rate of 2 requests`,
				`10:115 error routes[1].rateLimit.extra[1].requests: requests must be greater than 0, got 0`,
			},
		},
		{
			name: "a rateLimit block that does nothing",
			src: "routes:\n  - {name: r, backend: be, rateLimit: {consumer: false}}\n" +
				"  - {name: p, backend: be, auth: none, match: {path: /p}, rateLimit: {shadow: true}}\n",
			want: []string{
				`9:40 warning routes[0].rateLimit: rateLimit has no effect: no tier, anonymous or extra limit applies to route "r"`,
				`10:71 warning routes[1].rateLimit: rateLimit has no effect: no tier, anonymous or extra limit applies to route "p"`,
			},
		},
		{
			name: "by without extra limits",
			src:  "routes: [{name: r, backend: be, rateLimit: {by: [header:x-tenant-id]}}]\n",
			want: []string{`8:49 warning routes[0].rateLimit.by: by has no effect without extra limits`},
		},
	})
}

func TestValidateRouteRateLimitWithoutTiers(t *testing.T) {
	runCases(t, base+"auth: {apiKeys: {}}\n", []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "extra limits work without a rateLimits section",
			src:  "routes: [{name: r, backend: be, rateLimit: {extra: [{requests: 1, per: second}]}}]\n",
		},
		{
			name: "consumer limits need tiers",
			src:  "routes: [{name: r, backend: be, rateLimit: {consumer: true, extra: [{requests: 1, per: second}]}}]\n",
			want: []string{`5:55 error routes[0].rateLimit.consumer: consumer limits need tiers, and the policy defines none`},
		},
		{
			name: "a route without limits",
			src:  "routes: [{name: r, backend: be, rateLimit: {shadow: true}}]\n",
			want: []string{`5:45 warning routes[0].rateLimit: rateLimit has no effect: no tier, anonymous or extra limit applies to route "r"`},
		},
	})
}

func TestValidateRateLimitFixes(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{
			name: "defaultTier suggests the first tier",
			src:  rlBase + "  tiers: {free: [{requests: 1, per: day}], pro: unlimited}\n",
			want: "add `defaultTier: free`: consumers without a tier, or with an unknown one, get its limits",
		},
		{
			name: "defaultTier suggests no unlimited tier",
			src:  rlBase + "  tiers: {enterprise: unlimited, pro: [{requests: 1, per: day}]}\n",
			want: "add `defaultTier: pro`: consumers without a tier, or with an unknown one, get its limits",
		},
		{
			name: "an empty tier",
			src:  rlBase + "  tiers: {free: []}\n  defaultTier: free\n",
			want: "list at least one limit such as `{requests: 100, per: minute}`, or write `free: unlimited` for a tier without limits",
		},
		{
			name: "a burst below the rate",
			src:  rlBase + "  tiers: {free: [{requests: 10, per: second, burst: 5}]}\n  defaultTier: free\n",
			want: "set burst to at least 10 (requests), or remove burst to use the rate as the burst",
		},
		{
			name: "a burst beyond what the counters enforce",
			src:  rlBase + "  tiers: {free: [{requests: 1, per: month, burst: 1000000000}]}\n  defaultTier: free\n",
			want: "use a burst of at most 868 at this rate",
		},
		{
			name: "one limit per unit",
			src:  rlBase + "  tiers: {free: [{requests: 10, per: day}, {requests: 20, per: day}]}\n  defaultTier: free\n",
			want: "keep one of the two limits: two limits per day are ambiguous",
		},
		{
			name: "consumer on a public route",
			src:  base + tiered + "routes: [{name: p, backend: be, auth: none, rateLimit: {consumer: true}}]\n",
			want: "remove consumer; to limit the callers of a public route, add extra limits with `by: [clientIP]`",
		},
		{
			name: "a header name without header:",
			src:  base + "routes: [{name: p, backend: be, auth: none, rateLimit: {extra: [{requests: 1, per: second}], by: [X-Key]}}]\n",
			want: `write "header:x-key" to key by the request header X-Key`,
		},
		{
			name: "a credential header as a key",
			src:  base + "auth: {apiKeys: {}}\nroutes: [{name: r, backend: be, rateLimit: {extra: [{requests: 1, per: second}], by: [header:x-api-key]}}]\n",
			want: "write `by: [consumer]` to limit each authenticated caller (on a public route, `by: [clientIP]`)",
		},
		{
			name: "an identity header in a route match",
			src:  base + "routes: [{name: r, backend: be, auth: none, match: {headers: [{name: x-consumer-tier, exact: enterprise}]}}]\n",
			want: "match on hosts, path or methods instead, and restrict the route with auth (methods, roles, scopes); " +
				"tier limits come from rateLimits.tiers, not from route matches",
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
