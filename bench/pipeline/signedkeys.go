package main

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// benchPepper is the stacks' key pepper; the control plane derives its
// API-key signer from it (HKDF-SHA256, info "tollgate api-key signing
// v1", Ed25519), and so does signedKeys.
const benchPepper = "bench-pepper-0123456789"

// benchEpoch is the key-store epoch the shared Redis is seeded with
// (seedEpoch); signedKeys' keys carry it (claim ep).
const benchEpoch = "benchEpoch01"

// signedKeys mints the active population of signed API keys ("tg." + an
// EdDSA JWS, iss tollgate:keys), one consumer each, tier bench, as the key
// store would: Envoy verifies them natively, with no ext_authz call.
func signedKeys(n int) ([]string, error) {
	seed, err := hkdf.Key(sha256.New, []byte(benchPepper), nil, "tollgate api-key signing v1", ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	k := ed25519.NewKeyFromSeed(seed)
	sum := sha256.Sum256(k.Public().(ed25519.PublicKey))
	b64 := base64.RawURLEncoding.EncodeToString
	h, _ := json.Marshal(map[string]string{"alg": "EdDSA", "kid": b64(sum[:9])})
	out := make([]string, n)
	for i := range out {
		c, err := json.Marshal(map[string]any{"iss": "tollgate:keys", "sub": fmt.Sprintf("signed-%d", i),
			"jti": fmt.Sprintf("s%07d", i), "iat": time.Now().Unix(), "tier": "bench", "ep": benchEpoch})
		if err != nil {
			return nil, err
		}
		in := b64(h) + "." + b64(c)
		out[i] = "tg." + in + "." + b64(ed25519.Sign(k, []byte(in)))
	}
	return out, nil
}
