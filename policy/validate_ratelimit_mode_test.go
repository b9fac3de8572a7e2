package policy

import (
	"testing"

	"github.com/tollgate/tollgate/policy/ir"
)

// moded is tiered with rateLimits.mode set to mode.
func moded(mode string) string {
	return "rateLimits:\n  tiers: {free: [{requests: 100, per: minute}], pro: unlimited}\n" +
		"  defaultTier: free\n  mode: " + mode + "\nauth: {apiKeys: {}}\n"
}

func TestValidateRateLimitMode(t *testing.T) {
	runCases(t, base, []struct {
		name string
		src  string
		want []string
	}{
		{name: "exact", src: moded("exact") + "routes: [{name: r, backend: be}]\n"},
		{name: "quota", src: moded("quota") + "routes: [{name: r, backend: be, rateLimit: {extra: [{requests: 1, per: second}], by: [consumer]}}]\n"},
		{
			name: "unknown mode, with a did-you-mean",
			src:  moded("qota") + "routes: [{name: r, backend: be}]\n",
			want: []string{`7:9 error rateLimits.mode: unknown mode "qota"; did you mean "quota"?`},
		},
		{
			name: "quota cannot key by a header nor shadow",
			src: moded("quota") + "routes: [{name: r, backend: be, rateLimit: " +
				"{shadow: true, extra: [{requests: 1, per: second}], by: [consumer, header:x-id]}}]\n",
			want: []string{
				`9:53 error routes[0].rateLimit.shadow: shadow limits are not available with rateLimits.mode quota`,
				`9:111 error routes[0].rateLimit.by[1]: limits keyed by a request header are not available with rateLimits.mode quota`,
			},
		},
	})
}

func TestCompileRateLimitMode(t *testing.T) {
	for in, want := range map[string]string{"": "", ir.RateLimitExact: "", ir.RateLimitQuota: ir.RateLimitQuota} {
		if got := compileRateLimitMode(in); got != want {
			t.Errorf("compileRateLimitMode(%q) = %q, want %q", in, got, want)
		}
	}
}
