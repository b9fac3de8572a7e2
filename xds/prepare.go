package xds

import (
	"sync"

	"github.com/tollgate/tollgate/xds/translator"
)

// prepared is the hashing one Prepare started: a future per gateway's
// resources.
type prepared struct {
	futures map[*translator.Resources]func() (*hashed, error)
}

// Prepare starts hashing desired's resources (resources by gateway) for
// the Apply that will serve them, on goroutines of their own, so that the
// caller does its other work meanwhile (a push writes its store records
// while the route tables are encoded and hashed). Apply takes the result
// for the same *translator.Resources and hashes anything else itself, so
// its outcome is the same with or without Prepare; the resources must not
// change after Prepare. Only the latest Prepare is kept, until an Apply
// takes it or discard drops it: call discard when no Apply follows (it
// does nothing once an Apply or a later Prepare took its place).
func (s *Server) Prepare(desired map[string]*translator.Resources) (discard func()) {
	p := &prepared{futures: make(map[*translator.Resources]func() (*hashed, error), len(desired))}
	for _, r := range desired {
		f := sync.OnceValues(func() (*hashed, error) { return hashTypes(r) })
		go func() { _, _ = f() }()
		p.futures[r] = f
	}
	s.prepMu.Lock()
	s.prepared = p
	s.prepMu.Unlock()
	return func() {
		s.prepMu.Lock()
		defer s.prepMu.Unlock()
		if s.prepared == p {
			s.prepared = nil
		}
	}
}

// takePrepared returns what the latest Prepare started (nil for none),
// and forgets it.
func (s *Server) takePrepared() *prepared {
	s.prepMu.Lock()
	defer s.prepMu.Unlock()
	p := s.prepared
	s.prepared = nil
	return p
}

// hashGateway is hashTypes(r), from p when p's Prepare started it.
func (p *prepared) hashGateway(r *translator.Resources) (*hashed, error) {
	if p != nil {
		if f, ok := p.futures[r]; ok {
			return f()
		}
	}
	return hashTypes(r)
}
