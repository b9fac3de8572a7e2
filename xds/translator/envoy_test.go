package translator

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
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

// staticBootstrap returns StaticBootstrap(r) or fails the test.
func staticBootstrap(t *testing.T, r *Resources) *bootstrapv3.Bootstrap {
	t.Helper()
	b, err := StaticBootstrap(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
