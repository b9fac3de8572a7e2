package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildSharedObject compiles C source into a shared object in a temporary
// directory with the host's C compiler (the module's build needs one too).
func buildSharedObject(t *testing.T, name, src string) string {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler (cc) to build a shared object")
	}
	dir := t.TempDir()
	c := filepath.Join(dir, name+".c")
	if err := os.WriteFile(c, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	so := filepath.Join(dir, name+".so")
	if out, err := exec.Command(cc, "-shared", "-fPIC", "-o", so, c).CombinedOutput(); err != nil {
		t.Fatalf("cc: %v\n%s", err, out)
	}
	return so
}

// fakeModule is a shared object exporting Envoy's module entry point.
func fakeModule(t *testing.T, version string) string {
	t.Helper()
	return buildSharedObject(t, "module", fmt.Sprintf(
		"const char* envoy_dynamic_module_on_program_init(void) { return %q; }\n", version))
}

// runCLI runs the command line and returns its exit code and output.
func runCLI(args ...string) (int, string) {
	var out bytes.Buffer
	code := Execute(args, &out, &out)
	return code, out.String()
}

// dirEntries lists the names in dir.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestEnvoyModuleInstall: install copies the module into the directory as
// libtollgate_envoy.so, mode 0644, prints its path, size and SHA-256, leaves
// no temporary file, and replaces an installed library by rename: a reader
// holding the old file (an Envoy that loaded it) keeps the old bytes.
func TestEnvoyModuleInstall(t *testing.T) {
	dir := t.TempDir()
	for i, version := range []string{"v-old", "v-new"} {
		src := fakeModule(t, version)
		var old *os.File
		if i == 1 {
			var err error
			if old, err = os.Open(filepath.Join(dir, EnvoyModuleFile)); err != nil {
				t.Fatal(err)
			}
			defer old.Close()
		}
		code, out := runCLI("envoy-module", "install", "--from", src, "--to", dir)
		if code != ExitOK {
			t.Fatalf("install %s: exit %d: %s", version, code, out)
		}
		want, _ := os.ReadFile(src)
		dst := filepath.Join(dir, EnvoyModuleFile)
		got, err := os.ReadFile(dst)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s holds %d bytes (%v), want the %d of %s", dst, len(got), err, len(want), src)
		}
		sum := sha256.Sum256(want)
		line := fmt.Sprintf("installed %s (from %s): %d bytes, sha256 %s\n", dst, src, len(want), hex.EncodeToString(sum[:]))
		if out != line {
			t.Errorf("output %q, want %q", out, line)
		}
		if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o644 {
			t.Errorf("mode %v, want 0644", fi.Mode().Perm())
		}
		if names := dirEntries(t, dir); len(names) != 1 {
			t.Errorf("the directory holds %v, want the library alone", names)
		}
		if old != nil {
			b, _ := io.ReadAll(old)
			if !bytes.Contains(b, []byte("v-old")) || bytes.Contains(b, []byte("v-new")) {
				t.Errorf("the file opened before the second install changed under its reader: not replaced by rename")
			}
		}
	}
}

// TestEnvoyModuleInstallRefuses: a source that is not an Envoy module (not
// ELF, a shared object without the entry point, an executable, missing)
// and a bad target fail with exit 1 and leave the directory as it was; a
// missing --to is a usage error.
func TestEnvoyModuleInstallRefuses(t *testing.T) {
	text := filepath.Join(t.TempDir(), "libtollgate_envoy.so")
	if err := os.WriteFile(text, []byte("#!/bin/sh\necho not a library\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	module := fakeModule(t, "v1")
	tests := []struct {
		name, from, to, want string
	}{
		{"text file", text, "", "not an ELF shared object"},
		{"shared object without the entry point", buildSharedObject(t, "other", "int f(void) { return 1; }\n"), "", "does not export envoy_dynamic_module_on_program_init"},
		{"executable", self, "", "not an"},
		{"missing source", filepath.Join(t.TempDir(), "absent.so"), "", "no such file"},
		{"target missing", module, filepath.Join(t.TempDir(), "absent"), "no such file"},
		{"target not a directory", module, notDir, "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, EnvoyModuleFile), []byte("installed before"), 0o644); err != nil {
				t.Fatal(err)
			}
			to := tt.to
			if to == "" {
				to = dir
			}
			code, out := runCLI("envoy-module", "install", "--from", tt.from, "--to", to)
			if code != ExitFailed || !strings.Contains(out, tt.want) {
				t.Errorf("exit %d, output %q; want exit 1 and %q", code, out, tt.want)
			}
			b, _ := os.ReadFile(filepath.Join(dir, EnvoyModuleFile))
			if names := dirEntries(t, dir); len(names) != 1 || string(b) != "installed before" {
				t.Errorf("the target directory changed: %v", names)
			}
		})
	}
	if code, out := runCLI("envoy-module", "install", "--from", module); code != ExitUsage || !strings.Contains(out, "--to") {
		t.Errorf("no --to: exit %d, output %q; want a usage error naming --to", code, out)
	}
}

// TestEnvoyModuleInstallDefaultSource: the default source is where the
// image holds the library.
func TestEnvoyModuleInstallDefaultSource(t *testing.T) {
	cmd, _, err := NewRoot(io.Discard, io.Discard).Find([]string{"envoy-module", "install"})
	if err != nil {
		t.Fatal(err)
	}
	if got := cmd.Flags().Lookup("from").DefValue; got != "/usr/lib/tollgate/libtollgate_envoy.so" {
		t.Errorf("--from defaults to %q", got)
	}
}

// TestEnvoyModuleInstallChecksWhatItInstalls: the source is swapped
// (renamed over) between a module and a text file while install runs
// again and again; whatever each run installs is an Envoy module, never
// the text file: the check covers the bytes copied, not only the file the
// path named when it was checked.
func TestEnvoyModuleInstallChecksWhatItInstalls(t *testing.T) {
	module, err := os.ReadFile(fakeModule(t, "v1"))
	if err != nil {
		t.Fatal(err)
	}
	srcDir, dir := t.TempDir(), t.TempDir()
	src := filepath.Join(srcDir, "lib.so")
	write := func(name string, b []byte) string {
		p := filepath.Join(srcDir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Error(err)
		}
		return p
	}
	good, bad := write("good", module), write("bad", []byte("not a library, a text file of some length\n"))
	done := make(chan struct{})
	swapped := make(chan struct{})
	go func() { // link each version in turn, then rename it over src
		defer close(swapped)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			from := []string{good, bad}[i%2]
			tmp := filepath.Join(srcDir, fmt.Sprintf("next%d", i))
			if os.Link(from, tmp) != nil || os.Rename(tmp, src) != nil {
				t.Error("swap failed")
				return
			}
		}
	}()
	defer func() { close(done); <-swapped }()
	installed := 0
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		if _, err := installEnvoyModule(src, dir); err != nil {
			continue // refused: fine
		}
		installed++
		if err := checkEnvoyModule(filepath.Join(dir, EnvoyModuleFile)); err != nil {
			t.Fatalf("install %d succeeded but installed something else: %v", installed, err)
		}
	}
	t.Logf("%d installs succeeded, each an Envoy module", installed)
}
