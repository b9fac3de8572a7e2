// Package translator turns the policy IR of one gateway into the Envoy
// resources (listeners, route configurations, clusters, endpoints) that the
// gateway's Envoys receive over ADS.
//
// It is where IR names meet Envoy: it decides nothing about Envoy's defaults
// (package envoy does) and nothing about the policy (the IR is final). Its
// output is deterministic: the same IR always yields resources whose
// deterministic protobuf encoding is byte-identical.
package translator

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/tollgate/tollgate/internal/parallel"
	"github.com/tollgate/tollgate/policy/ir"
)

// Resources is one gateway's Envoy configuration, each slice sorted by name
// (ClusterLoadAssignments by cluster_name).
//
// Resources may share sub-messages (every RouteConfiguration of a gateway
// holds the same VirtualHost messages, and TranslateValidated shares route
// messages with the previous version), so neither the slices nor the
// messages may be modified once Translate returns them.
type Resources struct {
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
	Clusters  []*clusterv3.Cluster
	Endpoints []*endpointv3.ClusterLoadAssignment
	Secrets   []*tlsv3.Secret
	// KeyIdentity, when the gateway has native key routes, builds the ECDS
	// resource of the key identity filter from the key store's exceptions
	// table, which the xDS server supplies (it changes without a policy
	// push).
	KeyIdentity *KeyIdentity
	// JWTAuthn, when the gateway's jwt_authn filter verifies tokens of a
	// remote JWKS, builds that filter's ECDS resource from the JWKS epoch,
	// which the xDS server supplies (it changes when a key is withdrawn,
	// without a policy push).
	JWTAuthn *JWTAuthn

	// valid is every route by the digest of its encoding, set by
	// TranslateValidated once the resources validated (reuse.go).
	valid *validRoutes
	// routeEnc is the encoding of each of Routes, set by
	// TranslateValidated (RouteEncodings).
	routeEnc [][]byte
}

// Options are the deployment facts the IR does not hold.
type Options struct {
	// AuthzAddress is host:port of Tollgate's ext_authz gRPC service as the
	// gateway's Envoys reach it (an IP address gives a STATIC cluster, a
	// host name a STRICT_DNS one). Required when a gateway has a route that
	// is not public (ir.Gateway.NeedsAuthz). A comma-separated list names
	// several replicas (one cluster, retried; replicas.go).
	AuthzAddress string
	// RateLimitAddress is host:port of Tollgate's rate-limit (RLS) gRPC
	// service as the gateway's Envoys reach it, with the same rules.
	// Required when a gateway has a rate-limited route
	// (ir.Gateway.NeedsRateLimit).
	RateLimitAddress string
	// Certs supplies the PEM of the gateway's SDS secrets (see tls.go).
	// Required when a gateway has TLS listeners or TLS backends.
	Certs CertSource
	// ExtProcAddress is host:port of Tollgate's body transformation
	// (ext_proc) gRPC service as the gateway's Envoys reach it, with the
	// same rules. Required when a gateway has a route with a transform
	// (ir.Gateway.NeedsTransform).
	ExtProcAddress string
	// ACMEAddress is host:port of the control plane's ACME HTTP-01
	// challenge responder as the gateway's Envoys reach it (see acme.go).
	// Required when a gateway has a listener with ACME.
	ACMEAddress string
	// KeyJWKS is the public JWKS of the API-key signer (inline JSON): the
	// key that signs API keys, which Envoy verifies natively on
	// API-key-only routes (apikeynative.go). Empty: every API-key route
	// calls ext_authz.
	KeyJWKS string
	// EnvoyModule is the path of Tollgate's Envoy module
	// (envoymod.LibraryName) on the gateway's Envoy hosts: native JWT
	// routes are then decided by it (jwtmodule.go). Empty: by jwt_authn,
	// a Lua script, header_to_metadata and rbac.
	EnvoyModule string

	// workers, when set, replaces parallel.Workers in choosing how many
	// goroutines build n routes (tests force the parallel path with it).
	workers func(n, minItems int) int
}

// routeWorkers is how many goroutines build n routes.
func (o Options) routeWorkers(n int) int {
	if o.workers != nil {
		return o.workers(n, translateRoutesMin)
	}
	return parallel.Workers(n, translateRoutesMin)
}

