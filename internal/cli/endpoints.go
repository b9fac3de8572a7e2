package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/internal/admin"
	"github.com/tollgate/tollgate/internal/controlplane"
)

func newEndpointsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "endpoints",
		Short: "Show or change a backend's endpoints without a policy push (an EDS-only update)",
		Long: "endpoints set replaces a backend's endpoints on every gateway through EDS alone: no listener, route or " +
			"cluster changes. The override is stored with the policy, survives restarts, and lasts until a push " +
			"changes that backend's endpoints in the policy, or until endpoints reset.",
		Example: `  tollgate endpoints get users
  tollgate endpoints set users 10.0.0.7:8080 10.0.0.8:8080
  tollgate endpoints reset users`,
		Args: args(cobra.NoArgs),
	}
	cmd.AddCommand(newEndpointsGetCmd(), newEndpointsSetCmd(), newEndpointsResetCmd())
	return cmd
}

func newEndpointsGetCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:     "get BACKEND",
		Short:   "Print a backend's served endpoints and whether they override the policy's",
		Example: `  tollgate endpoints get users -o json`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return call(cmd, &f, func(ctx context.Context, c *admin.Client) (*controlplane.EndpointsView, error) {
				return c.Endpoints(ctx, a[0])
			}, printEndpoints)
		},
	}
	f.add(cmd)
	return cmd
}

func newEndpointsSetCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:     "set BACKEND IP:PORT...",
		Short:   "Replace a backend's endpoints (EDS only) and wait for the proxies' ACKs",
		Example: `  tollgate endpoints set users 10.0.0.7:8080 10.0.0.8:8080   # e.g. drain 10.0.0.6`,
		Args:    args(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return call(cmd, &f, func(ctx context.Context, c *admin.Client) (*controlplane.EndpointsView, error) {
				return c.SetEndpoints(ctx, a[0], admin.EndpointsRequest{Endpoints: a[1:], Source: source()})
			}, printEndpoints)
		},
	}
	f.add(cmd)
	return cmd
}

func newEndpointsResetCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:     "reset BACKEND",
		Short:   "Drop a backend's override: serve the policy's endpoints again",
		Example: `  tollgate endpoints reset users`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return call(cmd, &f, func(ctx context.Context, c *admin.Client) (*controlplane.EndpointsView, error) {
				return c.ResetEndpoints(ctx, a[0], source())
			}, printEndpoints)
		},
	}
	f.add(cmd)
	return cmd
}

func printEndpoints(w io.Writer, v *controlplane.EndpointsView) {
	from := "the policy"
	if v.Overridden {
		from = "an override (policy: " + strings.Join(v.PolicyEndpoints, " ") + ")"
	}
	fmt.Fprintf(w, "backend %s (policy version %s): %s\n# from %s\n", v.Backend, v.Version, strings.Join(v.Endpoints, " "), from)
	for _, g := range v.Gateways {
		fmt.Fprintf(w, "# gateway %s: %d proxies", g.Gateway, len(g.Nodes))
		if len(g.Pending) > 0 {
			fmt.Fprintf(w, ", %d did not ACK: %s", len(g.Pending), strings.Join(g.Pending, " "))
		}
		fmt.Fprintln(w)
	}
}
