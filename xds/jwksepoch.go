package xds

// BumpJWKSEpoch starts a new JWKS epoch and serves it at once: every
// gateway whose jwt_authn filter is served over ECDS (a provider with a
// remote JWKS) gets a jwt_authn config that differs by its epoch alone,
// and only that ECDS resource changes (no listener, route table or
// cluster), so Envoy swaps that filter's config in place. The new config
// has new verified-token caches and fetches the JWKS at once: a token
// verified with a key the IdP has since withdrawn is verified again, and
// refused, on its next request. Call it when a provider's JWKS lost a key
// (jwkswatch); the caller bounds how often (each call costs every Envoy a
// JWKS fetch per provider and an empty token cache). It does not wait for
// ACKs, and may run while an Apply is under way: every snapshot set from
// then on carries the new epoch. It returns the new epoch.
func (s *Server) BumpJWKSEpoch(reason string) uint64 {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	s.jwksEpoch++
	s.log.Info("new JWKS epoch: jwt_authn token caches are replaced", "epoch", s.jwksEpoch, "reason", reason)
	s.serveExtensions("JWKS epoch", "epoch", s.jwksEpoch)
	return s.jwksEpoch
}
