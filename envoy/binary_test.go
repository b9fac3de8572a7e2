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

// TestFindLocalBinary checks the search outside $ENVOY_BIN and $PATH: the
// tools directory of the working directory or any parent (also past a
// nested go.mod), then next to the executable, then the tools directory
// above the executable.
func TestFindLocalBinary(t *testing.T) {
	tests := []struct {
		name     string
		files    []string
		cwd, exe string // relative to the temp dir; "" for none
		want     string // "" expects none
	}{
		{"tools in the working directory", []string{"repo/.tools/bin/envoy"}, "repo", "", "repo/.tools/bin/envoy"},
		{"tools above a nested module", []string{"repo/.tools/bin/envoy", "repo/sub/go.mod"}, "repo/sub/pkg", "", "repo/.tools/bin/envoy"},
		{"the wheel above", []string{"repo/.tools/python/envoy/_bin/envoy"}, "repo/a/b", "", "repo/.tools/python/envoy/_bin/envoy"},
		{"next to the executable", []string{"opt/tollgate", "opt/envoy"}, "elsewhere", "opt/tollgate", "opt/envoy"},
		{"tools above the executable", []string{"repo/bin/tollgate", "repo/.tools/bin/envoy"}, "elsewhere", "repo/bin/tollgate", "repo/.tools/bin/envoy"},
		{"working directory first", []string{"a/.tools/bin/envoy", "repo/bin/tollgate", "repo/bin/envoy"}, "a", "repo/bin/tollgate", "a/.tools/bin/envoy"},
		{"none", []string{"repo/bin/tollgate"}, "elsewhere", "repo/bin/tollgate", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tt.files {
				writeFile(t, filepath.Join(dir, f), 0o755)
			}
			cwd := filepath.Join(dir, tt.cwd)
			if err := os.MkdirAll(cwd, 0o755); err != nil {
				t.Fatal(err)
			}
			exe := ""
			if tt.exe != "" {
				exe = filepath.Join(dir, tt.exe)
			}
			got, ok := findLocalBinary(cwd, exe)
			want := ""
			if tt.want != "" {
				want = filepath.Join(dir, tt.want)
			}
			if got != want || ok != (tt.want != "") {
				t.Fatalf("findLocalBinary(%q, %q) = %q, %v; want %q", tt.cwd, tt.exe, got, ok, want)
			}
		})
	}
}
