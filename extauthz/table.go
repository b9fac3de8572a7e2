package extauthz

import (
	"context"
	"fmt"

	"github.com/tollgate/tollgate/extauthz/jwt"
	"github.com/tollgate/tollgate/extauthz/oauth2"
	"github.com/tollgate/tollgate/policy/ir"
)

// Table is what Check needs of one policy version. It is immutable; its
// JWKS caches refresh in the background until close.
type Table struct {
	jwt       *jwt.Verifier
	oauth2    []*oauth2.Introspector
	keyHeader string // "" when API keys are not configured
	identity  ir.IdentityHeaders
	// strip lists the identity header names, precomputed for responses.
	strip  []string
	cancel context.CancelFunc
}

// newTable builds the table of cfg and starts its JWKS refreshes.
func newTable(parent context.Context, cfg *ir.Config, opts Options) (*Table, error) {
	ctx, cancel := context.WithCancel(parent)
	t := &Table{identity: cfg.Auth.IdentityHeaders, strip: cfg.Auth.IdentityHeaders.Names(), cancel: cancel}
	if cfg.Auth.APIKeys != nil {
		if opts.Keys == nil {
			cancel()
			return nil, fmt.Errorf("the policy configures API keys but the service has no key store")
		}
		t.keyHeader = cfg.Auth.APIKeys.Header
	}
	if err := t.buildProviders(ctx, cfg, opts); err != nil {
		cancel()
		return nil, err
	}
	return t, nil
}

func (t *Table) buildProviders(ctx context.Context, cfg *ir.Config, opts Options) error {
	if len(cfg.Auth.JWT) > 0 {
		v, err := jwt.NewVerifier(cfg.Auth.JWT, jwt.Options{HTTPClient: opts.HTTPClient, Logger: opts.Logger,
			Getenv: opts.Getenv, Metrics: opts.Metrics.jwtHooks()})
		if err != nil {
			return fmt.Errorf("jwt providers: %w", err)
		}
		v.Start(ctx)
		t.jwt = v
	}
	for _, p := range cfg.Auth.OAuth2 {
		in, err := oauth2.NewIntrospector(p, oauth2.Options{HTTPClient: opts.HTTPClient, Getenv: opts.Getenv, Logger: opts.Logger})
		if err != nil {
			return fmt.Errorf("oauth2 provider %s: %w", p.Name, err)
		}
		t.oauth2 = append(t.oauth2, in)
	}
	return nil
}

// close stops the table's background work.
func (t *Table) close() {
	t.cancel()
	if t.jwt != nil {
		t.jwt.Close()
	}
}
