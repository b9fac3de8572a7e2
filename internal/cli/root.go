// Package cli is the tollgate command line: the server, the offline tools
// and the client verbs of the admin API.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/internal/version"
)

// Exit codes.
const (
	ExitOK           = 0
	ExitFailed       = 1 // rejected or failed
	ExitUsage        = 2
	envServer        = "TOLLGATE_SERVER"
	envToken         = "TOLLGATE_TOKEN"
	envAdminTok      = "TOLLGATE_ADMIN_TOKEN"
	envTokenFile     = "TOLLGATE_TOKEN_FILE"
	defaultDataDir   = "tollgate-data"
	defaultAdmin     = "127.0.0.1:9900"
	defaultXDS       = "127.0.0.1:18000"
	defaultAuthz     = "127.0.0.1:18001"
	defaultRateLimit = "127.0.0.1:18002"
	envPepper        = "TOLLGATE_KEY_PEPPER"
)

// UsageError is a command line mistake (exit code 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// ErrReported is a failure whose details the command already printed.
var ErrReported = errors.New("failed")

// Execute runs the command line and returns the process exit code.
func Execute(args []string, stdout, stderr io.Writer) int {
	root := NewRoot(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err != nil && strings.HasPrefix(err.Error(), "unknown command") {
		// cobra reports unknown commands with a plain error.
		err = &UsageError{err}
	}
	if cmd == nil {
		cmd = root
	}
	var usage *UsageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "error: %v\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
		return ExitUsage
	case errors.Is(err, ErrReported):
		return ExitFailed
	default:
		fmt.Fprintf(stderr, "error: %v\n", err)
		return ExitFailed
	}
}

// NewRoot builds the command tree.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "tollgate",
		Short: "Tollgate: an API gateway with Envoy as the data plane",
		Long:  "Tollgate serves Envoy its configuration from one declarative policy, and authenticates and rate-limits requests at the edge.",
		Example: `  tollgate dev                        # try it: Envoy, demo services, API key and JWT
  tollgate validate policy.yaml
  tollgate push policy.yaml -m "why"
  tollgate history && tollgate rollback --previous`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.String(),
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &UsageError{err} })
	root.AddCommand(
		newServeCmd(), newDevCmd(), newValidateCmd(), newBootstrapCmd(),
		newPushCmd(), newDiffCmd(), newGetCmd(), newHistoryCmd(), newRollbackCmd(), newStatusCmd(),
		newVersionCmd(), newDemoUpstreamCmd(), newKeysCmd(), newEndpointsCmd(),
		newProbeCmd(), newEnvoyModuleCmd(),
		newTopCmd(),
		newSchemaCmd(), newDocsCmd(),
	)
	return root
}

// args wraps a cobra argument check so its failures are usage errors.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return &UsageError{err}
		}
		return nil
	}
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the Envoy release it is built and tested for, and its Envoy module contract",
		Long: `Print the version, the Envoy release it is built and tested for, and the
contract of the Envoy module configuration it writes: an Envoy whose module
(libtollgate_envoy.so) was built with another contract refuses this control
plane's configuration. Two releases with the same contract can be rolled in
any order.`,
		Example: `  tollgate version`,
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), version.String())
			fmt.Fprintln(cmd.OutOrStdout(), "envoy module contract", envoymod.ContractID())
			return nil
		},
	}
}

// envOr returns the environment variable name's value, or def.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
