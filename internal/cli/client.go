package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/internal/admin"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/policy"
)

// clientFlags are the flags of every verb that talks to a server.
type clientFlags struct {
	server, token, output string
	tokenFile             string
	timeout               time.Duration
	tls                   clientTLS // ha_client.go
}

func (f *clientFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.server, "server", envOr(envServer, "http://"+defaultAdmin), "admin API URL of the tollgate server (env "+envServer+")")
	cmd.Flags().StringVar(&f.token, "token", "", "admin API bearer token (env "+envToken+" or "+envAdminTok+"; default: read from --token-file)")
	cmd.Flags().StringVar(&f.tokenFile, "token-file", "", "file holding the admin API token (env "+envTokenFile+"; default: the file tollgate serve generates, <user config dir>/tollgate/"+admin.TokenFileName+")")
	cmd.Flags().DurationVar(&f.timeout, "timeout", time.Minute, "how long to wait for the server")
	addOutputFlag(cmd, &f.output)
	f.tls.register(cmd)
}

// client returns an API client and a context bounded by --timeout.
func (f *clientFlags) client(cmd *cobra.Command) (*admin.Client, context.Context, context.CancelFunc, error) {
	if err := checkOutput(f.output); err != nil {
		return nil, nil, nil, err
	}
	token, err := f.adminToken()
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := f.tls.apply(admin.NewClient(f.server, token))
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	return c, ctx, cancel, nil
}

// readPolicy reads a policy file or directory into request files.
func readPolicy(path string) ([]store.File, error) {
	files, err := policy.ReadPath(path)
	if err != nil {
		return nil, err
	}
	out := make([]store.File, len(files))
	for i, f := range files {
		out[i] = store.File{Name: f.Name, Content: string(f.Content)}
	}
	return out, nil
}

// source names the pusher for the history: user@host.
func source() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

// reportAPIError prints a server refusal in full and returns ErrReported;
// other errors pass through.
func reportAPIError(w io.Writer, err error) error {
	var apiErr *admin.APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	fmt.Fprintf(w, "error: %s\n", apiErr.ErrorResponse.Error)
	printDiagnostics(w, apiErr.Diagnostics)
	if apiErr.Status == 409 {
		fmt.Fprintln(w, "the previous configuration is still served")
	}
	return ErrReported
}

// printDiagnostics prints one diagnostic per line.
func printDiagnostics(w io.Writer, ds policy.Diagnostics) {
	for _, d := range ds {
		fmt.Fprintf(w, "  %s\n", d)
	}
}

// call runs one admin API call with the verb's flags and renders its
// result: the text form by text, or JSON/YAML.
func call[T any](cmd *cobra.Command, f *clientFlags, do func(context.Context, *admin.Client) (T, error), text func(io.Writer, T)) error {
	c, ctx, cancel, err := f.client(cmd)
	if err != nil {
		return err
	}
	defer cancel()
	v, err := do(ctx, c)
	if err != nil {
		return reportAPIError(cmd.ErrOrStderr(), err)
	}
	return render(cmd.OutOrStdout(), f.output, v, func(w io.Writer) { text(w, v) })
}
