package main

import (
	"sync"
	"time"
)

// processJWKS is the JWKS bodies the module's filter configurations share
// in one Envoy process (jwt.JWKSStore). Each policy push that changes a
// listener's filters builds a new configuration whose verifier has no keys
// yet, and the config hook waits on Envoy's main thread for its first
// fetch (tgConfigNew); with the previous configuration's keys, fetched
// from the same URI within the refresh interval, it has nothing to wait
// for and refreshes in the background. Process-wide like the cgo handle
// registry: the keys must outlive the configuration that fetched them.
// One entry per JWKS URI a policy ever named (each body at most 1 MiB).
var processJWKS = &jwksBodies{m: map[string]jwksBody{}, failed: map[string]time.Time{}}

type jwksBody struct {
	body []byte
	at   time.Time
}

// jwksBodies implements jwt.JWKSStore and jwt.JWKSFailures: a new
// configuration does not wait for an endpoint whose last fetch failed
// (one entry per URI as well).
type jwksBodies struct {
	mu     sync.Mutex
	m      map[string]jwksBody
	failed map[string]time.Time // URI -> when its last fetch failed, none succeeding since
}

// Load returns uri's body if it was stored within maxAge.
func (s *jwksBodies) Load(uri string, maxAge time.Duration) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[uri]
	if !ok || time.Since(b.at) > maxAge {
		return nil
	}
	return b.body
}

// Store records uri's body, fetched now.
func (s *jwksBodies) Store(uri string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[uri] = jwksBody{body: body, at: time.Now()}
	delete(s.failed, uri)
}

// Failed records that a fetch from uri just failed.
func (s *jwksBodies) Failed(uri string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed[uri] = time.Now()
}

// FailedWithin reports whether uri's last fetch failed less than d ago
// with no success since.
func (s *jwksBodies) FailedWithin(uri string, d time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.failed[uri]
	return ok && time.Since(at) < d
}
