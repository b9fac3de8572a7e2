// Package deploy_test checks the deployment files of this directory and the
// repository root (docker-compose.yml, Dockerfile): the compose file through
// the Compose project's own loader, the Envoy bootstraps through `tollgate
// bootstrap` and the real `envoy --mode validate`, every tollgate command
// line against the real command tree, the Kubernetes manifests strictly
// against the Kubernetes API types after a kustomize build of every overlay,
// and the demo credentials against the real verifiers.
package deploy_test

import (
	"os"
	"path/filepath"
	"testing"
)

// repoRoot is the repository root, relative to this package's directory
// (where `go test` runs).
const repoRoot = ".."

// readFile reads a file relative to the repository root.
func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return b
}
