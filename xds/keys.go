package xds

import (
	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/tollgate/tollgate/xds/translator"
)

// SetKeyExceptions makes x the API-key exceptions table that every
// gateway with native key routes enforces, and serves it at once: each such
// gateway's snapshot changes only its ExtensionConfigType resource (the key
// identity filter's ECDS config), never a listener, route table or cluster,
// so Envoy reloads that one filter. The same table again changes nothing
// (same resource version: no push). It does not wait for ACKs, and may run
// while an Apply is under way: every snapshot set from then on carries x.
func (s *Server) SetKeyExceptions(x translator.KeyExceptions) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	s.keys = x
	for g, ts := range s.gateways {
		next, err := ts.withKeys(x)
		if err == nil && next != ts {
			_, err = next.snapshot()
		}
		if err != nil {
			s.log.Error("serve the API-key exceptions table", "gateway", g, "err", err)
			continue
		}
		if next == ts {
			continue
		}
		s.gateways[g] = next
		for _, id := range s.tracker.nodesOf(g) {
			s.setNode(id, next)
		}
		s.log.Debug("API-key exceptions table served", "gateway", g, "items", len(x.Items), "fresh", x.Fresh,
			"version", next.versions[resource.ExtensionConfigType])
	}
}

// keyExceptions returns the current exceptions table.
func (s *Server) keyExceptions() translator.KeyExceptions {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	return s.keys
}
