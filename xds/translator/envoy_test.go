package translator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"

	"github.com/tollgate/tollgate/envoy"
)

// TestEnvoyAcceptsTranslation loads every case's translation into a real
// Envoy 1.40 in validate mode: a delta-ADS bootstrap whose static resources
// are the translated listeners (each with its RouteConfiguration inlined
// into the HTTP connection manager), the translated EDS clusters, and one
// STATIC cluster per ClusterLoadAssignment carrying it as load_assignment.
// Envoy checks routes against the clusters, so it also proves every route's
// cluster exists.
func TestEnvoyAcceptsTranslation(t *testing.T) {
	bin, err := envoy.FindBinary()
	if errors.Is(err, envoy.ErrBinaryNotFound) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range caseNames(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := staticBootstrap(t, translateCase(t, name))
			if err := envoy.Validate(b); err != nil {
				t.Fatalf("static bootstrap: %v", err)
			}
			y, err := envoy.YAML(b)
			if err != nil {
				t.Fatal(err)
			}
			if m := loadCase(t, name).EnvoyModule; m != "" {
				y = bytes.ReplaceAll(y, []byte(m), []byte(envoyModule(t)))
			}
			path := filepath.Join(t.TempDir(), name+".yaml")
			if err := os.WriteFile(path, y, 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := envoy.ValidateConfigFile(ctx, bin, path)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(strings.ToLower(string(out)), "deprecated") {
				t.Errorf("envoy reports deprecated fields:\n%s", out)
			}
		})
	}
}

// moduleBuild is the one build of Tollgate's Envoy module per test binary.
var moduleBuild struct {
	once sync.Once
	path string
	err  error
}

// envoyModule returns the path of Tollgate's Envoy module built from
// ../../envoymodule (cgo: it skips the test without a C compiler), which
// Envoy's validate mode loads: the cases with Options.EnvoyModule name a
// path on a deployed host instead.
func envoyModule(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("cc"); err != nil {
		t.Skipf("no C compiler to build the Envoy module: %v", err)
	}
	moduleBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "tollgate-module-")
		if err != nil {
			moduleBuild.err = err
			return
		}
		moduleBuild.path = filepath.Join(dir, "libtollgate_envoy.so")
		cmd := exec.Command("go", "build", "-trimpath", "-buildmode=c-shared", "-o", moduleBuild.path, ".")
		cmd.Dir = filepath.Join("..", "..", "envoymodule")
		if out, err := cmd.CombinedOutput(); err != nil {
			moduleBuild.err = fmt.Errorf("build the Envoy module: %w\n%s", err, out)
		}
	})
	if moduleBuild.err != nil {
		t.Fatal(moduleBuild.err)
	}
	return moduleBuild.path
}

// staticBootstrap returns StaticBootstrap(r) or fails the test.
func staticBootstrap(t *testing.T, r *Resources) *bootstrapv3.Bootstrap {
	t.Helper()
	b, err := StaticBootstrap(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
