package cli

import (
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/internal/acme"
	"github.com/tollgate/tollgate/internal/certs"
	"github.com/tollgate/tollgate/policy"
	"github.com/tollgate/tollgate/policy/ir"
	"github.com/tollgate/tollgate/xds/translator"
)

// validateResult is validate's machine-readable output.
type validateResult struct {
	Valid       bool               `json:"valid"`
	Version     string             `json:"version,omitempty"`
	Gateways    int                `json:"gateways"`
	Routes      int                `json:"routes"`
	Backends    int                `json:"backends"`
	Diagnostics policy.Diagnostics `json:"diagnostics"`
	// Envoy holds the --with-envoy results, one per gateway.
	Envoy []envoyCheck `json:"envoy,omitempty"`
	// AuthPaths says, per gateway and route, whether Envoy decides the
	// route's authentication itself or calls ext_authz, and why.
	AuthPaths map[string][]translator.RouteAuthPath `json:"authPaths,omitempty"`
	// RateLimits says where the limits are taken: quota or exact, and
	// why; absent when no route is rate limited.
	RateLimits *rateLimitPath `json:"rateLimits,omitempty"`
}

// rateLimitPath is the policy's rate-limit mode as validate reports it.
type rateLimitPath struct {
	Mode   string `json:"mode"`
	Reason string `json:"reason"`
}

// rateLimitPathOf returns where cfg's limits are taken, nil when no route
// is rate limited.
func rateLimitPathOf(cfg *ir.Config) *rateLimitPath {
	if !cfg.RateLimited() {
		return nil
	}
	if cfg.RateLimits.Quota() {
		return &rateLimitPath{Mode: ir.RateLimitQuota,
			Reason: "Envoy enforces server-assigned shares of the Redis account, no call per request"}
	}
	if route, ok := cfg.ExactOnlyRoute(); ok {
		return &rateLimitPath{Mode: ir.RateLimitExact, Reason: fmt.Sprintf("every request counted in Redis "+
			"through the rate-limit service (route %s uses shadow limits or limits keyed by a header, which "+
			"need it)", route)}
	}
	return &rateLimitPath{Mode: ir.RateLimitExact,
		Reason: "every request counted in Redis through the rate-limit service (rateLimits.mode: exact)"}
}

func newValidateCmd() *cobra.Command {
	var output, envoyBin string
	var withEnvoy bool
	cmd := &cobra.Command{
		Use:   "validate FILE|DIR [--with-envoy]",
		Short: "Check a policy offline: every error at once, with file:line and field path",
		Long: "Validate loads a policy file (or every .yaml/.yml file of a directory), reports every error with its file, line and field path, " +
			"and translates it to Envoy configuration exactly as the server would. With --with-envoy it also runs the real Envoy in validate mode " +
			"(envoy --mode validate) on every gateway's configuration, which catches what only Envoy knows, such as a Lua syntax error. " +
			"Exit code 1 when the policy is invalid. -o json prints {valid, version, diagnostics: [{severity, summary, detail, path, range}]}, also for a file that cannot be read.",
		Example: `  tollgate validate policy.yaml
  tollgate validate policies/ --with-envoy
  tollgate validate policy.yaml -o json | jq '.diagnostics[] | select(.severity == "error")'`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			res, cfg, err := validatePath(a[0])
			if err != nil && output == "text" {
				return err
			}
			if err != nil {
				res = failedValidation(a[0], err) // machine output even now
			}
			if withEnvoy && res.Valid {
				if res.Envoy, err = validateWithEnvoy(cmd.Context(), cfg, envoyBin); err != nil {
					return err
				}
				for _, c := range res.Envoy {
					res.Valid = res.Valid && c.OK
				}
			}
			if err := render(cmd.OutOrStdout(), output, res, func(w io.Writer) { printValidate(w, res) }); err != nil {
				return err
			}
			if !res.Valid {
				return ErrReported
			}
			return nil
		},
	}
	addOutputFlag(cmd, &output)
	cmd.Flags().BoolVar(&withEnvoy, "with-envoy", false, "also run `envoy --mode validate` on every gateway's translated configuration")
	cmd.Flags().StringVar(&envoyBin, "envoy-bin", "", "Envoy binary for --with-envoy (default: $ENVOY_BIN, .tools/bin/envoy in the working directory or a parent, envoy next to tollgate or .tools/bin/envoy above it, envoy on $PATH)")
	return cmd
}

