package extauthz

import (
	"fmt"
	"reflect"
	"sync/atomic"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/extauthz/envoymod"
)

// Successive configurations of one lineage. The Envoy module builds a new
// filter configuration for every change of the signed keys' exceptions
// table or of its freshness (envoymod.Keys); everything else in it is the
// same (a policy change renames the filter: a new lineage). Derive builds
// such a successor sharing the predecessor's JWT verifiers (no JWKS work,
// no warm-up), and KeptKeys says which signed keys a verification of the
// predecessor still holds for in the successor (what the module's table of
// verified credentials may keep).

// tableHolders counts the Locals sharing one Table (NewLocal, then one
// per Derive): the last Close closes it.
type tableHolders struct{ n atomic.Int64 }

// LineageOf returns cfg without what may change within a lineage: the
// signed keys' freshness, epoch and exceptions.
func LineageOf(cfg envoymod.FilterConfig) envoymod.FilterConfig {
	if cfg.Keys != nil {
		k := *cfg.Keys
		k.Fresh, k.Epoch, k.Exceptions = false, "", nil
		cfg.Keys = &k
	}
	return cfg
}

// SameLineage reports whether a and b differ at most in their signed keys'
// freshness, epoch and exceptions (see Derive).
func SameLineage(a, b envoymod.FilterConfig) bool {
	return reflect.DeepEqual(LineageOf(a), LineageOf(b))
}

// Derive returns a Local serving cfg, a successor of l's configuration
// (SameLineage): it shares l's JWT verifiers and their keys (it starts no
// fetch and needs no WaitKeys; the verifiers run until every Local sharing
// them is closed) and verifies signed keys with cfg.Keys' own verifier.
// Its KeysWithdrawn hook is l's (the verifiers'). It fails when cfg is not
// of l's lineage, when the verifiers are closed (every Local sharing them
// was), or when cfg.Keys' verifier cannot be
// built; l is unchanged then.
func (l *Local) Derive(cfg envoymod.FilterConfig) (*Local, error) {
	if !SameLineage(l.base, cfg) {
		return nil, fmt.Errorf("extauthz: local decisions: derive: not the same configuration apart from the exceptions table")
	}
	o := l.s.opts
	o.Keys = nil
	var offline *apikey.Offline
	if cfg.Keys != nil {
		v, err := offlineKeys(*cfg.Keys, l.now)
		if err != nil {
			return nil, fmt.Errorf("extauthz: local decisions: %w", err)
		}
		o.Keys, offline = localKeys{v}, v
	}
	for n := l.holders.n.Load(); ; n = l.holders.n.Load() { // never revive a closed Table
		if n <= 0 {
			return nil, fmt.Errorf("extauthz: local decisions: derive: the predecessor's verifiers are closed")
		}
		if l.holders.n.CompareAndSwap(n, n+1) {
			break
		}
	}
	return &Local{s: New(l.s.ctx, o), t: l.t, keys: l.keys, wait: l.wait, ended: l.ended, base: l.base,
		offline: offline, now: l.now, holders: l.holders, learned: l.learned}, nil
}

// KeptKeys returns those of ids (signed keys' ids) that prev's verifier
// decides exactly as l's: both fresh, with the same public key and epoch,
// and the same exception for the id (or none in both). A key verified
// and allowed by prev, with prev's identity (tier, roles, expiry), is then
// allowed by l with the same identity; any other id's verification must
// be redone. Nil when either has no signed keys.
func (l *Local) KeptKeys(prev *Local, ids []string) []string {
	if l.offline == nil || prev == nil || prev.offline == nil || !l.offline.Continues(prev.offline) {
		return nil
	}
	var kept []string
	for _, id := range ids {
		if l.offline.SameException(prev.offline, id) {
			kept = append(kept, id)
		}
	}
	return kept
}
