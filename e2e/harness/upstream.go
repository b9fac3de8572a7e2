package harness

import (
	"testing"

	"github.com/tollgate/tollgate/internal/upstream"
)

// StartUpstream starts an echo upstream (see package upstream) called name on
// a free loopback port. It is closed when the test ends.
func StartUpstream(t testing.TB, name string) *upstream.Server {
	t.Helper()
	s, err := upstream.Start("127.0.0.1:0", name)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("harness: close upstream %s: %v", name, err)
		}
	})
	return s
}
