package cli

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeAdminTokenIsGeneratedOnceAndNeverLogged: without a configured
// token serve generates one into --admin-token-file (0600), logs the path
// but not the token, and reuses it on the next start; a configured token
// writes no file.
func TestServeAdminTokenIsGeneratedOnceAndNeverLogged(t *testing.T) {
	t.Setenv(envAdminTok, "")
	file := filepath.Join(t.TempDir(), "dir", "admin-token")
	o := defaultServeOptions()
	o.admin.tokenFile = file
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	first, got, err := o.admin.access(o, log)
	if err != nil || got != file || len(first.Token) < 43 {
		t.Fatalf("first start: %+v, file %q, %v", first, got, err)
	}
	if info, err := os.Stat(file); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, %v; want mode 0600", info, err)
	}
	second, _, err := o.admin.access(o, log)
	if err != nil || second.Token != first.Token {
		t.Fatalf("restart: %v; want the stored token", err)
	}
	if !strings.Contains(logs.String(), file) || strings.Contains(logs.String(), first.Token) {
		t.Fatalf("log must name %s and never the token:\n%s", file, logs.String())
	}

	o.admin.tokenFile = filepath.Join(t.TempDir(), "unused")
	o.admin.token = "configured"
	acc, got, err := o.admin.access(o, log)
	if err != nil || acc.Token != "configured" || got != "" {
		t.Fatalf("configured token: %+v, %q, %v", acc, got, err)
	}
	if _, err := os.Stat(o.admin.tokenFile); !os.IsNotExist(err) {
		t.Errorf("a configured token still wrote %s", o.admin.tokenFile)
	}
}
