package cli

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestServeDefaultListenAddressesAreDistinct guards against two services
// claiming one default port: serve binds every *-addr it runs, so a clash
// only shows when both parts are in use (e.g. ext_proc and the ACME
// responder both defaulted to 18003 once).
func TestServeDefaultListenAddressesAreDistinct(t *testing.T) {
	seen := map[string]string{}
	newServeCmd().Flags().VisitAll(func(f *pflag.Flag) {
		if !strings.HasSuffix(f.Name, "-addr") || strings.Contains(f.Name, "advertise") || f.DefValue == "" {
			return
		}
		if other, dup := seen[f.DefValue]; dup {
			t.Errorf("--%s and --%s both default to %s", f.Name, other, f.DefValue)
		}
		seen[f.DefValue] = f.Name
	})
	if len(seen) < 5 {
		t.Fatalf("found only %d listen-address flags (%v): the flag naming changed, update this test", len(seen), seen)
	}
}
