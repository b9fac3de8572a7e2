package acme

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/go-acme/lego/v5/challenge/http01"
)

// ChallengePathPrefix is the URL path under which ACME HTTP-01 tokens are
// served (RFC 8555 §8.3).
const ChallengePathPrefix = http01.PathPrefix

// Responder answers ACME HTTP-01 challenges. It is the lego HTTP-01
// provider of every Manager that shares it (Present and CleanUp) and the
// http.Handler that serves the key authorizations at
// /.well-known/acme-challenge/<token>, for the domain the token was
// presented for only. A shared Responder (NewSharedResponder) also
// publishes its tokens in a store shared by every replica and answers the
// tokens any replica presented, so the CA's request may reach any replica's
// Envoy. It is safe for concurrent use.
type Responder struct {
	shared KV // nil: this process only

	mu     sync.Mutex
	tokens map[string]pending // by token
}

type pending struct {
	Domain  string `json:"domain"`
	KeyAuth string `json:"keyAuth"`
}

// tokenTTL bounds how long a presented token stays in the shared store if
// CleanUp never runs (a crashed replica); CAs validate within seconds.
const tokenTTL = 10 * time.Minute

// validToken is the base64url alphabet of RFC 8555 tokens.
var validToken = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

// NewResponder returns a Responder with no tokens.
func NewResponder() *Responder {
	return &Responder{tokens: map[string]pending{}}
}

// NewSharedResponder returns a Responder that also publishes its tokens in
// kv (as challenges/<token>, expiring after 10 minutes) and answers those
// of the other replicas from it.
func NewSharedResponder(kv KV) *Responder {
	return &Responder{shared: kv, tokens: map[string]pending{}}
}

// Present makes keyAuth the answer to token for domain (challenge.Provider).
func (r *Responder) Present(_ context.Context, domain, token, keyAuth string) error {
	p := pending{Domain: strings.ToLower(domain), KeyAuth: keyAuth}
	r.mu.Lock()
	r.tokens[token] = p
	r.mu.Unlock()
	if r.shared == nil {
		return nil
	}
	if !validToken.MatchString(token) {
		return fmt.Errorf("acme http-01: malformed token %q", token)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := r.shared.Put("challenges/"+token, b, tokenTTL); err != nil {
		return fmt.Errorf("acme http-01: publish the token to the other replicas: %w", err)
	}
	return nil
}

// CleanUp forgets token (challenge.Provider).
func (r *Responder) CleanUp(_ context.Context, _, token, _ string) error {
	r.mu.Lock()
	delete(r.tokens, token)
	r.mu.Unlock()
	if r.shared == nil || !validToken.MatchString(token) {
		return nil
	}
	return r.shared.Delete("challenges/" + token)
}

// lookup returns the token's answer, from this process or the shared store.
func (r *Responder) lookup(token string) (pending, bool) {
	r.mu.Lock()
	p, ok := r.tokens[token]
	r.mu.Unlock()
	if ok || r.shared == nil || !validToken.MatchString(token) {
		return p, ok
	}
	b, err := r.shared.Get("challenges/" + token)
	if err != nil || json.Unmarshal(b, &p) != nil {
		return p, false
	}
	return p, true
}

// ServeHTTP answers GET and HEAD /.well-known/acme-challenge/<token> with
// the token's key authorization when the request's Host (without its port)
// is the domain the token was presented for; everything else is a 404.
func (r *Responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	token, ok := strings.CutPrefix(req.URL.Path, ChallengePathPrefix)
	if !ok || token == "" || strings.Contains(token, "/") {
		http.NotFound(w, req)
		return
	}
	p, ok := r.lookup(token)
	if !ok || p.Domain != hostOnly(req.Host) {
		http.NotFound(w, req)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(p.KeyAuth))
}

// hostOnly returns host without a port, lower-cased.
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}