// Translate returns the Envoy resources of the gateway named gateway in cfg:
//   - one Listener and one RouteConfiguration per IR listener, the listener
//     named after it, the route table "<listener>_<hash of the listener's
//     HTTP filters>" (bindRouteConfig: a changed filter chain never meets
//     the routes of another one), each route table holding all of the
//     gateway's virtual hosts;
//     every HTTP connection manager runs the HTTP filters header_mutation
//     (strips the identity headers from every request), ext_authz (only
//     when the gateway needs authz), ratelimit (only when the gateway needs
//     rate limiting; after ext_authz, whose dynamic metadata it reads) and
//     router, in that order;
//   - when the gateway needs authz, per-route ext_authz settings (disabled
//     on public routes, the route's requirement as context extensions on
//     the others) and the STATIC or STRICT_DNS HTTP/2 cluster
//     contract.ClusterName of the ext_authz service at opts.AuthzAddress;
//   - when the gateway needs rate limiting, the rate_limits of each
//     rate-limited route's action (one descriptor: route, consumer, tier,
//     client IP and headers as the route's limits need them, with the
//     ir.Descriptor* keys, in domain ir.RateLimitDomain) and the STATIC or
//     STRICT_DNS HTTP/2 cluster RateLimitClusterName of the rate-limit
//     service at opts.RateLimitAddress;
//   - when a route has a transform, the ext_proc filter last before the
//     router (doing nothing by default), on each route either
//     ExtProcPerRoute disabled or overrides asking only for the headers and
//     BUFFERED body of the directions the route converts, with the route's
//     settings as gRPC metadata (package transform/contract), and the
//     STATIC or STRICT_DNS HTTP/2 cluster contract.ClusterName of the
//     service at opts.ExtProcAddress;
//   - one EDS Cluster per backend the gateway's routes reference, named
//     after the backend, and its ClusterLoadAssignment, named by the
//     cluster's EDS service name "<backend>~<8 hex digits>": a hash of the
//     cluster's settings, so that a changed cluster asks for a fresh
//     assignment instead of warming until its initial_fetch_timeout. The
//     traffic settings (traffic.go) add health checks, outlier detection
//     and circuit breakers to the cluster, hash policies, retries, idle
//     timeouts, weighted splits and mirrors to the route actions; a backend
//     that names a DNS host gets a DNS cluster with inline endpoints and no
//     ClusterLoadAssignment. Split and mirror targets get clusters like any
//     other backend;
//   - TLS (see applyListenerTLS and tls.go): transport sockets on TLS
//     listeners and TLS backends' clusters referencing SDS secrets by name,
//     the secrets themselves with the material opts.Certs supplies, the
//     HTTPS redirect on plaintext listeners and the HSTS header.
//
// It fails if the gateway is unknown, a route references an unknown backend,
// the gateway needs authz but opts.AuthzAddress is empty or malformed, the
// gateway needs rate limiting but opts.RateLimitAddress is empty or
// malformed, or the IR breaks one of its documented invariants. It does not
// validate the result against Envoy's rules: call Validate for that.
func Translate(cfg *ir.Config, gateway string, opts Options) (*Resources, error) {
	if cfg == nil {
		return nil, errors.New("translate: nil config")
	}
	gw, ok := cfg.Gateway(gateway)
	if !ok {
		return nil, fmt.Errorf("translate: unknown gateway %q", gateway)
	}
	r, err := translateGateway(cfg, &gw, opts)
	if err != nil {
		return nil, fmt.Errorf("translate gateway %q: %w", gateway, err)
	}
	r.sort()
	return r, nil
}

