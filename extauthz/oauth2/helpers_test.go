package oauth2

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

const (
	testClientID = "gateway client:1/é"
	// testClientUser is testClientID form-encoded, as RFC 6749 §2.3.1
	// wants it in the Basic credentials.
	testClientUser = "gateway+client%3A1%2F%C3%A9"
	testSecret     = "s3cr+t:with/odd chars"
	testSecretEnv  = "TEST_INTROSPECTION_SECRET"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_900_000_000, 0).UTC()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// idp is an introspection endpoint. It checks the request like a strict
// server would and answers from tokens (unknown tokens are inactive).
type idp struct {
	srv      *httptest.Server
	requests atomic.Int64

	mu     sync.Mutex
	tokens map[string]map[string]any
	status int           // when non-zero, answer this status
	raw    []byte        // when non-nil, answer this body
	gate   chan struct{} // when non-nil, wait for it before answering
}

func newIDP(t testing.TB) *idp {
	p := &idp{tokens: make(map[string]map[string]any)}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) set(token string, claims map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokens[token] = claims
}

func (p *idp) configure(f func(p *idp)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func (p *idp) serve(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	p.mu.Lock()
	gate, status, raw := p.gate, p.status, p.raw
	p.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if code := p.checkRequest(r); code != http.StatusOK {
		http.Error(w, http.StatusText(code), code)
		return
	}
	switch {
	case status != 0:
		http.Error(w, "forced", status)
	case raw != nil:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(raw)
	default:
		p.mu.Lock()
		claims, ok := p.tokens[r.PostForm.Get("token")]
		p.mu.Unlock()
		if !ok {
			claims = map[string]any{"active": false}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(claims)
	}
}

// checkRequest returns 200 for a well-formed, authenticated request.
func (p *idp) checkRequest(r *http.Request) int {
	user, pass, ok := r.BasicAuth()
	switch {
	case r.Method != http.MethodPost:
		return http.StatusMethodNotAllowed
	case r.Header.Get("Content-Type") != "application/x-www-form-urlencoded":
		return http.StatusUnsupportedMediaType
	case r.Header.Get("Accept") != "application/json":
		return http.StatusNotAcceptable
	case !ok || user != testClientUser || pass != formEncode(testSecret):
		return http.StatusUnauthorized
	case r.ParseForm() != nil || r.PostForm.Get("token_type_hint") != "access_token" || r.PostForm.Get("token") == "":
		return http.StatusBadRequest
	}
	return http.StatusOK
}

// formEncode is application/x-www-form-urlencoded encoding, written out
// for the few characters the tests use.
func formEncode(s string) string {
	r := map[rune]string{' ': "+", '+': "%2B", ':': "%3A", '/': "%2F"}
	var b bytes.Buffer
	for _, c := range s {
		if e, ok := r[c]; ok {
			b.WriteString(e)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (p *idp) provider() ir.OAuth2Provider {
	return ir.OAuth2Provider{Name: "idp", IntrospectionURL: p.srv.URL + "/introspect", ClientID: testClientID,
		ClientSecretEnv: testSecretEnv, CacheTTL: time.Minute}
}

func testGetenv(name string) string {
	if name == testSecretEnv {
		return testSecret
	}
	return ""
}

// newTestIntrospector returns an Introspector of p with the test secret.
func newTestIntrospector(t testing.TB, p ir.OAuth2Provider, opts Options) *Introspector {
	t.Helper()
	if opts.Getenv == nil {
		opts.Getenv = testGetenv
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	in, err := NewIntrospector(p, opts)
	if err != nil {
		t.Fatalf("NewIntrospector: %v", err)
	}
	return in
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
