package translator

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	dmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/dynamic_modules/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/extauthz/envoymod"
	"github.com/tollgate/tollgate/policy/ir"
)

// Signed API keys decided by the module. With Options.EnvoyModule, the
// module decides the native key routes (API keys alone) and the native
// mixed routes (JWTs and API keys) as well as the native JWT routes: a JWT
// or a signed key is decided in the module (envoymod.Keys), an opaque key
// passes it undecided to the ext_authz filter, which skips every request
// the module admitted (the native marker, nativeMarkerMatcher). No
// jwt_authn, identity script, header_to_metadata or rbac runs then.
//
// What a signed key's claims cannot say (a revocation, a changed tier,
// roles or expiry) is the key store's exceptions table, which changes on
// its own: the module's filter config is served over ECDS (KeyIdentity
// with a module), and every change of the table or of its freshness
// serves a new config, so Envoy rebuilds that one filter config (the
// module keeps the verified credentials the change leaves valid: see
// envoymod.Keys) without touching a listener or a route table. The
// filter is named after a hash of its config without the table
// (moduleKeysFilterPrefix): a policy that changes the config
// renames it, so a new listener never starts with the previous policy's
// ECDS config (see JWTAuthnFilterPrefix), and the routes' per-route
// configs are keyed by that name.
//
// The limits of such a route, when the module takes them
// (moduleTakesLimits), are charged by the module for the credentials it
// decides and, for the opaque keys it passes, by the module's charger
// after the ext_authz filter (jwtmodule_charge.go): one bucket table, one
// RLQS stream, and Redis the shared account.
const moduleKeysFilterPrefix = moduleFilterName + "."

// moduleKeysFilterName names the module filter whose config (base, the
// FilterConfig JSON without exceptions) is served over ECDS.
func moduleKeysFilterName(base []byte) string {
	sum := sha256.Sum256(base)
	return moduleKeysFilterPrefix + hex.EncodeToString(sum[:6])
}

// moduleKeys returns the module's signed-key settings for cfg, whose
// signer publishes jwks ("" with no signer: nil, the module decides no
// keys).
func moduleKeys(cfg *ir.Config, jwks string) (*envoymod.Keys, error) {
	if jwks == "" || cfg.Auth.APIKeys == nil {
		return nil, nil
	}
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Crv string `json:"crv"`
			X   string `json:"x"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(jwks), &set); err != nil {
		return nil, fmt.Errorf("api key signer's JWKS: %w", err)
	}
	if len(set.Keys) != 1 || set.Keys[0].Kty != "OKP" || set.Keys[0].Crv != "Ed25519" || set.Keys[0].X == "" {
		return nil, fmt.Errorf("api key signer's JWKS: want one Ed25519 key")
	}
	return &envoymod.Keys{PublicKey: set.Keys[0].X, Namespace: cfg.Auth.APIKeys.Namespace}, nil
}

// withExceptions returns the module's FilterConfig JSON enforcing x.
func (m *jwtModule) withExceptions(x KeyExceptions) (string, error) {
	fc := m.fc
	keys := *m.fc.Keys
	keys.Fresh, keys.Epoch = x.Loaded && x.Fresh, x.Epoch
	keys.Exceptions = make([]envoymod.KeyException, 0, len(x.Items))
	for _, it := range sortedExceptions(x.Items) {
		e := envoymod.KeyException{ID: it.ID, Revoked: it.Revoked, Tier: it.Tier, Roles: it.Roles}
		if !it.ExpiresAt.IsZero() {
			e.ExpiresAt = it.ExpiresAt.Unix()
		}
		keys.Exceptions = append(keys.Exceptions, e)
	}
	fc.Keys = &keys
	b, err := json.Marshal(fc)
	if err != nil {
		return "", fmt.Errorf("envoy module config: %w", err)
	}
	return string(b), nil
}

// extension returns the module's ECDS resource enforcing x. The same x
// always gives byte-identical resources.
func (m *jwtModule) extension(x KeyExceptions) (*corev3.TypedExtensionConfig, error) {
	f, err := m.filterConfig(x)
	if err != nil {
		return nil, err
	}
	return envoy.ExtensionConfig(m.name, f)
}

// discoveredFilter returns the module filter taking its config from ECDS;
// until the first config arrives it refuses every signed key (a table not
// loaded) and decides JWTs as usual.
func (m *jwtModule) discoveredFilter() (*hcmv3.HttpFilter, error) {
	f, err := m.filterConfig(KeyExceptions{})
	if err != nil {
		return nil, err
	}
	return envoy.DiscoveredHTTPFilter(m.name, f)
}

// filterConfig is the module's filter configuration enforcing x.
func (m *jwtModule) filterConfig(x KeyExceptions) (*dmfilterv3.DynamicModuleFilter, error) {
	c, err := m.withExceptions(x)
	if err != nil {
		return nil, err
	}
	f, err := envoy.DynamicModuleFilterConfig(m.lib, c)
	if err != nil {
		return nil, fmt.Errorf("envoy module config: %w", err)
	}
	return f, nil
}

// decidesKeys reports whether the module decides signed keys.
func (m *jwtModule) decidesKeys() bool { return m != nil && m.fc.Keys != nil }