// translateGateway builds the unsorted resources of gw.
func translateGateway(cfg *ir.Config, gw *ir.Gateway, opts Options) (*Resources, error) {
	native, err := newNativeJWT(cfg, gw, opts.KeyJWKS, opts.EnvoyModule, opts.RateLimitAddress)
	if err != nil {
		return nil, err
	}
	authz, err := newAuthz(cfg, gw, opts, native)
	if err != nil {
		return nil, err
	}
	rl, err := newRateLimit(cfg, gw, opts, authz)
	if err != nil {
		return nil, err
	}
	hf, err := newHTTPFeatures(gw, cfg.Auth.IdentityHeaders)
	if err != nil {
		return nil, err
	}
	obs, err := newObservability(cfg, gw, authz, rl)
	if err != nil {
		return nil, err
	}
	built := builtRoutes(gw.VirtualHosts, newTraffic(cfg.Backends), opts.routeWorkers(routeTotal(gw.VirtualHosts)))
	vhosts, err := virtualHosts(gw.VirtualHosts, built, authz, native, rl, hf, obs)
	if err != nil {
		return nil, err
	}
	filters, err := httpFilterChain(authz, native, rl, hf)
	if err != nil {
		return nil, err
	}
	tf, err := newTransform(gw, opts)
	if err != nil {
		return nil, err
	}
	tfFilters, err := tf.apply(gw.VirtualHosts, vhosts)
	if err != nil {
		return nil, err
	}
	filters = append(filters, tfFilters...) // ext_proc: last before the router
	decorate, err := native.decorate(obs.decorate)
	if err == nil {
		decorate, err = authz.decorate(decorate) // authzlocalreply.go
	}
	if err == nil {
		decorate, err = rl.decorate(decorate) // ratelimit_quota_reply.go
	}
	if err != nil {
		return nil, err
	}
	listeners, routes, err := listenersAndRoutes(gw.Listeners, vhosts, filters, gw.Edge, decorate)
	if err != nil {
		return nil, err
	}
	hf.configureRouteConfigs(routes)
	if err := applyListenerTLS(gw, listeners, routes); err != nil {
		return nil, err
	}
	acmeCluster, err := acmeChallenges(gw, routes, challengeFiltersOff(authz, native, hf, tf), opts)
	if err != nil {
		return nil, err
	}
	secrets, err := secrets(gw, opts.Certs)
	if err != nil {
		return nil, err
	}
	clusters, endpoints, err := clustersAndEndpoints(cfg.Backends, gw.BackendNames())
	if err != nil {
		return nil, err
	}
	hf.configureEndpoints(endpoints)
	services, err := serviceClusters(gw, authz, rl, obs, tf, acmeCluster, native.clusters)
	if err != nil {
		return nil, err
	}
	clusters = append(clusters, services...)
	return &Resources{Listeners: listeners, Routes: routes, Clusters: clusters, Endpoints: endpoints, Secrets: secrets,
		KeyIdentity: native.keyIdentity, JWTAuthn: native.jwtAuthn}, nil
}

// serviceClusters returns the clusters of Tollgate's own services the
// gateway's Envoys call (ext_authz, rate limit, tracing and access-log
// sinks, ext_proc, the ACME responder), refusing a backend that takes the
// name of the ext_authz or rate-limit cluster.
func serviceClusters(gw *ir.Gateway, authz *authz, rl *rateLimit, obs *observability, tf *transform,
	acmeCluster *clusterv3.Cluster, jwks []*clusterv3.Cluster,
) ([]*clusterv3.Cluster, error) {
	var out []*clusterv3.Cluster
	type svc struct {
		c    *clusterv3.Cluster
		what string
	}
	svcs := []svc{{authz.cluster, "ext_authz"}, {rl.cluster, "rate-limit"}}
	for _, c := range jwks {
		svcs = append(svcs, svc{c, "JWKS"})
	}
	for _, svc := range svcs {
		if svc.c == nil {
			continue
		}
		if slices.Contains(gw.BackendNames(), svc.c.GetName()) {
			return nil, fmt.Errorf("backend %q: the name is reserved for the %s service cluster", svc.c.GetName(), svc.what)
		}
		out = append(out, svc.c)
	}
	out, err := obs.appendClusters(out, gw)
	if err != nil {
		return nil, err
	}
	out = append(out, tf.clusters()...)
	if acmeCluster != nil {
		out = append(out, acmeCluster)
	}
	return out, nil
}

// ByType returns the resources keyed by xDS type URL, the form
// cache.NewSnapshot takes.
func (r *Resources) ByType() map[resource.Type][]types.Resource {
	return map[resource.Type][]types.Resource{
		resource.ListenerType: asResources(r.Listeners),
		resource.RouteType:    asResources(r.Routes),
		resource.ClusterType:  asResources(r.Clusters),
		resource.EndpointType: asResources(r.Endpoints),
		resource.SecretType:   asResources(r.Secrets),
	}
}

// sort orders every slice by resource name.
func (r *Resources) sort() {
	slices.SortFunc(r.Listeners, func(a, b *listenerv3.Listener) int { return cmp.Compare(a.GetName(), b.GetName()) })
	slices.SortFunc(r.Routes, func(a, b *routev3.RouteConfiguration) int { return cmp.Compare(a.GetName(), b.GetName()) })
	slices.SortFunc(r.Clusters, func(a, b *clusterv3.Cluster) int { return cmp.Compare(a.GetName(), b.GetName()) })
	slices.SortFunc(r.Endpoints, func(a, b *endpointv3.ClusterLoadAssignment) int {
		return cmp.Compare(a.GetClusterName(), b.GetClusterName())
	})
	slices.SortFunc(r.Secrets, func(a, b *tlsv3.Secret) int { return cmp.Compare(a.GetName(), b.GetName()) })
}

// asResources converts a slice of typed resources to cache resources.
func asResources[T types.Resource](in []T) []types.Resource {
	out := make([]types.Resource, len(in))
	for i, r := range in {
		out[i] = r
	}
	return out
}
