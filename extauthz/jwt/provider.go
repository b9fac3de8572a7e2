package jwt

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v4/jwa"

	"github.com/tollgate/tollgate/policy/ir"
)

const (
	// defaultUserIDClaim is used when ClaimMap.UserID is empty.
	defaultUserIDClaim = "sub"
	// defaultMaxLifetime is used when a provider's MaxLifetime is zero.
	defaultMaxLifetime = 24 * time.Hour
)

// keyRequirement is what a signature algorithm needs of its key.
type keyRequirement struct {
	kty      string // JWK key type; "" for HMAC
	crv      string // curve, for EC and OKP keys
	hmac     bool   // verified with the configured shared secret only
	minBytes int    // shortest acceptable HMAC secret (RFC 7518 §3.2)
	sigAlg   func() jwa.SignatureAlgorithm
}

// algorithmKey returns the key requirement of a supported algorithm.
func algorithmKey(alg string) (keyRequirement, bool) {
	switch alg {
	case "RS256":
		return keyRequirement{kty: "RSA", sigAlg: jwa.RS256}, true
	case "RS384":
		return keyRequirement{kty: "RSA", sigAlg: jwa.RS384}, true
	case "RS512":
		return keyRequirement{kty: "RSA", sigAlg: jwa.RS512}, true
	case "PS256":
		return keyRequirement{kty: "RSA", sigAlg: jwa.PS256}, true
	case "PS384":
		return keyRequirement{kty: "RSA", sigAlg: jwa.PS384}, true
	case "PS512":
		return keyRequirement{kty: "RSA", sigAlg: jwa.PS512}, true
	case "ES256":
		return keyRequirement{kty: "EC", crv: "P-256", sigAlg: jwa.ES256}, true
	case "ES384":
		return keyRequirement{kty: "EC", crv: "P-384", sigAlg: jwa.ES384}, true
	case "ES512":
		return keyRequirement{kty: "EC", crv: "P-521", sigAlg: jwa.ES512}, true
	case "EdDSA":
		return keyRequirement{kty: "OKP", crv: "Ed25519", sigAlg: jwa.EdDSA}, true
	case "HS256":
		return keyRequirement{hmac: true, minBytes: 32, sigAlg: jwa.HS256}, true
	case "HS384":
		return keyRequirement{hmac: true, minBytes: 48, sigAlg: jwa.HS384}, true
	case "HS512":
		return keyRequirement{hmac: true, minBytes: 64, sigAlg: jwa.HS512}, true
	}
	return keyRequirement{}, false
}

// provider is one configured issuer, ready for verification.
type provider struct {
	name        string
	namespace   string
	issuer      string
	audiences   []string
	algs        map[string]jwa.SignatureAlgorithm // the allow-list
	secret      []byte                            // HMAC secret; nil without HS*
	skew        time.Duration
	maxLifetime time.Duration
	claims      ir.ClaimMap // UserID defaulted

	// refresh is the time between two fetches of the remote JWKS and the
	// longest a verification stays cached (JWKSRefresh, else the
	// verifier's RefreshInterval).
	refresh time.Duration

	keys   atomic.Pointer[keySet] // nil until a JWKS is loaded
	remote *remoteJWKS            // nil for an inline JWKS or HS* only
}

// newProvider validates cfg and builds its provider; an inline JWKS is
// parsed here. Errors never include the secret.
func newProvider(cfg ir.JWTProvider, getenv func(string) string) (*provider, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("issuer is empty")
	}
	if cfg.ClockSkew < 0 || cfg.MaxLifetime < 0 || cfg.JWKSRefresh < 0 {
		return nil, errors.New("clockSkew, maxLifetime and jwksRefresh must not be negative")
	}
	p := &provider{
		name: cfg.Name, namespace: cmp.Or(cfg.Namespace, cfg.Name), issuer: cfg.Issuer, audiences: cfg.Audiences,
		skew: cfg.ClockSkew, maxLifetime: cfg.MaxLifetime, claims: cfg.Claims,
	}
	if p.maxLifetime == 0 {
		p.maxLifetime = defaultMaxLifetime
	}
	if p.claims.UserID == "" {
		p.claims.UserID = defaultUserIDClaim
	}
	asymmetric, err := p.setAlgorithms(cfg, getenv)
	if err != nil {
		return nil, err
	}
	if err := p.setKeys(cfg, asymmetric); err != nil {
		return nil, err
	}
	return p, nil
}

// setAlgorithms builds the allow-list and loads the HMAC secret when an
// HS* algorithm is allowed. It reports whether an asymmetric algorithm is.
func (p *provider) setAlgorithms(cfg ir.JWTProvider, getenv func(string) string) (bool, error) {
	if len(cfg.Algorithms) == 0 {
		return false, errors.New("no algorithms allowed")
	}
	p.algs = make(map[string]jwa.SignatureAlgorithm, len(cfg.Algorithms))
	asymmetric, minSecret := false, 0
	for _, alg := range cfg.Algorithms {
		req, ok := algorithmKey(alg)
		if !ok {
			return false, fmt.Errorf("algorithm %q is not supported", alg)
		}
		p.algs[alg] = req.sigAlg()
		asymmetric = asymmetric || !req.hmac
		minSecret = max(minSecret, req.minBytes)
	}
	if minSecret == 0 {
		return asymmetric, nil
	}
	if cfg.HMACSecretEnv == "" {
		return false, errors.New("HS* algorithms need hmacSecretEnv")
	}
	secret := getenv(cfg.HMACSecretEnv)
	if len(secret) < minSecret {
		return false, fmt.Errorf("environment variable %s must hold an HMAC secret of at least %d bytes", cfg.HMACSecretEnv, minSecret)
	}
	p.secret = []byte(secret)
	return asymmetric, nil
}

// setKeys parses an inline JWKS or records the JWKS URI.
func (p *provider) setKeys(cfg ir.JWTProvider, asymmetric bool) error {
	switch {
	case cfg.JWKS != "" && cfg.JWKSURI != "":
		return errors.New("jwks and jwksUri are exclusive")
	case cfg.JWKS != "":
		ks, err := parseKeySet([]byte(cfg.JWKS), p.algs)
		if err != nil {
			return fmt.Errorf("inline jwks: %w", err)
		}
		p.keys.Store(ks)
	case cfg.JWKSURI != "":
		u, err := url.Parse(cfg.JWKSURI)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return errors.New("jwksUri must be an absolute http(s) URL")
		}
		p.remote = &remoteJWKS{uri: cfg.JWKSURI}
	case asymmetric:
		return fmt.Errorf("asymmetric algorithms (%s) need jwks or jwksUri", strings.Join(cfg.Algorithms, ", "))
	}
	return nil
}
