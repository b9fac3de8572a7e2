package jwt

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

// condServer is an IdP that serves a JWKS with an ETag (the body's hash,
// or a set one) and a Last-Modified, answers 304 Not Modified to a request
// whose If-None-Match (or, without one, If-Modified-Since) matches, and
// records every request's validators.
type condServer struct {
	*httptest.Server

	mu           sync.Mutex
	body         string
	etag         string // "": the body's hash
	lastModified string
	noETag       bool // serve no ETag (Last-Modified only)
	always304    bool // a broken cache: 304 to every request
	down         bool // 503 to every request
	ok, notMod   int
	asked        []string // each request's "If-None-Match|If-Modified-Since"
}

func newCondServer(t testing.TB, body string) *condServer {
	t.Helper()
	s := &condServer{body: body, lastModified: "Mon, 07 Dec 2026 10:00:00 GMT"}
	s.Server = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.Close)
	return s
}

func (s *condServer) handle(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inm, ims := r.Header.Get("If-None-Match"), r.Header.Get("If-Modified-Since")
	s.asked = append(s.asked, inm+"|"+ims)
	if s.down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	etag := s.etag
	if etag == "" {
		etag = fmt.Sprintf("%q", fmt.Sprintf("%x", sha256.Sum256([]byte(s.body))))
	}
	if s.noETag {
		etag = ""
	}
	fresh := (inm != "" && inm == etag) || (inm == "" && ims != "" && ims == s.lastModified)
	if s.always304 || fresh {
		s.notMod++
		w.WriteHeader(http.StatusNotModified)
		return
	}
	s.ok++
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	w.Header().Set("Last-Modified", s.lastModified)
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_, _ = w.Write([]byte(s.body))
}

// counts returns the 200s and 304s served and the requests' validators.
func (s *condServer) counts() (ok, notMod int, asked []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ok, s.notMod, append([]string(nil), s.asked...)
}

func (s *condServer) set(f func(s *condServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func condProvider(s *condServer) ir.JWTProvider {
	return ir.JWTProvider{
		Name: "remote", Issuer: remoteIssuer, JWKSURI: s.URL + "/jwks.json",
		Algorithms: []string{"ES256", "RS256"}, MaxLifetime: time.Hour,
	}
}

// periodic runs one periodic (conditional) refresh of v's only provider.
func periodic(v *Verifier) error {
	return v.refresh(context.Background(), v.providers[0], true)
}

// TestConditionalRefreshKeepsKeys: the periodic refresh of an unchanged
// JWKS sends If-None-Match and If-Modified-Since, gets 304s, and keeps the
// very keys it had (no re-parse) and the verification cache (no purge);
// each 304 counts as a successful fetch and refreshes the shared store.
// When the IdP withdraws a key (new body, new ETag) the next refresh
// downloads it and the withdrawn key's cached token is refused.
func TestConditionalRefreshKeepsKeys(t *testing.T) {
	k := sharedKeys()
	srv := newCondServer(t, jwks(t, pubJWK(t, "k1", k.rsa, nil), pubJWK(t, "k2", k.rsaOther, nil)))
	m, store := &recMetrics{}, NewMemoryJWKS()
	v := newTestVerifier(t, []ir.JWTProvider{condProvider(srv)}, Options{Metrics: m, JWKS: store})
	if err := v.WaitKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	tok := sign(t, "RS256", k.rsa, map[string]any{"kid": "k1"}, claimsAt(time.Now(), remoteIssuer))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	keys := v.providers[0].keys.Load()
	for range 3 {
		if err := periodic(v); err != nil {
			t.Fatalf("periodic refresh of an unchanged JWKS: %v", err)
		}
	}
	ok, notMod, asked := srv.counts()
	if ok != 1 || notMod != 3 {
		t.Fatalf("%d 200s and %d 304s for a first fetch and 3 refreshes, want 1 and 3 (asked %q)", ok, notMod, asked)
	}
	if !strings.HasPrefix(asked[1], `"`) || !strings.HasSuffix(asked[1], "GMT") {
		t.Errorf("a periodic refresh asked %q, want If-None-Match and If-Modified-Since", asked[1])
	}
	if v.providers[0].keys.Load() != keys {
		t.Error("a 304 replaced the provider's keys")
	}
	if _, err := v.Verify(context.Background(), tok); err != nil || v.sigChecks.Load() != 1 {
		t.Errorf("after 304s: Verify %v, %d signature checks; want the cached verification", err, v.sigChecks.Load())
	}
	if m.refreshOK.Load() != 4 || m.fails.Load() != 0 {
		t.Errorf("metrics: %d ok, %d failed refreshes; want 4 and 0", m.refreshOK.Load(), m.fails.Load())
	}
	if body, etag, _ := store.LoadValidated(srv.URL+"/jwks.json", time.Minute); body == nil || etag == "" {
		t.Errorf("the store holds body %t, ETag %q after the 304s; want the body and its ETag", body != nil, etag)
	}

	srv.set(func(s *condServer) { s.body = jwks(t, pubJWK(t, "k2", k.rsaOther, nil)) })
	if err := periodic(v); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), tok); Reason(err) != ReasonUnknownKID {
		t.Errorf("token of the withdrawn key after the IdP changed its ETag: %v, want unknown_kid", err)
	}
	if ok, _, _ := srv.counts(); ok != 2 {
		t.Errorf("%d 200s after the IdP changed its JWKS, want 2", ok)
	}
}

