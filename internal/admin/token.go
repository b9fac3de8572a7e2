package admin

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tollgate/tollgate/internal/atomicfile"
)

// TokenFileName is the name of a stored admin token file.
const TokenFileName = "admin-token"

// tokenBytes is the entropy of a generated token.
const tokenBytes = 32

// NewToken returns a new admin token: 32 bytes from crypto/rand, base64url
// without padding (43 characters, safe in URLs and headers).
func NewToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate admin token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// DefaultTokenFile returns where a generated admin token is kept and where
// the CLI looks for it: <user config dir>/tollgate/admin-token
// ($XDG_CONFIG_HOME or ~/.config on Linux). When the user has no config
// directory ($HOME unset), it is <dataDir>/admin-token.
func DefaultTokenFile(dataDir string) string {
	if dir, err := os.UserConfigDir(); err == nil {
		return filepath.Join(dir, "tollgate", TokenFileName)
	}
	return filepath.Join(dataDir, TokenFileName)
}

// ReadTokenFile returns the token stored at path (surrounding white space
// trimmed). It refuses a file that users other than its owner may read or
// write, and an empty one.
func ReadTokenFile(path string) (string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("admin token file %s has mode %04o: other users may read it; run chmod 600 %s", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("admin token file %s is empty", path)
	}
	return tok, nil
}

// LoadOrCreateTokenFile returns the token stored at path, or stores a new
// one there (file mode 0600, missing directories 0700) and reports created.
// Several processes starting at once agree on one token: the file appears
// complete or not at all (written aside, then hard-linked into place).
func LoadOrCreateTokenFile(path string) (token string, created bool, err error) {
	tok, err := ReadTokenFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return tok, false, err
	}
	if tok, err = NewToken(); err != nil {
		return "", false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", false, fmt.Errorf("create the admin token's directory: %w", err)
	}
	switch err := atomicfile.Create(path, []byte(tok+"\n")); {
	case errors.Is(err, fs.ErrExist): // another process was faster
		tok, err = ReadTokenFile(path)
		return tok, false, err
	case err != nil:
		return "", false, fmt.Errorf("store the admin token in %s: %w", path, err)
	}
	return tok, true, nil
}
