package acme

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/go-acme/lego/v5/challenge/http01"
)

// ChallengePathPrefix is the URL path under which ACME HTTP-01 tokens are
// served (RFC 8555 §8.3).
const ChallengePathPrefix = http01.PathPrefix

// Responder answers ACME HTTP-01 challenges. It is the lego HTTP-01
// provider of every Manager that shares it (Present and CleanUp) and the
// http.Handler that serves the key authorizations at
// /.well-known/acme-challenge/<token>, for the domain the token was
// presented for only. It is safe for concurrent use.
type Responder struct {
	mu     sync.Mutex
	tokens map[string]pending // by token
}

type pending struct {
	domain  string
	keyAuth string
}

// NewResponder returns a Responder with no tokens.
func NewResponder() *Responder {
	return &Responder{tokens: map[string]pending{}}
}

// Present makes keyAuth the answer to token for domain (challenge.Provider).
func (r *Responder) Present(_ context.Context, domain, token, keyAuth string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tokens[token] = pending{domain: strings.ToLower(domain), keyAuth: keyAuth}
	return nil
}

// CleanUp forgets token (challenge.Provider).
func (r *Responder) CleanUp(_ context.Context, _, token, _ string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.tokens, token)
	return nil
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
	r.mu.Lock()
	p, ok := r.tokens[token]
	r.mu.Unlock()
	if !ok || p.domain != hostOnly(req.Host) {
		http.NotFound(w, req)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(p.keyAuth))
}

// hostOnly returns host without a port, lower-cased.
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}
