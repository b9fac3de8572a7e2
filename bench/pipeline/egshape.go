package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tollgate/tollgate/internal/loadgen"
)

// egBootstrap is the Envoy Gateway shape written by hand: jwt_authn (same
// issuer, audience and inline JWKS as the policy, the token stripped, the
// same 10,000-token verification cache as the translator gives) writes
// sub to x-user-id, and the ratelimit filter asks envoyproxy/ratelimit
// over RLS with descriptors (route, consumer), as Envoy Gateway does for a
// per-user limit. Placeholders: admin port, listener port, issuer,
// audience, JWKS, upstream port, RLS port.
const egBootstrap = `admin: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
static_resources:
  listeners:
  - name: http
    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: http
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: /jwt}
                route:
                  cluster: up
                  rate_limits:
                  - actions:
                    - generic_key: {descriptor_key: route, descriptor_value: jwt}
                    - request_headers: {header_name: x-user-id, descriptor_key: consumer}
          http_filters:
          - name: envoy.filters.http.jwt_authn
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
              providers:
                corp:
                  issuer: %q
                  audiences: [%q]
                  local_jwks: {inline_string: '%s'}
                  forward: false
                  claim_to_headers: [{header_name: x-user-id, claim_name: sub}]
                  jwt_cache_config: {jwt_cache_size: 10000}
              rules:
              - match: {prefix: /jwt}
                requires: {provider_name: corp}
          - name: envoy.filters.http.ratelimit
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit
              domain: bench
              timeout: 1s
              enable_x_ratelimit_headers: DRAFT_VERSION_03
              rate_limit_service:
                transport_api_version: V3
                grpc_service: {envoy_grpc: {cluster_name: rls}}
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: up
    type: STATIC
    load_assignment: {cluster_name: up, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}}]}]}
  - name: rls
    type: STATIC
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment: {cluster_name: rls, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}}]}]}
`

// egConfig is envoyproxy/ratelimit's domain: per consumer of route jwt,
// the policy's tier (100,000,000 per minute).
const egConfig = `domain: bench
descriptors:
  - key: route
    value: jwt
    descriptors:
      - key: consumer
        rate_limit: {unit: minute, requests_per_unit: 100000000}
`

// startEGShape starts envoyproxy/ratelimit (bin) on the shared Redis
// (database 0) and an Envoy with egBootstrap in front of it.
func startEGShape(sh *shared, ps *procs, bin string) (*stack, error) {
	ports, err := loadgen.FreePorts(6)
	if err != nil {
		return nil, err
	}
	listener, envoyAdmin, httpP, grpcP, debugP := ports[0], ports[1], ports[2], ports[3], ports[4]
	dir := filepath.Join(sh.dir, "eg")
	cfgDir := filepath.Join(dir, "runtime", "ratelimit", "config")
	if err := os.MkdirAll(cfgDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "bench.yaml"), []byte(egConfig), 0o644); err != nil {
		return nil, err
	}
	rl, err := ps.start(dir, "ratelimit", bin, nil, "USE_STATSD=false", "LOG_LEVEL=warn", "REDIS_SOCKET_TYPE=tcp",
		"REDIS_URL="+addr(sh.redisPort), "REDIS_POOL_SIZE=64", "RUNTIME_ROOT="+filepath.Join(dir, "runtime"),
		"RUNTIME_SUBDIRECTORY=ratelimit", "RUNTIME_WATCH_ROOT=false", "HOST=127.0.0.1", "GRPC_HOST=127.0.0.1", "DEBUG_HOST=127.0.0.1",
		fmt.Sprintf("PORT=%d", httpP), fmt.Sprintf("GRPC_PORT=%d", grpcP), fmt.Sprintf("DEBUG_PORT=%d", debugP))
	if err != nil {
		return nil, err
	}
	if err := loadgen.WaitTCP(addr(grpcP), 15*time.Second); err != nil {
		return nil, err
	}
	upPort := sh.upPort()
	boot := fmt.Sprintf(egBootstrap, envoyAdmin, listener, sh.iss.Issuer, sh.iss.Audience, sh.iss.JWKS(), upPort, grpcP)
	ev, err := startEnvoy(dir, ps, []byte(boot), envoyAdmin, listener)
	if err != nil {
		return nil, err
	}
	return &stack{name: "eg", port: listener, pids: map[string]int{"envoy": ev, "ratelimit": rl}}, nil
}
