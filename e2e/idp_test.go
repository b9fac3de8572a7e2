package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// idp is an identity provider run by the test: a JWKS endpoint whose keys
// can rotate or go down, and an RFC 7662 introspection endpoint. The JWKS
// is served with an ETag (its body's hash: the keys, sorted by kid, are
// serialized the same way each time) and a request whose If-None-Match
// names it gets 304 Not Modified, as from a real IdP or CDN.
type idp struct {
	t      *testing.T
	srv    *httptest.Server
	issuer string

	mu      sync.Mutex
	keys    map[string]*rsa.PrivateKey // kid → key, served in the JWKS
	ec      *ecdsa.PrivateKey
	down    atomic.Bool
	fetches atomic.Int64 // JWKS requests answered (200 and 304)
	full    atomic.Int64 // of which 200s with the body
	notMod  atomic.Int64 // of which 304s
	delay   atomic.Int64 // nanoseconds each JWKS answer waits (a slow IdP)

	tokens         map[string]map[string]any // opaque token → introspection answer
	introspections atomic.Int64
}

const (
	idpIssuer       = "https://idp.test/"
	idpAudience     = "api.test"
	idpClientID     = "tollgate"
	idpClientSecret = "introspection-secret"
)

func newIDP(t *testing.T) *idp {
	p := &idp{t: t, issuer: idpIssuer, keys: map[string]*rsa.PrivateKey{}, tokens: map[string]map[string]any{}}
	p.addKey("k1")
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.ec = ec
	mux := http.NewServeMux()
	mux.HandleFunc("/jwks.json", p.jwks)
	mux.HandleFunc("/introspect", p.introspect)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) addKey(kid string) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.keys[kid] = k
	p.mu.Unlock()
}

func (p *idp) jwksURL() string       { return p.srv.URL + "/jwks.json" }
func (p *idp) introspectURL() string { return p.srv.URL + "/introspect" }

func (p *idp) jwks(w http.ResponseWriter, r *http.Request) {
	if p.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	p.fetches.Add(1)
	select { // a client that gives up ends the wait (and the server's Close)
	case <-time.After(time.Duration(p.delay.Load())):
	case <-r.Context().Done():
		return
	}
	body := p.jwksBody()
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		p.notMod.Add(1)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	p.full.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// jwksBody is the JWKS of the current keys, the same bytes for the same
// keys.
func (p *idp) jwksBody() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := []map[string]string{}
	for _, kid := range slices.Sorted(maps.Keys(p.keys)) {
		k := p.keys[kid]
		keys = append(keys, map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
			"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())})
	}
	x, y := p.ec.X.FillBytes(make([]byte, 32)), p.ec.Y.FillBytes(make([]byte, 32))
	keys = append(keys, map[string]string{"kty": "EC", "kid": "ec1", "use": "sig", "alg": "ES256", "crv": "P-256", "x": b64(x), "y": b64(y)})
	body, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		panic(err) // strings only
	}
	return body
}

func (p *idp) introspect(w http.ResponseWriter, r *http.Request) {
	p.introspections.Add(1)
	id, secret, ok := r.BasicAuth()
	if !ok || id != idpClientID || secret != idpClientSecret {
		http.Error(w, "bad client", http.StatusUnauthorized)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	ans, ok := p.tokens[r.PostForm.Get("token")]
	p.mu.Unlock()
	if !ok {
		ans = map[string]any{"active": false}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ans)
}

// opaque registers an opaque access token with its introspection answer.
func (p *idp) opaque(token string, active bool, scope, sub string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokens[token] = map[string]any{"active": active, "scope": scope, "sub": sub, "client_id": "partner",
		"exp": time.Now().Add(time.Hour).Unix(), "aud": idpAudience}
}

// claims returns valid claims for sub with roles, overridable by the caller.
func (p *idp) claims(sub string, roles ...string) map[string]any {
	now := time.Now()
	return map[string]any{"iss": p.issuer, "aud": idpAudience, "sub": sub, "roles": roles, "tid": "acme", "plan": "pro",
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
}

// rs256 signs claims with the RSA key kid.
func (p *idp) rs256(kid string, claims map[string]any) string {
	p.mu.Lock()
	k := p.keys[kid]
	p.mu.Unlock()
	if k == nil {
		var err error
		if k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil { // a key the IdP does not publish
			p.t.Fatal(err)
		}
	}
	in := signingInput(map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}, claims)
	h := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, h[:])
	if err != nil {
		p.t.Fatal(err)
	}
	return in + "." + b64(sig)
}

// es256 signs claims with the EC key.
func (p *idp) es256(claims map[string]any) string {
	in := signingInput(map[string]any{"alg": "ES256", "typ": "JWT", "kid": "ec1"}, claims)
	h := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, p.ec, h[:])
	if err != nil {
		p.t.Fatal(err)
	}
	sig := append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	return in + "." + b64(sig)
}

// hs256WithPublicKey is the RS/HS confusion attack: an HS256 token whose
// HMAC secret is the RSA public key of kid in PEM.
func (p *idp) hs256WithPublicKey(kid string, claims map[string]any) string {
	p.mu.Lock()
	der, err := x509.MarshalPKIXPublicKey(&p.keys[kid].PublicKey)
	p.mu.Unlock()
	if err != nil {
		p.t.Fatal(err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	in := signingInput(map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}, claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + b64(m.Sum(nil))
}

// none is an unsigned token.
func none(claims map[string]any) string {
	return signingInput(map[string]any{"alg": "none", "typ": "JWT"}, claims) + "."
}

func signingInput(header, claims map[string]any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return b64(h) + "." + b64(c)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// with returns a copy of m with k set to v (or removed when v is nil).
func with(m map[string]any, k string, v any) map[string]any {
	out := map[string]any{}
	for key, val := range m {
		out[key] = val
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}
