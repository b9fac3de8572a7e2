package policy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestBuildDirectoryPointsAtTheRightFile(t *testing.T) {
	files := readFiles(t, "testdata/dir")
	cfg, ds := Build(files)
	want := []string{
		`testdata/dir/10-gateways.yaml:6:16 gateways[0].listeners[1].name: duplicate listener name "http"; first defined at gateways[0].listeners[0].name (testdata/dir/10-gateways.yaml:5:16)`,
		`testdata/dir/20-routes.yml:6:25 routes[1].match.pathPrefix: pathPrefix "api" must start with "/"`,
		`testdata/dir/20-routes.yml:7:14 routes[1].backend: backend "webb" is not defined; did you mean "web"?`,
	}
	if got := renderFiles(ds); cfg != nil || !slices.Equal(got, want) {
		t.Errorf("cfg nil: %v, diagnostics:\n got %q\nwant %q", cfg == nil, got, want)
	}
}

func TestBuildBrokenFileStillChecksTheOthers(t *testing.T) {
	files := []File{
		{Name: "a.yaml", Content: []byte(base + "routes: [{name: r, backend: be, timeout: never, auth: none}]\n")},
		{Name: "b.yaml", Content: mustRead(t, "testdata/invalid/syntax.yaml")},
	}
	_, ds := Build(files)
	want := []string{
		`a.yaml:4:42 routes[0].timeout: invalid duration "never"`,
		`b.yaml:4:4 : invalid YAML: value is not allowed in this context`,
	}
	if got := renderFiles(ds); !slices.Equal(got, want) {
		t.Errorf("diagnostics:\n got %q\nwant %q", got, want)
	}
}

func TestBuildShapeFile(t *testing.T) {
	_, ds := Build(readFiles(t, "testdata/invalid/shape.yaml"))
	want := []string{
		`6:15 error gateways[0].listeners[0].port: expected an integer, got string "8080"`,
		`7:9 error gateways[0].listeners[0].adress: unknown field "adress"; did you mean "address"?`,
		`10:5 error routes[0].name: duplicate field "name" (first set at line 9)`,
		`13:14 error routes[0].match.hosts: expected a list, got string "api.example.com"`,
		`14:38 error routes[0].match.headers[0].present: expected true or false, got string "yes"`,
		`19:5 error backends[0].connectTimeout: field "connectTimeout" has no value`,
		`20:1 error extra: unknown field "extra"`,
	}
	if got := render(ds); !slices.Equal(got, want) {
		t.Errorf("diagnostics:\n got %q\nwant %q", got, want)
	}
}

func TestBuildWarningsKeepTheConfig(t *testing.T) {
	cfg, ds := Build([]File{{Name: "p.yaml", Content: []byte(base + "routes: []\n")}})
	if cfg == nil || len(ds.Warnings()) != 1 || ds.HasErrors() || ds.Err() != nil {
		t.Errorf("cfg nil: %v, diagnostics %q", cfg == nil, render(ds))
	}
}

func TestBuildErrListsEveryError(t *testing.T) {
	_, ds := Build(readFiles(t, "testdata/invalid/mistakes.yaml"))
	err := ds.Err()
	if err == nil {
		t.Fatal("Err() = nil")
	}
	lines := strings.Split(err.Error(), "\n")
	if want := len(ds.Errors()) + 1; len(lines) != want || lines[0] != "policy has 20 errors:" {
		t.Errorf("Err() has %d lines (want %d), first %q", len(lines), want, lines[0])
	}
}

func TestReadPath(t *testing.T) {
	tests := []struct {
		name  string
		path  string
		files []string
	}{
		{name: "file", path: "testdata/valid.yaml", files: []string{"testdata/valid.yaml"}},
		{name: "directory, sorted, yaml only", path: "testdata/dir", files: []string{"testdata/dir/10-gateways.yaml", "testdata/dir/20-routes.yml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := readFiles(t, tt.path)
			names := make([]string, 0, len(files))
			for _, f := range files {
				names = append(names, f.Name)
			}
			if !slices.Equal(names, tt.files) {
				t.Errorf("files = %q, want %q", names, tt.files)
			}
		})
	}
}

func TestReadPathErrors(t *testing.T) {
	empty := t.TempDir()
	sub := t.TempDir()
	if err := os.Mkdir(filepath.Join(sub, "nested.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want string
	}{
		{name: "missing", path: "testdata/nope", want: "read policy: stat testdata/nope: no such file or directory"},
		{name: "empty directory", path: empty, want: "read policy directory " + empty + ": no *.yaml or *.yml files"},
		{name: "only a subdirectory", path: sub, want: "read policy directory " + sub + ": no *.yaml or *.yml files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ReadPath(tt.path); err == nil || err.Error() != tt.want {
				t.Errorf("ReadPath(%q) error = %v, want %q", tt.path, err, tt.want)
			}
		})
	}
}
