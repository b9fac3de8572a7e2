package jwt

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

// fuzzSeed derives the fuzz key: Ed25519 signatures are deterministic, so
// the seed corpus in testdata/fuzz/FuzzVerify holds valid tokens.
const fuzzSeed = "tollgate-jwt-fuzz-seed-32-bytes!"

// fuzzUnix is the fuzz verifier's clock; the corpus tokens are valid then.
const fuzzUnix = 1_800_000_000

func fuzzVerifier(f *testing.F) (*Verifier, ed25519.PrivateKey) {
	fuzzTime := time.Unix(fuzzUnix, 0)
	key := ed25519.NewKeyFromSeed([]byte(fuzzSeed))
	providers := []ir.JWTProvider{
		{
			Name: "ed", Issuer: testIssuer, Audiences: []string{testAudience},
			JWKS: jwks(f, pubJWK(f, "ed-1", key, nil)), Algorithms: []string{"EdDSA"},
			ClockSkew: 30 * time.Second, MaxLifetime: time.Hour,
			Claims: ir.ClaimMap{Roles: "roles", Tenant: "tenant", Tier: "tier"},
		},
		{Name: "hs", Issuer: hsIssuer, Algorithms: []string{"HS256"}, HMACSecretEnv: hsSecretEnv, MaxLifetime: time.Hour},
	}
	v, err := NewVerifier(providers, Options{Getenv: testGetenv, Now: func() time.Time { return fuzzTime }, CacheSize: 64})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(v.Close)
	return v, key
}

// FuzzVerify checks that Verify never panics and returns either an
// identity or an *Error with a reason.
func FuzzVerify(f *testing.F) {
	v, key := fuzzVerifier(f)
	fuzzTime := time.Unix(fuzzUnix, 0)
	valid := sign(f, "EdDSA", key, map[string]any{"kid": "ed-1"}, claimsAt(fuzzTime, testIssuer))
	f.Add(valid)
	f.Add(sign(f, "HS256", []byte(hsSecret), nil, claimsAt(fuzzTime, hsIssuer)))
	f.Add(sign(f, "none", nil, nil, claimsAt(fuzzTime, testIssuer)))
	f.Add("garbage")
	f.Add("a.b.c")
	if _, err := v.Verify(context.Background(), valid); err != nil {
		f.Fatalf("the valid seed does not verify: %v", err)
	}
	f.Fuzz(func(t *testing.T, token string) {
		id, err := v.Verify(context.Background(), token)
		switch {
		case err == nil && (id == nil || id.UserID == ""):
			t.Fatalf("Verify = %+v, nil", id)
		case err != nil && (id != nil || Reason(err) == ""):
			t.Fatalf("Verify = %+v, %v (%T)", id, err, err)
		}
	})
}
