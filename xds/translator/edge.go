package translator

import (
	"strings"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/tollgate/tollgate/envoy"
	"github.com/tollgate/tollgate/policy/ir"
)

// edgeOptions maps the gateway's edge settings to the connection
// manager's.
func edgeOptions(e ir.Edge) envoy.EdgeOptions {
	return envoy.EdgeOptions{
		XFFTrustedHops:        e.XFFTrustedHops,
		StripInternalHeaders:  e.StripInternalHeaders,
		MaxRequestHeadersKB:   e.MaxRequestHeadersKB,
		MaxHeadersCount:       e.MaxHeadersCount,
		RequestHeadersTimeout: e.RequestHeadersTimeout,
		StreamIdleTimeout:     e.StreamIdleTimeout,
		IdleTimeout:           e.IdleTimeout,
	}
}

// httpFilterChain returns the gateway's HTTP filters before the router, in
// the agreed decode order: header_mutation (identity headers; always) →
// cors → jwt_authn → jwt identity (Lua) → key identity (Lua) → identity
// metadata (header_to_metadata) → rbac (when a route is decided natively,
// jwtauthn.go) → ext_authz → the module's charger (jwtmodule_charge.go) →
// ratelimit → compressors
// → lua → identity guard (a
// second header_mutation that rebuilds the identity headers from ext_authz's
// metadata, present with lua). Each but the first is present only when a
// route uses it.
func httpFilterChain(authz *authz, native *nativeJWT, rl *rateLimit, hf *httpFeatures) ([]*hcmv3.HttpFilter, error) {
	authzFilters, err := authz.httpFilters() // header_mutation first, then ext_authz when enabled
	if err != nil {
		return nil, err
	}
	rlFilters, err := rl.httpFilters()
	if err != nil {
		return nil, err
	}
	late, err := hf.lateFilters()
	if err != nil {
		return nil, err
	}
	jwtFilters, err := native.httpFilters() // jwt_authn, identity, rbac
	if err != nil {
		return nil, err
	}
	charge, err := native.chargeFilters() // the module's charger (jwtmodule_charge.go)
	if err != nil {
		return nil, err
	}
	out := make([]*hcmv3.HttpFilter, 0, len(authzFilters)+len(rlFilters)+len(late)+2)
	out = append(out, authzFilters[0])
	out = append(out, hf.corsFilters()...)
	out = append(out, jwtFilters...)
	out = append(out, authzFilters[1:]...)
	out = append(out, charge...)    // right after ext_authz: reads its metadata
	out = append(out, rlFilters...) // after ext_authz: reads its metadata
	return append(out, late...), nil
}

// backendOfAssignment returns the backend of an EDS service name
// "<backend>~<hash>".
func backendOfAssignment(cla *endpointv3.ClusterLoadAssignment) string {
	b, _, _ := strings.Cut(cla.GetClusterName(), "~")
	return b
}
