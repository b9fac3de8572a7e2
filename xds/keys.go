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
	s.serveExtensions("API-key exceptions table", "items", len(x.Items), "fresh", x.Fresh)
}

// serveExtensions gives every gateway whose ECDS resources changed with
// the current exceptions table and JWKS epoch its new snapshot; what names
// the change (and attrs) for the logs. Callers hold snapMu.
func (s *Server) serveExtensions(what string, attrs ...any) {
	for g, ts := range s.gateways {
		next, err := s.withCurrentExtensions(g, ts)
		if err == nil && next != ts {
			_, err = next.snapshot()
		}
		if err != nil {
			s.log.Error("serve the "+what, "gateway", g, "err", err)
			continue
		}
		if next == ts {
			continue
		}
		s.gateways[g] = next
		for _, id := range s.tracker.nodesOf(g) {
			s.setNode(id, next)
		}
		s.log.Debug(what+" served", append([]any{"gateway", g, "version", next.of[resource.ExtensionConfigType].version}, attrs...)...)
	}
}

// withCurrentExtensions returns ts with the current JWKS epoch, enforcing
// the current table, or refusing every signed key when a proxy of gateway
// refused that table's resource. Callers hold snapMu.
func (s *Server) withCurrentExtensions(gateway string, ts *typeSet) (*typeSet, error) {
	in := extInputs{keys: s.keys, epoch: s.jwksEpoch}
	next, err := ts.withExtensions(in)
	if err != nil || next.keys == nil || keyTableVersion(next) != s.keysRejected[gateway] {
		return next, err
	}
	in.keys = translator.KeyExceptions{}
	return ts.withExtensions(in)
}

// keyTableRejected handles a proxy's refusal of gateway's exceptions table
// (a table Envoy cannot load, e.g. too large): Envoy would go on enforcing
// its previous table, missing every revocation since, so the gateway is
// served a table that refuses every signed key (503 key_store_unavailable)
// until the table changes again.
func (s *Server) keyTableRejected(gateway string) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	ts := s.gateways[gateway]
	if ts == nil || ts.keys == nil {
		return
	}
	if s.keysRejected == nil {
		s.keysRejected = map[string]string{}
	}
	s.keysRejected[gateway] = keyTableVersion(ts)
	next, err := s.withCurrentExtensions(gateway, ts)
	if err == nil && next != ts {
		_, err = next.snapshot()
	}
	if err != nil || next == ts {
		s.log.Error("refuse signed keys after a rejected exceptions table", "gateway", gateway, "err", err)
		return
	}
	s.gateways[gateway] = next
	for _, id := range s.tracker.nodesOf(gateway) {
		s.setNode(id, next)
	}
	s.log.Error("a proxy rejected the API-key exceptions table: signed keys are refused (503) until the table changes",
		"gateway", gateway, "items", len(s.keys.Items))
}

// keyTableVersion is the version of ts's key identity resource alone (a
// new JWKS epoch changes jwt_authn's resource, never this one).
func keyTableVersion(ts *typeSet) string {
	return ts.of[resource.ExtensionConfigType].each[ts.keys.Name()]
}

// keyExceptions returns the current exceptions table.
func (s *Server) keyExceptions() translator.KeyExceptions {
	return s.extInputs().keys
}

// extInputs returns the current exceptions table and JWKS epoch.
func (s *Server) extInputs() extInputs {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	return extInputs{keys: s.keys, epoch: s.jwksEpoch}
}
