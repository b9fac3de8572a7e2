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
// It imports only the IR and extauthz/contract, so both sides can depend
// on it.
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
	// DefaultMaxParked bounds the requests one filter configuration holds
	// while their provider's JWKS is fetched (FilterConfig.MaxParked).
	DefaultMaxParked = 1000
)

// FilterConfig is the DynamicModuleFilter's filter_config (JSON, in a
// google.protobuf.StringValue): what the module needs of one policy
// version, for all of a listener's routes.
type FilterConfig struct {
	// Contract is the ContractID of the control plane that wrote the
	// configuration: the module refuses one that is not its own
	// (contract.go), so Envoy rejects it and keeps the last one it
	// accepted.
	Contract string `json:"contract"`
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
	// MaxParked bounds the requests the module holds (parks) while the
	// JWKS fetch their token needs is under way (an unknown kid, or a
	// provider whose keys are not loaded yet); each is decided when the
	// fetch ends, at most 5 s later. Beyond it such a request is refused
	// at once with 503 jwks_unavailable. 0 means DefaultMaxParked; a
	// negative value parks nothing.
	MaxParked int `json:"maxParked,omitempty"`
	// Quota is set when a route of the listener takes its limits in the
	// module (RouteConfig.Limits).
	Quota *Quota `json:"quota,omitempty"`
	// Charge makes this instance the charger, placed after the ext_authz
	// filter (the translator adds it where the module passes opaque API
	// keys on routes whose limits it holds; Quota is then required): it
	// decides nothing and keeps no table. On a route with a RouteConfig
	// whose Limits are set,
	//   - a request carrying the native marker (NativeMarkerKey: the first
	//     instance decided it, and charged it) passes untouched;
	//   - any other request (one the ext_authz filter admitted) is charged
	//     to the route's bucket of the identity the ext_authz filter wrote
	//     in its metadata namespace (ChargeMetadataNamespace: "consumer",
	//     "tier"; written by Envoy from the Check response, never from the
	//     client), in the same process-wide bucket table as the first
	//     instance, and refused with the bucket's 429 as the first
	//     instance refuses its own; without a consumer there it takes the
	//     Unidentified bucket, which refuses: a limited route never passes
	//     a request unlimited.
	// A route without Limits passes untouched. Its RouteConfig needs only
	// Extensions["route"] and Limits.
	Charge bool `json:"charge,omitempty"`
	// Keys is set when the module decides signed API keys (see Keys).
	Keys *Keys `json:"keys,omitempty"`
}

// Keys is FilterConfig's signed API keys ("tg." + an EdDSA compact JWS,
// extauthz/apikey): with it, on a route whose requirement accepts apiKey,
//   - a request whose credential is an API key in signed form is decided
//     by the module: the signature verified with PublicKey, the claims
//     checked as the key store checks them, refused when not Fresh (503
//     key_store_unavailable), when its ep claim is not Epoch (401
//     unknown_key), when its exp passed (401 expired_key), when an
//     exception revokes it (401 revoked_key) or its current expiry passed
//     (401 expired_key); an exception's tier and roles replace the
//     signed ones; the bodies and headers are the ext_authz service's;
//   - a request whose credential is an API key in any other form (an
//     opaque "tg_" key) passes the module undecided and untouched, to the
//     ext_authz filter after it, unless the module learned the key: when
//     that filter admits such a key, the ext_authz service's answer
//     carries the key's record (MetadataKeyRecord, a KeyRecord), which the
//     module keeps, when the record was read in Epoch, for at most
//     apikey.LearnedRecordTTL (and its configuration's CacheMaxTTL) in a
//     table shared by the lineage; the key's later requests are then decided by the
//     module like a signed key's claims: the key's exception, if any, is
//     its current state (revoked: 401 revoked_key; else its tier, roles
//     and expiry), a table that is not Fresh or of another Epoch passes
//     the key to the ext_authz filter again;
//   - every request the module admits carries the native marker
//     (NativeMarkerKey in the ext_authz metadata namespace, the method as
//     value), which switches that ext_authz filter off for it.
//
// The control plane serves the filter configuration over ECDS and serves
// a new one whenever the exceptions table or its freshness changes; the
// module then builds a new configuration, so a revocation reaches every
// Envoy with that push. Its verified-credential table starts with the
// predecessor's entries that the change leaves valid (the module's
// lineage.go): every token, and the keys whose exception is unchanged,
// both tables fresh and of the same Epoch; a configuration that is not
// Fresh serves no key from it.
type Keys struct {
	// PublicKey is the signer's Ed25519 public key, unpadded base64url
	// (the "x" of its JWKS).
	PublicKey string `json:"publicKey"`
	// Namespace is the policy's apiKeys.namespace ("" for none): a key's
	// consumer is "<namespace>:<sub>".
	Namespace string `json:"namespace,omitempty"`
	// Fresh is false until the control plane read the exceptions table,
	// and while it cannot refresh it: every signed key is then refused.
	Fresh bool `json:"fresh"`
	// Epoch is the key store's epoch; "" refuses every signed key.
	Epoch string `json:"epoch"`
	// Exceptions are the signed keys whose claims no longer hold.
	Exceptions []KeyException `json:"exceptions,omitempty"`
}

