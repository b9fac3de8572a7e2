package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/xds/translator"
)

// envoyValidateTimeout bounds one `envoy --mode validate` run.
const envoyValidateTimeout = time.Minute

// envoyCheck is the outcome of `envoy --mode validate` on one gateway's
// translated configuration.
type envoyCheck struct {
	Gateway string `json:"gateway"`
	OK      bool   `json:"ok"`
	// Error is Envoy's reason when it rejects the configuration.
	Error string `json:"error,omitempty"`
}

// validateWithEnvoy runs the real Envoy binary in validate mode on the
// translated configuration of every gateway of cfg (as static resources,
// see translator.StaticBootstrap): Envoy builds every listener, route
// table, filter and per-route config as it would from xDS, so it catches
// what only Envoy knows, such as a Lua syntax error.
func validateWithEnvoy(ctx context.Context, cfg *ir.Config, bin string) ([]envoyCheck, error) {
	if bin == "" {
		b, err := envoy.FindBinary()
		if err != nil {
			return nil, fmt.Errorf("--with-envoy: %w (set ENVOY_BIN or --envoy-bin)", err)
		}
		bin = b
	}
	dir, err := os.MkdirTemp("", "tollgate-validate-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	checks := make([]envoyCheck, 0, len(cfg.Gateways))
	for _, g := range cfg.Gateways {
		c, err := validateGatewayWithEnvoy(ctx, cfg, g.Name, bin, dir)
		if err != nil {
			return nil, err
		}
		checks = append(checks, c)
	}
	return checks, nil
}

func validateGatewayWithEnvoy(ctx context.Context, cfg *ir.Config, gateway, bin, dir string) (envoyCheck, error) {
	r, err := translator.Translate(cfg, gateway, offlineTranslateOptions())
	if err != nil {
		return envoyCheck{}, fmt.Errorf("gateway %q: %w", gateway, err)
	}
	b, err := translator.StaticBootstrap(r)
	if err != nil {
		return envoyCheck{}, fmt.Errorf("gateway %q: %w", gateway, err)
	}
	y, err := envoy.YAML(b)
	if err != nil {
		return envoyCheck{}, fmt.Errorf("gateway %q: %w", gateway, err)
	}
	path := filepath.Join(dir, gateway+".yaml")
	if err := os.WriteFile(path, y, 0o600); err != nil {
		return envoyCheck{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, envoyValidateTimeout)
	defer cancel()
	out, err := envoy.ValidateConfigFile(ctx, bin, path)
	if err != nil {
		if ctx.Err() != nil {
			return envoyCheck{}, fmt.Errorf("gateway %q: envoy --mode validate: %w", gateway, ctx.Err())
		}
		return envoyCheck{Gateway: gateway, Error: envoyReason(out, err)}, nil
	}
	return envoyCheck{Gateway: gateway, OK: true}, nil
}

// envoyReason picks Envoy's explanation out of its validate-mode log: the
// critical or error lines without their log prefix, or else the last line.
func envoyReason(out []byte, err error) string {
	var reasons []string
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, l := range lines {
		if strings.Contains(l, "[critical]") || strings.Contains(l, "[error]") {
			if i := strings.Index(l, "] "); i >= 0 {
				// drop "[time][pid][level][component] [file:line] "
				l = l[strings.LastIndex(l, "] ")+2:]
			}
			l = strings.TrimSpace(l)
			if _, after, ok := strings.Cut(l, "error initializing configuration '"); ok {
				if _, rest, ok := strings.Cut(after, "': "); ok {
					l = rest // the temporary file's name means nothing to the user
				}
			}
			reasons = append(reasons, l)
		}
	}
	if len(reasons) == 0 && len(lines) > 0 && lines[len(lines)-1] != "" {
		reasons = append(reasons, lines[len(lines)-1])
	}
	if len(reasons) == 0 {
		return err.Error()
	}
	return strings.Join(reasons, "; ")
}
