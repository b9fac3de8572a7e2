package cli

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/extauthz/envoymod"
)

const (
	// DefaultEnvoyModulePath is where the tollgate image holds Tollgate's
	// Envoy module (the Dockerfile copies it there; deploy/ checks both
	// agree).
	DefaultEnvoyModulePath = "/usr/lib/tollgate/" + EnvoyModuleFile
	// EnvoyModuleFile is the name `envoy-module install` gives the library
	// in its target directory, whatever the source is called.
	EnvoyModuleFile = envoymod.LibraryName
	// envoyModuleInitSymbol is the function every Envoy dynamic module
	// exports (Envoy's ABI, envoymodule/hooks.c): a shared object without
	// it is not a module Envoy can load.
	envoyModuleInitSymbol = "envoy_dynamic_module_on_program_init"
)

// newEnvoyModuleCmd is `tollgate envoy-module`, the commands around
// Tollgate's Envoy dynamic module.
func newEnvoyModuleCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "envoy-module",
		Short: "Install Tollgate's Envoy module (libtollgate_envoy.so) where Envoy can load it",
		Long: "The tollgate image carries Tollgate's Envoy dynamic module at " + DefaultEnvoyModulePath + ". " +
			"`serve --envoy-module PATH` makes Envoy load it from PATH, so the library must be on every Envoy host: " +
			"envoy-module install copies it there from the image (the image has no shell or cp), e.g. into a volume " +
			"that the Envoy container mounts. See docs/operations/envoy-module.md.",
		Example: `  tollgate envoy-module install --to /var/lib/tollgate-envoy-module`,
		Args:    args(cobra.NoArgs),
	}
	cmd.AddCommand(newEnvoyModuleInstallCmd())
	return cmd
}

func newEnvoyModuleInstallCmd() *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use:   "install --to DIR [--from FILE]",
		Short: "Copy the Envoy module into a directory, atomically, and print its path, size and SHA-256",
		Long: "install copies the Envoy module (--from, default " + DefaultEnvoyModulePath + ") into the existing " +
			"directory --to as " + EnvoyModuleFile + ", with mode 0644: it writes a temporary file in that directory, " +
			"syncs it and renames it over the old library, so a reader (an Envoy starting meanwhile) sees the old " +
			"file or the new one, never a partial one, and an Envoy that already loaded the old one keeps it. " +
			"It refuses a source that is not an ELF shared object exporting Envoy's module entry point (" +
			envoyModuleInitSymbol + ") for this machine's architecture.",
		Example: `  tollgate envoy-module install --to /var/lib/tollgate-envoy-module
  tollgate envoy-module install --from .build/libtollgate_envoy.so --to /usr/lib/tollgate`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return &UsageError{errors.New("--to DIR is required")}
			}
			got, err := installEnvoyModule(from, to)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "installed %s (from %s): %d bytes, sha256 %s\n", got.Path, from, got.Size, got.SHA256)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", DefaultEnvoyModulePath, "the library to install")
	cmd.Flags().StringVar(&to, "to", "", "the directory to install it into (must exist; Envoy's --envoy-module names the file "+EnvoyModuleFile+" there)")
	return cmd
}

// installedModule describes the file installEnvoyModule wrote.
type installedModule struct {
	Path   string // DIR/libtollgate_envoy.so
	Size   int64  // bytes
	SHA256 string // hex of the bytes written
}

