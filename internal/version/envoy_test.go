package version

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestEnvoyVersionMatchesMakefile keeps EnvoyVersion and the Makefile's
// ENVOY_VERSION (what `make tools` installs and the e2e tests run) one
// value.
func TestEnvoyVersionMatchesMakefile(t *testing.T) {
	b, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ENVOY_VERSION\s*\??=\s*(\S+)\s*$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("the Makefile sets no ENVOY_VERSION")
	}
	if got := string(m[1]); got != EnvoyVersion {
		t.Errorf("Makefile ENVOY_VERSION = %s, version.EnvoyVersion = %s: change both together", got, EnvoyVersion)
	}
	if !strings.Contains(String(), "Envoy "+EnvoyVersion) {
		t.Errorf("String() = %q does not name Envoy %s", String(), EnvoyVersion)
	}
}