// TestUnexpected304Refused: a 304 to a request that remembered no body
// (the first fetch, or an unknown kid's fetch, which is never
// conditional) installs nothing, fails the fetch, and forgets the
// validators: the next periodic refresh is unconditional.
func TestUnexpected304Refused(t *testing.T) {
	k := sharedKeys()
	srv := newCondServer(t, jwks(t, pubJWK(t, "k1", k.rsa, nil)))
	srv.set(func(s *condServer) { s.always304 = true })
	v := newTestVerifier(t, []ir.JWTProvider{condProvider(srv)}, Options{MinRefreshGap: time.Nanosecond})
	if err := v.WaitKeys(context.Background()); err == nil || v.providers[0].keys.Load() != nil {
		t.Fatalf("first fetch answered 304: WaitKeys %v, keys %v; want an error and none", err, v.providers[0].keys.Load())
	}

	srv.set(func(s *condServer) { s.always304 = false })
	if err := periodic(v); err != nil {
		t.Fatal(err)
	}
	srv.set(func(s *condServer) { s.always304 = true })
	other := sign(t, "RS256", k.rsaOther, map[string]any{"kid": "new"}, claimsAt(time.Now(), remoteIssuer))
	if _, err := v.Verify(context.Background(), other); Reason(err) != ReasonJWKSUnavailable {
		t.Errorf("unknown kid answered 304: %v, want jwks_unavailable", err)
	}
	if err := periodic(v); err == nil {
		t.Error("a periodic refresh after a refused 304 accepted a 304")
	}
	tok := sign(t, "RS256", k.rsa, map[string]any{"kid": "k1"}, claimsAt(time.Now(), remoteIssuer))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Errorf("the keys fetched before the refused 304s: %v", err)
	}
	_, _, asked := srv.counts()
	want := []string{"|", "|", "|", "|"} // first, 200, unknown kid, periodic: none conditional
	if fmt.Sprint(asked) != fmt.Sprint(want) {
		t.Errorf("requests' validators %q, want %q", asked, want)
	}
}

// TestFailedFetchForgetsValidators: after a failed refresh the next one
// is unconditional (a 200), and the one after it conditional again.
func TestFailedFetchForgetsValidators(t *testing.T) {
	k := sharedKeys()
	srv := newCondServer(t, jwks(t, pubJWK(t, "k1", k.rsa, nil)))
	v := newTestVerifier(t, []ir.JWTProvider{condProvider(srv)}, Options{})
	if err := periodic(v); err != nil {
		t.Fatal(err)
	}
	srv.set(func(s *condServer) { s.down = true })
	if err := periodic(v); err == nil {
		t.Fatal("a 503 was a successful refresh")
	}
	srv.set(func(s *condServer) { s.down = false })
	for range 2 {
		if err := periodic(v); err != nil {
			t.Fatal(err)
		}
	}
	ok, notMod, asked := srv.counts()
	conditional := []bool{}
	for _, a := range asked {
		conditional = append(conditional, a != "|")
	}
	if ok != 2 || notMod != 1 || fmt.Sprint(conditional) != "[false true false true]" {
		t.Errorf("%d 200s, %d 304s, conditional requests %v; want 2, 1, [false true false true]", ok, notMod, conditional)
	}
	if v.providers[0].keys.Load() == nil {
		t.Error("keys lost")
	}
}

