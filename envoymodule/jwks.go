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
var processJWKS = &jwksBodies{m: map[string]jwksBody{}}

type jwksBody struct {
	body []byte
	at   time.Time
}

// jwksBodies implements jwt.JWKSStore.
type jwksBodies struct {
	mu sync.Mutex
	m  map[string]jwksBody
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
}
