// Package envoymod is the contract between Tollgate's xDS translator and
// Tollgate's Envoy dynamic module (directory envoymodule, built as a
// c-shared library): the names Envoy's configuration uses for it and the
// JSON of its filter and per-route configurations.
//
// The module decides JWT routes inside Envoy with the ext_authz service's
// own decision code (extauthz.Local): a verified token's identity is kept
// in a bounded table in C until the token's exp, so a repeated token is
// decided without entering Go. A route the module decides carries a
// RouteConfig; a request on a route without one passes the module
// untouched (as jwt_authn without a requirement), so the translator gives
// one to every route it hands to the module.
//
// It imports only the IR, so both sides can depend on it.
package envoymod

import (
	"time"

	"github.com/tollgate/tollgate/policy/ir"
)

// FilterName is the DynamicModuleFilter's filter_name (and per-route
// filter_name): the module refuses any other.
const FilterName = "tollgate_identity"

// LibraryName is the module's library file name.
const LibraryName = "libtollgate_envoy.so"

// Defaults of FilterConfig's table bounds.
const (
	DefaultCacheSize   = 10000
	DefaultCacheMaxTTL = 5 * time.Minute
)

// FilterConfig is the DynamicModuleFilter's filter_config (JSON, in a
// google.protobuf.StringValue): what the module needs of one policy
// version, for all of a listener's routes.
type FilterConfig struct {
	// JWT holds the policy's JWT providers, as the ext_authz service gets
	// them.
	JWT []ir.JWTProvider `json:"jwt"`
	// IdentityHeaders are the header names the module sets from a verified
	// token (defaults filled by the translator).
	IdentityHeaders ir.IdentityHeaders `json:"identityHeaders"`
	// KeyHeader is the policy's API-key header ("" without API keys): a
	// request carrying one besides a token is ambiguous and refused, and
	// it is removed with the token unless the route forwards credentials.
	KeyHeader string `json:"keyHeader,omitempty"`
	// CacheSize bounds the C table of verified tokens (entries); 0 means
	// DefaultCacheSize.
	CacheSize int `json:"cacheSize,omitempty"`
	// CacheMaxTTL is the longest a verified token is served from the table
	// before it is verified again, whatever its exp; 0 means
	// DefaultCacheMaxTTL.
	CacheMaxTTL time.Duration `json:"cacheMaxTtl,omitempty"`
}

// RouteConfig is the DynamicModuleFilterPerRoute's filter_config (JSON)
// of a route the module decides.
type RouteConfig struct {
	// Extensions are the route's requirement, exactly the context
	// extensions the ext_authz filter would send for it (contract.Key*).
	Extensions map[string]string `json:"extensions"`
}