// TestConditionalValidators: Last-Modified alone makes the refresh
// conditional; a validator over maxValidatorBytes is not remembered.
func TestConditionalValidators(t *testing.T) {
	k := sharedKeys()
	body := jwks(t, pubJWK(t, "k1", k.rsa, nil))
	for _, tc := range []struct {
		name       string
		set        func(*condServer)
		ok, notMod int
	}{
		{"last-modified only", func(s *condServer) { s.noETag = true }, 1, 2},
		{"long etag", func(s *condServer) { s.etag = `"` + strings.Repeat("e", maxValidatorBytes) + `"` }, 1, 2},
		{"long etag and last-modified", func(s *condServer) {
			s.etag = `"` + strings.Repeat("e", maxValidatorBytes) + `"`
			s.lastModified = strings.Repeat("m", maxValidatorBytes+1)
		}, 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newCondServer(t, body)
			srv.set(tc.set)
			v := newTestVerifier(t, []ir.JWTProvider{condProvider(srv)}, Options{})
			for range 3 {
				if err := periodic(v); err != nil {
					t.Fatal(err)
				}
			}
			if ok, notMod, asked := srv.counts(); ok != tc.ok || notMod != tc.notMod {
				t.Errorf("%d 200s, %d 304s, want %d and %d (asked %.80q)", ok, notMod, tc.ok, tc.notMod, asked)
			}
		})
	}
}

// TestSeededVerifierRevalidates: a verifier seeded from a MemoryJWKS
// (the Envoy module's next configuration) revalidates the body with the
// validators stored with it: its first refresh is a 304.
func TestSeededVerifierRevalidates(t *testing.T) {
	k := sharedKeys()
	srv := newCondServer(t, jwks(t, pubJWK(t, "k1", k.rsa, nil)))
	store := NewMemoryJWKS()
	first := newTestVerifier(t, []ir.JWTProvider{condProvider(srv)}, Options{JWKS: store})
	if err := first.WaitKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	next := newTestVerifier(t, []ir.JWTProvider{condProvider(srv)}, Options{JWKS: store})
	keys := next.providers[0].keys.Load()
	if keys == nil {
		t.Fatal("not seeded")
	}
	if err := periodic(next); err != nil {
		t.Fatal(err)
	}
	if ok, notMod, _ := srv.counts(); ok != 1 || notMod != 1 || next.providers[0].keys.Load() != keys {
		t.Errorf("%d 200s, %d 304s, keys kept %t; want 1, 1, true", ok, notMod, next.providers[0].keys.Load() == keys)
	}
}

// BenchmarkRefresh measures one refresh of an unchanged JWKS of four keys
// (three RSA-2048, one P-256) from a local IdP: unconditional (a 200, the
// body downloaded and parsed, as every refresh was before) and
// conditional (a 304, the keys kept).
func BenchmarkRefresh(b *testing.B) {
	k := sharedKeys()
	body := jwks(b, pubJWK(b, "r1", k.rsa, nil), pubJWK(b, "r2", k.rsaOther, nil), pubJWK(b, "r3", k.rsa, nil),
		pubJWK(b, "e1", k.ec256, nil))
	for _, conditional := range []bool{false, true} {
		b.Run(map[bool]string{false: "200_parsed", true: "304_kept"}[conditional], func(b *testing.B) {
			srv := newCondServer(b, body)
			v := newTestVerifier(b, []ir.JWTProvider{condProvider(srv)}, Options{})
			if err := v.fetch(v.providers[0], false); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := v.fetch(v.providers[0], conditional); err != nil {
					b.Fatal(err)
				}
			}
			ok, notMod, _ := srv.counts()
			if conditional && ok != 1 || !conditional && notMod != 0 {
				b.Fatalf("%d 200s and %d 304s", ok, notMod)
			}
			b.ReportMetric(float64(len(body)), "jwks_bytes")
		})
	}
}
