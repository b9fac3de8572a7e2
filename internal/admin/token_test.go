package admin

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

func TestLoadOrCreateTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cfg", "tollgate", TokenFileName)
	tok, created, err := LoadOrCreateTokenFile(path)
	if err != nil || !created {
		t.Fatalf("first start: %q, created %v, %v", tok, created, err)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`).MatchString(tok) {
		t.Errorf("token %q: want 32 random bytes, base64url (43 characters)", tok)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		if info, err := os.Stat(p); err != nil || info.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %04o", p, info.Mode().Perm(), err, want)
		}
	}
	again, created, err := LoadOrCreateTokenFile(path)
	if err != nil || created || again != tok {
		t.Fatalf("restart: %q, created %v, %v; want the stored token", again, created, err)
	}
	if other, _ := NewToken(); other == tok {
		t.Error("two generated tokens are equal")
	}
}

func TestLoadOrCreateTokenFileConcurrentStartsAgree(t *testing.T) {
	path := filepath.Join(t.TempDir(), TokenFileName)
	toks := make([]string, 8)
	var wg sync.WaitGroup
	for i := range toks {
		wg.Go(func() {
			tok, _, err := LoadOrCreateTokenFile(path)
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok
		})
	}
	wg.Wait()
	for _, tok := range toks {
		if tok != toks[0] || tok == "" {
			t.Fatalf("concurrent starts got different tokens: %q", toks)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}

func TestReadTokenFileRefusesUnsafeFiles(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		mode          os.FileMode
		wantErr       string
	}{
		{"owner only", "tok\n", 0o600, ""},
		{"world readable", "tok\n", 0o644, "chmod 600"},
		{"group readable", "tok\n", 0o640, "chmod 600"},
		{"empty", " \n", 0o600, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.WriteFile(path, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			tok, err := ReadTokenFile(path)
			if tt.wantErr == "" {
				if err != nil || tok != "tok" {
					t.Fatalf("%q, %v; want tok", tok, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "tok\n") {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	if _, _, err := LoadOrCreateTokenFile(filepath.Join(dir, "world-readable")); err == nil {
		t.Error("a world-readable stored token was reused")
	}
}

func TestDefaultTokenFile(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", "/cfg")
	if got := DefaultTokenFile("data"); got != "/cfg/tollgate/admin-token" {
		t.Errorf("with XDG_CONFIG_HOME: %s", got)
	}
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", "")
	if got := DefaultTokenFile("data"); got != filepath.Join("data", "admin-token") {
		t.Errorf("without a config dir: %s, want data/admin-token", got)
	}
}
