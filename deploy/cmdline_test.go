package deploy_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/cli"
)

// checkTollgateArgs parses args (a tollgate command line without the
// program name, as compose and the manifests give it) with the real
// command tree and reports every problem as a test error.
func checkTollgateArgs(t *testing.T, where string, args []string) {
	t.Helper()
	for _, err := range tollgateArgsErrors(args) {
		t.Errorf("%s: %v", where, err)
	}
}

// tollgateArgsErrors checks a tollgate command line: the command must exist,
// every flag must be known and its value must parse, the positional
// arguments must be accepted, and `tollgate <command> --help` must succeed.
func tollgateArgsErrors(args []string) []error {
	line := "tollgate " + strings.Join(args, " ")
	root := cli.NewRoot(io.Discard, io.Discard)
	cmd, rest, err := root.Find(args)
	if err != nil || cmd == root {
		return []error{fmt.Errorf("%s: no such command (%v)", line, err)}
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return []error{fmt.Errorf("%s: %w", line, err)}
	}
	var errs []error
	if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
		errs = append(errs, fmt.Errorf("%s: arguments: %w", line, err))
	}
	path := strings.Fields(cmd.CommandPath())[1:]
	var out bytes.Buffer
	if code := cli.Execute(append(path, "--help"), &out, &out); code != cli.ExitOK {
		errs = append(errs, fmt.Errorf("tollgate %s --help: exit %d\n%s", strings.Join(path, " "), code, out.String()))
	}
	return errs
}

// TestCheckTollgateArgsCatchesMistakes makes sure the checker above is not
// vacuous.
func TestCheckTollgateArgsCatchesMistakes(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"unknown command", []string{"servee", "--policy=x"}},
		{"unknown flag", []string{"serve", "--polcy=/etc/p.yaml"}},
		{"bad value", []string{"bootstrap", "--stats-port=x"}},
		{"extra argument", []string{"demo-upstream", "extra"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tollgateArgsErrors(tt.args)) == 0 {
				t.Errorf("tollgate %v passed the check", tt.args)
			}
		})
	}
}
