package cli

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/pflag"

	"github.com/tollgate/tollgate/internal/admin"
)

// adminOptions are serve's flags for the admin API's access checks.
type adminOptions struct {
	token, tokenFile string
	allowedHosts     []string
	allowedOrigins   []string
}

func (a *adminOptions) register(fl *pflag.FlagSet) {
	fl.StringVar(&a.token, "admin-token", "", "admin API bearer token (env "+envAdminTok+"); without one, a token is generated once and kept in --admin-token-file; required unless --admin-addr is loopback")
	fl.StringVar(&a.tokenFile, "admin-token-file", "", "file that keeps the generated admin token, mode 0600 (default: <user config dir>/tollgate/"+admin.TokenFileName+", where the CLI looks)")
	fl.StringSliceVar(&a.allowedHosts, "admin-allowed-host", nil, "further Host names the admin API answers to (always: localhost, 127.0.0.1, ::1 and the --admin-addr host; any IP when listening on 0.0.0.0 or ::)")
	fl.StringSliceVar(&a.allowedOrigins, "admin-allowed-origin", nil, "browser origins (scheme://host[:port]) allowed to call the admin API (default: none, every request with an Origin header is refused)")
}

// configuredToken returns --admin-token, or the environment's token.
func (a adminOptions) configuredToken() string {
	if a.token != "" {
		return a.token
	}
	return os.Getenv(envAdminTok)
}

// access returns the admin API's access checks. Without a configured
// token it reads the token file, generating it on first start; file is
// then its path (logged, the token never is), else "".
func (a adminOptions) access(o serveOptions, log *slog.Logger) (acc admin.Access, file string, err error) {
	acc = admin.Access{Token: a.configuredToken(), ListenAddr: o.adminAddr, AllowedHosts: a.allowedHosts, AllowedOrigins: a.allowedOrigins}
	if acc.Token != "" {
		return acc, "", nil
	}
	file = a.tokenFile
	if file == "" {
		file = admin.DefaultTokenFile(o.dataDir)
	}
	tok, created, err := admin.LoadOrCreateTokenFile(file)
	if err != nil {
		return acc, "", fmt.Errorf("admin API token: %w (or set --admin-token, %s or --admin-token-file)", err, envAdminTok)
	}
	acc.Token = tok
	if created {
		log.Info("generated the admin API token; the CLI finds it there", "file", file)
	} else {
		log.Info("admin API token read from its file", "file", file)
	}
	return acc, file, nil
}
