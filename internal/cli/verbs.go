package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/internal/admin"
	"github.com/tollgate/tollgate/internal/controlplane"
	"github.com/tollgate/tollgate/internal/store"
)

// pushFlags are push's and diff's flags.
type pushFlags struct {
	clientFlags
	message string
	full    bool
}

func (f *pushFlags) add(cmd *cobra.Command, push bool) {
	f.clientFlags.add(cmd)
	cmd.Flags().BoolVar(&f.full, "full", false, "also print the full line diff of every changed Envoy resource (-o json always has it)")
	if push {
		cmd.Flags().StringVarP(&f.message, "message", "m", "", "why: recorded with the push in the history (tollgate history)")
	}
}

func newPushCmd() *cobra.Command {
	var f pushFlags
	cmd := &cobra.Command{
		Use:   "push FILE|DIR",
		Short: "Validate a policy and make the server serve it",
		Long: "Push sends a policy to the server, which validates it, applies it to every gateway make-before-break and waits for the proxies to acknowledge it. " +
			"A rejected policy changes nothing. It prints one line per Envoy resource it adds (+), changes (~) or removes (-), per gateway; --full adds the line diffs.",
		Example: `  tollgate push policy.yaml -m "raise the pro tier to 2000/min"
  tollgate push policies/ --full
  tollgate push policy.yaml --expect-version 3f2a9c1e0b7d   # only if nobody pushed meanwhile`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return pushOrDiff(cmd, &f, a[0], true)
		},
	}
	f.add(cmd, true)
	return cmd
}

func newDiffCmd() *cobra.Command {
	var f pushFlags
	cmd := &cobra.Command{
		Use:   "diff FILE|DIR",
		Short: "Show what pushing a policy would change, resource by resource",
		Long:  "Diff validates a policy on the server and prints, per gateway, the Envoy resources a push would add (+), change (~, with what changed) or remove (-). --full adds the line diffs of the resources' JSON. Nothing is applied.",
		Example: `  tollgate diff policy.yaml
  tollgate diff policy.yaml --full
  tollgate diff policy.yaml -o json | jq '.changes[] | select(.action == "changed")'`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return pushOrDiff(cmd, &f, a[0], false)
		},
	}
	f.add(cmd, false)
	return cmd
}

func pushOrDiff(cmd *cobra.Command, f *pushFlags, path string, push bool) error {
	c, ctx, cancel, err := f.client(cmd)
	if err != nil {
		return err
	}
	defer cancel()
	files, err := readPolicy(path)
	if err != nil {
		return err
	}
	req := admin.PolicyRequest{Files: files, Source: source(), ExpectVersion: f.tls.expect, Message: f.message}
	var res *controlplane.PushResult
	if push {
		res, err = c.Push(ctx, req)
	} else {
		res, err = c.Diff(ctx, req)
	}
	if err != nil {
		return reportAPIError(cmd.ErrOrStderr(), err)
	}
	return render(cmd.OutOrStdout(), f.output, res, func(w io.Writer) { printPush(w, res, push, f.full) })
}

func printPush(w io.Writer, res *controlplane.PushResult, push, full bool) {
	printDiagnostics(w, res.Diagnostics)
	switch {
	case res.Unchanged:
		fmt.Fprintf(w, "unchanged: version %s is already served\n", res.Version)
		return
	case push:
		fmt.Fprintf(w, "applied version %s (previous %s)\n", res.Version, orNone(res.Previous))
	default:
		fmt.Fprintf(w, "version %s would replace %s\n", res.Version, orNone(res.Previous))
	}
	for _, g := range res.Gateways {
		fmt.Fprintf(w, "  gateway %s: version %s, %d/%d proxies acknowledged in %s\n",
			g.Gateway, g.Version, len(g.Nodes)-len(g.Pending), len(g.Nodes), g.Elapsed.Round(1e6))
		if len(g.Pending) > 0 {
			fmt.Fprintf(w, "    not acknowledged yet: %s\n", strings.Join(g.Pending, ", "))
		}
	}
	printChanges(w, res.Changes, full) // changes.go
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func newGetCmd() *cobra.Command {
	var f clientFlags
	var version string
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Print the served policy (or a stored version with --version)",
		Example: `  tollgate get > served.yaml
  tollgate get --version 3f2a9c`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return call(cmd, &f, func(ctx context.Context, c *admin.Client) (*store.Version, error) {
				if version != "" {
					h, err := c.History(ctx)
					if err != nil {
						return nil, err
					}
					id, err := resolveVersion(h, version) // history.go
					if err != nil {
						return nil, err
					}
					return c.Version(ctx, id)
				}
				return c.Current(ctx)
			}, printVersion)
		},
	}
	cmd.Flags().StringVar(&version, "version", "", "a stored version (any unique prefix of its id) instead of the served one")
	f.add(cmd)
	return cmd
}

func printVersion(w io.Writer, v *store.Version) {
	for _, file := range v.Files {
		if len(v.Files) > 1 {
			fmt.Fprintf(w, "# --- %s\n", file.Name)
		}
		fmt.Fprint(w, file.Content)
		if !strings.HasSuffix(file.Content, "\n") {
			fmt.Fprintln(w)
		}
	}
}
