package extauthz

import (
	"slices"

	"github.com/tollgate/tollgate/extauthz/contract"
)

// apiKeyProvider names the API-key store in metrics and logs.
const apiKeyProvider = "apikeys"

// roles returns the roles of provider's caller that may reach the roles
// header (contract.ValidRole): a role holding the header's separator,
// whitespace or a control character would read as other roles to an
// upstream that splits the header, so it is dropped, counted, and logged
// once per provider and policy version. The common case (all valid)
// returns roles itself without allocating.
func (s *Service) roles(t *Table, provider string, roles []string) []string {
	if !slices.ContainsFunc(roles, invalidRole) {
		return roles
	}
	kept := make([]string, 0, len(roles)-1)
	dropped := 0
	for _, r := range roles {
		if invalidRole(r) {
			dropped++
			continue
		}
		kept = append(kept, r)
	}
	s.opts.Metrics.rolesDropped(provider, dropped)
	if _, logged := t.droppedRolesLogged.LoadOrStore(provider, true); !logged {
		s.log.Warn("dropped role values that hold a comma, whitespace or a control character "+
			"(logged once per provider; tollgate_authz_roles_dropped_total counts them)", "provider", provider, "dropped", dropped)
	}
	return kept
}

func invalidRole(r string) bool { return !contract.ValidRole(r) }
