package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/tollgate/tollgate/e2e/harness"
	"github.com/tollgate/tollgate/internal/acmetest"
)

// TestMain builds the tollgate binary once (harness.Main) and sets Pebble's
// environment for the whole process, so that the ACME tests can run in
// parallel (acmetest.Start).
func TestMain(m *testing.M) {
	if err := acmetest.SetProcessEnv(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	harness.Main(m)
}