// installEnvoyModule copies the module src into dir as EnvoyModuleFile:
// src must pass checkEnvoyModule; the copy goes to a temporary file in dir,
// made 0644 and fsynced, which must pass checkEnvoyModule too (src may
// change meanwhile), then is renamed over the target and the directory
// fsynced. On failure the target is unchanged and no temporary file is
// left, except when the directory's fsync fails after the rename: the new
// library is then in place (visible, perhaps not durable) and the error
// says so.
func installEnvoyModule(src, dir string) (installedModule, error) {
	if fi, err := os.Stat(dir); err != nil {
		return installedModule{}, fmt.Errorf("envoy-module install: target directory: %w", err)
	} else if !fi.IsDir() {
		return installedModule{}, fmt.Errorf("envoy-module install: target %s is not a directory", dir)
	}
	if err := checkEnvoyModule(src); err != nil {
		return installedModule{}, fmt.Errorf("envoy-module install: %w", err)
	}
	dst := filepath.Join(dir, EnvoyModuleFile)
	tmp, size, sum, err := copyToTemp(src, dir)
	if err != nil {
		return installedModule{}, fmt.Errorf("envoy-module install: %w", err)
	}
	// The copy too: src may have changed since it was checked (replaced, or
	// written in place); what is renamed into place is what was checked.
	if err := checkEnvoyModule(tmp); err != nil {
		_ = os.Remove(tmp)
		return installedModule{}, fmt.Errorf("envoy-module install: %s changed while it was copied: %w", src, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		return installedModule{}, fmt.Errorf("envoy-module install: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return installedModule{}, fmt.Errorf("envoy-module install: %s installed, but: %w", dst, err)
	}
	return installedModule{Path: dst, Size: size, SHA256: sum}, nil
}

// copyToTemp copies src into a new temporary file of dir, mode 0644,
// fsynced and closed, and returns its path, size and SHA-256 (hex). It
// removes the temporary file when it fails.
func copyToTemp(src, dir string) (path string, size int64, sum string, err error) {
	in, err := os.Open(src)
	if err != nil {
		return "", 0, "", err
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, "."+EnvoyModuleFile+".*.tmp")
	if err != nil {
		return "", 0, "", err
	}
	defer func() {
		if err != nil {
			_ = out.Close()
			_ = os.Remove(out.Name())
		}
	}()
	h := sha256.New()
	if size, err = io.Copy(io.MultiWriter(out, h), in); err != nil {
		return "", 0, "", fmt.Errorf("copy %s: %w", src, err)
	}
	if err = out.Chmod(0o644); err != nil {
		return "", 0, "", err
	}
	if err = out.Sync(); err != nil {
		return "", 0, "", err
	}
	if err = out.Close(); err != nil {
		return "", 0, "", err
	}
	return out.Name(), size, hex.EncodeToString(h.Sum(nil)), nil
}

// syncDir fsyncs a directory, so a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// checkEnvoyModule fails unless path is an ELF shared object (ET_DYN) for
// this process's architecture that defines envoyModuleInitSymbol: a PIE
// executable is ET_DYN too, but exports no such function.
func checkEnvoyModule(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s is not an ELF shared object: %w", path, err)
	}
	defer f.Close()
	if f.Type != elf.ET_DYN {
		return fmt.Errorf("%s is not an ELF shared object (ELF type %s)", path, f.Type)
	}
	if want, ok := elfMachine(runtime.GOARCH); ok && f.Machine != want {
		return fmt.Errorf("%s is built for %s, this machine is %s (%s)", path, f.Machine, want, runtime.GOARCH)
	}
	syms, err := f.DynamicSymbols()
	if err != nil {
		return fmt.Errorf("%s: dynamic symbols: %w", path, err)
	}
	for _, s := range syms {
		if s.Name == envoyModuleInitSymbol && s.Section != elf.SHN_UNDEF && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			return nil
		}
	}
	return fmt.Errorf("%s is not an Envoy dynamic module: it does not export %s", path, envoyModuleInitSymbol)
}

// elfMachine returns the ELF machine of a Go architecture Envoy ships for
// (amd64, arm64); false for the others, which are not checked.
func elfMachine(goarch string) (elf.Machine, bool) {
	switch goarch {
	case "amd64":
		return elf.EM_X86_64, true
	case "arm64":
		return elf.EM_AARCH64, true
	}
	return elf.EM_NONE, false
}
