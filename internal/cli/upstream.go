package cli

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/internal/upstream"
)

func newDemoUpstreamCmd() *cobra.Command {
	var addr, name string
	cmd := &cobra.Command{
		Use:     "demo-upstream",
		Short:   "Run a demo HTTP service that echoes each request as JSON",
		Example: `  tollgate demo-upstream --addr 127.0.0.1:9001 --name users-1`,
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			a, err := upstream.Serve(ctx, addr, name)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "demo upstream %q listening on %s\n", name, a)
			<-ctx.Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:9001", "listen address")
	cmd.Flags().StringVar(&name, "name", "demo", "name the service reports in its answers")
	return cmd
}
