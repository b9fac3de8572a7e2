package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientFindsAdminToken checks the CLI's token search order: --token,
// TOLLGATE_TOKEN, TOLLGATE_ADMIN_TOKEN, --token-file, TOLLGATE_TOKEN_FILE,
// then the file tollgate serve generates; without any, the error names
// them all.
func TestClientFindsAdminToken(t *testing.T) {
	cfg := t.TempDir()
	serveFile := filepath.Join(cfg, "tollgate", "admin-token")
	other := filepath.Join(t.TempDir(), "other-token")
	writeToken := func(path, tok string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeToken(other, "from-file-flag")
	tests := []struct {
		name, flag, flagFile string
		env                  map[string]string
		serveFile            bool
		want, wantErr        string
	}{
		{name: "flag wins", flag: "f", env: map[string]string{envToken: "e"}, serveFile: true, want: "f"},
		{name: "TOLLGATE_TOKEN", env: map[string]string{envToken: "e", envAdminTok: "a"}, serveFile: true, want: "e"},
		{name: "TOLLGATE_ADMIN_TOKEN", env: map[string]string{envAdminTok: "a"}, serveFile: true, want: "a"},
		{name: "--token-file", flagFile: other, env: map[string]string{envTokenFile: "/nonexistent"}, serveFile: true, want: "from-file-flag"},
		{name: "TOLLGATE_TOKEN_FILE", env: map[string]string{envTokenFile: other}, serveFile: true, want: "from-file-flag"},
		{name: "missing --token-file", flagFile: "/nonexistent/token", wantErr: "--token-file"},
		{name: "serve's file", serveFile: true, want: "generated"},
		{name: "nothing", wantErr: "pass --token, set TOLLGATE_TOKEN, or point --token-file (TOLLGATE_TOKEN_FILE)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("XDG_CONFIG_HOME", cfg)
			for _, k := range []string{envToken, envAdminTok, envTokenFile} {
				t.Setenv(k, tt.env[k])
			}
			os.RemoveAll(filepath.Dir(serveFile))
			if tt.serveFile {
				writeToken(serveFile, "generated")
			}
			f := clientFlags{token: tt.flag, tokenFile: tt.flagFile}
			got, err := f.adminToken()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if tt.name == "nothing" && !strings.Contains(err.Error(), serveFile) {
					t.Errorf("err = %v, want it to name %s", err, serveFile)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("token = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
