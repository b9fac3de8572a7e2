package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/tollgate/tollgate/policy"
)

// manDate is the date of the generated man pages: fixed, so that the
// committed pages only change when the commands do.
var manDate = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the policy (for editors and linters)",
		Long: "Schema prints a JSON Schema (draft 2020-12) of the policy file, generated from the same field tables as the policy loader: " +
			"field names, types, allowed values and required fields. Point yaml-language-server at it with a first line such as\n" +
			"  # yaml-language-server: $schema=" + policy.SchemaID + "\n" +
			"It checks the shape of a policy only; `tollgate validate` checks everything.",
		Example: "  tollgate schema > policy.schema.json",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := policy.JSONSchema()
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
}

// newDocsCmd is the hidden command that regenerates the generated parts of
// the documentation (see writeGeneratedDocs).
func newDocsCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "docs REPO_DIR",
		Short:  "Regenerate the generated documentation of a checkout",
		Hidden: true,
		Args:   args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return writeGeneratedDocs(a[0])
		},
	}
}

// writeGeneratedDocs writes, under the repository directory repo, the
// policy's JSON Schema (policy.schema.json), the policy reference
// (docs/reference/policy/*.md), and the CLI reference from the command
// tree (docs/reference/cli/*.md, docs/reference/man/*.1). Environment
// variables that change flag defaults (TOLLGATE_*) are ignored. Stale
// generated files are removed.
func writeGeneratedDocs(repo string) error {
	schema, err := policy.JSONSchema()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(repo, "policy.schema.json"), schema, 0o644); err != nil {
		return err
	}
	dirs := map[string]string{}
	for _, d := range []string{"policy", "cli", "man"} {
		dirs[d] = filepath.Join(repo, "docs", "reference", d)
		if err := os.RemoveAll(dirs[d]); err != nil {
			return err
		}
		if err := os.MkdirAll(dirs[d], 0o755); err != nil {
			return err
		}
	}
	for name, b := range policy.ReferencePages() {
		if err := os.WriteFile(filepath.Join(dirs["policy"], name), b, 0o644); err != nil {
			return err
		}
	}
	root := docsRoot()
	if err := doc.GenMarkdownTree(root, dirs["cli"]); err != nil {
		return fmt.Errorf("CLI markdown: %w", err)
	}
	hdr := &doc.GenManHeader{Title: "TOLLGATE", Section: "1", Source: "Tollgate", Manual: "Tollgate manual", Date: &manDate}
	if err := doc.GenManTree(root, hdr, dirs["man"]); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	return nil
}

// docsRoot is the command tree as documented: built with no TOLLGATE_*
// environment variables, so defaults are the built-in ones, and without
// the hidden commands.
func docsRoot() *cobra.Command {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "TOLLGATE_") {
			os.Unsetenv(name)
		}
	}
	root := NewRoot(os.Stdout, os.Stderr)
	root.DisableAutoGenTag = true
	return root
}
