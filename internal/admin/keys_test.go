package admin

import (
	"strings"
	"testing"
	"time"
)

// TestKeyRecordRefusesRolesThatSplit: a key's roles reach upstreams joined
// with commas, so a role holding a comma, whitespace or a control
// character (or an empty one) is refused when the key is created.
func TestKeyRecordRefusesRolesThatSplit(t *testing.T) {
	tests := []struct {
		roles []string
		want  string // "" accepted; otherwise part of the message
	}{
		{[]string{"user", "admin", "team:ops", "read-only"}, ""},
		{[]string{"user", "admin,root"}, `roles[1] "admin,root"`},
		{[]string{" admin"}, `roles[0] " admin"`},
		{[]string{"ops\r\nx-evil: 1"}, `roles[0]`},
		{[]string{"a\tb"}, `roles[0]`},
		{[]string{""}, `roles[0] ""`},
		{[]string{"no\u00a0break"}, `roles[0]`},
	}
	for _, tt := range tests {
		_, msg := keyRecord(CreateKeyRequest{Consumer: "acme", Roles: tt.roles}, time.Now())
		if (tt.want == "") != (msg == "") || !strings.Contains(msg, tt.want) {
			t.Errorf("roles %q: %q, want a message containing %q", tt.roles, msg, tt.want)
		}
	}
}

// TestKeyRecordRefusesTenantsThatBreakHeaders: a key's tenant reaches
// upstreams in the tenant identity header, so a tenant holding a control
// character other than tab is refused when the key is created (Envoy
// would answer every request with the key 500 on ext_authz, 401 on the
// native key path).
func TestKeyRecordRefusesTenantsThatBreakHeaders(t *testing.T) {
	tests := []struct {
		tenant string
		want   string // "" accepted; otherwise part of the message
	}{
		{"acme", ""},
		{"a\tb", ""},
		{"Zürich \u202eteam", ""}, // printable, as ext_authz passes it: the upstream gets it byte for byte
		{"a\r\nx-evil: 1", `tenant "a\r\nx-evil: 1"`},
		{"a\nb", "tenant"},
		{"a\x00b", "tenant"},
		{"a\x7fb", "tenant"},
		{"a\x1bb", "tenant"},
	}
	for _, tt := range tests {
		_, msg := keyRecord(CreateKeyRequest{Consumer: "acme", Tenant: tt.tenant}, time.Now())
		if (tt.want == "") != (msg == "") || !strings.Contains(msg, tt.want) {
			t.Errorf("tenant %q: %q, want a message containing %q", tt.tenant, msg, tt.want)
		}
	}
}
