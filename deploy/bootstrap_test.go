package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/internal/cli"
)

// bootstraps are the committed Envoy bootstraps and the `tollgate
// bootstrap` flags that print them (documented in the README and next to
// each file's user).
var bootstraps = []struct {
	file string
	args []string
}{
	{"deploy/envoy/compose.yaml", []string{"--gateway", "public", "--node-id", "compose-envoy-0", "--xds", "tollgate:18000", "--stats-port", "9902"}},
	// node.id is overridden per pod with Envoy's --service-node $(POD_NAME).
	// The overload manager's heap limit is 768 MiB, below the pod's 1 GiB
	// memory limit, so Envoy sheds load before the OOM killer strikes.
	{"deploy/kubernetes/base/envoy/bootstrap.yaml", []string{"--gateway", "public", "--node-id", "envoy", "--xds", "tollgate-xds:18000", "--stats-port", "9902", "--max-heap-bytes", "805306368"}},
}

// TestBootstrapsAreGenerated regenerates every committed bootstrap with
// `tollgate bootstrap` and compares it byte for byte.
func TestBootstrapsAreGenerated(t *testing.T) {
	for _, b := range bootstraps {
		var out, errOut bytes.Buffer
		if code := cli.Execute(append([]string{"bootstrap"}, b.args...), &out, &errOut); code != cli.ExitOK {
			t.Fatalf("tollgate bootstrap %v: exit %d: %s", b.args, code, errOut.String())
		}
		if got := readFile(t, b.file); !bytes.Equal(got, out.Bytes()) {
			t.Errorf("%s differs from `tollgate bootstrap %v`; regenerate it:\n  go run ./cmd/tollgate bootstrap %v > %s",
				b.file, b.args, b.args, b.file)
		}
	}
}

// envoyValidate runs the real `envoy --mode validate` on a bootstrap with
// the extra command-line flags the deployment passes (so Envoy's own flag
// parser checks them too).
func envoyValidate(t *testing.T, file string, extra ...string) {
	t.Helper()
	bin, err := envoy.FindBinary()
	if errors.Is(err, envoy.ErrBinaryNotFound) {
		t.Skipf("no envoy binary (run make tools): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	path := filepath.Join(repoRoot, file)
	if len(extra) == 0 {
		if out, err := envoy.ValidateConfigFile(ctx, bin, path); err != nil {
			t.Errorf("%s: %v\n%s", file, err, out)
		}
		return
	}
	args := []string{"--mode", "validate", "-c", path}
	if !slices.Contains(extra, "--disable-hot-restart") {
		args = append(args, "--disable-hot-restart") // no shared memory left behind by the test
	}
	args = append(args, extra...)
	if out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput(); err != nil {
		t.Errorf("envoy %v: %v\n%s", args, err, out)
	}
}

// TestBootstrapsPassEnvoyValidate runs every committed bootstrap through
// the real Envoy.
func TestBootstrapsPassEnvoyValidate(t *testing.T) {
	for _, b := range bootstraps {
		envoyValidate(t, b.file)
	}
}
