package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// tollgateBuild is the result of the one build of ./cmd/tollgate per test
// binary.
var tollgateBuild struct {
	once sync.Once
	dir  string // set by Main
	path string
	err  error
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
	tollgateBuild.dir = dir
	return m.Run()
}

// BuildOnce builds ./cmd/tollgate of the repository into dir/tollgate the
// first time it is called in this test binary, and returns the binary's
// path. Later calls return the first call's result, whatever dir they name.
func BuildOnce(dir string) (string, error) {
	tollgateBuild.once.Do(func() {
		tollgateBuild.path, tollgateBuild.err = buildTollgate(dir)
	})
	return tollgateBuild.path, tollgateBuild.err
}

// BuildTollgate returns the path of a tollgate binary built from the
// repository, building it on first use (see Main and BuildOnce). Without
// Main, the binary goes to a temporary directory that is not removed.
func BuildTollgate(t testing.TB) string {
	t.Helper()
	dir := tollgateBuild.dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "tollgate-e2e-"); err != nil {
			t.Fatalf("harness: create build directory: %v", err)
		}
	}
	path, err := BuildOnce(dir)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return path
}

func buildTollgate(dir string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build tollgate: go toolchain not on PATH: %w", err)
	}
	out := filepath.Join(dir, "tollgate")
	cmd := exec.Command(goBin, "build", "-o", out, "./cmd/tollgate")
	cmd.Dir = root
	start := time.Now()
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build tollgate: %w\n%s", err, output)
	}
	fmt.Fprintf(os.Stderr, "harness: built %s in %v\n", out, time.Since(start).Round(time.Millisecond))
	return out, nil
}
