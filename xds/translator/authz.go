package translator

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/extauthz/contract"
	"github.com/tollgate/tollgate/policy/ir"
)

// authzConnectTimeout is the connect timeout of the ext_authz cluster.
const authzConnectTimeout = time.Second

// headerAuthorization is the request header the ext_authz service reads
// besides the API-key header. It reads nothing else: CORS preflights are
// answered by Envoy's CORS filter, never by the service.
const headerAuthorization = "authorization"

// defaultIdentityHeaders are stripped when the IR names no identity header.
var defaultIdentityHeaders = []string{"x-consumer-tier", "x-tenant-id", "x-user-id", "x-user-roles"}

// authz is how one gateway's Envoys treat authentication: the identity
// headers every request loses, and, when the gateway needs authz, the
// ext_authz filter settings and the service's cluster.
type authz struct {
	identityHeaders []string
	// keyHeader is the policy's API-key header, "" without API keys.
	keyHeader string
	// native decides which protected routes Envoy's jwt_authn serves.
	native *nativeJWT
	// clientIP: the edge filter puts the trusted client address in
	// contract.HeaderClientIP, for routes that take their rate limits in
	// the ext_authz Check (ratelimit_check.go).
	clientIP bool
	// quota: the policy's limits are enforced in Envoy (rateLimits.mode
	// quota), so no route takes them in the ext_authz Check.
	quota bool
	// stripInternal also removes Server and x-envoy-* from responses.
	stripInternal bool
	// enabled is false when every route of the gateway is public: no
	// ext_authz filter, per-route config or cluster.
	enabled bool
	filter  envoy.ExtAuthzOptions
	cluster *clusterv3.Cluster
}

// newAuthz derives the gateway's authz settings from the IR and opts.
func newAuthz(cfg *ir.Config, gw *ir.Gateway, opts Options, native *nativeJWT) (*authz, error) {
	a := &authz{identityHeaders: cfg.Auth.IdentityHeaders.Names(), stripInternal: gw.Edge.StripInternalHeaders, native: native,
		quota: cfg.RateLimits.Quota()}
	if k := cfg.Auth.APIKeys; k != nil {
		a.keyHeader = k.Header
	}
	if len(a.identityHeaders) == 0 {
		a.identityHeaders = defaultIdentityHeaders
	}
	if !native.needsExtAuthz(gw) {
		return a, nil
	}
	if opts.AuthzAddress == "" {
		return nil, errors.New("routes require authentication but no ext_authz service address is set: start the control plane with --authz-addr")
	}
	if err := checkGatewayAuth(gw.Auth); err != nil {
		return nil, err
	}
	c, err := envoy.GRPCClusterAddrs(contract.ClusterName, opts.AuthzAddress, authzConnectTimeout)
	if err != nil {
		return nil, fmt.Errorf("ext_authz service: %w", err)
	}
	credentials := []string{headerAuthorization}
	if a.keyHeader != "" {
		credentials = append(credentials, a.keyHeader)
	}
	a.enabled, a.cluster = true, c
	limitHeaders := a.checkLimitHeaders(gw) // ratelimit_check.go
	a.clientIP = len(limitHeaders) > 0
	mutable := append(credentials, a.identityHeaders...)
	if a.clientIP {
		mutable = append(mutable, contract.HeaderClientIP)
	}
	a.filter = envoy.ExtAuthzOptions{
		Cluster:        contract.ClusterName,
		Timeout:        gw.Auth.Timeout,
		StatusOnError:  gw.Auth.StatusOnError,
		AllowedHeaders: append(slices.Clone(credentials), limitHeaders...),
		MutableHeaders: mutable,
		Retry:          replicaRetry(opts.AuthzAddress, cmp.Or(gw.Auth.Timeout, envoy.DefaultExtAuthzTimeout)),
	}
	if native.keys || native.mixed {
		a.filter.SkipWhen = nativeMarkerMatcher() // a credential decided in Envoy: no Check
	}
	return a, nil
}

// checkGatewayAuth rejects a negative timeout and a status on error that is
// not an HTTP error status (0 means the default).
func checkGatewayAuth(ga ir.GatewayAuth) error {
	if ga.Timeout < 0 {
		return fmt.Errorf("negative ext_authz timeout %s", ga.Timeout)
	}
	if s := ga.StatusOnError; s != 0 && (s < 400 || s > 599) {
		return fmt.Errorf("ext_authz status on error %d is not an HTTP error status", s)
	}
	return nil
}

