package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/extauthz/envoymod"
)

func writePolicy(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExitCodes(t *testing.T) {
	valid := writePolicy(t, string(devPolicy))
	invalid := writePolicy(t, "version: 1\ngateways: []\nroutes:\n  - {name: r, backend: nope}\n")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"valid policy", []string{"validate", valid}, ExitOK, "valid: version"},
		{"invalid policy", []string{"validate", invalid}, ExitFailed, "routes[0].backend"},
		{"json output", []string{"validate", "-o", "json", valid}, ExitOK, `"valid": true`},
		{"unknown flag", []string{"validate", "--nope", valid}, ExitUsage, "unknown flag"},
		{"missing argument", []string{"validate"}, ExitUsage, "accepts 1 arg"},
		{"bad output format", []string{"validate", "-o", "xml", valid}, ExitUsage, "unknown output format"},
		{"missing file", []string{"validate", "/nonexistent.yaml"}, ExitFailed, "nonexistent"},
		{"bootstrap needs a gateway", []string{"bootstrap", "--node-id", "n"}, ExitUsage, "--gateway"},
		{"bootstrap", []string{"bootstrap", "--gateway", "g", "--node-id", "n"}, ExitOK, "DELTA_GRPC"},
		{"version", []string{"version"}, ExitOK, "dev"},
		{"version names the module contract", []string{"version"}, ExitOK, "envoy module contract " + envoymod.ContractID() + "\n"},
		{"unknown command", []string{"frobnicate"}, ExitUsage, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Execute(tt.args, &out, &errOut)
			all := out.String() + errOut.String()
			if code != tt.wantCode || !strings.Contains(all, tt.wantOut) {
				t.Fatalf("tollgate %v = exit %d, output:\n%s\nwant exit %d containing %q", tt.args, code, all, tt.wantCode, tt.wantOut)
			}
		})
	}
}
