package extauthz

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/tollgate/tollgate/extauthz/jwt"
	"github.com/tollgate/tollgate/extauthz/oauth2"
	"github.com/tollgate/tollgate/policy/ir"
)

// Table is what Check needs of one policy version. It is immutable; its
// JWKS caches refresh in the background until close.
type Table struct {
	jwt *jwt.Verifier
	// oauth2 providers; their token prefixes are prefix-free (and set
	// when there are several), so a token matches one at most.
	oauth2       []*oauth2.Introspector
	keyHeader    string // "" when API keys are not configured
	keyNamespace string // "" keeps API-key consumers bare
	identity     ir.IdentityHeaders
	// droppedRolesLogged holds the providers whose invalid roles were
	// logged, so each is logged once per policy version.
	droppedRolesLogged sync.Map
	// strip lists the identity header names, precomputed for responses.
	strip []string
	// keyRecords: an admitted opaque API key's answer carries its record
	// (envoymod.MetadataKeyRecord) for the Envoy module to learn; a
	// service's table, never a Local's.
	keyRecords bool
	cancel     context.CancelFunc
}

// newTable builds the table of cfg and starts its JWKS refreshes. With
// storeless (a Local, which decides JWT routes only), API keys may be
// configured without a key store: the key header still makes a request
// carrying a key and a token ambiguous, and a key itself is refused.
func newTable(parent context.Context, cfg *ir.Config, opts Options, storeless bool) (*Table, error) {
	ctx, cancel := context.WithCancel(parent)
	t := &Table{identity: cfg.Auth.IdentityHeaders, strip: cfg.Auth.IdentityHeaders.Names(), cancel: cancel,
		keyRecords: !storeless}
	if cfg.Auth.APIKeys != nil {
		if opts.Keys == nil && !storeless {
			cancel()
			return nil, fmt.Errorf("the policy configures API keys but the service has no key store")
		}
		t.keyHeader = cfg.Auth.APIKeys.Header
		t.keyNamespace = cfg.Auth.APIKeys.Namespace
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
			Getenv: opts.Getenv, Metrics: opts.Metrics.jwtHooks(), KeysWithdrawn: opts.KeysWithdrawn, JWKS: opts.JWKS})
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
	return checkPrefixes(t.oauth2)
}

// checkPrefixes refuses OAuth2 providers a token could match several of
// (policy validation refuses them first): with more than one provider,
// each needs a prefix, and none may start another.
func checkPrefixes(ins []*oauth2.Introspector) error {
	if len(ins) < 2 {
		return nil
	}
	for i, a := range ins {
		if a.TokenPrefix() == "" {
			return fmt.Errorf("oauth2 provider %s: several oauth2 providers need a tokenPrefix each", a.Name())
		}
		for _, b := range ins[i+1:] {
			if strings.HasPrefix(a.TokenPrefix(), b.TokenPrefix()) || strings.HasPrefix(b.TokenPrefix(), a.TokenPrefix()) {
				return fmt.Errorf("oauth2 providers %s and %s: token prefixes %q and %q overlap",
					a.Name(), b.Name(), a.TokenPrefix(), b.TokenPrefix())
			}
		}
	}
	return nil
}

// introspector returns the one OAuth2 provider that accepts tok, or nil.
func (t *Table) introspector(tok string) *oauth2.Introspector {
	for _, in := range t.oauth2 {
		if in.Accepts(tok) {
			return in
		}
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