// KeyException is one signed key revoked or updated since it was signed.
type KeyException struct {
	// ID is the key's id (its jti).
	ID      string `json:"id"`
	Revoked bool   `json:"revoked,omitempty"`
	// Tier and Roles replace the signed ones.
	Tier  string   `json:"tier,omitempty"`
	Roles []string `json:"roles,omitempty"`
	// ExpiresAt is the key's current expiry in Unix seconds (0: none
	// besides the signed exp).
	ExpiresAt int64 `json:"exp,omitempty"`
}

// MetadataKeyRecord is the ext_authz-namespace metadata key under which
// the ext_authz service's answer admitting an opaque API key carries the
// key's record (KeyRecord JSON), for the module to learn (Keys). Envoy
// writes it from the Check response only; the module never writes it.
const MetadataKeyRecord = "key_record"

// MaxKeyRecordLen bounds a KeyRecord's JSON: the module refuses to learn
// a longer one.
const MaxKeyRecordLen = 4096

// KeyRecord is an opaque API key's record as the ext_authz service read
// it from the key store (apikey.Record): what the module needs to decide
// the key's later requests as the service decides them.
type KeyRecord struct {
	// ID is the key's id: the module learns the record only for a key
	// whose own id (apikey.Parse) it is.
	ID       string   `json:"id"`
	Consumer string   `json:"consumer"`
	Tenant   string   `json:"tenant,omitempty"`
	Tier     string   `json:"tier,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	// ExpiresAt is the key's expiry (zero: none), as stored.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	// Epoch is the key-store epoch the record was read in
	// (apikey.Record.Epoch): the module learns it only in a configuration
	// of that epoch (Keys.Epoch), so a record a replica cached before the
	// store lost its data is never learned after.
	Epoch string `json:"epoch"`
}

// NativeMarkerKey is the ext_authz-namespace metadata key that marks a
// request decided in Envoy (its value the method): the ext_authz filter
// skips a request that carries it (filter_enabled_metadata). The ext_authz
// service never writes it.
const NativeMarkerKey = "native"

// ChargeMetadataNamespace is the dynamic-metadata namespace the charger
// (FilterConfig.Charge) reads the identity and the native marker from:
// the ext_authz filter's, where it writes the Check response's metadata
// and the module's first instance writes its own.
const ChargeMetadataNamespace = "envoy.filters.http.ext_authz"

// RouteConfig is the DynamicModuleFilterPerRoute's filter_config (JSON)
// of a route the module decides.
type RouteConfig struct {
	// Contract is as FilterConfig's: the module refuses a route
	// configuration of another contract (route configurations reach Envoy
	// over RDS, apart from the filter's listener or ECDS resource).
	Contract string `json:"contract"`
	// Extensions are the route's requirement, exactly the context
	// extensions the ext_authz filter would send for it (contract.Key*).
	Extensions map[string]string `json:"extensions"`
	// Limits are the route's rate limits when the module enforces them
	// (FilterConfig.Quota is then set); nil: the route has none, or the
	// filters after the module enforce them.
	Limits *RouteLimits `json:"limits,omitempty"`
	// CheckLimits: the ext_authz Check takes the route's limits for the
	// requests the module passes (rateLimits.mode exact), so the module
	// decides no opaque API key here, learned or not (Keys): each one
	// keeps its one Check, which takes its identity and its limit
	// together, exactly.
	CheckLimits bool `json:"checkLimits,omitempty"`
}

// Quota is FilterConfig's rate-limit settings, set when some of the
// listener's module routes take their limits in the module (RouteConfig.
// Limits): the module then enforces those limits itself, with no filter
// after it and no call per request, and speaks RLQS
// (envoy.service.rate_limit_quota.v3) to Tollgate's quota server like
// Envoy's rate_limit_quota filter would: one stream per Envoy process,
// a usage report at once for a new bucket then every ReportInterval,
// the server's token-bucket assignments enforced locally.
//
// Per request on a limited route (C, next to the identity), a bucket —
// keyed by LimitBucket.ID and the consumer — admits when every one of its
// limits admits locally (a GCRA per limit of the full limit: one Envoy
// alone never exceeds a limit, as the local_ratelimit backstop of the
// filter path) and its assignment admits:
//   - before the first assignment: no assignment term (the local limits
//     bound it, as ALLOW_ALL under the backstop);
//   - a token bucket assignment: one token per request; a bucket replacing
//     a blanket rule starts full, a changed bucket keeps its fill ratio
//     (Envoy 1.40's behaviour, which the server's grants assume);
//   - ALLOW_ALL / DENY_ALL blanket rules as the server sends them;
//   - an assignment past its time to live: refused when FailClosed, else
//     as before the first assignment.
//
// Reports carry exactly what the module admitted and refused (a request
// a local limit refused is reported refused), so the server never needs
// to cut a report by the backstop's bound.
type Quota struct {
	// Address is host:port of the quota (RLQS) server as this Envoy host
	// reaches it, the rate-limit service's address; several
	// comma-separated: replicas, tried in turn when a stream fails.
	Address string `json:"address"`
	// Domain is the RLQS domain (ir.RateLimitQuotaDomain).
	Domain string `json:"domain"`
	// FailClosed is rateLimits.failureMode closed: an expired assignment
	// refuses; otherwise (open, local) the local limits alone apply.
	FailClosed bool `json:"failClosed,omitempty"`
	// ReportInterval is how often every bucket is reported; 0 means
	// DefaultReportInterval.
	ReportInterval time.Duration `json:"reportInterval,omitempty"`
}

// DefaultReportInterval is the quota server's expected report cadence
// (Envoy 1.40's fixed 5 s).
const DefaultReportInterval = 5 * time.Second

// Bounds of RouteLimits the module holds (its C route block refuses
// more, and Envoy then rejects the whole route configuration): the
// translator leaves a route beyond them to the filter path.
const (
	// MaxBucketLimits is the most Limits of one LimitBucket.
	MaxBucketLimits = 8
	// MaxDenyHeaders is the most DenyHeaders of one LimitBucket.
	MaxDenyHeaders = 16
	// MaxTiers is the most Tiers of one RouteLimits.
	MaxTiers = 1024
)

// RouteLimits are a route's limits as the module enforces them: the
// bucket of the caller's tier (the identity's "tier" metadata; a tier not
// in Tiers, or none, takes Default, as exact mode does), keyed by the
// identity's "consumer" metadata. A request without a consumer is refused
// with Unidentified's denial: a limited route never lets a request
// through unlimited.
type RouteLimits struct {
	Tiers        map[string]LimitBucket `json:"tiers,omitempty"`
	Default      LimitBucket            `json:"default"`
	Unidentified LimitBucket            `json:"unidentified"`
}

// LimitBucket is one bucket of limits of a route.
type LimitBucket struct {
	// ID is the RLQS bucket id's ir.BucketKeyBucket value
	// (ir.BucketStatic); the module adds ir.BucketKeyConsumer with the
	// consumer, exactly the id the filter path's matcher builds.
	ID string `json:"id"`
	// Unlimited buckets admit everything and are neither counted nor
	// reported (an unlimited tier without route limits).
	Unlimited bool `json:"unlimited,omitempty"`
	// Deny refuses every request (the unidentified bucket).
	Deny bool `json:"deny,omitempty"`
	// Limits are every limit of the bucket (the tier's then the route's),
	// each enforced locally in full.
	Limits []ir.Limit `json:"limits,omitempty"`
	// ReportedLimit is the index in Limits of the limit whose local state
	// an admitted response reports in X-RateLimit-Limit, -Remaining and
	// -Reset (draft 03, replacing any upstream copy), the one the filter
	// path's backstop reports (xds/translator reportedLimit): of the
	// limits whose bucket refills from empty soonest, the smallest fill
	// rate, the first among equals. 0 (the first) when omitted; it must
	// name one of Limits when there are some.
	ReportedLimit int `json:"reportedLimit,omitempty"`
	// IETF, when set (rateLimits.ietfHeaders), are the IETF RateLimit
	// headers an admitted response carries besides the X-RateLimit-*, as
	// the filter path's header_mutation filter writes them; nil: none. It
	// needs Limits (the numbers are the reported limit's).
	IETF *IETFHeaders `json:"ietf,omitempty"`
	// DenyBody and DenyHeaders are the static 429 of the bucket, the
	// filter path's (Retry-After is the binding limit's emission interval
	// rounded up: see xds/translator quotaDenial).
	DenyBody    string   `json:"denyBody"`
	DenyHeaders []Header `json:"denyHeaders"`
}

// IETFHeaders are a bucket's RateLimit-Policy and RateLimit
// (draft-ietf-httpapi-ratelimit-headers) on admitted responses, computed
// by the translator (xds/translator headerSet): the module writes Policy
// as is, and RateLimit as RateLimitR, the X-RateLimit-Remaining value,
// RateLimitT, the X-RateLimit-Reset value (envoy.RateLimitHeaderSet.
// RateLimitParts); each replaces any upstream value of the same name. A
// module built before this field would ignore it (encoding/json) and
// write no IETF header; a module refuses a configuration of another
// contract (ContractID), so this cannot happen with modules that check it.
type IETFHeaders struct {
	Policy     string `json:"policy"`
	RateLimitR string `json:"rateLimitR"`
	RateLimitT string `json:"rateLimitT"`
}

// Header is one response header of a denial.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}
