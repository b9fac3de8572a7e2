package layering

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/tollgate/tollgate"

// TestDependencyRules enforces the architecture's import rules on the
// transitive dependencies of each package pattern:
//   - the policy and its IR know nothing of Envoy or go-control-plane;
//   - the envoy builders know nothing of the policy;
//   - the ext_authz, rate-limit and transformation services never import
//     the xDS server (nor, for the last, the policy);
//   - internal/acme reaches the shared Redis store only through its KV and
//     Locker interfaces (no import of internal/store or go-redis).
func TestDependencyRules(t *testing.T) {
	tests := []struct {
		pattern   string
		minDeps   int // guards against a vacuous pass on a mistyped pattern
		forbidden []string
	}{
		{"./policy/...", 10, []string{"github.com/envoyproxy/", module + "/xds", module + "/envoy"}},
		{"./envoy/...", 10, []string{module + "/policy", module + "/xds"}},
		{"./extauthz/...", 0, []string{module + "/xds"}},
		{"./ratelimit/...", 0, []string{module + "/xds"}},
		{"./transform/...", 0, []string{module + "/xds", module + "/policy"}},
		{"./internal/acme", 10, []string{module + "/internal/store", "github.com/redis/"}},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			deps := listDeps(t, "../../"+tt.pattern[2:])
			if len(deps) < tt.minDeps {
				t.Fatalf("%s has %d dependencies, want at least %d: is the pattern right?", tt.pattern, len(deps), tt.minDeps)
			}
			for _, d := range deps {
				for _, f := range tt.forbidden {
					if strings.HasPrefix(d, f) {
						t.Errorf("%s depends on %s (forbidden: %s)", tt.pattern, d, f)
					}
				}
			}
		})
	}
}

// listDeps returns the transitive imports of the packages matching pattern;
// a pattern that matches nothing yet (a package still to come) has none.
func listDeps(t *testing.T, pattern string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-e", "-deps", "-f", "{{.ImportPath}}", pattern).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", pattern, err, out)
	}
	var deps []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" && !strings.Contains(l, "matched no packages") {
			deps = append(deps, l)
		}
	}
	return deps
}
