package jwkswatch

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/jwttest"
	"github.com/tollgate/tollgate/policy/ir"
)

// jwksServer serves the JWKS of the keys it holds.
type jwksServer struct {
	mu   sync.Mutex
	keys map[string]json.RawMessage // kid -> JWK
	srv  *httptest.Server
}

func newJWKSServer(t *testing.T, kids ...string) *jwksServer {
	t.Helper()
	s := &jwksServer{keys: map[string]json.RawMessage{}}
	for _, kid := range kids {
		iss, err := jwttest.New("https://id.example.com/", "api")
		if err != nil {
			t.Fatal(err)
		}
		iss.KID = kid
		var set struct{ Keys []json.RawMessage }
		if err := json.Unmarshal([]byte(iss.JWKS()), &set); err != nil {
			t.Fatal(err)
		}
		s.keys[kid] = set.Keys[0]
	}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		keys := []json.RawMessage{}
		for _, k := range s.keys {
			keys = append(keys, k)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *jwksServer) withdraw(kid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, kid)
}

func policyWith(providers ...ir.JWTProvider) *ir.Config {
	return &ir.Config{Auth: ir.Auth{JWT: providers}}
}

func remoteProvider(name, uri string) ir.JWTProvider {
	return ir.JWTProvider{Name: name, Issuer: "https://" + name + ".example.com/", JWKSURI: uri,
		Algorithms: []string{"RS256"}, ClockSkew: 30 * time.Second}
}

// TestWatchBumpsOnWithdrawal: a key withdrawn from a watched JWKS makes
// one Bump within the interval; a swap to the same providers keeps the
// watch; a policy whose provider jwt_authn cannot verify (HMAC) watches
// nothing.
func TestWatchBumpsOnWithdrawal(t *testing.T) {
	idp := newJWKSServer(t, "k1", "k2")
	var bumps atomic.Int32
	w, err := New(context.Background(), Options{Interval: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Bump: func(string) { bumps.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cfg := policyWith(remoteProvider("corp", idp.srv.URL))
	if _, err := w.Swap(cfg); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // fetches with both keys
	if n := bumps.Load(); n != 0 {
		t.Fatalf("%d bumps before any withdrawal", n)
	}
	if _, err := w.Swap(policyWith(remoteProvider("corp", idp.srv.URL))); err != nil || w.current == nil {
		t.Fatalf("same providers: %v", err)
	}
	idp.withdraw("k2")
	deadline := time.Now().Add(5 * time.Second)
	for bumps.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // later fetches: nothing more withdrawn
	if n := bumps.Load(); n != 1 {
		t.Fatalf("%d bumps after one withdrawal, want 1", n)
	}
	hmac := ir.JWTProvider{Name: "hs", Issuer: "https://hs.example.com/", HMACSecretEnv: "X", Algorithms: []string{"HS256"}, ClockSkew: time.Second}
	if _, err := w.Swap(policyWith(remoteProvider("corp", idp.srv.URL), hmac)); err != nil || w.current != nil {
		t.Fatalf("a provider off the native path: still watching (%v)", err)
	}
}

// TestWatchRestore: restoring a Swap watches the previous providers again.
func TestWatchRestore(t *testing.T) {
	idp := newJWKSServer(t, "k1")
	w, err := New(context.Background(), Options{Interval: time.Minute, Bump: func(string) {}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	first := policyWith(remoteProvider("corp", idp.srv.URL))
	if _, err := w.Swap(first); err != nil {
		t.Fatal(err)
	}
	restore, err := w.Swap(policyWith())
	if err != nil || w.current != nil {
		t.Fatalf("empty policy: %v", err)
	}
	restore()
	if w.current == nil || watchKey(w.watched) != watchKey(first.Auth.JWT) {
		t.Fatal("restore did not watch the previous providers")
	}
}

// TestWatchSeesAWithdrawalAcrossASwap: a policy that watches the JWKS
// anew (here another algorithm list) starts from the keys the previous
// watch saw: a key withdrawn meanwhile makes a Bump at its first fetch.
func TestWatchSeesAWithdrawalAcrossASwap(t *testing.T) {
	idp := newJWKSServer(t, "k1", "k2")
	bumped := make(chan string, 4)
	w, err := New(context.Background(), Options{Interval: time.Minute, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Bump: func(reason string) { bumped <- reason }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	p := remoteProvider("corp", idp.srv.URL)
	if _, err := w.Swap(policyWith(p)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for w.bodies.Load(idp.srv.URL, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the first fetch, with k1 and k2
	}
	idp.withdraw("k2")
	p.Algorithms = []string{"RS256", "ES256"}
	if _, err := w.Swap(policyWith(p)); err != nil {
		t.Fatal(err)
	}
	select {
	case reason := <-bumped:
		t.Logf("bumped: %s", reason)
	case <-time.After(5 * time.Second):
		t.Fatal("a key withdrawn across a Swap was not reported")
	}
}

// TestWatchFollowsTheProviderRefresh: a provider's JWKSRefresh, not the
// watch's Interval (a minute here), sets how often its JWKS is fetched and
// how soon Bump may follow the last one: two withdrawals a moment apart
// make two Bumps within seconds. A Swap that changes only the refresh
// watches anew.
func TestWatchFollowsTheProviderRefresh(t *testing.T) {
	idp := newJWKSServer(t, "k1", "k2", "k3")
	bumped := make(chan string, 4)
	w, err := New(context.Background(), Options{Interval: time.Minute, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Bump: func(reason string) { bumped <- reason }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	p := remoteProvider("corp", idp.srv.URL)
	p.JWKSRefresh = 100 * time.Millisecond
	if _, err := w.Swap(policyWith(p)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for w.bodies.Load(idp.srv.URL, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the first fetch, with every key
	}
	for _, kid := range []string{"k2", "k3"} {
		idp.withdraw(kid)
		start := time.Now()
		select {
		case <-bumped:
			t.Logf("%s withdrawn: bumped after %s", kid, time.Since(start).Round(time.Millisecond))
		case <-time.After(5 * time.Second):
			t.Fatalf("%s withdrawn: no Bump within 5 s (the watch's Interval is a minute, the provider's 100ms)", kid)
		}
	}
	before := w.current
	p.JWKSRefresh = 200 * time.Millisecond
	if _, err := w.Swap(policyWith(p)); err != nil || w.current == before {
		t.Fatalf("a Swap changing jwksRefresh kept the watch (%v)", err)
	}
}

func TestBumpInterval(t *testing.T) {
	a, b := remoteProvider("a", "https://a/k"), remoteProvider("b", "https://b/k")
	if got := bumpInterval(time.Minute, []ir.JWTProvider{a, b}); got != time.Minute {
		t.Errorf("no jwksRefresh: %s, want the Interval", got)
	}
	a.JWKSRefresh, b.JWKSRefresh = 10*time.Second, 2*time.Minute
	if got := bumpInterval(time.Minute, []ir.JWTProvider{a, b}); got != 10*time.Second {
		t.Errorf("jwksRefresh 10s and 2m: %s, want 10s", got)
	}
}
