package e2e

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e/harness"
)

// TestJWTModuleMissingLibraryFailsClosed: an Envoy host without the module
// file at the path `serve --envoy-module` names refuses the listener
// (module.local.filename cannot be loaded: a NACK the control plane
// reports), so the port is never served without authentication: nothing
// listens there, and no request reaches the upstream.
func TestJWTModuleMissingLibraryFailsClosed(t *testing.T) {
	n := startNativeEnv(t)
	port := harness.FreePort(t)
	missing := filepath.Join(t.TempDir(), "libtollgate_envoy.so")
	s := n.stack(t, n.policy(t, jwtNativePolicy, port), "--envoy-module", missing)
	s.envoy("public", "jwt-module-missing", "delta")
	var msg string
	if err := harness.WaitFor(testCtx(t, 20*time.Second), func() (bool, error) {
		msg = nackMessage(s.status(), "jwt-module-missing")
		return msg != "", nil
	}); err != nil {
		t.Fatalf("no NACK for a listener whose module file is missing: %v", err)
	}
	if !strings.Contains(msg, "libtollgate_envoy.so") {
		t.Errorf("NACK %q does not name the module file", msg)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		c.Close()
		t.Fatal("the listener is served without its module")
	}
	if got := n.upstream.Requests(); got != 0 {
		t.Fatalf("the upstream saw %d requests", got)
	}
}
