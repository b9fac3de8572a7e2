package cli

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"
)

// addOutputFlag adds -o text|json|yaml.
func addOutputFlag(cmd *cobra.Command, out *string) {
	cmd.Flags().StringVarP(out, "output", "o", "text", "output format: text, json or yaml")
}

// checkOutput rejects an unknown -o value.
func checkOutput(format string) error {
	switch format {
	case "text", "json", "yaml":
		return nil
	}
	return &UsageError{fmt.Errorf("unknown output format %q: use text, json or yaml", format)}
}

// render writes v as JSON or YAML, or calls text for the text format.
func render(w io.Writer, format string, v any, text func(io.Writer)) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode output: %w", err)
		}
		y, err := yaml.JSONToYAML(b)
		if err != nil {
			return fmt.Errorf("encode output: %w", err)
		}
		_, err = w.Write(y)
		return err
	}
	text(w)
	return nil
}
