package harness

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

// artifact is the result of one build per test binary.
type artifact struct {
	once sync.Once
	path string
	err  error
}

// builds are this test binary's builds: ./cmd/tollgate and Tollgate's
// Envoy module, into dir (set by Main).
var builds struct {
	dir                             string
	tollgate, module, otherContract artifact
}

// Main is a TestMain for packages that use BuildTollgate: it creates a
// temporary directory for the binary, runs the tests and removes the
// directory. It does not return.
func Main(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "tollgate-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: create build directory: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	builds.dir = dir
	return m.Run()
}

// BuildOnce builds ./cmd/tollgate of the repository into dir/tollgate the
// first time it is called in this test binary, and returns the binary's
// path. Later calls return the first call's result, whatever dir they name.
func BuildOnce(dir string) (string, error) {
	b := &builds.tollgate
	b.once.Do(func() { b.path, b.err = goBuild(dir, ".", "tollgate", "./cmd/tollgate") })
	return b.path, b.err
}

// BuildTollgate returns the path of a tollgate binary built from the
// repository, building it on first use (see Main and BuildOnce). Without
// Main, the binary goes to a temporary directory that is not removed.
func BuildTollgate(t testing.TB) string {
	t.Helper()
	path, err := BuildOnce(buildDir(t))
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return path
}

// BuildEnvoyModule returns the path of Tollgate's Envoy module
// (envoymodule/, a c-shared library; cgo needs a C compiler), built from
// the repository on first use into the same directory as BuildTollgate's
// binary. Its flags are `make module`'s (-trimpath): the c-shared build
// compiles every package anew, and the same flags share one build cache.
func BuildEnvoyModule(t testing.TB) string {
	t.Helper()
	b := &builds.module
	b.once.Do(func() {
		b.path, b.err = goBuild(buildDir(t), "envoymodule", "libtollgate_envoy.so", "-trimpath", "-buildmode=c-shared", ".")
	})
	if b.err != nil {
		t.Fatalf("harness: %v", b.err)
	}
	return b.path
}

// OtherContract is a tollgate binary and Tollgate's Envoy module of
// another Tollgate version than the tree's: built from it as
// BuildTollgate and BuildEnvoyModule build them, but with
// envoymod.ContractRevision raised by 1000 (a go build -overlay of
// extauthz/envoymod/contract.go; the tree is untouched), so their
// contract differs from the tree's and they accept each other only.
type OtherContract struct{ Tollgate, Module string }

// BuildOtherContract returns the OtherContract builds, made on first use
// into a subdirectory of BuildTollgate's directory.
func BuildOtherContract(t testing.TB) OtherContract {
	t.Helper()
	b := &builds.otherContract
	b.once.Do(func() {
		dir := filepath.Join(buildDir(t), "other-contract")
		overlay, err := contractOverlay(dir)
		if err == nil {
			b.path, err = goBuild(dir, ".", "tollgate", "-overlay", overlay, "./cmd/tollgate")
		}
		if err == nil {
			_, err = goBuild(dir, "envoymodule", "libtollgate_envoy.so", "-trimpath", "-buildmode=c-shared",
				"-overlay", overlay, ".")
		}
		b.err = err
	})
	if b.err != nil {
		t.Fatalf("harness: %v", b.err)
	}
	return OtherContract{Tollgate: b.path, Module: filepath.Join(filepath.Dir(b.path), "libtollgate_envoy.so")}
}

// contractOverlay writes into dir a copy of extauthz/envoymod/contract.go
// whose ContractRevision is 1000 higher and the go build -overlay file
// that puts it in the original's place, and returns the overlay's path.
func contractOverlay(dir string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	src := filepath.Join(root, "extauthz", "envoymod", "contract.go")
	b, err := os.ReadFile(src)
	if err != nil {
		return "", fmt.Errorf("contract overlay: %w", err)
	}
	re := regexp.MustCompile(`(?m)^const ContractRevision = (\d+)$`)
	m := re.FindSubmatch(b)
	if m == nil {
		return "", fmt.Errorf("contract overlay: no %q in %s", re, src)
	}
	rev, _ := strconv.Atoi(string(m[1]))
	b = re.ReplaceAll(b, []byte(fmt.Sprintf("const ContractRevision = %d", rev+1000)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("contract overlay: %w", err)
	}
	copyPath, overlay := filepath.Join(dir, "contract.go"), filepath.Join(dir, "overlay.json")
	doc, err := json.Marshal(map[string]any{"Replace": map[string]string{src: copyPath}})
	if err != nil {
		return "", fmt.Errorf("contract overlay: %w", err)
	}
	if err := os.WriteFile(copyPath, b, 0o600); err != nil {
		return "", fmt.Errorf("contract overlay: %w", err)
	}
	if err := os.WriteFile(overlay, doc, 0o600); err != nil {
		return "", fmt.Errorf("contract overlay: %w", err)
	}
	return overlay, nil
}

// buildDir is Main's build directory, or a temporary directory that is
// not removed when the test binary runs without Main.
func buildDir(t testing.TB) string {
	if builds.dir != "" {
		return builds.dir
	}
	dir, err := os.MkdirTemp("", "tollgate-e2e-")
	if err != nil {
		t.Fatalf("harness: create build directory: %v", err)
	}
	return dir
}

// goBuild runs `go build -o dir/name args...` in the repository's
// directory sub and returns the output's path.
func goBuild(dir, sub, name string, args ...string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build %s: go toolchain not on PATH: %w", name, err)
	}
	out := filepath.Join(dir, name)
	cmd := exec.Command(goBin, append([]string{"build", "-o", out}, args...)...)
	cmd.Dir = filepath.Join(root, sub)
	start := time.Now()
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", name, err, output)
	}
	fmt.Fprintf(os.Stderr, "harness: built %s in %v\n", out, time.Since(start).Round(time.Millisecond))
	return out, nil
}
