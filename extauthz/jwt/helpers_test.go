package jwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

// Tokens in these tests are signed with the standard library, not with
// the library under test, so that verification is checked against an
// independent implementation.

const (
	testIssuer   = "https://idp.example"
	mixedIssuer  = "https://mixed.example"
	hsIssuer     = "https://hs.example"
	remoteIssuer = "https://remote.example"
	testAudience = "api"
	hsSecretEnv  = "TEST_HS_SECRET"
	hsSecret     = "0123456789abcdef0123456789abcdef-test-secret"
)

var enc64 = base64.RawURLEncoding

// testKeys are generated once per test binary: RSA generation is slow.
type testKeys struct {
	rsa, rsaOther *rsa.PrivateKey
	ec256         *ecdsa.PrivateKey
	ed            ed25519.PrivateKey
}

var sharedKeys = sync.OnceValue(func() *testKeys {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	k := &testKeys{}
	var err error
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsaOther, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.ec256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	return k
})

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// sign returns a compact JWS of claims with header hdr ("alg" is set from
// alg) signed by key: an *rsa/*ecdsa private key, an ed25519 key, or []byte
// for HS*; alg "none" (any case) gives an empty signature.
func sign(t testing.TB, alg string, key any, hdr, claims map[string]any) string {
	t.Helper()
	h := map[string]any{"alg": alg, "typ": "JWT"}
	for k, v := range hdr {
		h[k] = v
	}
	input := encodeJSON(t, h) + "." + encodeJSON(t, claims)
	return input + "." + enc64.EncodeToString(rawSignature(t, alg, key, []byte(input)))
}

// signRawHeader is sign with the header given as JSON text, for headers
// that maps cannot express (duplicate members).
func signRawHeader(t testing.TB, alg string, key any, hdr string, claims map[string]any) string {
	t.Helper()
	input := enc64.EncodeToString([]byte(hdr)) + "." + encodeJSON(t, claims)
	return input + "." + enc64.EncodeToString(rawSignature(t, alg, key, []byte(input)))
}

func encodeJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return enc64.EncodeToString(b)
}

