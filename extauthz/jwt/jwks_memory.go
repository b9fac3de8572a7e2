package jwt

import (
	"sync"
	"time"
)

// MemoryJWKS is a JWKSStore, JWKSValidators and JWKSFailures in memory:
// the last body fetched from each URI with its validators, and when each URI's last fetch failed with no
// success since. One entry per URI ever stored. Safe for concurrent use.
type MemoryJWKS struct {
	mu     sync.Mutex
	bodies map[string]memoryBody
	failed map[string]time.Time
}

type memoryBody struct {
	body               []byte
	etag, lastModified string
	at                 time.Time
}

// NewMemoryJWKS returns an empty MemoryJWKS.
func NewMemoryJWKS() *MemoryJWKS {
	return &MemoryJWKS{bodies: map[string]memoryBody{}, failed: map[string]time.Time{}}
}

// Load returns uri's body if it was stored within maxAge.
func (s *MemoryJWKS) Load(uri string, maxAge time.Duration) []byte {
	body, _, _ := s.LoadValidated(uri, maxAge)
	return body
}

// LoadValidated returns uri's body and its validators if it was stored
// within maxAge.
func (s *MemoryJWKS) LoadValidated(uri string, maxAge time.Duration) (body []byte, etag, lastModified string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.bodies[uri]
	if !ok || time.Since(b.at) > maxAge {
		return nil, "", ""
	}
	return b.body, b.etag, b.lastModified
}

// Store records uri's body, fetched now, without validators; it ends uri's
// failures.
func (s *MemoryJWKS) Store(uri string, body []byte) {
	s.StoreValidated(uri, body, "", "")
}

// StoreValidated records uri's body, fetched (or revalidated) now, with
// its validators; it ends uri's failures. The caller bounds the
// validators' length (the verifier keeps none over 1 KiB).
func (s *MemoryJWKS) StoreValidated(uri string, body []byte, etag, lastModified string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bodies[uri] = memoryBody{body: body, etag: etag, lastModified: lastModified, at: time.Now()}
	delete(s.failed, uri)
}

// Failed records that a fetch from uri just failed.
func (s *MemoryJWKS) Failed(uri string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed[uri] = time.Now()
}

// FailedWithin reports whether uri's last fetch failed less than d ago
// with no success since.
func (s *MemoryJWKS) FailedWithin(uri string, d time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.failed[uri]
	return ok && time.Since(at) < d
}
