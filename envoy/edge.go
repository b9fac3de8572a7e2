package envoy

import (
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// HTTP/2 limits for downstream connections (Envoy's edge recommendations):
// at most 100 concurrent streams, 64 KiB stream and 1 MiB connection
// flow-control windows, so one client cannot buffer much in Envoy.
const (
	edgeMaxConcurrentStreams  = 100
	edgeStreamWindowBytes     = 64 << 10
	edgeConnectionWindowBytes = 1 << 20
)

// EdgeOptions are the edge settings of an HTTP connection manager that
// policies may change.
type EdgeOptions struct {
	// XFFTrustedHops is how many proxies in front of Envoy append to
	// X-Forwarded-For; 0 means the connection's peer is the client.
	XFFTrustedHops uint32
	// StripInternalHeaders stops Envoy from adding Server and x-envoy-*
	// response headers (EdgeHeaderMutationFilter removes the upstream's).
	StripInternalHeaders bool
	// MaxRequestHeadersKB and MaxHeadersCount bound a request's headers
	// (431 beyond them); 0 keeps Envoy's default (60 KiB, 100 headers).
	MaxRequestHeadersKB uint32
	MaxHeadersCount     uint32
	// RequestHeadersTimeout bounds receiving a request's headers;
	// StreamIdleTimeout a stream without activity; IdleTimeout a
	// connection without streams. 0 keeps Envoy's default.
	RequestHeadersTimeout time.Duration
	StreamIdleTimeout     time.Duration
	IdleTimeout           time.Duration
}

// ApplyEdge sets o on m, a manager from HTTPConnectionManager, and always
// sets the HTTP/2 limits and returns x-request-id to the client.
func ApplyEdge(m *hcmv3.HttpConnectionManager, o EdgeOptions) {
	m.XffNumTrustedHops = o.XFFTrustedHops
	if o.MaxRequestHeadersKB > 0 {
		m.MaxRequestHeadersKb = wrapperspb.UInt32(o.MaxRequestHeadersKB)
	}
	if m.CommonHttpProtocolOptions == nil {
		m.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{}
	}
	if o.MaxHeadersCount > 0 {
		m.CommonHttpProtocolOptions.MaxHeadersCount = wrapperspb.UInt32(o.MaxHeadersCount)
	}
	if o.IdleTimeout > 0 {
		m.CommonHttpProtocolOptions.IdleTimeout = durationpb.New(o.IdleTimeout)
	}
	if o.RequestHeadersTimeout > 0 {
		m.RequestHeadersTimeout = durationpb.New(o.RequestHeadersTimeout)
	}
	if o.StreamIdleTimeout > 0 {
		m.StreamIdleTimeout = durationpb.New(o.StreamIdleTimeout)
	}
	m.Http2ProtocolOptions = &corev3.Http2ProtocolOptions{
		MaxConcurrentStreams:        wrapperspb.UInt32(edgeMaxConcurrentStreams),
		InitialStreamWindowSize:     wrapperspb.UInt32(edgeStreamWindowBytes),
		InitialConnectionWindowSize: wrapperspb.UInt32(edgeConnectionWindowBytes),
	}
	m.AlwaysSetRequestIdInResponse = true
	if o.StripInternalHeaders {
		m.ServerHeaderTransformation = hcmv3.HttpConnectionManager_PASS_THROUGH
		for _, f := range m.GetHttpFilters() {
			if f.GetName() == RouterName {
				f.ConfigType = &hcmv3.HttpFilter_TypedConfig{TypedConfig: MustAny(&routerv3.Router{SuppressEnvoyHeaders: true})}
			}
		}
	}
}
