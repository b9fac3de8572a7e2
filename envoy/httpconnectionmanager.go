package envoy

import (
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Conventional extension names. Envoy selects an extension by the type URL
// of its typed_config; the name is a label, except that per-route
// typed_per_filter_config is keyed by the HTTP filter's name.
const (
	HTTPConnectionManagerName = "envoy.filters.network.http_connection_manager"
	RouterName                = "envoy.filters.http.router"
)

// HTTPConnectionManager returns an HTTP connection manager for an edge proxy
// that fetches the RouteConfiguration named routeConfigName over ADS (RDS).
//
// httpFilters run in the given order; the router filter is always appended
// last, so callers must not pass one. Every filter must carry a typed_config
// (Envoy 1.39+ rejects filters without one).
//
// Edge defaults: the downstream address is trusted as the client address
// (use_remote_address, no trusted XFF hops), paths are normalized (RFC 3986,
// merged slashes, escaped slashes unescaped with a redirect), headers with
// underscores reject the request, any port in Host is stripped before
// virtual-host matching, and a request ID is generated.
func HTTPConnectionManager(statPrefix, routeConfigName string, httpFilters ...*hcmv3.HttpFilter) *hcmv3.HttpConnectionManager {
	filters := make([]*hcmv3.HttpFilter, 0, len(httpFilters)+1)
	filters = append(filters, httpFilters...)
	filters = append(filters, RouterFilter())
	return &hcmv3.HttpConnectionManager{
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		StatPrefix: statPrefix,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{
			Rds: &hcmv3.Rds{
				ConfigSource:    ConfigSourceADS(),
				RouteConfigName: routeConfigName,
			},
		},
		HttpFilters:                  filters,
		UseRemoteAddress:             wrapperspb.Bool(true),
		NormalizePath:                wrapperspb.Bool(true),
		MergeSlashes:                 true,
		PathWithEscapedSlashesAction: hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT,
		CommonHttpProtocolOptions: &corev3.HttpProtocolOptions{
			HeadersWithUnderscoresAction: corev3.HttpProtocolOptions_REJECT_REQUEST,
		},
		StripPortMode:     &hcmv3.HttpConnectionManager_StripAnyHostPort{StripAnyHostPort: true},
		GenerateRequestId: wrapperspb.Bool(true),
	}
}

// RouterFilter returns the router HTTP filter, which must be the last filter
// of every HTTP connection manager. Its typed_config is an empty Router.
func RouterFilter() *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{
		Name:       RouterName,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: MustAny(&routerv3.Router{})},
	}
}

// HTTPConnectionManagerFilter wraps m as a listener network filter. It fails
// only if m cannot be marshalled (for example invalid UTF-8 in a name).
func HTTPConnectionManagerFilter(m *hcmv3.HttpConnectionManager) (*listenerv3.Filter, error) {
	a, err := Any(m)
	if err != nil {
		return nil, fmt.Errorf("http connection manager %q: %w", m.GetStatPrefix(), err)
	}
	return &listenerv3.Filter{
		Name:       HTTPConnectionManagerName,
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: a},
	}, nil
}