func rawSignature(t testing.TB, alg string, key any, input []byte) []byte {
	t.Helper()
	if strings.EqualFold(alg, "none") {
		return nil
	}
	h := map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}[alg[2:]]
	var sig []byte
	var err error
	switch {
	case alg == "EdDSA":
		sig = ed25519.Sign(key.(ed25519.PrivateKey), input)
	case strings.HasPrefix(alg, "HS"):
		m := hmac.New(h.New, key.([]byte))
		m.Write(input)
		sig = m.Sum(nil)
	case strings.HasPrefix(alg, "RS"):
		sig, err = rsa.SignPKCS1v15(nil, key.(*rsa.PrivateKey), h, digest(h, input))
	case strings.HasPrefix(alg, "PS"):
		sig, err = rsa.SignPSS(rand.Reader, key.(*rsa.PrivateKey), h, digest(h, input),
			&rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case strings.HasPrefix(alg, "ES"):
		sig, err = ecdsaSignature(key.(*ecdsa.PrivateKey), digest(h, input))
	default:
		t.Fatalf("sign: unknown alg %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func digest(h crypto.Hash, input []byte) []byte {
	d := h.New()
	d.Write(input)
	return d.Sum(nil)
}

// ecdsaSignature returns the JWS form of an ECDSA signature: R || S, each
// as long as the curve's order (RFC 7518 §3.4).
func ecdsaSignature(key *ecdsa.PrivateKey, hash []byte) ([]byte, error) {
	r, s, err := ecdsa.Sign(rand.Reader, key, hash)
	if err != nil {
		return nil, err
	}
	n := (key.Curve.Params().BitSize + 7) / 8
	sig := make([]byte, 2*n)
	r.FillBytes(sig[:n])
	s.FillBytes(sig[n:])
	return sig, nil
}

// pubJWK returns the public JWK of key with kid (omitted when "") and extra
// members.
func pubJWK(t testing.TB, kid string, key any, extra map[string]any) map[string]any {
	t.Helper()
	m := map[string]any{}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		m["kty"] = "RSA"
		m["n"] = enc64.EncodeToString(k.N.Bytes())
		m["e"] = enc64.EncodeToString([]byte{1, 0, 1})
	case *ecdsa.PrivateKey:
		pub, err := k.PublicKey.ECDH()
		if err != nil {
			t.Fatal(err)
		}
		pt := pub.Bytes()[1:] // uncompressed point without its 0x04 prefix
		m["kty"], m["crv"] = "EC", k.Curve.Params().Name
		m["x"], m["y"] = enc64.EncodeToString(pt[:len(pt)/2]), enc64.EncodeToString(pt[len(pt)/2:])
	case ed25519.PrivateKey:
		m["kty"], m["crv"] = "OKP", "Ed25519"
		m["x"] = enc64.EncodeToString(k.Public().(ed25519.PublicKey))
	case []byte:
		m["kty"], m["k"] = "oct", enc64.EncodeToString(k)
	default:
		t.Fatalf("jwk: unsupported key %T", key)
	}
	if kid != "" {
		m["kid"] = kid
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func jwks(t testing.TB, keys ...map[string]any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rsaPublicPEM is the PEM of the RSA public key, the classic HS256
// "secret" of an algorithm-confusion attack.
func rsaPublicPEM(t testing.TB, k *rsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// del, as a claim value in claimsAt, removes the claim.
type del struct{}

// claimsAt returns valid claims for iss at now (iat now, exp in 10 min,
// aud api, sub user-1, roles, scope, tenant, tier), changed by kv pairs.
func claimsAt(now time.Time, iss string, kv ...any) map[string]any {
	c := map[string]any{
		"iss": iss, "sub": "user-1", "aud": testAudience,
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"roles": []string{"admin", "ops"}, "scope": "read write",
		"tenant": "acme", "tier": "gold",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if _, ok := kv[i+1].(del); ok {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

// testProviders: an inline-JWKS provider (RSA rsa-1, EC ec-1, Ed25519
// ed-1), an RS256+HS256 provider and an HS256-only provider.
func testProviders(t testing.TB, k *testKeys) []ir.JWTProvider {
	t.Helper()
	claims := ir.ClaimMap{Roles: "roles", Tenant: "tenant", Tier: "tier"}
	set := jwks(t, pubJWK(t, "rsa-1", k.rsa, nil), pubJWK(t, "ec-1", k.ec256, nil), pubJWK(t, "ed-1", k.ed, nil))
	return []ir.JWTProvider{
		{
			Name: "idp", Issuer: testIssuer, Audiences: []string{"api", "other"}, JWKS: set,
			Algorithms: []string{"ES256", "EdDSA", "RS256"}, ClockSkew: 30 * time.Second,
			MaxLifetime: time.Hour, Claims: claims,
		},
		{
			Name: "mixed", Issuer: mixedIssuer, JWKS: jwks(t, pubJWK(t, "rsa-1", k.rsa, nil)),
			Algorithms: []string{"HS256", "RS256"}, HMACSecretEnv: hsSecretEnv,
			MaxLifetime: time.Hour, Claims: claims,
		},
		{
			Name: "hs", Issuer: hsIssuer, Algorithms: []string{"HS256"}, HMACSecretEnv: hsSecretEnv,
			MaxLifetime: time.Hour, Claims: claims,
		},
	}
}

func testGetenv(name string) string {
	if name == hsSecretEnv {
		return hsSecret
	}
	return ""
}

// recMetrics records the Verifier's metric events.
type recMetrics struct {
	hits, misses     atomic.Int64
	refreshOK, fails atomic.Int64
}

func (m *recMetrics) JWKSRefresh(_ string, ok bool) {
	if ok {
		m.refreshOK.Add(1)
	} else {
		m.fails.Add(1)
	}
}

func (m *recMetrics) CacheHit(hit bool) {
	if hit {
		m.hits.Add(1)
	} else {
		m.misses.Add(1)
	}
}

// jwksServer serves a JWKS that tests can change, fail, or hold.
type jwksServer struct {
	*httptest.Server
	body    atomic.Pointer[string]
	fetches atomic.Int64
	down    atomic.Bool
	hold    atomic.Pointer[chan struct{}] // when set, requests wait for it to close
}

func newJWKSServer(t testing.TB, body string) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.body.Store(&body)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		if hold := s.hold.Load(); hold != nil {
			<-*hold
		}
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write([]byte(*s.body.Load()))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(body string) { s.body.Store(&body) }

// remoteProvider is a provider whose JWKS is served by srv.
func remoteProvider(srv *jwksServer) ir.JWTProvider {
	return ir.JWTProvider{
		Name: "remote", Issuer: remoteIssuer, JWKSURI: srv.URL + "/jwks.json",
		Algorithms: []string{"ES256", "RS256"}, MaxLifetime: time.Hour,
	}
}

func newTestVerifier(t testing.TB, providers []ir.JWTProvider, opts Options) *Verifier {
	t.Helper()
	if opts.Getenv == nil {
		opts.Getenv = testGetenv
	}
	v, err := NewVerifier(providers, opts)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	t.Cleanup(v.Close)
	return v
}
