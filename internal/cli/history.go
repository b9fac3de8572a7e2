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
	"github.com/tollgate/tollgate/internal/store"
)

func newHistoryCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List pushed, rolled back and rejected policy versions, oldest first; * marks the served one",
		Long: "History lists the policy changes, oldest first. OUTCOME is applied, rejected (a proxy refused the version; the previous one " +
			"stayed), failed, pending (the version is current and the proxies are applying it) or interrupted (the control plane stopped " +
			"during the push before the version was served; the message names the version that stayed current). A push whose control " +
			"plane stopped after its version became current is settled as applied when it restarts.",
		Example: `  tollgate history
  tollgate history -o json | jq '.[] | select(.outcome == "rejected")'`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var current string
			return call(cmd, &f, func(ctx context.Context, c *admin.Client) ([]store.Event, error) {
				h, err := c.History(ctx)
				if err != nil || f.output != "text" {
					return h, err
				}
				st, err := c.Status(ctx)
				if err == nil {
					current = st.Version
				}
				return h, err
			}, func(w io.Writer, h []store.Event) { printHistory(w, h, current) })
		},
	}
	f.add(cmd)
	return cmd
}

// printHistory prints the events as a table; "*" marks the newest applied
// event of the current version.
func printHistory(w io.Writer, h []store.Event, current string) {
	mark := currentEvent(h, current)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, " \tSEQ\tVERSION\tACTION\tOUTCOME\tAT\tSOURCE\tMESSAGE")
	for i, e := range h {
		star := " "
		if i == mark {
			star = "*"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", star, e.Seq, e.Version, e.Action, e.Outcome,
			e.At.Format("2006-01-02T15:04:05Z"), e.Source, eventMessage(e))
	}
	tw.Flush()
	if mark >= 0 {
		fmt.Fprintf(w, "* served now: version %s\n", current)
	}
}

// currentEvent is the index of the newest applied (or pending: its proxies
// are applying it) event of version current, or -1.
func currentEvent(h []store.Event, current string) int {
	for i := len(h) - 1; i >= 0; i-- {
		if current != "" && h[i].Version == current && (h[i].Outcome == store.Applied || h[i].Outcome == store.Pending) {
			return i
		}
	}
	return -1
}

// pendingNote explains a pending event without a message.
const pendingNote = "current; the proxies are applying it (settled when the push ends, or when a stopped control plane restarts)"

// eventMessage is the pusher's reason, then what happened, if anything.
func eventMessage(e store.Event) string {
	msg := e.Message
	if e.Outcome == store.Pending && msg == "" {
		msg = pendingNote
	}
	parts := make([]string, 0, 2)
	for _, s := range []string{e.Reason, msg} {
		if s != "" {
			parts = append(parts, strings.ReplaceAll(s, "\n", " "))
		}
	}
	return strings.Join(parts, " — ")
}

func newRollbackCmd() *cobra.Command {
	var f clientFlags
	var previous bool
	var message string
	cmd := &cobra.Command{
		Use:   "rollback [VERSION | --previous]",
		Short: "Serve a stored policy version again (see 'tollgate history')",
		Long: "Rollback serves a version from the history again, like a push of its files. VERSION may be any unique prefix of a version id; " +
			"--previous picks the version served before the current one.",
		Example: `  tollgate rollback --previous -m "the new limits broke checkout"
  tollgate rollback 3f2a9c
  tollgate history && tollgate rollback 3f2a9c1e0b7d`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if (len(a) == 1) == previous {
				return &UsageError{fmt.Errorf("name a VERSION (a unique prefix is enough) or --previous, not both")}
			}
			return call(cmd, &f, func(ctx context.Context, c *admin.Client) (*controlplane.PushResult, error) {
				id, err := rollbackTarget(ctx, c, a, previous)
				if err != nil {
					return nil, err
				}
				return c.Rollback(ctx, admin.RollbackRequest{Version: id, Source: source(), Message: message})
			}, func(w io.Writer, res *controlplane.PushResult) { printPush(w, res, true, false) })
		},
	}
	cmd.Flags().BoolVar(&previous, "previous", false, "roll back to the version served before the current one")
	cmd.Flags().StringVarP(&message, "message", "m", "", "why: recorded with the rollback in the history")
	f.add(cmd)
	return cmd
}

// rollbackTarget resolves rollback's argument, or --previous, against the
// history.
func rollbackTarget(ctx context.Context, c *admin.Client, a []string, previous bool) (string, error) {
	h, err := c.History(ctx)
	if err != nil {
		return "", err
	}
	if !previous {
		return resolveVersion(h, a[0])
	}
	st, err := c.Status(ctx)
	if err != nil {
		return "", err
	}
	return previousVersion(h, st.Version)
}

// resolveVersion returns the one version of the history that starts with
// prefix.
func resolveVersion(h []store.Event, prefix string) (string, error) {
	seen := map[string]bool{}
	for _, e := range h {
		if strings.HasPrefix(e.Version, prefix) {
			seen[e.Version] = true
		}
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("no version in the history starts with %q; see 'tollgate history'", prefix)
	case 1:
		return ids[0], nil
	}
	return "", fmt.Errorf("version prefix %q is ambiguous: it matches %s; give more characters", prefix, strings.Join(ids, ", "))
}

// previousVersion returns the version last applied before current: the
// newest applied push, rollback, seed or restore of another version.
func previousVersion(h []store.Event, current string) (string, error) {
	for i := len(h) - 1; i >= 0; i-- {
		e := h[i]
		if e.Outcome == store.Applied && e.Action != "endpoints" && e.Version != current {
			return e.Version, nil
		}
	}
	return "", fmt.Errorf("the history holds no version served before %s; see 'tollgate history'", orNone(current))
}
