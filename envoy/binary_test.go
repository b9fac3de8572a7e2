package envoy

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFindBinary(t *testing.T) {
	tests := []struct {
		name     string
		envBin   string // relative to the temp dir; "" leaves $ENVOY_BIN unset
		files    []string
		wantPath string // relative to the temp dir; "" expects an error
		notFound bool   // the error wraps ErrBinaryNotFound
	}{
		{
			name:     "ENVOY_BIN wins",
			envBin:   "custom/envoy",
			files:    []string{"custom/envoy", "repo/.tools/bin/envoy"},
			wantPath: "custom/envoy",
		},
		{
			name:   "ENVOY_BIN not executable",
			envBin: "missing/envoy",
		},
		{
			name:     "repo tools bin before the wheel",
			files:    []string{"repo/.tools/bin/envoy", "repo/.tools/python/envoy/_bin/envoy"},
			wantPath: "repo/.tools/bin/envoy",
		},
		{
			name:     "the wheel",
			files:    []string{"repo/.tools/python/envoy/_bin/envoy"},
			wantPath: "repo/.tools/python/envoy/_bin/envoy",
		},
		{
			name:     "nothing",
			notFound: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "repo", "go.mod"), 0o644)
			for _, f := range tt.files {
				writeFile(t, filepath.Join(dir, f), 0o755)
			}
			if err := os.MkdirAll(filepath.Join(dir, "repo", "sub", "pkg"), 0o755); err != nil {
				t.Fatal(err)
			}
			t.Chdir(filepath.Join(dir, "repo", "sub", "pkg"))
			t.Setenv("PATH", dir) // no envoy there
			t.Setenv(EnvBinary, "")
			if tt.envBin != "" {
				t.Setenv(EnvBinary, filepath.Join(dir, tt.envBin))
			}
			got, err := FindBinary()
			switch {
			case tt.wantPath != "":
				if err != nil || got != filepath.Join(dir, tt.wantPath) {
					t.Fatalf("FindBinary() = %q, %v; want %q", got, err, filepath.Join(dir, tt.wantPath))
				}
			case err == nil:
				t.Fatalf("FindBinary() = %q, want an error", got)
			case errors.Is(err, ErrBinaryNotFound) != tt.notFound:
				t.Fatalf("FindBinary() error %v: is ErrBinaryNotFound = %v, want %v", err, !tt.notFound, tt.notFound)
			}
		})
	}
}

// writeFile creates an empty file with mode perm, and its directories.
func writeFile(t *testing.T, path string, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, perm); err != nil {
		t.Fatal(err)
	}
}
