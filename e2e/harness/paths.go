package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// RepoRoot returns the directory of the nearest go.mod at or above the
// working directory (a test's working directory is its package directory).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repo root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repo root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// EnvoyBinary returns the Envoy binary to run: $ENVOY_BIN when set, else
// <repo root>/.tools/bin/envoy when present, else envoy from PATH.
func EnvoyBinary() (string, error) {
	if bin := os.Getenv("ENVOY_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("ENVOY_BIN=%s: %w; run `make tools`", bin, err)
		}
		return bin, nil
	}
	if root, err := RepoRoot(); err == nil {
		bin := filepath.Join(root, ".tools", "bin", "envoy")
		if _, err := os.Stat(bin); err == nil {
			return bin, nil
		}
	}
	bin, err := exec.LookPath("envoy")
	if err != nil {
		return "", errors.New("no Envoy binary: ENVOY_BIN is unset, .tools/bin/envoy is " +
			"missing and envoy is not on PATH; run `make tools`")
	}
	return bin, nil
}
