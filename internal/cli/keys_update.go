package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/extauthz/apikey"
	"github.com/tollgate/tollgate/internal/admin"
)

func newKeysUpdateCmd() *cobra.Command {
	var f clientFlags
	var tier, roles, expires string
	cmd := &cobra.Command{
		Use:   "update ID [--tier T] [--roles a,b] [--expires 720h|never]",
		Short: "Change a key's tier, roles or expiry without reissuing it",
		Long: "Update changes the tier, roles or expiry of an existing key; the key itself stays the same. " +
			"Like a revocation, the change reaches every authz replica within a second. Flags not given keep their value. " +
			"A signed key's expiry can only be shortened (its token carries the expiry Envoy enforces): to extend it, create a new key.",
		Example: `  tollgate keys update 27rPErmv --tier enterprise
  tollgate keys update 27rPErmv --roles user,admin --expires 2160h
  tollgate keys update 27rPErmv --roles "" --expires never   # no roles, never expires`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			req := updateRequest(cmd, tier, roles, expires)
			if req.Tier == nil && req.Roles == nil && req.ExpiresIn == nil {
				return &UsageError{fmt.Errorf("nothing to change: give --tier, --roles or --expires")}
			}
			if req.Roles != nil {
				if err := checkRoles(*req.Roles); err != nil {
					return &UsageError{err}
				}
			}
			return call(cmd, &f, func(ctx context.Context, c *admin.Client) (*apikey.Record, error) {
				return c.UpdateKey(ctx, a[0], req)
			}, func(w io.Writer, r *apikey.Record) {
				fmt.Fprintf(w, "updated %s (the key is unchanged):\n", r.ID)
				printKeys(w, []apikey.Record{*r})
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&tier, "tier", "", `new tier: one of the served policy's tiers ("" for its default tier)`)
	fl.StringVar(&roles, "roles", "", `new comma-separated roles ("" for none)`)
	fl.StringVar(&expires, "expires", "", "new lifetime from now, e.g. 720h, or never")
	f.add(cmd)
	return cmd
}

// updateRequest holds the flags that were given.
func updateRequest(cmd *cobra.Command, tier, roles, expires string) admin.UpdateKeyRequest {
	var req admin.UpdateKeyRequest
	fl := cmd.Flags()
	if fl.Changed("tier") {
		req.Tier = &tier
	}
	if fl.Changed("roles") {
		list := []string{}
		if roles != "" {
			list = strings.Split(roles, ",")
		}
		req.Roles = &list
	}
	if fl.Changed("expires") {
		req.ExpiresIn = &expires
	}
	return req
}
