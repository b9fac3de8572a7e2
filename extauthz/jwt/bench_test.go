package jwt

import (
	"context"
	"testing"
)

// BenchmarkVerify measures a token seen for the first time (cache off, so
// every iteration parses, verifies the signature and maps claims) and a
// repeated token served by the verification cache.
func BenchmarkVerify(b *testing.B) {
	k := sharedKeys()
	clock := newClock()
	tokens := []struct {
		alg string
		tok string
	}{
		{"RS256", sign(b, "RS256", k.rsa, map[string]any{"kid": "rsa-1"}, claimsAt(clock.Now(), testIssuer))},
		{"ES256", sign(b, "ES256", k.ec256, map[string]any{"kid": "ec-1"}, claimsAt(clock.Now(), testIssuer))},
		{"EdDSA", sign(b, "EdDSA", k.ed, map[string]any{"kid": "ed-1"}, claimsAt(clock.Now(), testIssuer))},
	}
	modes := []struct {
		name      string
		cacheSize int
	}{
		{"first_seen", -1},
		{"cached", 0},
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			v := newTestVerifier(b, testProviders(b, k), Options{Now: clock.Now, CacheSize: m.cacheSize})
			for _, tt := range tokens {
				b.Run(tt.alg, func(b *testing.B) {
					ctx := context.Background()
					if _, err := v.Verify(ctx, tt.tok); err != nil {
						b.Fatal(err)
					}
					b.ReportAllocs()
					for b.Loop() {
						if _, err := v.Verify(ctx, tt.tok); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}
