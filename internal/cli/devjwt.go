package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"
)

// The dev JWT issuer: devpolicy.yaml's jwt provider "dev" trusts tokens
// with this issuer and audience, verified with the key set dev serves.
const (
	devIssuerAddr  = "127.0.0.1:9004"
	devIssuer      = "http://" + devIssuerAddr
	devJWKSPath    = "/.well-known/jwks.json"
	devAudience    = "tollgate-dev"
	devKeyID       = "dev-1"
	devTokenMaxAge = 24 * time.Hour // the provider's maxLifetime
)

// devIssuerKey is the signing key of one dev session: generated at start,
// never written anywhere, so a token dev printed is good only while that
// dev runs.
type devIssuerKey struct{ key *ecdsa.PrivateKey }

func newDevIssuerKey() (*devIssuerKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate the dev JWT key: %w", err)
	}
	return &devIssuerKey{key: k}, nil
}

// jwks returns the public key set (RFC 7517).
func (d *devIssuerKey) jwks() ([]byte, error) {
	pub, err := d.key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		return nil, fmt.Errorf("encode the dev JWT key: %w", err)
	}
	return json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": devKeyID,
		"x": b64url(pub[1:33]), "y": b64url(pub[33:65]),
	}}})
}

// token returns an ES256 token for sub with roles, valid for devTokenMaxAge
// from now.
func (d *devIssuerKey) token(sub string, roles []string, now time.Time) (string, error) {
	header := map[string]any{"alg": "ES256", "typ": "JWT", "kid": devKeyID}
	claims := map[string]any{"iss": devIssuer, "aud": devAudience, "sub": sub, "roles": roles,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(devTokenMaxAge).Unix()}
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	in := b64url(h) + "." + b64url(c)
	sum := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, d.key, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign the dev token: %w", err)
	}
	sig := append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	return in + "." + b64url(sig), nil
}

// serveJWKS serves the key set on devIssuerAddr until ctx ends.
func (d *devIssuerKey) serveJWKS(ctx context.Context) error {
	body, err := d.jwks()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", devIssuerAddr)
	if err != nil {
		return fmt.Errorf("serve the dev JWKS: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+devJWKSPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }() // ends with ErrServerClosed
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	return nil
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
