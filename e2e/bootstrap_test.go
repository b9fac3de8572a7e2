package e2e

import (
	"os/exec"
	"testing"

	"github.com/tollgate/tollgate/e2e/harness"
)

func TestBootstrapPassesEnvoyValidate(t *testing.T) {
	s := &stack{t: t, bin: harness.BuildTollgate(t)}
	bin, err := harness.EnvoyBinary()
	if err != nil {
		t.Fatalf("%v (run make tools)", err)
	}
	for _, protocol := range []string{"delta", "sotw"} {
		for _, format := range []string{"yaml", "json"} {
			t.Run(protocol+"/"+format, func(t *testing.T) {
				out := s.cli(0, "bootstrap", "--gateway", "public", "--node-id", "gw-0", "--xds", "127.0.0.1:18000",
					"--xds-protocol", protocol, "-o", format)
				path := writeFile(t, "bootstrap."+format, out)
				cmd := exec.CommandContext(testCtx(t, 60_000_000_000), bin, "--mode", "validate", "-c", path, "--disable-hot-restart")
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("envoy --mode validate rejected the bootstrap: %v\n%s\n--- bootstrap:\n%s", err, b, out)
				}
			})
		}
	}
	if _, _, code := s.run("bootstrap", "--node-id", "x"); code != 2 {
		t.Errorf("bootstrap without --gateway: exit %d, want 2", code)
	}
}
