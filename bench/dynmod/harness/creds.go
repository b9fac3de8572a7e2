package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

const (
	issuer   = "https://idp.example"
	audience = "api"
)

var b64 = base64.RawURLEncoding

// creds are the signing keys, their JWKS and one token per consumer and
// algorithm, signed here with the standard library.
type creds struct {
	ec   *ecdsa.PrivateKey
	rsa  *rsa.PrivateKey
	jwks string
	es   []string // ES256 tokens, one per consumer
	rs   []string // RS256 tokens
}

func newCreds(consumers int) (*creds, error) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	c := &creds{ec: ec, rsa: rk}
	pad := func(b []byte) []byte { return append(make([]byte, 32-len(b)), b...) }
	ecdhKey, err := ec.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		return nil, err
	}
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{
		{"kty": "EC", "crv": "P-256", "kid": "es-1", "alg": "ES256", "use": "sig",
			"x": b64.EncodeToString(pad(ecdhKey[1:33])), "y": b64.EncodeToString(pad(ecdhKey[33:]))},
		{"kty": "RSA", "kid": "rs-1", "alg": "RS256", "use": "sig",
			"n": b64.EncodeToString(rk.N.Bytes()), "e": b64.EncodeToString(big.NewInt(int64(rk.E)).Bytes())},
	}})
	c.jwks = string(jwks)
	now := time.Now()
	for i := range consumers {
		claims := map[string]any{"iss": issuer, "aud": audience, "sub": fmt.Sprintf("user-%d", i),
			"iat": now.Unix(), "exp": now.Add(12 * time.Hour).Unix(),
			"roles": []string{"reader", "writer"}, "tenant": "acme", "tier": "gold"}
		es, err := c.sign("ES256", "es-1", claims)
		if err != nil {
			return nil, err
		}
		rs, err := c.sign("RS256", "rs-1", claims)
		if err != nil {
			return nil, err
		}
		c.es, c.rs = append(c.es, es), append(c.rs, rs)
	}
	return c, nil
}

func (c *creds) sign(alg, kid string, claims map[string]any) (string, error) {
	h, _ := json.Marshal(map[string]string{"alg": alg, "kid": kid, "typ": "JWT"})
	p, _ := json.Marshal(claims)
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	sum := sha256.Sum256([]byte(input))
	var sig []byte
	switch alg {
	case "ES256":
		r, s, err := ecdsa.Sign(rand.Reader, c.ec, sum[:])
		if err != nil {
			return "", err
		}
		sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	case "RS256":
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, c.rsa, crypto.SHA256, sum[:]); err != nil {
			return "", err
		}
	}
	return input + "." + b64.EncodeToString(sig), nil
}

// provider is the module's view of the same identity provider.
func (c *creds) provider() ir.JWTProvider {
	return ir.JWTProvider{Name: "idp", Namespace: "idp", Issuer: issuer, Audiences: []string{audience},
		JWKS: c.jwks, Algorithms: []string{"ES256", "RS256"}, ClockSkew: time.Minute, MaxLifetime: 24 * time.Hour,
		Claims: ir.ClaimMap{UserID: "sub", Roles: "roles", Tenant: "tenant", Tier: "tier"}}
}
