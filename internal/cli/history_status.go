package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/internal/admin"
	"github.com/tollgate/tollgate/internal/controlplane"
	"github.com/tollgate/tollgate/xds"
)

func newStatusCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the served version and every connected proxy: what it ACKed, any NACK",
		Example: `  tollgate status
  tollgate status -o json | jq '.nodes[] | select(.synced | not)'`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return call(cmd, &f, func(ctx context.Context, c *admin.Client) (*controlplane.Status, error) { return c.Status(ctx) }, printStatus)
		},
	}
	f.add(cmd)
	return cmd
}

func printStatus(w io.Writer, st *controlplane.Status) {
	fmt.Fprintf(w, "policy version: %s\n", orNone(st.Version))
	for _, g := range st.Gateways {
		fmt.Fprintf(w, "gateway %s: %d proxies, %d in sync\n", g.Name, g.Proxies, g.Synced)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tGATEWAY\tPROTOCOL\tSYNCED\tACKED\tPROBLEM")
	for _, n := range st.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\t%s\n", n.ID, n.Gateway, n.Protocol, n.Synced, ackedSummary(n.Acked), n.Problem)
	}
	tw.Flush()
	for _, n := range st.Nodes {
		for _, nk := range n.Nacks {
			fmt.Fprintf(w, "NACK from %s: %s version %s at %s: %s\n", n.ID, nk.Type, nk.Version, nk.At.Format("15:04:05"), nk.Message)
		}
	}
}

// ackedSummary lists type=version pairs, e.g. "cluster=ab12 listener=cd34".
func ackedSummary(m map[string]xds.Ack) string {
	parts := make([]string, 0, len(m))
	for t, a := range m {
		parts = append(parts, t+"="+a.Version)
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
