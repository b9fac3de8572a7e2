package extauthz

import (
	"testing"
)

// The identity guard rebuilds every identity header from the dynamic
// metadata, so each header's value must be there verbatim: roles in the
// header's order, comma-joined; an empty attribute as an empty string (the
// guard then adds no header, as the service removes it).
func TestAllowedMetadataCarriesEveryIdentityHeaderValue(t *testing.T) {
	tbl := &Table{}
	tbl.identity.UserID, tbl.identity.Roles, tbl.identity.Tenant, tbl.identity.Tier = "x-user-id", "x-user-roles", "x-tenant-id", "x-consumer-tier"
	tests := []struct {
		name string
		id   identity
	}{
		{"several roles, unsorted", identity{method: "jwt", userID: "alice", consumer: "alice", roles: []string{"ops", "admin", "user"}, tenant: "acme", tier: "pro"}},
		{"one role", identity{method: "apiKey", userID: "k1", consumer: "k1", roles: []string{"user"}, tenant: "t1", tier: "free"}},
		{"no roles, tenant or tier", identity{method: "oauth2", userID: "svc", consumer: "svc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.id
			resp := allowed(tbl, verdict{status: 200, id: &id, req: requirement{route: "r"}})
			headers := map[string]string{}
			for _, h := range resp.GetOkResponse().GetHeaders() {
				headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
			}
			md := resp.GetDynamicMetadata().GetFields()
			for header, key := range map[string]string{"x-user-id": "user_id", "x-user-roles": "roles", "x-tenant-id": "tenant", "x-consumer-tier": "tier"} {
				v, ok := md[key]
				if !ok {
					t.Errorf("metadata has no %q", key)
					continue
				}
				if got := v.GetStringValue(); got != headers[header] {
					t.Errorf("metadata %s = %q, header %s = %q", key, got, header, headers[header])
				}
			}
		})
	}
}
