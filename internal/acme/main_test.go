package acme

import (
	"fmt"
	"os"
	"testing"

	"github.com/tollgate/tollgate/internal/acmetest"
)

// TestMain sets Pebble's environment for the whole process
// (acmetest.SetProcessEnv), so that the tests that start Pebble can run in
// parallel: they wait on certificate lifetimes and renewal backoffs (a 9 s
// lifetime, renewal at a third of it), not on the CPU.
func TestMain(m *testing.M) {
	if err := acmetest.SetProcessEnv(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}
