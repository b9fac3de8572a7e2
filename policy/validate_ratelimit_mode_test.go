package policy

import (
	"slices"
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

// modeCases are policies and the IR mode each compiles to ("" is exact).
var modeCases = []struct {
	name, src, want string
}{
	{name: "exact on purpose", src: moded("exact") + "routes: [{name: r, backend: be}]\n"},
	{name: "quota on purpose", src: moded("quota") + "routes: [{name: r, backend: be}]\n", want: ir.RateLimitQuota},
	{name: "left out: quota", src: tiered + "routes: [{name: r, backend: be}]\n", want: ir.RateLimitQuota},
	{
		name: "left out, extra limits only: quota",
		src:  "routes: [{name: r, backend: be, auth: none, rateLimit: {extra: [{requests: 1, per: second}]}}]\n",
		want: ir.RateLimitQuota,
	},
	{name: "left out, nothing limited: empty as before", src: "routes: [{name: r, backend: be, auth: none}]\n"},
	{
		name: "left out, a shadow limit: exact",
		src:  tiered + "routes: [{name: r, backend: be}, {name: s, match: {pathPrefix: /s}, backend: be, rateLimit: {shadow: true}}]\n",
	},
	{
		name: "left out, shadow on a route that limits nothing: quota",
		src: tiered + "routes: [{name: r, backend: be}, " +
			"{name: s, match: {pathPrefix: /s}, backend: be, rateLimit: {consumer: false, shadow: true}}]\n",
		want: ir.RateLimitQuota,
	},
	{
		name: "left out, a limit keyed by a header: exact",
		src: tiered + "routes: [{name: r, backend: be, " +
			"rateLimit: {extra: [{requests: 1, per: second}], by: [header:x-id]}}]\n",
	},
}

func TestCompileRateLimitMode(t *testing.T) {
	for _, tc := range modeCases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ds := Build([]File{{Name: "p.yaml", Content: []byte(base + tc.src)}})
			if errs := ds.Errors(); len(errs) != 0 || cfg == nil {
				t.Fatalf("diagnostics: %s", render(errs))
			}
			if cfg.RateLimits.Mode != tc.want {
				t.Errorf("mode = %q, want %q", cfg.RateLimits.Mode, tc.want)
			}
		})
	}
}

// TestIETFHeaders: rateLimits.ietfHeaders compiles to
// ir.RateLimits.IETFHeaders (false when absent); a non-boolean value and a
// second setting (another file's section) are errors at their field.
func TestIETFHeaders(t *testing.T) {
	src := func(line string) string {
		return base + "routes: [{name: r, backend: be}]\nauth: {apiKeys: {}}\nrateLimits:\n" +
			"  tiers: {free: [{requests: 100, per: minute}]}\n  defaultTier: free\n  mode: quota\n" + line
	}
	for _, tc := range []struct {
		name, src, other string
		want             bool
		diags            []string
	}{
		{name: "absent", src: src("")},
		{name: "true", src: src("  ietfHeaders: true\n"), want: true},
		{name: "false", src: src("  ietfHeaders: false\n")},
		{name: "not a boolean", src: src("  ietfHeaders: yes please\n"),
			diags: []string{`p.yaml:10:16 rateLimits.ietfHeaders: expected true or false, got string "yes please"`}},
		{name: "set twice", src: src("  ietfHeaders: true\n"), other: "version: 1\nrateLimits: {ietfHeaders: false}\n",
			diags: []string{`q.yaml:2:27 rateLimits.ietfHeaders: duplicate field "ietfHeaders" (first set at p.yaml:10:16)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := []File{{Name: "p.yaml", Content: []byte(tc.src)}}
			if tc.other != "" {
				files = append(files, File{Name: "q.yaml", Content: []byte(tc.other)})
			}
			cfg, ds := Build(files)
			if got := renderFiles(ds.Errors()); !slices.Equal(got, tc.diags) {
				t.Fatalf("diagnostics %q, want %q", got, tc.diags)
			}
			if tc.diags == nil && cfg.RateLimits.IETFHeaders != tc.want {
				t.Errorf("IETFHeaders %v, want %v", cfg.RateLimits.IETFHeaders, tc.want)
			}
		})
	}
}
