package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestKeysCreateRefusesRolesThatSplit: --roles is split on commas, and a
// role with whitespace (or an empty one) is refused before any call, as
// the upstream would read the joined roles header differently.
func TestKeysCreateRefusesRolesThatSplit(t *testing.T) {
	for _, roles := range []string{"user, admin", "user,,admin", "ops\tx", "a\nb"} {
		var out, errOut bytes.Buffer
		// No server listens there: the roles are refused first.
		code := Execute([]string{"keys", "create", "--consumer", "acme", "--roles", roles, "--server", "http://127.0.0.1:1"}, &out, &errOut)
		if all := out.String() + errOut.String(); code != ExitUsage || !strings.Contains(all, "--roles: invalid role") {
			t.Errorf("--roles %q: exit %d, output %q; want a usage error naming the role", roles, code, all)
		}
	}
}

// TestKeysUpdateRefusesRolesThatSplit: keys update checks roles like keys
// create, before any call.
func TestKeysUpdateRefusesRolesThatSplit(t *testing.T) {
	for _, roles := range []string{"user, admin", "user,,admin", "ops\tx"} {
		var out, errOut bytes.Buffer
		code := Execute([]string{"keys", "update", "27rPErmv", "--roles", roles, "--server", "http://127.0.0.1:1"}, &out, &errOut)
		if all := out.String() + errOut.String(); code != ExitUsage || !strings.Contains(all, "--roles: invalid role") {
			t.Errorf("--roles %q: exit %d, output %q; want a usage error naming the role", roles, code, all)
		}
	}
}