// httpFilters returns the gateway's HTTP filters before the router:
// header_mutation first, always, then ext_authz when enabled.
//
// The edge sets contract.HeaderClientIP where a Check takes limits
// (a.clientIP) and removes a client's copy everywhere else: the header
// names Envoy's trusted client address to Tollgate's services, so no
// upstream may see a value the client chose.
func (a *authz) httpFilters() ([]*hcmv3.HttpFilter, error) {
	removed := a.identityHeaders
	if !a.clientIP {
		removed = append(slices.Clip(removed), contract.HeaderClientIP)
	}
	strip, err := envoy.EdgeHeaderMutationFilter(removed, a.stripInternal)
	if err == nil && a.clientIP {
		err = envoy.SetClientAddressHeader(strip, contract.HeaderClientIP)
	}
	if err != nil {
		return nil, err
	}
	if !a.enabled {
		return []*hcmv3.HttpFilter{strip}, nil
	}
	check, err := envoy.ExtAuthzFilter(a.filter)
	if err != nil {
		return nil, err
	}
	return []*hcmv3.HttpFilter{strip, check}, nil
}

// stripOnRoute returns the client request headers the edge filter removes
// on a route with auth ra, before any other filter runs: on a public route
// the API-key header, a credential for the gateway that the route's
// upstream has no business seeing (on other routes ext_authz reads it and
// removes it unless the route forwards credentials, and a public route
// cannot). Authorization is kept on public routes: it is the standard
// header an upstream's own authentication reads (HTTP Basic on a token
// endpoint, a service checking its own bearer tokens), and a public route
// has no way to ask for it back.
func (a *authz) stripOnRoute(ra ir.RouteAuth) []string {
	if !ra.Public || ra.ForwardCredentials || a.keyHeader == "" {
		return nil
	}
	return []string{a.keyHeader}
}

// configureRoute sets the route's ext_authz per-route config when the
// gateway runs ext_authz: disabled on a public route, otherwise the route's
// requirement as context extensions, marked to take the route's rate
// limits in the Check when limits is true.
func (a *authz) configureRoute(er *routev3.Route, ra ir.RouteAuth, name string, limits bool) error {
	if !a.enabled {
		return nil
	}
	if ra.Public {
		return envoy.SetRouteFilterConfig(er, envoy.ExtAuthzName, envoy.ExtAuthzPerRouteDisabled())
	}
	if err := checkListValues(ra); err != nil {
		return err
	}
	return envoy.SetRouteFilterConfig(er, envoy.ExtAuthzName, envoy.ExtAuthzPerRouteCheck(contextExtensions(ra, name, limits)))
}

// checkListValues refuses a method, role or scope that the context
// extensions' comma-joined lists cannot carry (empty, or holding a comma).
func checkListValues(ra ir.RouteAuth) error {
	for _, list := range [][]string{ra.Methods, ra.Roles, ra.Scopes} {
		for _, v := range list {
			if v == "" || strings.Contains(v, contract.ListSeparator) {
				return fmt.Errorf("auth: %q cannot be passed to the ext_authz service (empty or contains %q)", v, contract.ListSeparator)
			}
		}
	}
	return nil
}

// contextExtensions encodes a route's requirement with the contract's keys:
// route and methods always, roles and scopes when not empty,
// forward_credentials only when true, rate_limit "exact" when the Check
// takes the route's rate limits.
func contextExtensions(ra ir.RouteAuth, name string, limits bool) map[string]string {
	ext := map[string]string{
		contract.KeyRoute:   name,
		contract.KeyMethods: strings.Join(ra.Methods, contract.ListSeparator),
	}
	if len(ra.Roles) > 0 {
		ext[contract.KeyRoles] = strings.Join(ra.Roles, contract.ListSeparator)
	}
	if len(ra.Scopes) > 0 {
		ext[contract.KeyScopes] = strings.Join(ra.Scopes, contract.ListSeparator)
	}
	if ra.ForwardCredentials {
		ext[contract.KeyForwardCredentials] = "true"
	}
	if limits {
		ext[contract.KeyRateLimit] = contract.RateLimitExact
	}
	return ext
}
