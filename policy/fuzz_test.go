package policy

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tollgate/tollgate/policy/ir"
)

// FuzzLoad checks that no input makes Load, Validate or Compile panic,
// that every diagnostic names its file and a known severity, and that a
// policy without errors compiles to limits the counters enforce. Seeds:
// the policies under testdata/ and testdata/invalid/, the ones below, and
// the corpus in testdata/fuzz/FuzzLoad (failing inputs land there too).
func FuzzLoad(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	more, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range append(seeds, more...) {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("a: &a [*a]\nb: &b *b\n"))
	f.Add([]byte("version: 1\n---\nversion: 1\nroutes: [{name: r, backend: *x}]\n"))
	f.Add([]byte("{version: 1, gateways: [{name: g, listeners: [{name: l, port: 1}], auth: {statusOnError: 503}}], " +
		"backends: [{name: b, endpoints: [\"[::1]:1\"]}], auth: {apiKeys: {}, identityHeaders: {tier: x-t}, " +
		"jwt: [{name: j, issuer: i, algorithms: [HS256], hmacSecretEnv: S, jwks: {keys: &k [{kty: oct, x: *k}]}}], " +
		"oauth2: [{name: o, introspectionUrl: \"http://o/i\", clientId: c, clientSecretEnv: S}]}, " +
		"routes: [{name: r, backend: b, auth: {methods: [jwt, apiKey], scopes: [a:b]}}, " +
		"{name: p, backend: b, auth: none, match: {path: /p}}]}"))
	f.Add([]byte("{version: 1, gateways: [{name: g, listeners: [{name: l, port: 1}]}], backends: [{name: b, endpoints: [\"10.0.0.1:1\"]}], " +
		"auth: {apiKeys: {}}, rateLimits: {tiers: {free: &l [{requests: 1, per: minute, burst: 2}], pro: *l, max: unlimited}, " +
		"defaultTier: free, anonymous: [{requests: 1, per: month}], failureMode: local}, " +
		"routes: [{name: r, backend: b, rateLimit: {consumer: false, extra: [{requests: 1, per: second}], by: [header:x-t, consumer], shadow: true}}, " +
		"{name: p, backend: b, auth: none, match: {path: /p}}, {name: n, backend: b, rateLimit: none, match: {path: /n}}]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, ds := Load([]File{{Name: "f.yaml", Content: data}})
		ds = append(ds, p.Validate()...)
		for _, d := range ds {
			if d.Range.File != "f.yaml" || d.Severity.String() == "invalid" || d.Summary == "" {
				t.Fatalf("malformed diagnostic %#v", d)
			}
		}
		if !ds.HasErrors() {
			checkEnforceable(t, Compile(p))
		}
	})
}

// checkEnforceable fails when a validated policy holds a limit the
// rate-limit counters would refuse (ir.CheckLimit).
func checkEnforceable(t *testing.T, cfg *ir.Config) {
	t.Helper()
	limits := slices.Clone(cfg.RateLimits.Anonymous)
	for _, tier := range cfg.RateLimits.Tiers {
		limits = append(limits, tier.Limits...)
	}
	for _, g := range cfg.Gateways {
		for _, vh := range g.VirtualHosts {
			for _, r := range vh.Routes {
				limits = append(limits, r.RateLimit.Extra...)
			}
		}
	}
	for _, l := range limits {
		if _, err := ir.CheckLimit(l.Requests, l.Per, l.Burst); err != nil {
			t.Fatalf("a validated policy holds an unenforceable limit: %v", err)
		}
	}
}
