package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestServeEnvoyModuleNeedsAnAbsolutePath: a relative --envoy-module is a
// usage error naming the flag, before anything starts (Envoy would resolve
// it against its own working directory, another file on every host).
func TestServeEnvoyModuleNeedsAnAbsolutePath(t *testing.T) {
	var out bytes.Buffer
	root := NewRoot(&out, &out)
	root.SetArgs([]string{"serve", "--envoy-module", "build/libtollgate_envoy.so", "--data-dir", t.TempDir(),
		"--admin-addr", "127.0.0.1:0", "--xds-addr", "127.0.0.1:0"})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	var ue *UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--envoy-module") || !strings.Contains(err.Error(), "absolute path") {
		t.Fatalf("got %v, want a usage error naming --envoy-module and asking for an absolute path", err)
	}
}
