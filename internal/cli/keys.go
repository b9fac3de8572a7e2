package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/internal/admin"
)

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke API keys (the server stores only their HMAC)",
		Args:  args(cobra.NoArgs),
	}
	cmd.AddCommand(newKeysCreateCmd(), newKeysListCmd(), newKeysRevokeCmd())
	return cmd
}

func newKeysCreateCmd() *cobra.Command {
	var f clientFlags
	var req admin.CreateKeyRequest
	var roles string
	cmd := &cobra.Command{
		Use:   "create --consumer NAME [--tier T] [--tenant T] [--roles a,b] [--expires 720h]",
		Short: "Create an API key and print it once",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.Consumer == "" {
				return &UsageError{fmt.Errorf("--consumer is required")}
			}
			if roles != "" {
				req.Roles = strings.Split(roles, ",")
			}
			c, ctx, cancel, err := f.client(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			res, err := c.CreateKey(ctx, req)
			if err != nil {
				return reportAPIError(cmd.ErrOrStderr(), err)
			}
			return render(cmd.OutOrStdout(), f.output, res, func(w io.Writer) {
				fmt.Fprintf(w, "%s\n# id %s, consumer %s: store the key now, it is not shown again\n", res.Key, res.Record.ID, res.Record.Consumer)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&req.Consumer, "consumer", "", "consumer the key identifies (required)")
	fl.StringVar(&req.Tier, "tier", "", "rate-limit tier of the consumer")
	fl.StringVar(&req.Tenant, "tenant", "", "tenant of the consumer")
	fl.StringVar(&roles, "roles", "", "comma-separated roles")
	fl.StringVar(&req.ExpiresIn, "expires", "", "lifetime, e.g. 720h (default: never expires)")
	f.add(cmd)
	return cmd
}

func newKeysListCmd() *cobra.Command {
	var f clientFlags
	var consumer string
	cmd := &cobra.Command{
		Use:   "list --consumer NAME",
		Short: "List a consumer's keys (ids and metadata, never the keys)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if consumer == "" {
				return &UsageError{fmt.Errorf("--consumer is required")}
			}
			c, ctx, cancel, err := f.client(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			recs, err := c.ListKeys(ctx, consumer)
			if err != nil {
				return reportAPIError(cmd.ErrOrStderr(), err)
			}
			return render(cmd.OutOrStdout(), f.output, recs, func(w io.Writer) { printKeys(w, recs) })
		},
	}
	cmd.Flags().StringVar(&consumer, "consumer", "", "consumer whose keys to list (required)")
	f.add(cmd)
	return cmd
}

func printKeys(w io.Writer, recs []apikey.Record) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCONSUMER\tTIER\tTENANT\tROLES\tCREATED\tEXPIRES\tREVOKED")
	for _, r := range recs {
		expires := "never"
		if !r.ExpiresAt.IsZero() {
			expires = r.ExpiresAt.Format("2006-01-02T15:04:05Z")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%t\n", r.ID, r.Consumer, r.Tier, r.Tenant, strings.Join(r.Roles, ","),
			r.CreatedAt.Format("2006-01-02T15:04:05Z"), expires, r.Revoked)
	}
	tw.Flush()
}

func newKeysRevokeCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a key; every authz replica rejects it within a second",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, ctx, cancel, err := f.client(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			if err := c.RevokeKey(ctx, a[0]); err != nil {
				return reportAPIError(cmd.ErrOrStderr(), err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", a[0])
			return nil
		},
	}
	f.add(cmd)
	return cmd
}
