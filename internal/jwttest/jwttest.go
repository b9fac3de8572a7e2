// Package jwttest mints RS256 JSON Web Tokens and their JWK set with the
// standard library, for benchmarks and tests that need a real identity
// provider's output without a JWT library on the signing side.
package jwttest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"time"
)

// Issuer signs tokens with one RSA key.
type Issuer struct {
	Issuer, Audience, KID string
	key                   *rsa.PrivateKey
}

// New returns an issuer with a fresh 2048-bit key.
func New(issuer, audience string) (*Issuer, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return &Issuer{Issuer: issuer, Audience: audience, KID: "k1", key: k}, nil
}

// JWKS returns the public JWK set as JSON.
func (i *Issuer) JWKS() string {
	b, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": i.KID, "use": "sig", "alg": "RS256",
		"n": b64(i.key.N.Bytes()), "e": b64(big.NewInt(int64(i.key.E)).Bytes()),
	}}})
	return string(b)
}

// Token returns an RS256 token for sub with roles, valid for ttl; n makes
// otherwise identical tokens distinct (a "jti").
func (i *Issuer) Token(sub string, roles []string, ttl time.Duration, n int) (string, error) {
	now := time.Now()
	return i.Sign(map[string]any{"iss": i.Issuer, "aud": i.Audience, "sub": sub, "roles": roles,
		"iat": now.Unix(), "exp": now.Add(ttl).Unix(), "jti": fmt.Sprint(n)})
}

// Sign returns an RS256 token with exactly claims (no defaults), for
// tokens a test shapes itself (expired, another audience, scopes...).
func (i *Issuer) Sign(claims map[string]any) (string, error) {
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": i.KID})
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	in := b64(h) + "." + b64(c)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, i.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return in + "." + b64(sig), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
