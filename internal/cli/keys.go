package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/extauthz/contract"
	"github.com/tollgate/tollgate/internal/admin"
)

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list, update and revoke API keys (the server stores only their HMAC)",
		Example: `  tollgate keys create --consumer alice --tier pro --roles user
  tollgate keys list --consumer alice
  tollgate keys update 27rPErmv --tier enterprise
  tollgate keys revoke 27rPErmv`,
		Args: args(cobra.NoArgs),
	}
	cmd.AddCommand(newKeysCreateCmd(), newKeysListCmd(), newKeysUpdateCmd(), newKeysRevokeCmd())
	return cmd
}

func newKeysCreateCmd() *cobra.Command {
	var f clientFlags
	var req admin.CreateKeyRequest
	var roles string
	cmd := &cobra.Command{
		Use:   "create --consumer NAME [--tier T] [--tenant T] [--roles a,b] [--expires 720h] [--format signed|opaque]",
		Short: "Create an API key and print it once",
		Long: "Create issues an API key for a consumer and prints it once: the server keeps only its HMAC. " +
			"The text output's first line is the key alone (KEY=$(tollgate keys create ... | head -n 1)); -o json gives {\"key\", \"record\"}. " +
			"--tier must be one of the served policy's rate-limit tiers. " +
			"--format signed (default) issues a signed token (tg.<JWS>, 230 to 400 characters) that Envoy can verify itself; " +
			"its claims (consumer, tenant, tier, roles, expiry) are readable by whoever holds the key. " +
			"--format opaque issues tg_<id>_<secret>_<checksum> (51 characters), checked by the authz service.",
		Example: `  tollgate keys create --consumer alice --tier pro --roles user,admin
  tollgate keys create --consumer ci-bot --expires 720h -o json
  tollgate keys create --consumer legacy-client --format opaque`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.Consumer == "" {
				return &UsageError{fmt.Errorf("--consumer is required")}
			}
			if req.Format != apikey.FormatSigned && req.Format != apikey.FormatOpaque {
				return &UsageError{fmt.Errorf("--format %q: want signed or opaque", req.Format)}
			}
			if roles != "" {
				req.Roles = strings.Split(roles, ",")
				if err := checkRoles(req.Roles); err != nil {
					return &UsageError{err}
				}
			}
			return call(cmd, &f, func(ctx context.Context, c *admin.Client) (*admin.CreateKeyResponse, error) {
				return c.CreateKey(ctx, req)
			}, func(w io.Writer, res *admin.CreateKeyResponse) {
				printCreatedKey(w, res)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&req.Consumer, "consumer", "", "consumer the key identifies (required)")
	fl.StringVar(&req.Tier, "tier", "", "rate-limit tier of the consumer: one of the served policy's tiers (default: its default tier)")
	fl.StringVar(&req.Tenant, "tenant", "", "tenant of the consumer")
	fl.StringVar(&roles, "roles", "", "comma-separated roles")
	fl.StringVar(&req.ExpiresIn, "expires", "", "lifetime, e.g. 720h (default: never expires)")
	fl.StringVar(&req.Format, "format", apikey.FormatSigned, "key format: signed (verified by Envoy itself) or opaque (tg_<id>_<secret>_<checksum>)")
	f.add(cmd)
	return cmd
}

func newKeysListCmd() *cobra.Command {
	var f clientFlags
	var consumer string
	cmd := &cobra.Command{
		Use:   "list --consumer NAME",
		Short: "List a consumer's keys (ids and metadata, never the keys)",
		Example: `  tollgate keys list --consumer alice
  tollgate keys list --consumer alice -o json | jq -r '.[] | select(.revoked | not) | .id'`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if consumer == "" {
				return &UsageError{fmt.Errorf("--consumer is required")}
			}
			return call(cmd, &f, func(ctx context.Context, c *admin.Client) ([]apikey.Record, error) {
				return c.ListKeys(ctx, consumer)
			}, printKeys)
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
		Use:     "revoke ID",
		Short:   "Revoke a key; every authz replica rejects it within a second",
		Example: `  tollgate keys revoke 27rPErmv   # the id from 'keys list' or 'keys create' (also the 8 characters after tg_ of an opaque key)`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return call(cmd, &f, func(ctx context.Context, c *admin.Client) (map[string]string, error) {
				return map[string]string{"revoked": a[0]}, c.RevokeKey(ctx, a[0])
			}, func(w io.Writer, _ map[string]string) { fmt.Fprintf(w, "revoked %s\n", a[0]) })
		},
	}
	f.add(cmd)
	return cmd
}

// checkRoles refuses what the admin API would refuse, before calling it:
// roles reach upstreams joined with commas, so each must be non-empty and
// hold no comma, whitespace or control character.
func checkRoles(roles []string) error {
	for _, r := range roles {
		if !contract.ValidRole(r) {
			return fmt.Errorf("--roles: invalid role %q: give non-empty roles without spaces or control characters, "+
				"separated by commas (e.g. --roles user,admin)", r)
		}
	}
	return nil
}

// printCreatedKey prints the key alone on the first line, then says so.
// Both lines go out in one write, so that `| head -n 1` has read them
// before it exits and never leaves tollgate writing into a closed pipe
// (SIGPIPE, exit 141 under pipefail).
func printCreatedKey(w io.Writer, res *admin.CreateKeyResponse) {
	fmt.Fprintf(w, "%s\n# ^ the line above is the API key (id %s, consumer %s, tier %s): store it now, it is not shown again\n",
		res.Key, res.Record.ID, res.Record.Consumer, orDefault(res.Record.Tier))
}

func orDefault(tier string) string {
	if tier == "" {
		return "the policy's default"
	}
	return tier
}
