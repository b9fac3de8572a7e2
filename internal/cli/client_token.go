package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/tollgate/tollgate/internal/admin"
)

// adminToken finds the admin API token, first match wins: --token,
// $TOLLGATE_TOKEN, $TOLLGATE_ADMIN_TOKEN (the server's variable),
// --token-file, $TOLLGATE_TOKEN_FILE, then the file tollgate serve
// generates when it has no configured token. No token is an error that
// names every place looked at.
func (f *clientFlags) adminToken() (string, error) {
	for _, tok := range []string{f.token, os.Getenv(envToken), os.Getenv(envAdminTok)} {
		if tok != "" {
			return tok, nil
		}
	}
	path, explicit := f.tokenFile, "--token-file"
	if path == "" {
		path, explicit = os.Getenv(envTokenFile), envTokenFile
	}
	if path != "" {
		tok, err := admin.ReadTokenFile(path)
		if err != nil {
			return "", &UsageError{fmt.Errorf("%s: %w", explicit, err)}
		}
		return tok, nil
	}
	path = admin.DefaultTokenFile(defaultDataDir)
	tok, err := admin.ReadTokenFile(path)
	switch {
	case err == nil:
		return tok, nil
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("no admin API token: pass --token, set %s, or point --token-file (%s) at a token file; "+
			"tollgate serve without --admin-token writes one to %s (run the CLI as the same user)", envToken, envTokenFile, path)
	default:
		return "", &UsageError{err}
	}
}