// validatePath builds the policy at path and translates every gateway; it
// returns the IR when the policy is valid.
func validatePath(path string) (*validateResult, *ir.Config, error) {
	files, err := policy.ReadPath(path)
	if err != nil {
		return nil, nil, err
	}
	cfg, diags := policy.Build(files)
	res := &validateResult{Diagnostics: diags}
	if diags == nil {
		res.Diagnostics = policy.Diagnostics{}
	}
	if cfg == nil {
		return res, nil, nil
	}
	res.AuthPaths = map[string][]translator.RouteAuthPath{}
	for _, g := range cfg.Gateways {
		res.AuthPaths[g.Name] = translator.AuthPaths(cfg, &g)
		r, err := translator.Translate(cfg, g.Name, offlineTranslateOptions())
		if err == nil {
			err = translator.Validate(r)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("policy is valid but its Envoy configuration is not (a bug in tollgate, please report it): %w", err)
		}
	}
	res.RateLimits = rateLimitPathOf(cfg)
	res.Valid, res.Version = true, cfg.Hash()
	res.Gateways, res.Routes, res.Backends = len(cfg.Gateways), countRoutes(cfg), len(cfg.Backends)
	return res, cfg, nil
}

// offlineTranslateOptions are the translator options of an offline check
// (validate, validate --with-envoy): the default addresses stand in for the
// services a running control plane would advertise (ext_authz, rate limit,
// ext_proc, ACME responder), and an ACME listener gets the self-signed
// placeholder certificate it serves before its first issuance. Envoy in
// validate mode connects to none of them.
// offlineKeyJWKS stands for the API-key signer's public JWKS (serve
// derives it from the key pepper), so the native key path is validated as
// served.
const offlineKeyJWKS = `{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":"offline",` +
	`"x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`

func offlineTranslateOptions() translator.Options {
	return translator.Options{
		AuthzAddress: defaultAuthz, RateLimitAddress: defaultRateLimit,
		ExtProcAddress: defaultExtProc, ACMEAddress: defaultACME,
		Certs:   &acme.PendingSource{Next: certs.NewStore(nil)},
		KeyJWKS: offlineKeyJWKS,
	}
}

// countRoutes counts distinct route names across gateways.
func countRoutes(cfg *ir.Config) int {
	seen := map[string]bool{}
	for _, g := range cfg.Gateways {
		for _, vh := range g.VirtualHosts {
			for _, r := range vh.Routes {
				seen[r.Name] = true
			}
		}
	}
	return len(seen)
}

func printValidate(w io.Writer, res *validateResult) {
	printDiagnostics(w, res.Diagnostics)
	printAuthPaths(w, res.AuthPaths)
	if rl := res.RateLimits; rl != nil {
		fmt.Fprintf(w, "  rate limits: %s: %s\n", rl.Mode, rl.Reason)
	}
	for _, c := range res.Envoy {
		if c.OK {
			fmt.Fprintf(w, "  gateway %s: envoy --mode validate: OK\n", c.Gateway)
		} else {
			fmt.Fprintf(w, "  gateway %s: error: Envoy rejects the configuration: %s\n", c.Gateway, c.Error)
		}
	}
	if !res.Valid && len(res.Diagnostics.Errors()) == 0 {
		fmt.Fprintln(w, "invalid: rejected by Envoy")
		return
	}
	if !res.Valid {
		fmt.Fprintf(w, "invalid: %d error(s)\n", res.Diagnostics.Count(policy.SeverityError))
		return
	}
	fmt.Fprintf(w, "valid: version %s (%d gateways, %d routes, %d backends)\n", res.Version, res.Gateways, res.Routes, res.Backends)
}

// printAuthPaths prints one line per protected route: decided in Envoy, or
// through ext_authz and why.
func printAuthPaths(w io.Writer, paths map[string][]translator.RouteAuthPath) {
	for _, gw := range slices.Sorted(maps.Keys(paths)) {
		for _, p := range paths[gw] {
			switch p.Path {
			case translator.AuthPathEnvoy:
				fmt.Fprintf(w, "  gateway %s route %s: auth in Envoy (jwt_authn, rbac)\n", gw, p.Route)
			case translator.AuthPathEnvoyKey:
				fmt.Fprintf(w, "  gateway %s route %s: signed API keys in Envoy (jwt_authn, key table, rbac); opaque keys via ext_authz\n", gw, p.Route)
			case translator.AuthPathEnvoyMixed:
				fmt.Fprintf(w, "  gateway %s route %s: JWTs and signed API keys in Envoy (jwt_authn, key table, rbac); opaque keys via ext_authz\n", gw, p.Route)
			case translator.AuthPathExtAuthz:
				fmt.Fprintf(w, "  gateway %s route %s: auth via ext_authz: %s\n", gw, p.Route, p.Reason)
			}
		}
	}
}

// failedValidation is validate's result for a policy it could not check
// (a file that cannot be read), so -o json and -o yaml always print JSON
// or YAML.
func failedValidation(path string, err error) *validateResult {
	return &validateResult{Diagnostics: policy.Diagnostics{{
		Severity: policy.SeverityError,
		Summary:  err.Error(),
		Detail:   "check that the path names a readable .yaml/.yml file or a directory of them",
		Range:    policy.Range{File: path},
	}}}
}
