package translator

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// The jwt_authn filter of a gateway with a remote JWKS is served over ECDS
// (JWTAuthn), so that the control plane can empty its verified-token cache.
const (
	// JWTAuthnFilterPrefix + a hash of the filter's base config names the
	// jwt_authn filter and its ECDS resource when the filter is served over
	// ECDS. A policy that changes the config changes the name, so a new
	// listener never starts with the previous policy's ECDS config (Envoy
	// gives a new filter the last config its subscription received, which
	// for a renamed filter is none: the listener's default config, this
	// policy's). Per-route configs are keyed by this name (nativeJWT's
	// jwtAuthnName): Envoy 1.40 finds a discovered filter's per-route
	// config by the filter's name only (measured: keyed by
	// envoy.JwtAuthnName, the route ran without a requirement, so
	// jwt_authn verified nothing). The verified payload stays in the
	// metadata namespace envoy.JwtAuthnName, which jwt_authn fixes.
	JWTAuthnFilterPrefix = "tollgate.jwt_authn."
	// jwksEpochRequirement + the epoch is the requirement the epoch adds to
	// the served config: no route names it, so it changes what Envoy
	// compares (a new config, a new token cache) and nothing it enforces.
	jwksEpochRequirement = "tollgate_jwks_epoch_"
)

// JWTAuthn builds the jwt_authn filter of one gateway whose providers
// include a remote JWKS. Envoy keeps jwt_authn's verified tokens across
// JWKS refreshes until their exp, so a token verified before its signing
// key was withdrawn would stay admitted. Envoy builds the token caches
// (JwksCache) with each filter config, so the control plane, when it sees a
// key withdrawn, serves a config that differs only by its JWKS epoch
// (Extension): Envoy swaps that one filter's config in place (no listener
// drain), new requests (on new and existing connections) get empty caches
// and a JWKS fetched at once; requests already under way finish with the
// config they started with.
type JWTAuthn struct {
	name string
	base *jwtauthnv3.JwtAuthentication
}

// newJWTAuthn returns the ECDS-served jwt_authn filter of cfg, whose
// remote JWKS it fetches without holding a listener back (fast_listener).
//
// jwt_authn's async fetch without fast_listener adds an init target to the
// listener's init manager when the config is built. A config served over
// ECDS is built when it arrives: on a warming listener, it replaces the
// default config, whose target is then destroyed unready (measured: the
// new listener warmed for good, TestJWTNativeListenerUpdate); on a warm
// listener (every later epoch, and the default config put back when the
// resource is removed) the target joins an initialised manager, which
// Envoy treats as a bug (an assertion, fatal in some builds). With
// fast_listener the fetch starts when the config is built and a request
// that comes before it ends fetches the JWKS on demand (it waits, it is
// not refused).
func newJWTAuthn(cfg *jwtauthnv3.JwtAuthentication) (*JWTAuthn, error) {
	base := proto.Clone(cfg).(*jwtauthnv3.JwtAuthentication)
	for _, p := range base.GetProviders() {
		if r := p.GetRemoteJwks(); r != nil && r.GetAsyncFetch() != nil {
			r.AsyncFetch.FastListener = true
		}
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(base)
	if err != nil {
		return nil, fmt.Errorf("jwt_authn config: %w", err)
	}
	sum := sha256.Sum256(b)
	return &JWTAuthn{name: JWTAuthnFilterPrefix + hex.EncodeToString(sum[:6]), base: base}, nil
}

// Name is the filter's name, which is its ECDS resource's.
func (j *JWTAuthn) Name() string { return j.name }

// Extension returns the ECDS resource of the filter at JWKS epoch epoch:
// the base config with the epoch's unused requirement. Envoy builds it
// with new token caches and fetches its JWKS at once. The same epoch
// always gives byte-identical resources.
func (j *JWTAuthn) Extension(epoch uint64) (*corev3.TypedExtensionConfig, error) {
	c := proto.Clone(j.base).(*jwtauthnv3.JwtAuthentication)
	if c.RequirementMap == nil {
		c.RequirementMap = map[string]*jwtauthnv3.JwtRequirement{}
	}
	c.RequirementMap[jwksEpochRequirement+strconv.FormatUint(epoch, 10)] = &jwtauthnv3.JwtRequirement{
		RequiresType: &jwtauthnv3.JwtRequirement_AllowMissing{AllowMissing: &emptypb.Empty{}}}
	return envoy.ExtensionConfig(j.name, c)
}

// filter returns the HTTP filter taking its config from ECDS; until the
// first config arrives it runs the base config.
func (j *JWTAuthn) filter() (*hcmv3.HttpFilter, error) {
	return envoy.DiscoveredHTTPFilter(j.name, j.base)
}

// hasRemoteJWKS reports whether a provider of cfg fetches a remote JWKS.
func hasRemoteJWKS(cfg *jwtauthnv3.JwtAuthentication) bool {
	for _, p := range cfg.GetProviders() {
		if p.GetRemoteJwks() != nil {
			return true
		}
	}
	return false
}

// RemoteJWKSProviders returns the providers of cfg whose remote JWKS a
// gateway's jwt_authn fetches when it decides routes: those with a jwksUri,
// or none when a provider keeps every JWT route off the native path
// (providerNativeReason). The control plane watches their JWKS for
// withdrawn keys (internal/jwkswatch).
func RemoteJWKSProviders(cfg *ir.Config) []ir.JWTProvider {
	var out []ir.JWTProvider
	for _, p := range cfg.Auth.JWT {
		if providerNativeReason(p) != "" {
			return nil
		}
		if p.JWKSURI != "" {
			out = append(out, p)
		}
	}
	return out
}
