package jwt

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"slices"
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
		case err == nil && (id == nil || id.UserID == "" || id.Namespace == ""):
			t.Fatalf("Verify = %+v, nil", id)
		case err != nil && (id != nil || Reason(err) == ""):
			t.Fatalf("Verify = %+v, %v (%T)", id, err, err)
		}
	})
}

// FuzzVerifyClaims fuzzes the payload of correctly signed tokens, so that
// the claim checks behind the signature (times, lifetime, audience, the
// identity claims and their list forms) see arbitrary JSON; FuzzVerify's
// random tokens almost never get past the signature. Seeds are in
// testdata/fuzz/FuzzVerifyClaims. It checks that Verify never panics, that
// a refusal carries a reason, and that an accepted token names a user of
// the "ed" provider and namespace, is unexpired at the verifier's clock
// and lives no longer than the provider allows.
func FuzzVerifyClaims(f *testing.F) {
	v, key := fuzzVerifierNoCache(f)
	now := time.Unix(fuzzUnix, 0)
	valid, err := json.Marshal(claimsAt(now, testIssuer))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	header := enc64.EncodeToString([]byte(`{"alg":"EdDSA","kid":"ed-1","typ":"JWT"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		input := header + "." + enc64.EncodeToString(payload)
		tok := input + "." + enc64.EncodeToString(ed25519.Sign(key, []byte(input)))
		id, err := v.Verify(context.Background(), tok)
		if err != nil {
			if id != nil || Reason(err) == "" {
				t.Fatalf("Verify = %+v, %v (%T)", id, err, err)
			}
			return
		}
		switch {
		case id.UserID == "" || id.Provider != "ed" || id.Namespace != "ed":
			t.Fatalf("accepted identity %+v: want a user of provider ed in namespace ed", id)
		case !now.Before(id.Expiry.Add(30 * time.Second)):
			t.Fatalf("accepted a token that expired at %v (now %v)", id.Expiry, now)
		case id.Expiry.After(now.Add(time.Hour + 30*time.Second)):
			t.Fatalf("accepted a token valid until %v, past the 1h lifetime", id.Expiry)
		case slices.Contains(id.Roles, "") || slices.Contains(id.Scopes, ""):
			t.Fatalf("accepted identity with an empty role or scope: %+v", id)
		}
	})
}

// fuzzVerifierNoCache is fuzzVerifier without the verification cache, so
// that every input is verified in full.
func fuzzVerifierNoCache(f *testing.F) (*Verifier, ed25519.PrivateKey) {
	key := ed25519.NewKeyFromSeed([]byte(fuzzSeed))
	now := time.Unix(fuzzUnix, 0)
	v, err := NewVerifier([]ir.JWTProvider{{
		Name: "ed", Issuer: testIssuer, Audiences: []string{testAudience},
		JWKS: jwks(f, pubJWK(f, "ed-1", key, nil)), Algorithms: []string{"EdDSA"},
		ClockSkew: 30 * time.Second, MaxLifetime: time.Hour,
		Claims: ir.ClaimMap{UserID: "sub", Roles: "roles", Tenant: "tenant", Tier: "tier"},
	}}, Options{Now: func() time.Time { return now }, CacheSize: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(v.Close)
	return v, key
}
